"""sq's processes build Arrow arrays without pyarrow importing pandas (0.2 s of start-up), and
pandas still works for anything that asks pyarrow for it."""

import subprocess
import sys

PROBE = """
import sys
import numpy as np
import pyarrow as pa
import sq.core.schemas
pa.array(["x", None]); pa.array(np.arange(3)); pa.table({"a": [1.0, 2.0]})
print("pandas" in sys.modules)
frame = pa.table({"a": [1, 2]}).to_pandas()
print(type(frame).__name__, int(frame["a"].sum()), "pandas" in sys.modules)
"""


def test_arrow_arrays_are_built_without_importing_pandas_and_to_pandas_still_works():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True).stdout.split("\n")
    assert out[0] == "False"
    assert out[1] == "DataFrame 3 True"


def test_a_process_that_already_imported_pandas_keeps_pyarrow_s_pandas_support():
    probe = "import pandas as pd, pyarrow as pa, sq.core.schemas\nprint(pa.array(pd.Series([1, None], dtype='Int64')).to_pylist())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[1, None]"
