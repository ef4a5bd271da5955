"""IPC record-batch messages written in place (sq.core.arrow_message): the batch read back equals
one built the ordinary way, points into the buffer, and the pool never hands out a buffer a batch
still points into."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sq.core.arrow_message import NO_GROUP, BufferPool, MessageLayout, write_metadata

SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("symbol", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("kind", pa.uint8(), nullable=False),
        pa.field("price", pa.float64()),
        pa.field("orders", pa.int32()),
        pa.field("oi", pa.float64()),
    ],
    metadata={"sq.stream": "test"},
)
GROUPS = [NO_GROUP, NO_GROUP, NO_GROUP, 0, 1, 0]  # price and oi share their nulls


def fill(layout: MessageLayout, out: np.ndarray, n: int, seed: int) -> dict:
    """Write n rows of random columns into `out` the way a kernel would; return what was written."""
    rng = np.random.default_rng(seed)
    cols = {
        "ts": rng.integers(0, 1 << 60, n), "symbol": rng.integers(0, 3, n).astype(np.int32),
        "kind": rng.integers(0, 6, n).astype(np.uint8), "price": rng.random(n), "orders": rng.integers(0, 9, n).astype(np.int32),
        "oi": rng.random(n),
    }
    for i, (name, v) in enumerate(cols.items()):
        a = layout.values[i]
        out[a:a + v.nbytes] = v.view(np.uint8)
    valid = [rng.random(n) < 0.6, rng.random(n) < 0.3]
    nulls = np.zeros(2, np.int64)
    for g, mask in enumerate(valid):
        bits = np.packbits(mask, bitorder="little")
        out[layout.bitmaps[g]:layout.bitmaps[g] + bits.size] = bits
        nulls[g] = n - mask.sum()
    write_metadata(out, layout.header, layout.length_pos, layout.plan, n, nulls)
    cols["valid"] = valid
    return cols


def expected(cols: dict, dictionary: pa.Array) -> pa.RecordBatch:
    v0, v1 = cols["valid"]
    return pa.RecordBatch.from_arrays(
        [
            pa.array(cols["ts"]).cast(pa.timestamp("ns", tz="UTC")),
            pa.DictionaryArray.from_arrays(pa.array(cols["symbol"]), dictionary),
            pa.array(cols["kind"]),
            pa.array(cols["price"], mask=~v0),
            pa.array(cols["orders"], mask=~v1),
            pa.array(cols["oi"], mask=~v0),
        ],
        schema=SCHEMA,
    )


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 200])
def test_message_reads_back_as_the_batch_built_column_by_column(n):
    layout = MessageLayout(SCHEMA, GROUPS, cap=256)
    out = np.full(layout.size, 0xAB, np.uint8)  # garbage everywhere the kernel does not write
    cols = fill(layout, out, n, seed=n)
    dictionary = pa.array(["A", "B", "C"])
    b = layout.read(out)
    b.validate(full=True)
    assert b.schema == layout.storage and b.num_rows == n
    got = b.set_column(1, SCHEMA.field(1), pa.DictionaryArray.from_arrays(b.column(1), dictionary))
    assert got.schema.equals(SCHEMA, check_metadata=True)
    assert got.equals(expected(cols, dictionary))
    # zero-copy: the columns point into `out`
    start, end = out.ctypes.data, out.ctypes.data + out.size
    assert all(start <= c.buffers()[1].address < end for c in b.columns)


def test_a_group_without_nulls_has_no_bitmap():
    layout = MessageLayout(SCHEMA, GROUPS, cap=64)
    out = np.zeros(layout.size, np.uint8)
    write_metadata(out, layout.header, layout.length_pos, layout.plan, 10, np.array([0, 4], np.int64))
    b = layout.read(out)
    assert b.column("price").null_count == 0 and b.column("price").buffers()[0] is None
    assert b.column("orders").null_count == 4


def test_layout_refuses_variable_width_columns():
    with pytest.raises(TypeError):
        MessageLayout(pa.schema([pa.field("name", pa.string())]), [NO_GROUP], cap=64)


KEEPERS = {
    "the batch": lambda b: b,
    "a slice": lambda b: b.slice(3, 2),
    "a table": lambda b: pa.Table.from_batches([b]),
    "a column": lambda b: b.column("price"),
    "a raw buffer": lambda b: b.column("ts").buffers()[1],
    "a numpy view": lambda b: b.column("kind").to_numpy(zero_copy_only=True),
}


@pytest.mark.parametrize("keep", KEEPERS.values(), ids=KEEPERS.keys())
def test_pool_never_hands_out_a_buffer_a_batch_points_into(keep):
    layout = MessageLayout(SCHEMA, GROUPS, cap=64)
    pool = BufferPool(keep=2)
    buf = pool.take(layout.size)
    fill(layout, buf, 10, seed=1)
    addr = buf.ctypes.data
    held = keep(layout.read(buf))
    del buf
    for seed in range(3):
        other = pool.take(layout.size)
        assert other.ctypes.data != addr
        fill(layout, other, 10, seed=seed + 2)
        del other
    del held
    assert pool.take(layout.size).ctypes.data == addr  # free again: reused


def test_pool_reuses_a_free_buffer_of_about_the_size_asked():
    pool = BufferPool(keep=2)
    a = pool.take(100)
    addr = a.ctypes.data
    del a
    assert pool.take(50).ctypes.data == addr
    big = pool.take(1000)
    assert big.shape[0] >= 1000 and big.ctypes.data != addr
    big_addr = big.ctypes.data
    del big
    # a small request never gets the big free buffer (a small batch would pin it): with the small
    # one in use it gets a fresh buffer, which takes the big one's place in the pool
    held = pool.take(100)
    assert held.ctypes.data == addr
    small = pool.take(100)
    assert small.shape[0] == 100 and small.ctypes.data not in (addr, big_addr)
    assert all(b.shape[0] == 100 for b in pool._bufs)
    huge = pool.take(5 << 20)  # past NumPy's huge-page size: kept on small pages, still writable everywhere
    huge[0], huge[-1] = 1, 2
    assert huge.shape[0] == 5 << 20 and huge[-1] == 2
