"""What every long-running run shares: stop on signals, registration, a journal kept resumable on error.

`sq record`, `sq paper`, `sq live` (and `sq subscribe`) end the same way whatever stops them:

* `StopOnSignals(stop)` — while active, SIGINT and SIGTERM call `stop(signal name)` (the run
  then ends cleanly after its current step). Installed before the work it stops exists, a
  signal during start-up is remembered and delivered by `attach`. Only the main thread can
  install handlers; elsewhere (tests running a command in a thread) it does nothing. On leaving,
  it notes what stopped the run (`sq.core.exits.note_stopped_by`): once the command has printed
  its summary, `sq.cli` exits with that signal's status — SIGINT 130, SIGTERM 143, but 0 for
  the SIGTERM of `sq kill` (it marks the process in the runtime registry first).
* `registered(...)` — the process is in the runtime registry (so `sq kill` finds it) exactly
  while the block runs. Enter it after `StopOnSignals`: a registered process is killable.
* `resumable_on_error(journal, cleanup)` — the block seals the journal when it succeeds; on an
  error `cleanup(error)` cancels what still works (and may seal, returning True); a journal it
  did not seal is closed unsealed so `--resume` continues it. The error propagates.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignals:
    """While active, SIGINT/SIGTERM call `stop(name)`; see the module docstring."""

    def __init__(self, stop: Callable[[str], None] | None = None):
        self.stop = stop
        self.requested: str | None = None  # the first signal's name
        self.reason: str | None = None  # what stopped the run: the signal's name, or "kill" (sq kill's SIGTERM)
        self._saved: dict = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.reason is None:
            from sq.core import exits, runtime

            self.reason = exits.HALTED_BY_KILL if name == "SIGTERM" and runtime.halt_requested() else name
        self.requested = self.requested or name
        if self.stop is not None:
            self.stop(name)

    def attach(self, stop: Callable[[str], None]) -> None:
        """Stop `stop` from now on; a signal that already came stops it at once."""
        self.stop = stop
        if self.requested:
            stop(self.requested)

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        from sq.core.exits import note_stopped_by

        note_stopped_by(self.reason)
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()


@contextmanager
def registered(strategy: str, venue: str, symbols: list[str], *, mode: str, journal: str) -> Iterator[Any]:
    """The current process in the runtime registry for the duration of the block."""
    from sq.core import runtime

    registration = runtime.register(strategy, venue, symbols, mode=mode, journal=journal)
    try:
        yield registration
    finally:
        registration.remove()


@contextmanager
def resumable_on_error(journal: Any, cleanup: Callable[[BaseException], bool]) -> Iterator[None]:
    """On an error in the block: `cleanup(error)` (True when it sealed the journal), else the
    journal is closed unsealed, verified and resumable. A failing cleanup never hides the error."""
    try:
        yield
    except BaseException as error:
        sealed = False
        try:
            sealed = bool(cleanup(error))
        except Exception:  # noqa: BLE001 - the original error is the one to report
            sealed = False
        if not sealed:
            journal.close()
        raise
