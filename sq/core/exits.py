"""The one exit-status enum (sysexits, README: Exit codes) and the exceptions that carry it.

Library code raises an `SqError` subclass; `sq.cli.main` is the single place that turns any
exception into a one-line stderr message and one of these statuses.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    DIFFERENCES = 1  # reconcile found differences / kill left something open or could not check a venue market / no feasible search point
    USAGE = 2
    DATA_ERR = 65  # bad input data
    NO_INPUT = 66  # input file missing
    UNAVAILABLE = 69  # venue unavailable
    SOFTWARE = 70  # internal error (a bug in sq)
    IO_ERR = 74  # a write failed: the disk is full (or the file system failed); the run stopped cleanly
    TEMP_FAIL = 75  # retry later: rate limited, lock held
    NO_PERM = 77  # not authenticated / permission
    CONFIG = 78  # bad configuration (or a broken install: a package sq needs cannot be imported)
    INTERRUPTED = 130  # Ctrl-C (SIGINT): 128 + 2
    TERMINATED = 143  # SIGTERM: 128 + 15 (but a halt by `sq kill` is 0)


# What each status means to a user (docs/exit-codes.md and README: Exit codes are generated from
# and checked against this table).
MEANINGS: dict[ExitStatus, str] = {
    ExitStatus.OK: "ok (also: downstream closed the pipe, e.g. `| head`; a run halted by `sq kill`)",
    ExitStatus.DIFFERENCES: "`reconcile` found differences / `kill` left something open or could not check a venue market / a `backtest` search found no feasible point",
    ExitStatus.USAGE: "usage error (unknown option, symbol, strategy, …)",
    ExitStatus.DATA_ERR: "bad input data (corrupt, truncated or wrong-kind stream, NaN prices, a damaged journal, …)",
    ExitStatus.NO_INPUT: "input file missing",
    ExitStatus.UNAVAILABLE: "venue unavailable (network, maintenance, a market it cannot reach)",
    ExitStatus.SOFTWARE: "internal error (a bug in sq; run with `--debug`), or the strategy raised",
    ExitStatus.IO_ERR: "a write failed: the disk is full (or a quota, a read-only or failing file system); the run stopped cleanly, said what it kept, and a journal continues with `--resume`",
    ExitStatus.TEMP_FAIL: "temporary failure: rate limited, lock held (another run on the symbol) — retry later",
    ExitStatus.NO_PERM: "not authenticated / permission denied (no or expired session, secrets file not 0600)",
    ExitStatus.CONFIG: "bad configuration (also a broken install: a package sq needs cannot be imported)",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C, SIGINT: 128 + 2), after a clean shutdown",
    ExitStatus.TERMINATED: "terminated (SIGTERM: 128 + 15), after a clean shutdown",
}

SIGNAL_STATUS = {"SIGINT": ExitStatus.INTERRUPTED, "SIGTERM": ExitStatus.TERMINATED}
HALTED_BY_KILL = "kill"  # the stop reason of a SIGTERM that `sq kill` sent (exit 0)

_stopped_by: list[str] = []  # the signal that stopped this process's run, noted by the run's lifecycle


def note_stopped_by(reason: str | None) -> None:
    """Record what stopped the run (a signal name, or HALTED_BY_KILL); the first one counts.
    `sq.cli` turns it into the exit status once the command has printed its summary."""
    if reason and not _stopped_by:
        _stopped_by.append(reason)


def take_stopped_by() -> str | None:
    """What stopped the run (None: it was not stopped by a signal), forgetting it."""
    return _stopped_by.pop() if _stopped_by else None


def status_after_stop(reason: str | None) -> ExitStatus:
    """The exit status of a run that ended cleanly after `reason` stopped it: SIGINT 130,
    SIGTERM 143, a halt by `sq kill` (or no signal) 0 (README: Exit codes)."""
    return SIGNAL_STATUS.get(reason or "", ExitStatus.OK)


class Terminated(BaseException):
    """SIGTERM reached a command that has no run to stop cleanly (book, bars…): unwind like
    Ctrl-C does (temporary files removed) and exit 143."""


class SqError(Exception):
    """An error the user can act on: a one-line message and an exit status."""

    status: ExitStatus = ExitStatus.SOFTWARE

    def __init__(self, message: str, *, status: ExitStatus | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class UsageError(SqError):
    status = ExitStatus.USAGE


class DataError(SqError):
    status = ExitStatus.DATA_ERR


class NoInputError(SqError):
    status = ExitStatus.NO_INPUT


class VenueUnavailable(SqError):
    status = ExitStatus.UNAVAILABLE


class IOFailure(SqError):
    """A write failed for a reason outside sq — a full disk, a quota, a read-only or failing file
    system (exit 74): the run stopped cleanly and the message says what was kept."""

    status = ExitStatus.IO_ERR


WRITE_FAILURES = {28: "no space left on device", 122: "disk quota exceeded", 30: "read-only file system", 5: "I/O error"}


def write_failure(e: BaseException) -> str | None:
    """What an OSError from a write means for the user ("no space left on device"), or None when
    it is not an operational write failure (a missing directory, a permission: sq's or the user's
    own error). pyarrow's errors carry the text without an errno."""
    if not isinstance(e, OSError):
        return None
    if e.errno in WRITE_FAILURES:
        return WRITE_FAILURES[e.errno]
    text = str(e)
    return next((what for what in WRITE_FAILURES.values() if what.lower() in text.lower()), None)


class TempFailure(SqError):
    status = ExitStatus.TEMP_FAIL


class AuthError(SqError):
    status = ExitStatus.NO_PERM


class ConfigError(SqError):
    status = ExitStatus.CONFIG


class StrategyError(SqError):
    """The strategy (not sq) failed while running: it raised, or an action had a bad value.
    Its orders are cancelled and its journal sealed before this reaches the user (exit 70)."""

    status = ExitStatus.SOFTWARE
