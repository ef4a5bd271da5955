"""The one exit-status enum (sysexits, README: Exit codes) and the exceptions that carry it.

Library code raises an `SqError` subclass; `sq.cli.main` is the single place that turns any
exception into a one-line stderr message and one of these statuses.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    DIFFERENCES = 1  # reconcile found differences / kill left something open or could not check a venue market
    USAGE = 2
    DATA_ERR = 65  # bad input data
    NO_INPUT = 66  # input file missing
    UNAVAILABLE = 69  # venue unavailable
    SOFTWARE = 70  # internal error (a bug in sq)
    TEMP_FAIL = 75  # retry later: rate limited, lock held
    NO_PERM = 77  # not authenticated / permission
    CONFIG = 78  # bad configuration (or a broken install: a package sq needs cannot be imported)
    INTERRUPTED = 130  # Ctrl-C


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
