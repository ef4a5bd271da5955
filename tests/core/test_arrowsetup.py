"""The `sq` command builds Arrow arrays without pyarrow importing pandas (0.2 s of start-up), and
pandas still works for anything that asks pyarrow for it; sq imported as a library changes nothing."""

import subprocess
import sys

COMMAND = """
import sys
from sq.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
import numpy as np
import pyarrow as pa
import sq.core.schemas
pa.array(["x", None]); pa.array(np.arange(3)); pa.table({"a": [1.0, 2.0]})
print("pandas" in sys.modules)
frame = pa.table({"a": [1, 2]}).to_pandas()
print(type(frame).__name__, int(frame["a"].sum()), "pandas" in sys.modules)
"""

LIBRARY = """
import sys
import pyarrow as pa
import sq.core.schemas
stamp = pa.array([1_700_000_000_123_456_789], pa.timestamp("ns")).to_pylist()[0]
print(type(stamp).__name__, "pandas" in sys.modules)
"""


def _run(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout.split("\n")


def test_the_sq_command_builds_arrow_arrays_without_importing_pandas_and_to_pandas_still_works():
    out = _run(COMMAND)[-3:]  # after the help text
    assert out[0] == "False"
    assert out[1] == "DataFrame 3 True"


def test_sq_imported_as_a_library_keeps_pyarrow_s_pandas_support():
    assert _run(LIBRARY)[0] == "Timestamp True"  # nanosecond stamps as pandas Timestamps, as pyarrow gives them
