"""The pnl rows' marks (docs/streams.md, docs/metrics.md): every row carries the mid it was marked
at, and a flat symbol keeps being marked for a minute after a fill — the mids its markouts read."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sq.core.config import Config
from sq.core.engine import Engine
from sq.core.engine import layout as L


@pytest.fixture(scope="module")
def run():
    from sq.venues.sim.venue import SimVenue

    v = SimVenue(["SIM:DEMO"], seed=11)
    table = pa.Table.from_batches(list(v.market_source(limit=150_000).batches()))
    e = Engine("mm", v.instruments, {"*": {"clip": 1.0, "threshold": 0.6, "max_position": 1.0}}, config=Config(), seed=5)
    outs = [e.process(b) for b in table.to_batches(max_chunksize=4096)] + [e.finish()]
    fills = pa.Table.from_batches([o.fills for o in outs])
    pnl = pa.Table.from_batches([o.pnl for o in outs])
    return e, fills, pnl


def test_flat_rows_follow_fills_for_a_minute_at_most_once_a_second(run):
    e, fills, pnl = run
    fts = np.sort(fills.column("ts").cast("int64").to_numpy())
    ts = pnl.column("ts").cast("int64").to_numpy()
    pos = pnl.column("position").to_numpy()
    flat = (pos == 0) & ~np.isin(ts, fts) & (ts < e.now_ns)  # not a fill's row, not the closing row
    assert flat.sum() > 0, "no mark while flat after a fill"
    last_fill = fts[np.searchsorted(fts, ts[flat], side="right") - 1]
    assert np.all(ts[flat] - last_fill <= L.MARKOUT_WINDOW_NS)
    assert np.all(np.diff(ts[flat]) >= 1_000_000_000)  # the pnl interval (1 s)


def test_every_row_carries_its_mid(run):
    e, fills, pnl = run
    mark = pnl.column("mark").to_numpy()
    assert np.isfinite(mark).all() and (mark > 0).all()
    pos, avg, unreal = (pnl.column(k).to_numpy() for k in ("position", "avg_price", "unrealized"))
    marked = (pos != 0) & ~np.isin(pnl.column("ts").cast("int64").to_numpy(), fills.column("ts").cast("int64").to_numpy())
    assert marked.sum() > 10  # (a fill's own row has its unrealized PnL at the fill price until the next mark)
    assert np.allclose(avg[marked] + unreal[marked] / pos[marked], mark[marked])  # the mid the unrealized PnL is at
    m = e.summary()["metrics"]
    assert m["markout_1s_bps"] is not None and m["markout_10s_bps"] is not None and m["spread_capture_bps"] is not None
