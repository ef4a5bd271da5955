"""Behind `sq status`: every running sq process, what it is doing and whether it is healthy.

Reads only files — the runtime registry (`procs/<pid>.json`), each run's heartbeat
(`procs/<pid>.beat`, sq.runs.heartbeat), its journal's start record, and the stored credentials of
each venue (no network) — so it can never block or slow a run. A run is unhealthy when its
heartbeat or its market data is older than `stale_after_s` (a stalled feed or a hung loop), its
feed is down, its circuit breaker is open, or its strategy is halted; `sq status` then exits 1.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sq.core import runtime

DEFAULT_STALE_AFTER_S = 30.0


@dataclass
class RunStatus:
    """One running process as `sq status` reports it (JSON keys = field names)."""

    pid: int
    mode: str
    strategy: str
    venue: str
    symbols: list[str]
    journal: str
    run_id: str | None
    started: str
    uptime_s: float
    heartbeat_age_s: float | None
    last_event_age_s: float | None
    events: int | None
    position: dict[str, float]
    pnl: dict[str, float] | None
    working_orders: int | None
    rejections: dict[str, int]
    breaker: str | None
    feed: str | None
    halted: str | None
    health: str  # ok | starting | the problem, in a few words
    healthy: bool
    extra: dict[str, Any] = field(default_factory=dict)


def iso(ns: int) -> str:
    """ISO-8601 UTC with a Z, to the second: `2026-12-06T22:05:31Z`."""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def assess(entry: runtime.ProcEntry, beat: dict | None, now_ns: int, stale_after_s: float,
           expired_venues: frozenset[str] = frozenset()) -> tuple[str, bool]:
    """(health, healthy) of one run from its registry entry and last heartbeat."""
    uptime = (now_ns - entry.started_ns) / 1e9
    if beat is None:
        return ("starting" if uptime <= stale_after_s else f"no heartbeat for {uptime:.0f}s"), uptime <= stale_after_s
    if beat.get("halted"):
        return f"halted: {beat['halted']}", False
    breaker = (beat.get("breaker") or {}).get("state")
    if breaker == "open":
        return "circuit breaker open", False
    if beat.get("feed") in ("down", "paused"):
        return "market data down", False
    if entry.mode == "live" and entry.venue.lower() in expired_venues:
        return f"{entry.venue} token expired", False
    beat_age = (now_ns - int(beat["ts"])) / 1e9
    if entry.mode == "live" and beat_age > stale_after_s:  # its loop beats with or without data: it is stuck
        return f"not reporting for {beat_age:.0f}s", False
    last = beat.get("last_event_ns")
    age = (now_ns - int(last)) / 1e9 if last else uptime
    if age > stale_after_s:  # paper and record beat as data arrives: a silent feed, and so no beat
        return f"no market data for {age:.0f}s", False
    if beat_age > stale_after_s:
        return f"not reporting for {beat_age:.0f}s", False
    return "ok", True


def run_status(entry: runtime.ProcEntry, beat: dict | None, now_ns: int, stale_after_s: float,
               expired_venues: frozenset[str] = frozenset()) -> RunStatus:
    from sq.core.journal import read_start

    health, healthy = assess(entry, beat, now_ns, stale_after_s, expired_venues)
    start = None
    if entry.mode in runtime.TRADING_MODES:
        try:
            start = read_start(entry.journal)
        except Exception:  # noqa: BLE001 - a journal being created right now: no run id yet
            start = None
    b = beat or {}
    last = b.get("last_event_ns")
    extra = {k: b[k] for k in ("rows", "files", "bytes", "per_symbol", "data_ts") if k in b}
    if extra.get("data_ts"):
        extra["data_time"] = iso(int(extra.pop("data_ts")))
    else:
        extra.pop("data_ts", None)
    return RunStatus(
        pid=entry.pid, mode=entry.mode, strategy=entry.strategy, venue=entry.venue, symbols=list(entry.symbols),
        journal=entry.journal, run_id=(start or {}).get("run_id"), started=iso(entry.started_ns),
        uptime_s=round((now_ns - entry.started_ns) / 1e9, 1),
        heartbeat_age_s=round((now_ns - int(b["ts"])) / 1e9, 1) if beat else None,
        last_event_age_s=round((now_ns - int(last)) / 1e9, 1) if last else None,
        events=b.get("events"), position=dict(b.get("position") or {}),
        pnl={k: round(float(v), 8) for k, v in b["pnl"].items()} if b.get("pnl") else None,
        working_orders=b.get("working_orders"), rejections=dict(b.get("rejections") or {}),
        breaker=(b.get("breaker") or {}).get("state"), feed=b.get("feed"), halted=b.get("halted"),
        health=health, healthy=healthy, extra=extra)


def credentials(env: Any) -> dict[str, dict]:
    """Each account venue's stored credential state and expiry (sq auth status; no network)."""
    from sq.runs.auth import credential_status

    return credential_status(env)


def collect(env: Any, *, stale_after_s: float = DEFAULT_STALE_AFTER_S, now_ns: int | None = None) -> dict[str, Any]:
    """The `sq status` document: runs (oldest first), venues' credentials, overall health."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    venues = credentials(env)
    expired = frozenset(v for v, info in venues.items() if info.get("state") == "expired")
    runs = [run_status(e, runtime.read_beat(e.pid), now_ns, stale_after_s, expired) for e in runtime.list_procs()]
    return {"ts": iso(now_ns), "healthy": all(r.healthy for r in runs), "runs": runs, "venues": venues}


def as_json(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with each run as a plain dict (what `sq status --json` prints)."""
    return {**doc, "runs": [asdict(r) for r in doc["runs"]]}
