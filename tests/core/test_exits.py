"""The exit-status enum and the one exception→status mapping, pinned (README: Exit codes)."""

from __future__ import annotations

import errno
import io

import pytest
import typer

from sq.cli import PipeClosed, exit_status_for, report_error
from sq.core import exits as X


def test_enum_values_are_the_documented_sysexits():
    assert {s.name: int(s) for s in X.ExitStatus} == {
        "OK": 0, "DIFFERENCES": 1, "USAGE": 2, "DATA_ERR": 65, "NO_INPUT": 66, "UNAVAILABLE": 69,
        "SOFTWARE": 70, "IO_ERR": 74, "TEMP_FAIL": 75, "NO_PERM": 77, "CONFIG": 78, "INTERRUPTED": 130, "TERMINATED": 143,
    }


@pytest.mark.parametrize(
    "exc, status",
    [
        (X.UsageError("u"), 2),
        (X.DataError("d"), 65),
        (X.NoInputError("n"), 66),
        (X.VenueUnavailable("v"), 69),
        (X.TempFailure("t"), 75),
        (X.AuthError("a"), 77),
        (X.ConfigError("c"), 78),
        (KeyboardInterrupt(), 130),
        (X.Terminated(), 143),
        (BrokenPipeError(), 0),
        (OSError(errno.EPIPE, "pipe"), 0),
        (PipeClosed(), 0),
        (typer.Exit(3), 3),
        (RuntimeError("bug"), 70),
        (X.IOFailure("full"), 74),
        (OSError(errno.ENOSPC, "No space left on device", "/data/x.parquet"), 74),
        (OSError("[Errno 28] Error writing bytes to file. Detail: No space left on device"), 74),  # pyarrow's, no errno
        (OSError(errno.EACCES, "Permission denied"), 70),
    ],
)
def test_exception_to_status(exc, status):
    assert int(exit_status_for(exc)) == status


def test_report_is_one_line_without_traceback():
    err = io.StringIO()
    code = report_error(X.DataError("row 7: price is NaN\nsecond line"), None, err)
    assert code == 65
    assert err.getvalue() == "sq: error: row 7: price is NaN second line\n"


def test_a_full_disk_outside_any_run_is_one_line_naming_the_file():
    err = io.StringIO()
    assert report_error(OSError(errno.ENOSPC, "No space left on device", "/data/out.parquet"), None, err) == 74
    assert err.getvalue() == "sq: error: no space left on device writing /data/out.parquet: stopped\n"


@pytest.mark.parametrize("error, package", [
    (ModuleNotFoundError("No module named 'binance'", name="binance"), "python-binance"),
    (ModuleNotFoundError("import of binance halted; None in sys.modules", name="binance.client"), "python-binance"),
    (ImportError("cannot import name 'KiteConnect' from 'kiteconnect'", name="kiteconnect"), "kiteconnect"),
    (ModuleNotFoundError("No module named 'dateparser'", name="dateparser"), "dateparser"),  # an SDK's own dependency
])
def test_a_package_missing_at_run_time_is_a_configuration_error_naming_it(error, package):
    err = io.StringIO()
    assert int(exit_status_for(error)) == 78
    assert report_error(error, None, err) == 78
    text = err.getvalue()
    assert text.count("\n") == 1 and f"pip install {package}" in text and "internal error" not in text


def test_a_missing_module_of_sq_itself_stays_an_internal_error():
    err = io.StringIO()
    assert report_error(ModuleNotFoundError("No module named 'sq.nothing'", name="sq.nothing"), None, err) == 70
    assert "internal error" in err.getvalue()


def test_internal_error_hints_at_debug():
    err = io.StringIO()
    assert report_error(ValueError("oops"), None, err) == 70
    text = err.getvalue()
    assert text.count("\n") == 1 and "--debug" in text and "Traceback" not in text


def test_json_documents_have_no_nan_and_plain_numbers():
    import json

    import numpy as np

    from sq.core.environment import Environment

    out = io.BytesIO()
    env = Environment(stdin=io.BytesIO(), stdout=out, stderr=io.StringIO(), stdin_isatty=False, stdout_isatty=False, stderr_isatty=False)
    env.write_json({"sharpe": float("nan"), "n": np.int64(3), "x": [np.float64(1.5), float("inf")]})
    doc = json.loads(out.getvalue())
    assert doc == {"sharpe": None, "n": 3, "x": [1.5, None]}


@pytest.mark.parametrize("reason, status", [("SIGINT", 130), ("SIGTERM", 143), ("kill", 0), (None, 0)])
def test_a_run_stopped_by_a_signal_exits_with_its_status(reason, status):
    """One rule for every long-running command (README: Exit codes): 128 + the signal's number;
    the SIGTERM of `sq kill` is a requested halt (0)."""
    assert int(X.status_after_stop(reason)) == status
