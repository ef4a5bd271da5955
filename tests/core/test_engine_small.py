"""The small-batch input path (paper trading's 1-event batches: one Arrow C-data export, one
compiled read into reused scratch arrays) gives exactly the general path's results, and hands
anything unusual (nulls, a new symbol dictionary, other column types) to the general path."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import polars as pl
import pytest

from sq.core import schemas as S
from sq.core.config import Config
from sq.core.engine import Engine, FillModelConfig
from sq.core import smallbatch as SB
from sq.core.exits import DataError

PARAMS = {"clip": 1.0, "threshold": 0.6, "max_position": 5.0}


@pytest.fixture(scope="module")
def sim_table():
    from sq.venues.sim.venue import SimVenue

    v = SimVenue(["SIM:DEMO", "SIM:ALT"], seed=11)
    return pa.Table.from_batches(list(v.market_source(limit=6_000).batches())), v.instruments


def run(batches, instruments, *, fill=None, small=True):
    e = Engine("mm", instruments, {"*": PARAMS}, config=Config(), fill=fill, seed=5)
    if not small:
        e._small.prepare_schema = lambda schema: False  # the general path only
    outs, counts = [], []
    for b in batches:
        outs.append(e.process(b, complete=True))
        counts.append(e.counters())  # after every call: both paths count alike at each step
    outs.append(e.finish())
    counts.append(e.counters())
    tabs = [pa.Table.from_batches([getattr(o, k) for o in outs]) for k in ("orders", "fills", "pnl")]
    return e, tabs, counts, [o.rows for o in outs]


def same(a, b) -> bool:
    return pl.from_arrow(a).fill_nan(None).equals(pl.from_arrow(b).fill_nan(None))


def check(batches, inst, fill=None):
    e1, t1, c1, r1 = run(batches, inst, fill=fill, small=True)
    e0, t0, c0, r0 = run(batches, inst, fill=fill, small=False)
    assert all(same(a, b) for a, b in zip(t0, t1))
    assert c0 == c1 and r0 == r1
    assert e0.summary() | {"elapsed_s": 0, "events_per_s": 0} == e1.summary() | {"elapsed_s": 0, "events_per_s": 0}
    assert e0.trades_seen == e1.trades_seen
    return e1


@pytest.mark.parametrize("size", [1, 3, 64, 65])
def test_small_batches_match_the_general_path(sim_table, size):
    table, inst = sim_table
    e = check(table.to_batches(max_chunksize=size), inst)
    assert e.counters()["orders"] > 5
    if size <= SB.SMALL_ROWS:
        assert e._small.plan is not None and size in e._small.scratch


def test_feed_latency_and_offset_slices(sim_table):
    table, inst = sim_table
    batch = table.combine_chunks().to_batches()[0]
    cuts = [batch.slice(i, 1 + i % 5) for i in range(0, batch.num_rows, 5)]
    check(cuts, inst, fill=FillModelConfig(feed_latency_ns=3_000_000, order_latency_ns=1_000_000))


def test_nulls_and_new_dictionaries_take_the_general_path(sim_table):
    table, inst = sim_table
    batch = table.combine_chunks().to_batches()[0].slice(0, 400)
    names = batch.schema.names
    out = []
    for i in range(0, batch.num_rows, 2):
        b = batch.slice(i, 2)
        if i % 10 == 4:  # recv_ts with a null: left out, ts used
            cols = list(b.columns)
            k = names.index("recv_ts")
            cols[k] = pa.array([None, cols[k][1].value], cols[k].type)
            b = pa.RecordBatch.from_arrays(cols, schema=b.schema.set(k, b.schema.field(k).with_nullable(True)))
        elif i % 10 == 6:  # a fresh (equal) symbol dictionary per batch
            cols = list(b.columns)
            k = names.index("symbol")
            sym = cols[k]
            cols[k] = pa.DictionaryArray.from_arrays(sym.indices, pa.array(sym.dictionary.to_pylist(), pa.string()))
            b = pa.RecordBatch.from_arrays(cols, schema=b.schema)
        out.append(b)
    check(out, inst)


def test_bad_event_is_reported_from_the_small_path():
    name = "SIM:X"
    inst = {name: S.Instrument(name, "sim", 1.0)}
    ts = np.array([1, 2], np.int64)
    batch = S.market_batch(S.market_schema(inst), S.symbol_dictionary([name]), ts, ts, np.zeros(2, np.int32),
                           np.array([S.LEVEL, S.LEVEL], np.uint8), np.array([1, 3], np.int8), np.array([99.0, 101.0]),
                           np.array([5.0, 5.0]), np.arange(1, 3, dtype=np.int64))
    e = Engine("mm", inst, {"*": PARAMS}, config=Config())
    e.process(batch.slice(0, 1))
    assert e._small.dictionary is not None
    with pytest.raises(DataError, match="market row 0 of the batch .*side 3"):
        e.process(batch.slice(1, 1))


def test_one_event_batches_use_the_small_path(sim_table):
    table, inst = sim_table
    e = Engine("mm", inst, {"*": PARAMS}, config=Config())
    general = e._arrays_general
    calls = []
    e._arrays_general = lambda b, n: calls.append(n) or general(b, n)
    batches = table.slice(0, 500).to_batches(max_chunksize=1)
    fresh = [pa.RecordBatch.from_arrays([pa.DictionaryArray.from_arrays(c.indices, pa.array(c.dictionary.to_pylist()))
                                         if pa.types.is_dictionary(c.type) else c for c in b.columns], schema=b.schema)
             for b in table.slice(500, 20).to_batches(max_chunksize=1)]
    for b in batches + fresh:
        e.process(b, complete=True)
    assert len(calls) == 1  # only the first batch, to learn the symbol dictionary


def test_the_export_is_released_by_the_compiled_read(sim_table):
    table, inst = sim_table
    e = Engine("mm", inst, {"*": PARAMS}, config=Config())
    for b in table.slice(0, 50).to_batches(max_chunksize=1):
        e.process(b, complete=True)
        assert e._small.struct[SB._A_RELEASE] == 0  # pyarrow's release callback clears it


def test_the_kernel_arguments_follow_every_reallocation(sim_table):
    """The kernel's trailing arguments are built once and reused: after each kind of growth the
    engine asks for (rows, outbox, heap, equity curve, book window, a new symbol) they must be the
    engine's current arrays, or the kernel would write into the replaced ones."""
    from sq.core.engine import kernel as K

    table, inst = sim_table
    e = Engine("mm", inst, {"*": PARAMS}, config=Config())
    batches = table.slice(0, 40).to_batches(max_chunksize=1)
    e.process(batches[0], complete=True)

    def fresh():
        return (*e._state(), e.n, e._margin(), *e._strategy())

    def same(a, b):
        return len(a) == len(b) and all(x is y if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))

    assert same(e._kernel_tail(), fresh())
    before = e._kernel_tail()
    for st in (K.ST_GROW_HEAP, K.ST_GROW_EQ):
        e.make_room(st)
        assert not same(before, e._kernel_tail()) and same(e._kernel_tail(), fresh())
        before = e._kernel_tail()
    e.ob, e.obf = e.ob[:8].copy(), e.obf[:8].copy()  # an outbox without room for the margin: a flush grows it
    e._invalidate_context()
    small = e.ob
    assert same(e._kernel_tail(), fresh())
    e.make_room(K.ST_FLUSH)
    assert e.ob is not small and same(e._kernel_tail(), fresh())
    for b in batches[1:]:  # still trades exactly as a fresh tuple would have it
        e.process(b, complete=True)
        assert same(e._kernel_tail(), fresh())
    n0 = e.n
    other = "SIM:ZZZ"
    one = pa.RecordBatch.from_arrays([pa.array([1], S.TS), pa.DictionaryArray.from_arrays(pa.array([0], pa.int32()), pa.array([other])),
                                      pa.array([S.LEVEL], pa.uint8()), pa.array([1], pa.int8()), pa.array([10.0]), pa.array([1.0]),
                                      pa.array([1], pa.int64())], names=["ts", "symbol", "kind", "side", "price", "qty", "seq"])
    e.process(one, complete=True)
    assert e.n == n0 + 1 and same(e._kernel_tail(), fresh())
