"""Market batch → the engine kernel's input arrays, with one compiled pass per batch.

Validation (known kinds, finite non-negative prices and quantities, level sides ±1), conversion
of level and trade prices to int64 ticks, and the local receive time of every event (the data's
`recv_ts`, never before `ts`, or `ts` + a configured feed latency; never going backwards across
the whole run) happen in one numba call, so a 1-event batch (paper trading) costs microseconds,
not a dozen NumPy calls.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from numba import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from sq.core.engine import kernel as _K
from sq.core.engine.layout import batch_kernel, kernel
from sq.core.smallbatch import read_columns, release_export

LEVEL, TRADE, TICK = 1, 2, 5


@batch_kernel
def prepare(kind, side, price, qty, ts, recv, has_recv, feed_ns, codes, inv_tick, last_loc, out_tick, out_loc):
    """Fill `out_tick` / `out_loc`; returns (first bad row or -1, the new last local time)."""
    n = len(kind)
    loc = last_loc
    for i in range(n):
        k = kind[i]
        if k < LEVEL or k > TICK:
            return i, last_loc
        out_tick[i] = 0
        if k == LEVEL or k == TRADE:
            p = price[i]
            q = qty[i]
            if not (math.isfinite(p) and p >= 0.0 and math.isfinite(q) and q >= 0.0):
                return i, last_loc
            if k == LEVEL and side[i] != 1 and side[i] != -1:
                return i, last_loc
            x = p * inv_tick[codes[i]]
            if not abs(x) < 9.0e15:
                return i, last_loc
            out_tick[i] = np.int64(np.rint(x))
        t = ts[i]
        if has_recv:
            r = recv[i]
            lt = r if r > t else t
        else:
            lt = t + feed_ns
        if lt > loc:
            loc = lt
        out_loc[i] = loc
    return -1, loc


_DTYPES = {"ts": np.int64, "recv_ts": np.int64, "kind": np.uint8, "side": np.int8, "price": np.float64,
           "qty": np.float64, "seq": np.int64}
_ARROW = {np.int64: pa.int64(), np.uint8: pa.uint8(), np.int8: pa.int8(), np.float64: pa.float64()}


def column(batch: pa.RecordBatch, name: str, dtype) -> np.ndarray:
    """A column as a NumPy array of `dtype` (zero-copy when the Arrow type already matches)."""
    a = batch.column(name)
    if pa.types.is_timestamp(a.type):
        a = a.view(pa.int64())
    out = a.to_numpy(zero_copy_only=False)
    return out if out.dtype == dtype else out.astype(dtype)


class ColumnReader:
    """Reads the market columns the engine needs, as NumPy arrays (zero-copy for the canonical
    types), touching only those columns. Column positions and whether a column needs converting
    are worked out once per schema, so a 1-event batch costs about a microsecond per column."""

    def __init__(self):
        self._schema: pa.Schema | None = None
        self._plan: list[tuple[str, int, object, bool]] = []
        self._sym = -1

    def _prepare(self, schema: pa.Schema) -> None:
        names = schema.names
        plan = []
        for name, dtype in _DTYPES.items():
            if name in names:
                i = names.index(name)
                typ = schema.field(i).type
                ts = pa.types.is_timestamp(typ)
                direct = ts or typ == _ARROW[dtype]
                plan.append((name, i, dtype, direct, ts))
        self._plan = plan
        self._sym = names.index("symbol") if "symbol" in names else -1
        self._schema = schema

    def __call__(self, batch: pa.RecordBatch) -> dict[str, object]:
        """name → array (None: the column has nulls; `recv_ts` with nulls is left out) and
        `symbol` → the Arrow column (None when missing or with nulls)."""
        schema = batch.schema
        if schema is not self._schema:
            if self._schema is not None and schema.equals(self._schema, check_metadata=False):
                self._schema = schema
            else:
                self._prepare(schema)
        out: dict[str, object] = {}
        for name, i, dtype, direct, ts in self._plan:
            a = batch.column(i)
            if a.null_count:
                if name != "recv_ts":
                    out[name] = None
                continue
            if direct:
                x = a.to_numpy()
                out[name] = x.view(np.int64) if ts else x
            else:
                out[name] = column(batch, name, dtype)
        if self._sym >= 0:
            s = batch.column(self._sym)
            out["symbol"] = None if s.null_count else s
        return out


# -- small batches (paper trading): one export of the batch through the Arrow C data interface
# and one compiled call that reads its columns (`sq.core.smallbatch.read_columns`, maps symbols)
# and runs `prepare`, instead of a Python-level wrapper (~2 µs) per column.

@intrinsic
def _ro(typingctx, arr):
    """The array typed read-only (the same value): the event kernel's market inputs are always
    typed read-only, so `run` compiles once whether they come from Arrow or from scratch arrays."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        return impl_ret_borrowed(context, builder, signature.return_type, args[0])

    return arr.copy(readonly=True)(arr), codegen


def readonly_all(arrays: tuple) -> tuple:
    """`arrays` as read-only views (the event kernel's input types; see `_ro`)."""
    out = []
    for a in arrays:
        if a.flags.writeable:
            a = a.view()
            a.flags.writeable = False
        out.append(a)
    return tuple(out)


@kernel
def read_small(addr, plan, has_recv, feed_ns, symmap, dkey, inv_tick, last_loc,
               ts, recv, kind, side, price, qty, seq, codes, out_tick, out_loc, res):
    """`_read_small`, then release the export (its `release` callback clears the struct)."""
    _read_small(addr, plan, has_recv, feed_ns, symmap, dkey, inv_tick, last_loc,
                ts, recv, kind, side, price, qty, seq, codes, out_tick, out_loc, res)
    release_export(addr)


@kernel
def read_run(addr, plan, has_recv, feed_ns, symmap, dkey, inv_tick, last_loc,
             ts, recv, kind, side, price, qty, seq, codes, out_tick, out_loc, res, complete,
             qbuf, ist, bg, pv_tick, pv_qty, oi, of, si, sf, rest, g, gf, rej, hq, hf, ob, obf,
             oo_i, oo_f, fo_i, fo_f, po_i, po_f, eq, nsym, margin, hx, table):
    """`read_small`, then (a clean batch) the engine kernel's `run` over it, in one call:
    returns run's (status, next event), or (-1, 0) when it did not run (see `res`)."""
    read_small(addr, plan, has_recv, feed_ns, symmap, dkey, inv_tick, last_loc,
               ts, recv, kind, side, price, qty, seq, codes, out_tick, out_loc, res)
    if res[0] != 0 or res[1] >= 0:
        return -1, 0
    return _K.run(_ro(ts), _ro(out_loc), _ro(codes), _ro(kind), _ro(side), _ro(out_tick), _ro(qty), _ro(seq), np.int64(0), complete, qbuf, ist, bg, pv_tick, pv_qty,
                  oi, of, si, sf, rest, g, gf, rej, hq, hf, ob, obf, oo_i, oo_f, fo_i, fo_f, po_i, po_f, eq, nsym, margin,
                  hx, table)


@kernel
def _read_small(addr, plan, has_recv, feed_ns, symmap, dkey, inv_tick, last_loc,
                ts, recv, kind, side, price, qty, seq, codes, out_tick, out_loc, res):
    """`read_columns` of the exported batch into the scratch arrays, then `prepare`. res ←
    (status, bad row, new last local time, trades); status 0 = done, 2 = another symbol
    dictionary than `dkey`'s, 1 = not for this path (nulls, unexpected layout)."""
    if not read_columns(addr, plan, has_recv, symmap, dkey, ts, recv, kind, side, price, qty, seq, codes, res):
        return
    bad, last = prepare(kind, side, price, qty, ts, recv if has_recv else ts, has_recv, feed_ns, codes, inv_tick,
                        last_loc, out_tick, out_loc)
    trades = 0
    for i in range(kind.shape[0]):
        if kind[i] == TRADE:
            trades += 1
    res[0] = 0
    res[1] = bad
    res[2] = last
    res[3] = trades


