"""The engine's promise: results never depend on how the input is cut into batches, so a paper
replay of a file and a backtest of it produce identical orders and fills — and a run resumed
from a snapshot continues exactly where it left off."""

from __future__ import annotations

import pyarrow as pa
import polars as pl
import pytest

from sq.core.config import Config
from sq.core.engine import Engine, FillModelConfig

PARAMS = {"mm": {"clip": 1.0, "threshold": 0.6, "max_position": 5.0}, "lt": {"clip": 1.0, "threshold": 0.5, "max_position": 5.0}}


@pytest.fixture(scope="module")
def sim_table():
    from sq.venues.sim.venue import SimVenue

    v = SimVenue(["SIM:DEMO", "SIM:ALT"], seed=7)
    return pa.Table.from_batches(list(v.market_source(limit=20_000).batches())), v.instruments


def run(table, instruments, strategy, cuts, *, fill=None, complete=False):
    e = Engine(strategy, instruments, {"*": PARAMS[strategy]}, config=Config(), fill=fill, seed=3)
    outs = [e.process(b, complete=complete) for b in cuts(table)]
    outs.append(e.finish())
    return e, [pa.Table.from_batches([getattr(o, k) for o in outs]) for k in ("orders", "fills", "pnl")]


def same(a: pa.Table, b: pa.Table) -> bool:
    return pl.from_arrow(a).fill_nan(None).equals(pl.from_arrow(b).fill_nan(None))


def whole(t):
    return t.combine_chunks().to_batches()


def fixed(n):
    return lambda t: t.to_batches(max_chunksize=n)


def uneven(t):
    out, i, k = [], 0, 1
    while i < t.num_rows:
        out.append(t.slice(i, k).combine_chunks().to_batches()[0])
        i += k
        k = k * 3 % 1001 + 1
    return out


@pytest.mark.parametrize("strategy", ["mm", "lt"])
def test_batch_cuts_do_not_change_orders_or_fills(sim_table, strategy):
    table, inst = sim_table
    fill = FillModelConfig(order_latency_ns=2_000_000, latency_dist="exponential", latency_jitter_ns=1_000_000,
                           queue_model="prob")
    e0, ref = run(table, inst, strategy, whole, fill=fill)
    assert e0.counters()["orders"] > 10 and e0.counters()["fills"] > 3
    for cuts in (fixed(1), fixed(97), uneven):
        _, got = run(table, inst, strategy, cuts, fill=fill)
        assert all(same(a, b) for a, b in zip(ref, got))


def test_message_aligned_batches_with_complete_flag_match(sim_table):
    """A live source flushes one batch per venue message and says so (`complete=True`)."""
    table, inst = sim_table
    _, ref = run(table, inst, "mm", whole)
    df = pl.from_arrow(table).with_row_index("i")
    new = (pl.col("seq") != pl.col("seq").shift(1)) | (pl.col("symbol") != pl.col("symbol").shift(1))
    starts = df.filter(new.fill_null(True))["i"].to_list()
    ends = starts[1:] + [table.num_rows]
    cuts = lambda t: [t.slice(a, b - a).combine_chunks().to_batches()[0] for a, b in zip(starts[:2000], ends[:2000])] + \
        t.slice(starts[2000]).combine_chunks().to_batches()  # noqa: E731
    _, got = run(table, inst, "mm", cuts, complete=False)
    assert all(same(a, b) for a, b in zip(ref, got))
    e = Engine("mm", inst, {"*": PARAMS["mm"]}, config=Config(), seed=3)
    outs = [e.process(b, complete=True) for b in cuts(table)[:2000]]
    outs += [e.process(b) for b in cuts(table)[2000:]]
    outs.append(e.finish())
    got = [pa.Table.from_batches([getattr(o, k) for o in outs]) for k in ("orders", "fills", "pnl")]
    assert all(same(a, b) for a, b in zip(ref, got))


def test_snapshot_restore_continues_identically(sim_table):
    table, inst = sim_table
    _, ref = run(table, inst, "mm", whole)
    half = table.num_rows // 2
    e1 = Engine("mm", inst, {"*": PARAMS["mm"]}, config=Config(), seed=3)
    first = [e1.process(b) for b in table.slice(0, half).to_batches(max_chunksize=5000)]
    state = e1.snapshot_state()
    e2 = Engine("mm", inst, {"*": PARAMS["mm"]}, config=Config(), seed=3)
    e2.restore_state(state)
    second = [e2.process(b) for b in table.slice(half).to_batches(max_chunksize=5000)] + [e2.finish()]
    got = [pa.Table.from_batches([getattr(o, k) for o in first + second]) for k in ("orders", "fills", "pnl")]
    assert all(same(a, b) for a, b in zip(ref, got))
    assert e2.counters()["events"] == table.num_rows
