"""Prometheus metrics of a run (`--metrics HOST:PORT`, `--metrics-file PATH`, `[monitoring]`;
docs/monitoring.md).

`RunMetrics` owns a `CollectorRegistry` of its own (never the process-wide default, so nothing
else a library registers leaks in). The run's loop hands it a *snapshot* — a small dict built
from counters the engine, the source and the live run already keep (`Engine.counters()`,
`rejections()`, `positions()`, the breaker, the feed) — at most `EVERY_S` apart; a scrape reads
the last snapshot. Nothing is counted per event. Two histograms are observed as things happen:
tick→order latency (one observation per order sent) and journal write + fsync time (one per
write, which is one per engine step at most).

Served by `prometheus_client.start_http_server` on that registry (a daemon thread), and/or
written with `write_to_textfile` (atomic: a temp file renamed) at most every `FILE_EVERY_S`
and at the end, for node_exporter's textfile collector when the run is a cron job.

Names follow Prometheus conventions: the `sq_` prefix, base units in the name (`_seconds`,
`_bytes`), `_total` for counters; every series carries `mode`, `run`, `strategy` and `venue`
labels, and `symbol`, `reason`, `component` or `kind` where they apply.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from sq.core.exits import UsageError

EVERY_S = 0.25  # snapshot at most this often (and at the end)
FILE_EVERY_S = 5.0  # the textfile rewritten at most this often (and at the end)
LATENCY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0)
BASE_LABELS = ("mode", "run", "strategy", "venue")
BREAKER_STATES = ("closed", "half-open", "open")


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `PORT`: 127.0.0.1) → (host, port); anything else is a usage error."""
    host, sep, port = str(text).strip().rpartition(":")
    if not sep:
        host = "127.0.0.1"
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--metrics {text!r}: give HOST:PORT (127.0.0.1:9108) or a port")
    return host, int(port)


class _Snapshot:
    """The collector reading the last snapshot (a dict replaced whole, so a scrape in the server
    thread never sees half an update)."""

    def __init__(self, metrics: "RunMetrics"):
        self.m = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        m = self.m
        snap, base = m.snap, m.base
        names = list(BASE_LABELS)

        def counter(name: str, doc: str, value: float | None, extra: dict | None = None) -> Any:
            fam = CounterMetricFamily(name, doc, labels=names + list(extra or {}))
            if value is not None:
                fam.add_metric(base + list((extra or {}).values()), value)
            return fam

        def gauge(name: str, doc: str, value: float | None) -> Any:
            fam = GaugeMetricFamily(name, doc, labels=names)
            if value is not None:
                fam.add_metric(base, value)
            return fam

        yield gauge("sq_run_start_time_seconds", "When the run started (Unix time).", m.started)
        yield gauge("sq_last_update_time_seconds", "When the run last updated these metrics (Unix time).", snap.get("ts"))
        c = snap.get("counters")
        if c is not None:
            yield counter("sq_market_events_total", "Market events (book levels, trades, ticks) the engine processed.", c["events"])
            yield counter("sq_market_messages_total", "Market messages (venue updates) the engine processed.", c["messages"])
        kinds = snap.get("kinds")
        if kinds is not None:
            fam = CounterMetricFamily("sq_market_events_by_kind_total", "Market events by kind (level, trade, clear, snapshot_end, tick).",
                                      labels=names + ["kind"])
            for kind, n in kinds.items():
                fam.add_metric(base + [kind], n)
            yield fam
        if c is not None:
            yield counter("sq_orders_total", "Orders the strategy placed.", c["orders"])
            yield counter("sq_order_cancels_total", "Cancels the strategy requested.", c["cancels"])
            yield counter("sq_fills_total", "Fills.", c["fills"])
            yield gauge("sq_working_orders", "Orders working now.", c["open_orders"])
            fam = CounterMetricFamily("sq_order_rejections_total", "Orders rejected, by reason (risk checks, the venue).", labels=names + ["reason"])
            for reason, n in sorted(snap.get("rejections", {}).items()):
                fam.add_metric(base + [reason], n)
            yield fam
            yield gauge("sq_halted", "1 when the risk layer halted the strategy (a loss limit), else 0.", snap.get("halted", 0))
        pos = snap.get("positions")
        if pos is not None:
            fam = GaugeMetricFamily("sq_position", "Net position per symbol (base units, lots or shares).", labels=names + ["symbol"])
            pnl = GaugeMetricFamily("sq_pnl", "PnL per symbol in the quote currency by component: realized (net of fees), "
                                    "unrealized, fees and net (realized + unrealized).", labels=names + ["symbol", "component"])
            for sym, p in sorted(pos.items()):
                fam.add_metric(base + [sym], p["position"])
                for comp, key in (("realized", "realized"), ("unrealized", "unrealized"), ("fees", "fees"), ("net", "total")):
                    pnl.add_metric(base + [sym, comp], p[key])
            yield fam
            yield pnl
        br = snap.get("breaker")
        if br is not None:
            fam = GaugeMetricFamily("sq_breaker_state", "The venue circuit breaker: 1 for its current state.", labels=names + ["state"])
            for st in BREAKER_STATES:
                fam.add_metric(base + [st], 1.0 if br["state"] == st else 0.0)
            yield fam
            yield counter("sq_breaker_trips_total", "Times the circuit breaker opened.", br["trips"])
        feed = snap.get("feed")
        if feed is not None:
            yield gauge("sq_feed_up", "1 while market data arrives (live feed connected), else 0.", feed["up"])
            yield gauge("sq_feed_lag_seconds", "Wall time now minus the exchange time of the last market event.", feed.get("lag_s"))
            yield counter("sq_feed_pauses_total", "Times the run stopped trading because market data was down.", feed.get("pauses", 0))
        src = snap.get("source")
        if src is not None:
            yield counter("sq_book_resyncs_total", "Order books rebuilt from a fresh snapshot.", src.get("resyncs", 0))
            yield counter("sq_book_gaps_total", "Sequence gaps found in the venue's depth stream.", src.get("gaps", 0))
            fam = CounterMetricFamily("sq_feed_events_total", "The market source's own counters, by kind.", labels=names + ["kind"])
            for k, v in sorted(src.items()):
                fam.add_metric(base + [k], v)
            yield fam
        venue = snap.get("venue")
        if venue is not None:
            yield counter("sq_venue_orders_sent_total", "Order requests sent to the venue.", venue.get("sent"))
            yield counter("sq_venue_failures_total", "Venue requests that failed (timeouts, errors, rate limits).", venue.get("failures"))
            fam = GaugeMetricFamily("sq_venue_rate_limit_used", "Share of the venue's rate limit used (0–1), by limit.", labels=names + ["limit"])
            for k, v in sorted((venue.get("usage") or {}).items()):
                fam.add_metric(base + [k], v)
            yield fam
        rec = snap.get("record")
        if rec is not None:
            fam = CounterMetricFamily("sq_record_events_total", "Market events recorded, by symbol.", labels=names + ["symbol"])
            for sym, n in sorted(rec["per_symbol"].items()):
                fam.add_metric(base + [sym], n)
            yield fam
            yield counter("sq_record_files_sealed_total", "Parquet files sealed.", rec["files"])
            yield counter("sq_record_written_bytes_total", "Bytes of sealed Parquet files.", rec["bytes"])
        al = snap.get("alerts")
        if al is not None:
            fam = CounterMetricFamily("sq_alerts_total", "Alerts by outcome (sent, failed, suppressed, dropped).", labels=names + ["outcome"])
            for k, v in sorted(al.items()):
                fam.add_metric(base + [k], v)
            yield fam


class RunMetrics:
    """One run's metrics: a registry of its own, an HTTP endpoint and/or a textfile."""

    def __init__(self, labels: dict[str, str], *, listen: str | None = None, textfile: str | None = None):
        from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics

        disable_created_metrics()  # no `_created` series: one start-time gauge says it

        self.labels = {k: str(labels.get(k) or "") for k in BASE_LABELS}
        self.base = [self.labels[k] for k in BASE_LABELS]
        self.started = time.time()
        self.snap: dict[str, Any] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Snapshot(self))
        self.tick_to_order = Histogram("sq_tick_to_order_seconds", "Market batch at the engine → order request handed to the venue client.",
                                       list(BASE_LABELS), registry=self.registry, buckets=LATENCY_BUCKETS).labels(**self.labels)
        self.journal_write = Histogram("sq_journal_write_seconds", "One journal write with its fsync (write-ahead, one per engine step at most).",
                                       list(BASE_LABELS), registry=self.registry, buckets=LATENCY_BUCKETS).labels(**self.labels)
        self.textfile = textfile
        self.next_file = 0.0
        self.next_snap = 0.0
        self.server: Any = None
        self.address = None
        if listen:
            self.serve(listen)

    def serve(self, listen: str) -> None:
        from prometheus_client import start_http_server

        host, port = parse_listen(listen)
        try:
            self.server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            raise UsageError(f"--metrics {listen}: cannot listen there ({e.strerror or e})") from None
        self.address = (host, self.server.server_address[1])

    def due(self, now: float) -> bool:
        return now >= self.next_snap

    def update(self, snap: dict[str, Any], now: float, *, final: bool = False) -> None:
        """Take a new snapshot (and rewrite the textfile when that is due)."""
        snap["ts"] = time.time()
        self.snap = snap
        self.next_snap = now + EVERY_S
        if self.textfile and (final or now >= self.next_file):
            self.next_file = now + FILE_EVERY_S
            self.write_file()

    def write_file(self) -> None:
        from prometheus_client import write_to_textfile

        write_to_textfile(self.textfile, self.registry)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
