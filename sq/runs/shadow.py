"""A live run's paper twin (`sq live … --shadow STRATEGY[:k=v,…]`): the same feed, in the same
process, through the paper engine and its fill simulation — its own journal, no order sent.

Each market batch reaches the shadow *after* the live run has sent what the batch prompted, so
the twin costs the live path nothing before its orders are out. The shadow also keeps the
market's mid once a second of data time (`marks.parquet` in its journal directory): what
`sq report` measures markouts of both runs' fills against. A failure inside the shadow turns it
off with one warning and never stops the live run.

The shadow's parameters: the live run's `--param` list when it shadows the same strategy, then
the spec's own (`--shadow mm:clip=2,threshold=0.5`); another strategy gets only its own. Its
journal is `<live journal>/shadow/`, a paper journal whose start record names the live run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sq.core import journal as J
from sq.core.exits import UsageError

MARK_EVERY_NS = 1_000_000_000
MARKS_FILE = "marks.parquet"
SHADOW_DIR = "shadow"


def parse_spec(spec: str) -> tuple[str, list[str]]:
    """`mm` → (mm, []); `mm:clip=2,threshold=0.5` → (mm, [clip=2, threshold=0.5]);
    `./mine.py:Mine:clip=2` → (./mine.py:Mine, [clip=2]) — the part after the last colon is
    parameters when it holds `=`."""
    spec = (spec or "").strip()
    head, sep, tail = spec.rpartition(":")
    if sep and "=" in tail:
        params = [p.strip() for p in tail.split(",") if p.strip()]
        bad = [p for p in params if "=" not in p]
        if bad or not head:
            raise UsageError(f"--shadow {spec!r}: give STRATEGY or STRATEGY:k=v,k=v (e.g. mm:clip=2,threshold=0.5)")
        return head, params
    if not spec:
        raise UsageError("--shadow needs a strategy (e.g. --shadow mm or --shadow mm:clip=2)")
    return spec, []


class ShadowRun:
    """The paper twin: a `PaperRun` fed by the live loop, plus the mid marks for markouts."""

    def __init__(self, env: Any, spec: str, live_plan: Any, instruments: dict, config: Any):
        from sq.core import book as B
        from sq.core.bookstream import BookStream
        from sq.core.strategy import loader
        from sq.runs import paper

        name, own = parse_spec(spec)
        strategy = loader.load(name)
        same = strategy.spec == loader.load(live_plan.strategy).spec
        params = (list(live_plan.params) if same else []) + own
        self.env = env
        self.journal_dir = Path(live_plan.journal_dir) / SHADOW_DIR
        self.plan = paper.Plan(f"{live_plan.run_id}-shadow", strategy.spec, list(live_plan.symbols), [], None, False, params,
                               1, self.journal_dir)
        engine = paper.make_engine(self.plan, instruments, config)
        paper.warm_up(env, config, strategy)  # the paper engine's kernels compiled now, not on the first tick
        # `inputs` is empty, so the paper plan is "live": each batch closes its venue message at once
        journal = J.Journal.create(self.journal_dir, {
            "run_id": self.plan.run_id, "mode": "shadow", "shadow_of": live_plan.run_id, "strategy": strategy.spec,
            "symbols": list(live_plan.symbols), "params": params, "ts": time.time_ns(), "config": J.config_summary(config)})
        self.run = paper.PaperRun(env, self.plan, None, engine, journal)
        self.marks = BookStream(instruments, depth=1, mode=B.MODE_INTERVAL, interval_ns=MARK_EVERY_NS)
        self.mark_rows: list[Any] = []
        self.failed: str | None = None

    def step(self, batch: Any) -> None:
        """One market batch through the twin (after the live run acted on it)."""
        if self.failed is not None:
            return
        try:
            self.run.step(batch)
            self.run.last_ts = self.run.engine.now_ns
            rows = self.marks.process(batch)
            if rows is not None and rows.num_rows:
                self.mark_rows.append(rows.select(["ts", "symbol", "bid_px_0", "ask_px_0"]))
        except Exception as e:  # noqa: BLE001 - the twin never stops the live run
            self.failed = f"{type(e).__name__}: {getattr(e, 'message', e)}"
            self.env.warn(f"live: the shadow run stopped ({self.failed}); live trading goes on")

    def close(self, reason: str) -> dict[str, Any] | None:
        """End the twin like a paper run (orders closed, journal sealed) and write its marks;
        its summary (None when it had failed)."""
        from sq.runs import paper

        if self.failed is not None:
            self.run.journal.close()
            return None
        self.run.stop_reason = reason
        self.run.close_out()
        summary = paper.make_summary(self.run)
        summary["mode"] = "shadow"
        self.run.journal.seal({"ts": time.time_ns(), "reason": reason, "summary": summary})
        self._write_marks()
        return summary

    def _write_marks(self) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if not self.mark_rows:
            return
        t = pa.concat_tables([pa.Table.from_batches([b]) for b in self.mark_rows])
        mid = pc.divide(pc.add(t.column("bid_px_0"), t.column("ask_px_0")), 2.0)
        marks = pa.table({"ts": t.column("ts"), "symbol": t.column("symbol").cast(pa.string()), "mid": mid})
        tmp = self.journal_dir / f".{MARKS_FILE}.tmp"
        pq.write_table(marks, tmp)
        tmp.replace(self.journal_dir / MARKS_FILE)
