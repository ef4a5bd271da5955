"""What a run's loop calls for metrics and alerts: one `Monitor` per record, paper or live run.

`open_monitor` reads the flags and `[monitoring]`; with neither metrics nor alerts asked for it
returns `OFF`, whose methods do nothing, and prometheus_client and apprise are never imported.
Otherwise the loop calls `monitor.step(run)` once per turn: a few attribute comparisons find
the transitions worth an alert (a risk halt, the breaker opening or closing, the feed going down
or coming back) and, at most every `metrics.EVERY_S`, a snapshot of the counters the run already
keeps goes to the metrics. `close(summary)` takes the last snapshot, sends the end-of-run summary
(or the unexpected exit) and waits a bounded time for the alert queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MonitorOptions:
    """The flags (`--metrics`, `--metrics-file`, `--alert`); None/empty: the config's."""

    metrics: str | None = None
    metrics_file: str | None = None
    alerts: list[str] = field(default_factory=list)


class _Off:
    """No metrics, no alerts: every hook is a no-op."""

    metrics = None
    alerts = None
    enabled = False

    def attach(self, run: Any) -> None:
        pass

    def step(self, run: Any) -> None:
        pass

    def market(self, batch: Any) -> None:
        pass

    def record_progress(self, summary: Any, *, final: bool = False) -> None:
        pass

    def alert(self, kind: str, text: str, *, subject: str = "", level: str = "warning") -> None:
        pass

    def check_credentials(self, env: Any, config: Any, venue: str) -> None:
        pass

    def close(self, summary: dict | None = None, *, error: BaseException | None = None, timeout: float = 10.0, run: Any = None) -> None:
        pass


OFF = _Off()


def open_monitor(env: Any, config: Any, opts: MonitorOptions | None, *, mode: str, run: str = "", strategy: str = "",
                 venue: str = "") -> Any:
    """The run's Monitor, or `OFF` when neither metrics nor alerts are asked for."""
    mon = getattr(config, "monitoring", None)
    opts = opts or MonitorOptions()
    listen = opts.metrics or (mon.metrics if mon else None)
    textfile = opts.metrics_file or (mon.metrics_file if mon else None)
    urls = list(dict.fromkeys(list(mon.alerts if mon else ()) + list(opts.alerts or [])))
    if not (listen or textfile or urls):
        return OFF
    return Monitor(env, mode=mode, run=run, strategy=strategy, venue=venue, listen=listen, textfile=textfile, urls=urls,
                   min_interval_s=mon.alert_min_interval_s if mon else 300.0,
                   token_warn_hours=mon.token_expiry_warn_hours if mon else 12.0)


class Monitor:
    """Metrics (`sq.runs.metrics.RunMetrics`) and alerts (`sq.runs.alerts.Alerts`) of one run."""

    enabled = True

    def __init__(self, env: Any, *, mode: str, run: str, strategy: str, venue: str, listen: str | None, textfile: str | None,
                 urls: list[str], min_interval_s: float = 300.0, token_warn_hours: float = 12.0):
        self.env = env
        self.mode = mode
        self.name = f"sq {mode}" + (f" {strategy}" if strategy else "") + (f" {venue}" if venue else "")
        self.token_warn_hours = token_warn_hours
        self.metrics = None
        self.alerts = None
        if urls:
            from sq.runs.alerts import Alerts

            self.alerts = Alerts(urls, warn=env.warn, title=self.name, min_interval_s=min_interval_s)
        if listen or textfile:
            from sq.runs.metrics import RunMetrics

            self.metrics = RunMetrics({"mode": mode, "run": run, "strategy": strategy, "venue": venue}, listen=listen, textfile=textfile)
        self.kinds = None  # market events by `kind` code (np.bincount per batch), for the metrics
        self._halted = ""
        self._breaker = "closed"
        self._feed = "up"
        self._latencies = 0

    # -- the loop's side
    def market(self, batch: Any) -> None:
        """Count a market batch's events by kind (one bincount per batch, after the batch's
        orders are out); nothing without metrics."""
        if self.metrics is None:
            return
        import numpy as np

        try:
            counts = np.bincount(batch.column("kind").to_numpy(zero_copy_only=False), minlength=8)
        except Exception:  # noqa: BLE001 - a batch without kinds (bars) is counted by the engine only
            return
        self.kinds = counts[:8] if self.kinds is None else self.kinds + counts[:8]

    def attach(self, run: Any) -> None:
        """Time the run's journal writes (one observation per write + fsync)."""
        journal = getattr(run, "journal", None)
        if self.metrics is not None and journal is not None:
            journal.on_write = self.metrics.journal_write.observe

    def step(self, run: Any) -> None:
        """One turn of the run's loop: alerts on transitions, a snapshot when one is due."""
        halted = getattr(run, "halted_reason", "") or ""
        if halted and not self._halted:
            self._halted = halted
            kind = "loss_limit" if "loss" in halted else "halt"
            self.alert(kind, f"{self.name}: the risk layer halted the strategy ({halted}); working orders canceled, no new orders",
                       subject=halted, level="failure")
        breaker = getattr(run, "breaker", None)
        if breaker is not None and breaker.state != self._breaker:
            was, self._breaker = self._breaker, breaker.state
            if breaker.state == "open":
                self.alert("breaker_open", f"{self.name}: circuit breaker open after {breaker.consecutive} venue failures in a row; "
                           "no new orders until a trial order succeeds", level="failure")
            elif breaker.state == "closed" and was != "closed":
                self.alert("breaker_closed", f"{self.name}: circuit breaker closed; the venue answers again", level="info")
        feed = _feed_state(run)
        if feed is not None and feed != self._feed:
            was, self._feed = self._feed, feed
            if feed == "paused":
                self.alert("feed_down", f"{self.name}: market data down; working orders canceled, no new orders until it is back", level="failure")
            elif feed == "up" and was == "paused":
                self.alert("feed_back", f"{self.name}: market data back; trading again", level="info")
        m = self.metrics
        if m is None:
            return
        lat = getattr(run, "latencies_ns", None)
        if lat is not None and len(lat) > self._latencies:
            observe = m.tick_to_order.observe
            for ns in lat[self._latencies:]:
                observe(ns / 1e9)
            self._latencies = len(lat)
        now = time.monotonic()
        if m.due(now):
            m.update(self.snapshot(run), now)

    def record_progress(self, summary: Any, *, final: bool = False) -> None:
        """`sq record`'s progress (a few times a second; `final` at the end): events by symbol,
        files sealed, bytes."""
        m = self.metrics
        if m is None:
            return
        now = time.monotonic()
        if final or m.due(now):
            m.update(self._record_snapshot(summary), now, final=final)

    def snapshot(self, run: Any) -> dict:
        """What the metrics show of a paper or live run, from counters it already keeps."""
        e = run.engine
        snap: dict[str, Any] = {"counters": e.counters(), "rejections": e.rejections(), "positions": e.positions(),
                                "halted": 1 if getattr(run, "halted_reason", "") else 0}  # a risk halt (not the end's close-out)
        if self.kinds is not None:
            from sq.core.schemas import KIND_NAMES

            snap["kinds"] = {name: int(self.kinds[code]) for code, name in KIND_NAMES.items() if code < len(self.kinds)}
        breaker = getattr(run, "breaker", None)
        if breaker is not None:
            snap["breaker"] = {"state": breaker.state, "trips": breaker.trips}
        feed = _feed_state(run)
        live_source = feed is not None or getattr(getattr(run, "plan", None), "live", False)
        if live_source:
            beat = getattr(run, "heartbeat", None)
            data_ts = getattr(beat, "data_ts", 0) or 0
            snap["feed"] = {"up": 1 if feed in (None, "up") else 0, "lag_s": time.time() - data_ts / 1e9 if data_ts else None,
                            "pauses": getattr(run, "feed_pauses", 0)}
        try:  # the market source's own counters (a property or a method; Binance: gaps, resyncs, reconnects)
            counters = getattr(getattr(run, "source", None), "counters", None)
            counters = counters() if callable(counters) else counters
            if isinstance(counters, dict):
                snap["source"] = {k: v for k, v in counters.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        except Exception:  # noqa: BLE001 - a source's statistics never end a run
            pass
        gateway = getattr(run, "gateway", None)
        if gateway is not None:
            usage = getattr(gateway, "rate_usage", None)
            snap["venue"] = {"sent": getattr(run, "sent", 0), "failures": getattr(run, "failures", 0),
                             "usage": usage() if callable(usage) else {}}
        if self.alerts is not None:
            snap["alerts"] = self.alerts.counts.to_json()
        return snap

    def _record_snapshot(self, s: Any) -> dict:
        snap: dict[str, Any] = {"record": {"per_symbol": dict(s.per_symbol), "files": len(s.files), "bytes": s.bytes}}
        if self.alerts is not None:
            snap["alerts"] = self.alerts.counts.to_json()
        return snap

    # -- alerts
    def alert(self, kind: str, text: str, *, subject: str = "", level: str = "warning") -> None:
        if self.alerts is not None:
            self.alerts.send(kind, text, subject=subject, level=level)

    def check_credentials(self, env: Any, config: Any, venue: str) -> None:
        """Alert when the venue's stored session expires within `token_expiry_warn_hours`
        (Zerodha's daily token); no network."""
        if self.alerts is None or not self.token_warn_hours:
            return
        import datetime as dt

        from sq.runs.auth import credential_status

        try:
            status = credential_status(env, config).get(venue) or {}
            expires = status.get("expires")
            if not expires:
                return
            when = dt.datetime.fromisoformat(str(expires))
            left_h = (when - dt.datetime.now(dt.timezone.utc)).total_seconds() / 3600.0
        except Exception:  # noqa: BLE001 - a status that cannot be read is `sq auth`'s business
            return
        if left_h <= self.token_warn_hours:
            self.alert("token_expiry", f"{self.name}: the {venue} session expires at {expires} "
                       f"({max(left_h, 0):.1f} h from now); run sq auth {venue} before then", subject=venue)

    def close(self, summary: dict | None = None, *, error: BaseException | None = None, timeout: float = 10.0, run: Any = None) -> None:
        """The end: a last snapshot (and textfile), the summary or the unexpected exit, then
        a bounded wait for the alerts queued."""
        try:
            if run is not None and getattr(run, "engine", None) is not None:
                self.step(run)  # a halt at the very end still alerts, before the summary
                if self.metrics is not None:
                    self.metrics.update(self.snapshot(run), time.monotonic(), final=True)
        except Exception as e:  # noqa: BLE001 - the run's own outcome matters more than its last snapshot
            self.env.warn(f"metrics: the last update failed ({type(e).__name__})")
        finally:
            if self.alerts is not None:
                from sq.core.exits import IOFailure

                if isinstance(error, IOFailure):  # a full disk: an operational event, said as such
                    from sq.core.redact import scrub

                    self.alert("disk", f"{self.name}: stopped, the disk is full: {scrub(error.message, self.alerts.urls)[:400]}",
                               level="failure")
                elif error is not None:
                    from sq.core.redact import scrub

                    self.alert("exit", f"{self.name}: stopped on an unexpected error: "
                               f"{scrub(f'{type(error).__name__}: {error}', self.alerts.urls)[:300]}", level="failure")
                if summary is not None and summary.get("stopped_by") == "kill":
                    self.alert("kill", f"{self.name}: halted by sq kill; working orders canceled", level="failure")
                if summary is not None:
                    self.alert("summary", summary_text(self.name, summary), level="info")
                self.alerts.close(timeout)
            if self.metrics is not None:
                self.metrics.close()


def _feed_state(run: Any) -> str | None:
    """A live run's feed: up, down (within its grace), paused (down past it); None for others."""
    if not hasattr(run, "feed_paused"):
        return None
    if run.feed_paused:
        return "paused"
    return "down" if run.feed_down_since is not None else "up"


def summary_text(name: str, s: dict) -> str:
    """The end-of-run summary alert: what traded, PnL, why it stopped."""
    pnl = s.get("pnl") or {}
    position = ", ".join(f"{k} {v:g}" for k, v in (s.get("position") or {}).items()) or "flat"
    lines = [f"{name}: run {s.get('run_id', '')} ended ({s.get('stopped_by') or 'end'})"]
    if "orders" in s:
        lines.append(f"{s.get('events', 0):,} events, {s.get('orders', 0)} orders, {s.get('fills', 0)} fills, position {position}")
    elif "events" in s:
        lines.append(f"{s['events']:,} events recorded, {len(s.get('files') or [])} files sealed, {s.get('bytes', 0):,} bytes")
    if pnl:
        lines.append(f"PnL total {pnl.get('total', 0.0):.4f} (realized {pnl.get('realized', 0.0):.4f}, "
                     f"unrealized {pnl.get('unrealized', 0.0):.4f}, fees {pnl.get('fees', 0.0):.4f})")
    if s.get("halted"):
        lines.append(f"halted: {s['halted']}")
    return "\n".join(lines)
