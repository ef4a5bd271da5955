"""`sq kill`: halt every registered trading process (README: Exit codes).

The halt is a list of steps run in order, each producing rows of one report:

  1. `halt_processes` — SIGTERM to every matching process in the runtime registry at once; each
     cancels its orders, seals its journal, removes its registry entry and exits 0. Whatever is
     still running after `timeout` gets SIGKILL and is reported as not halted cleanly.
  2. `cancel_everywhere` — at the same time, in a thread started first:
     cancel every open order directly at each venue that has credentials (and with `flatten`
     close positions), then list again what is left, so a hung `sq live` cannot keep orders
     working. One row per venue market in `KillReport.venues`; a market that fails (unreachable,
     an error answer) is a row naming the reason, not ok, and never stops the others. Paper
     orders only exist inside their process, so step 1 is all paper trading needs; without
     credentials step 2 is empty.

Standard library only (plus the registry and the config): `sq kill` runs from cron and must
start at once — no numba, polars, pyarrow or venue SDK is imported.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sq.core import runtime
from sq.venues.panic import VenueResult

POLL_S = 0.01

# outcomes
HALTED = "halted"  # exited after sealing its journal (its registry entry removed by itself)
DIED = "exited-unsealed"  # exited without removing its entry (crashed while halting)
KILLED = "killed"  # did not halt within the timeout and got SIGKILL; journal not sealed
RUNNING = "still-running"  # survived even SIGKILL (e.g. not ours to signal)


@dataclass
class ProcOutcome:
    """What happened to one registered process."""

    pid: int
    strategy: str
    venue: str
    symbols: list[str]
    mode: str
    journal: str
    outcome: str
    seconds: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == HALTED


@dataclass
class KillReport:
    """Everything `sq kill` did; `ok` when every process halted cleanly (exit 0, else 1)."""

    processes: list[ProcOutcome] = field(default_factory=list)
    venues: list[dict[str, Any]] = field(default_factory=list)  # venue cancel-all results (live issue)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.processes) and all(v.get("ok", False) for v in self.venues)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "halted": sum(1 for p in self.processes if p.ok),
            "not_halted": sum(1 for p in self.processes if not p.ok),
            "processes": [asdict(p) for p in self.processes],
            "venues": list(self.venues),
            "elapsed_s": round(self.elapsed_s, 4),
        }


def select(entries: list[runtime.ProcEntry], *, venue: str | None = None, symbol: str | None = None) -> list[runtime.ProcEntry]:
    """Trading entries (paper, live — a recorder trades nothing and keeps recording) on `venue`
    (sim, binance, zerodha) and/or `symbol` (canonical, any case)."""
    out = []
    for e in entries:
        if e.pid == os.getpid() or e.mode not in runtime.TRADING_MODES:
            continue
        if venue and e.venue.lower() != venue.strip().lower():
            continue
        if symbol and symbol.strip().upper() not in {s.upper() for s in e.symbols}:
            continue
        out.append(e)
    return out


def halt_processes(entries: list[runtime.ProcEntry], *, timeout: float = 1.0, kill_wait: float = 0.5) -> list[ProcOutcome]:
    """SIGTERM all `entries` at once, wait up to `timeout` s for them to exit; SIGKILL the rest."""
    t0 = time.monotonic()
    pending: dict[int, runtime.ProcEntry] = {}
    results: dict[int, ProcOutcome] = {}

    def outcome(e: runtime.ProcEntry, what: str, detail: str = "") -> ProcOutcome:
        return ProcOutcome(e.pid, e.strategy, e.venue, list(e.symbols), e.mode, e.journal, what, round(time.monotonic() - t0, 4), detail)

    for e in entries:
        try:
            runtime.request_halt(e)  # so its SIGTERM reads as a halt by sq kill (exit 0), not 143
            os.kill(e.pid, signal.SIGTERM)
            pending[e.pid] = e
        except ProcessLookupError:
            results[e.pid] = _gone(e, outcome)
        except PermissionError:
            results[e.pid] = outcome(e, RUNNING, "not permitted to signal this process")
    deadline = t0 + timeout
    while pending and time.monotonic() < deadline:
        for pid, e in list(pending.items()):
            if not runtime.is_registered(e):  # it sealed its journal and deregistered: halted
                results[pid] = outcome(e, HALTED, "" if not e.alive() else "sealed; process exiting")
                del pending[pid]
            elif not e.alive():
                results[pid] = _gone(e, outcome)
                del pending[pid]
        if pending:
            time.sleep(POLL_S)
    for pid, e in pending.items():  # escalate: these did not halt in time
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            results[pid] = outcome(e, RUNNING, "not permitted to SIGKILL")
    end = time.monotonic() + kill_wait
    for pid, e in pending.items():
        if pid in results:
            continue
        while e.alive() and time.monotonic() < end:
            time.sleep(POLL_S)
        if e.alive():
            results[pid] = outcome(e, RUNNING, "survived SIGKILL")
        else:
            _remove_entry(e)
            results[pid] = outcome(e, KILLED, f"no halt within {timeout:g}s; SIGKILL sent; journal not sealed (sq paper --resume {e.journal})")
    return [results[e.pid] for e in entries]


def _gone(e: runtime.ProcEntry, outcome) -> ProcOutcome:
    if runtime.is_registered(e):  # it exited but did not remove its entry: it did not seal
        _remove_entry(e)
        return outcome(e, DIED, f"exited without sealing its journal (sq paper --resume {e.journal})")
    return outcome(e, HALTED)


def _remove_entry(e: runtime.ProcEntry) -> None:
    try:
        os.unlink(e.path)
    except OSError:
        pass


def run_kill(*, venue: str | None = None, symbol: str | None = None, timeout: float = 1.0, config: Any = None,
             flatten: bool = False, t0: float | None = None) -> KillReport:
    """Halt every matching registered process and, when `config` is given, cancel (and with
    `flatten` close positions) at every credentialed venue in parallel; return the report."""
    start = time.monotonic()
    report = KillReport()
    venue_rows: list = []
    worker = None
    if config is not None:
        v = venue.strip().lower() if venue else None
        worker = threading.Thread(target=lambda: venue_rows.extend(cancel_everywhere(config, venue=v, symbol=symbol, flatten=flatten, t0=t0)),
                                  name="sq-kill-venues", daemon=True)
        worker.start()
    report.processes = halt_processes(select(runtime.list_procs(), venue=venue, symbol=symbol), timeout=timeout)
    if worker is not None:
        worker.join()
        if any(p.outcome != HALTED for p in report.processes) and venue_rows:
            # a process that was killed or hung may have sent more before it stopped: sweep once more
            again = cancel_everywhere(config, venue=venue.strip().lower() if venue else None, symbol=symbol, flatten=flatten)
            before = {(r.venue, r.market): r for r in venue_rows}
            for r in again:
                old = before.get((r.venue, r.market))
                if old is not None:
                    r.canceled += old.canceled
                    r.flattened = old.flattened + r.flattened
                    r.first_request_s = old.first_request_s
            venue_rows[:] = again
        report.venues = [r.to_json() for r in venue_rows]
    report.elapsed_s = time.monotonic() - start
    return report


# ----------------------------------------------------------------------------------------------
# the venues

ANSWER_WITHIN_S = 60


def order_cap(config: Any):
    """The largest order `--flatten` may send for a symbol at a price: the instrument's
    `max_order_size` and the account's `risk.max_notional` (None = no limit)."""

    def cap(symbol: str, price: float) -> float | None:
        caps = []
        inst = config.instrument(symbol)
        if inst is not None and inst.max_order_size:
            caps.append(float(inst.max_order_size))
        if config.risk.max_notional and price > 0:
            caps.append(float(config.risk.max_notional) / price)
        return min(caps) if caps else None

    return cap


def cancel_everywhere(config: Any, *, venue: str | None = None, symbol: str | None = None, flatten: bool = False,
                      t0: float | None = None) -> list[VenueResult]:
    """Cancel (and flatten) at every account venue with credentials (or only `venue`, or the
    venue of `symbol`), venues in parallel, each through its own standard-library `kill` module
    (`account(config)`, `kill(account, ...)`); one result per market. No credentials → []."""
    from sq.venues import registry

    t0 = time.perf_counter() if t0 is None else t0
    if symbol and venue is None:
        venue = registry.venue_of(symbol)
    modules = {name: registry.kill_module(name) for name in registry.ACCOUNT_VENUES if venue in (None, name)}
    cap = order_cap(config)
    results: dict[str, list[VenueResult]] = {}

    def run(name: str) -> None:
        try:
            acct = modules[name].account(config)
            results[name] = [] if acct is None else modules[name].kill(acct, symbol=symbol, flatten=flatten, max_qty=cap, t0=t0)
        except Exception as e:  # never let one venue's surprise hide another's result
            results[name] = [VenueResult(name, "", error=f"{name}: {type(e).__name__}")]

    threads = [threading.Thread(target=run, args=(name,), daemon=True) for name in modules]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ANSWER_WITHIN_S)
    return [r for name in modules for r in results.get(name, [VenueResult(name, "", error=f"{name}: no answer within {ANSWER_WITHIN_S}s")])]


def notify_kill(env: Any, config: Any, report: KillReport, *, timeout: float = 5.0) -> None:
    """Tell the config's alert URLs (`[monitoring] alerts`) what `sq kill` did, after it is
    done (the cancels are never delayed by it); at most `timeout` seconds for the sending.
    apprise is imported only when alerts are configured."""
    if not getattr(getattr(config, "monitoring", None), "alerts", ()):
        return  # (sq kill stays light: nothing of the alerts imported without URLs)
    from sq.runs.alerts import config_alerts

    alerts = config_alerts(env, config, "sq kill")
    if alerts is None:
        return
    halted = [p for p in report.processes if p.outcome == HALTED]
    canceled = sum(int(v.get("canceled") or 0) for v in report.venues)
    alerts.send("kill", f"sq kill: {len(halted)} of {len(report.processes)} run(s) halted, {canceled} order(s) canceled at the venues "
                f"in {report.elapsed_s:.2f}s", level="failure")
    alerts.close(timeout)

