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
# and one compiled call that reads its buffers, maps symbols and runs `prepare`, instead of a
# Python-level wrapper (~2 µs) per column.

SMALL_ROWS = 64
# ArrowArray (Arrow C data interface): int64 length, null_count, offset, n_buffers, n_children,
# then pointers buffers, children, dictionary, release, private_data
_A_LEN, _A_NULLS, _A_OFF, _A_NBUF, _A_NCH, _A_BUFS, _A_CH, _A_DICT, _A_RELEASE = range(9)
_STRUCT_WORDS = 10
# slots of the fast plan: child index of each column (-1: absent)
F_TS, F_RECV, F_KIND, F_SIDE, F_PRICE, F_QTY, F_SEQ, F_SYM = range(8)
_FAST_NAMES = ("ts", "recv_ts", "kind", "side", "price", "qty", "seq", "symbol")


def _pointer(nbtype):
    from numba import types
    from numba.extending import intrinsic

    ptr = types.CPointer(nbtype)

    @intrinsic
    def to_ptr(typingctx, addr):
        if not isinstance(addr, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(ptr))

        return ptr(addr), codegen

    return to_ptr


def _release_intrinsic():
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def call_release(typingctx, fn, arg):
        """Call the exported struct's `release(struct*)` callback (a C function pointer)."""
        if not (isinstance(fn, types.Integer) and isinstance(arg, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            vp = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [vp])
            builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [builder.inttoptr(args[1], vp)])
            return context.get_dummy_value()

        return types.void(fn, arg), codegen

    return call_release


try:
    from numba import carray as _carray  # noqa: F401
    _call_release = _release_intrinsic()
    from numba import types as _nbt

    _p64 = _pointer(_nbt.int64)
    _pf64 = _pointer(_nbt.float64)
    _pu8 = _pointer(_nbt.uint8)
    _pi8 = _pointer(_nbt.int8)
    _pi32 = _pointer(_nbt.int32)
except ImportError:  # pragma: no cover - numba is a hard dependency of the engine
    _carray = None


@kernel
def _child(top, c, length):
    """(offset, data buffer address) of child `c`, or (-1, 0) when it is unusable (nulls, length)."""
    ch = _p64(top[_A_CH])
    a = _p64(ch[c])
    if a[_A_NULLS] != 0 or a[_A_LEN] != length or a[_A_NBUF] < 2:
        return -1, 0, 0
    bufs = _p64(a[_A_BUFS])
    return a[_A_OFF], bufs[1], ch[c]


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
    top = _p64(addr)
    fn = top[_A_RELEASE]
    if fn != 0:
        _call_release(fn, addr)


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
    """Read an exported batch's columns (`plan`: child index per F_* slot) into the scratch arrays
    and run `prepare`. res ← (status, bad row, new last local time, trades); status 0 = done,
    2 = another symbol dictionary than `dkey`'s, 1 = not for this path (nulls, unexpected layout)."""
    top = _p64(addr)
    n = top[_A_LEN]
    res[0] = 1
    if top[_A_NULLS] != 0 or top[_A_OFF] != 0:
        return
    o, d, _ = _child(top, plan[F_TS], n)
    if d == 0:
        return
    x = _p64(d)
    for i in range(n):
        ts[i] = x[o + i]
    if has_recv:
        o, d, _ = _child(top, plan[F_RECV], n)
        if d == 0:
            return
        x = _p64(d)
        for i in range(n):
            recv[i] = x[o + i]
    o, d, _ = _child(top, plan[F_KIND], n)
    if d == 0:
        return
    u = _pu8(d)
    for i in range(n):
        kind[i] = u[o + i]
    o, d, _ = _child(top, plan[F_SIDE], n)
    if d == 0:
        return
    s8 = _pi8(d)
    for i in range(n):
        side[i] = s8[o + i]
    o, d, _ = _child(top, plan[F_PRICE], n)
    if d == 0:
        return
    f = _pf64(d)
    for i in range(n):
        price[i] = f[o + i]
    o, d, _ = _child(top, plan[F_QTY], n)
    if d == 0:
        return
    f = _pf64(d)
    for i in range(n):
        qty[i] = f[o + i]
    o, d, _ = _child(top, plan[F_SEQ], n)
    if d == 0:
        return
    x = _p64(d)
    for i in range(n):
        seq[i] = x[o + i]
    o, d, sa = _child(top, plan[F_SYM], n)
    if d == 0:
        return
    # the dictionary must be the one `symmap` was made for: same buffers (kept alive by the
    # caller, so their addresses cannot be reused), offset and length
    sym = _p64(sa)
    if sym[_A_DICT] == 0:
        return
    res[0] = 2
    dd = _p64(sym[_A_DICT])
    if dd[_A_NBUF] != 3 or dd[_A_LEN] != dkey[0] or dd[_A_OFF] != dkey[1] or dd[_A_NULLS] != dkey[4]:
        return
    db = _p64(dd[_A_BUFS])
    if db[1] != dkey[2] or db[2] != dkey[3]:
        return
    res[0] = 1
    idx = _pi32(d)
    m = len(symmap)
    for i in range(n):
        k = idx[o + i]
        if k < 0 or k >= m:
            return
        codes[i] = symmap[k]
    bad, last = prepare(kind, side, price, qty, ts, recv if has_recv else ts, has_recv, feed_ns, codes, inv_tick,
                        last_loc, out_tick, out_loc)
    trades = 0
    for i in range(n):
        if kind[i] == TRADE:
            trades += 1
    res[0] = 0
    res[1] = bad
    res[2] = last
    res[3] = trades


def dictionary_key(dictionary: pa.Array) -> np.ndarray:
    """What `read_small` compares an exported symbol dictionary with: length, offset, offsets and
    data buffer addresses, null count."""
    bufs = dictionary.buffers()
    if not pa.types.is_string(dictionary.type) or len(bufs) != 3 or bufs[1] is None or bufs[2] is None:
        return np.full(5, -2, np.int64)
    return np.array([len(dictionary), dictionary.offset, bufs[1].address, bufs[2].address, dictionary.null_count], np.int64)


class SmallReader:
    """The fast path for small batches (≤ SMALL_ROWS rows) of a canonical market schema: reusable
    scratch arrays, the column plan per schema, the symbol mapping per dictionary."""

    def __init__(self):
        import ctypes

        self._ctypes = ctypes
        self._schema: pa.Schema | None = None
        self.plan: np.ndarray | None = None  # None: this schema is not for the fast path
        self.has_recv_col = False
        self.struct = np.zeros(_STRUCT_WORDS, np.int64)
        self.addr = self.struct.ctypes.data
        self._release: dict[int, object] = {}
        self.dictionary = None  # kept alive: its buffer addresses identify it (dkey)
        self.dkey = np.full(5, -2, np.int64)
        self.symmap = np.zeros(0, np.int32)
        self.res = np.zeros(4, np.int64)
        self.scratch: dict[int, tuple[np.ndarray, ...]] = {}

    def arrays(self, n: int) -> tuple[np.ndarray, ...]:
        a = self.scratch.get(n)
        if a is None:
            a = (np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.uint8), np.zeros(n, np.int8),
                 np.zeros(n, np.float64), np.zeros(n, np.float64), np.zeros(n, np.int64), np.zeros(n, np.int32),
                 np.zeros(n, np.int64), np.zeros(n, np.int64))
            self.scratch[n] = a
        return a

    def prepare_schema(self, schema: pa.Schema) -> bool:
        if schema is self._schema:
            return self.plan is not None
        if self._schema is not None and schema.equals(self._schema, check_metadata=False):
            self._schema = schema
            return self.plan is not None
        self._schema = schema
        self.plan = None
        names = schema.names
        want = {"ts": None, "recv_ts": None, "kind": pa.uint8(), "side": pa.int8(), "price": pa.float64(),
                "qty": pa.float64(), "seq": pa.int64()}
        plan = np.full(8, -1, np.int64)
        for slot, name in enumerate(_FAST_NAMES):
            if names.count(name) != 1:
                if name == "recv_ts" and name not in names:
                    continue
                return False
            i = names.index(name)
            typ = schema.field(i).type
            if name in ("ts", "recv_ts"):
                ok = pa.types.is_timestamp(typ) or typ == pa.int64()
            elif name == "symbol":
                ok = pa.types.is_dictionary(typ) and typ.index_type == pa.int32() and typ.value_type == pa.string()
            else:
                ok = typ == want[name]
            if not ok:
                return False
            plan[slot] = i
        self.has_recv_col = plan[F_RECV] >= 0
        self.plan = plan
        return True

    def export(self, batch: pa.RecordBatch) -> None:
        batch._export_to_c(self.addr)

    def release(self) -> None:
        fn = int(self.struct[_A_RELEASE])
        if fn:
            r = self._release.get(fn)
            if r is None:
                r = self._release[fn] = self._ctypes.CFUNCTYPE(None, self._ctypes.c_void_p)(fn)
            r(self.addr)

    def set_dictionary(self, dictionary: pa.Array, symmap: np.ndarray) -> None:
        self.dictionary = dictionary
        self.dkey = dictionary_key(dictionary)
        self.symmap = np.ascontiguousarray(symmap, np.int32)
