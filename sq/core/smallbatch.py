"""A small conformed market batch's columns, read by one compiled call from its Arrow C export.

Paper and live trading hand the engine batches of one or a few events, and a live pipe hands
`sq book` the same. Turning such a batch into NumPy arrays column by column costs ~2 µs of
Python a column; exporting it once through the Arrow C data interface and reading every column
in one numba call costs a few µs in all. `SmallReader` keeps the column plan of a schema, the
scratch arrays, and the mapping of the stream's symbol dictionary to the reader's symbol ids;
`read_columns` reads the batch, or says why it cannot (nulls, another dictionary) so the caller
takes its general path.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

SMALL_ROWS = 64
# ArrowArray (Arrow C data interface): int64 length, null_count, offset, n_buffers, n_children,
# then pointers buffers, children, dictionary, release, private_data
_A_LEN, _A_NULLS, _A_OFF, _A_NBUF, _A_NCH, _A_BUFS, _A_CH, _A_DICT, _A_RELEASE = range(9)
_STRUCT_WORDS = 10
# slots of the fast plan: child index of each column (-1: absent)
F_TS, F_RECV, F_KIND, F_SIDE, F_PRICE, F_QTY, F_SEQ, F_SYM = range(8)
_FAST_NAMES = ("ts", "recv_ts", "kind", "side", "price", "qty", "seq", "symbol")


def _pointer(nbtype):
    """An intrinsic turning an int64 address into a typed pointer (indexable in numba)."""
    ptr = types.CPointer(nbtype)

    @intrinsic
    def to_ptr(typingctx, addr):
        if not isinstance(addr, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(ptr))

        return ptr(addr), codegen

    return to_ptr


@intrinsic
def _call_release(typingctx, fn, arg):
    """Call the exported struct's `release(struct*)` callback (a C function pointer)."""
    if not (isinstance(fn, types.Integer) and isinstance(arg, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        vp = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [vp])
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [builder.inttoptr(args[1], vp)])
        return context.get_dummy_value()

    return types.void(fn, arg), codegen


_p64 = _pointer(types.int64)
_pi32 = _pointer(types.int32)


@njit(cache=True, _nrt=False)
def _child(top, c, length):
    """(offset, data buffer address) of child `c`, or (-1, 0) when it is unusable (nulls, length)."""
    ch = _p64(top[_A_CH])
    a = _p64(ch[c])
    if a[_A_NULLS] != 0 or a[_A_LEN] != length or a[_A_NBUF] < 2:
        return -1, 0, 0
    bufs = _p64(a[_A_BUFS])
    return a[_A_OFF], bufs[1], ch[c]


@intrinsic
def _pointer_like(typingctx, addr, like):
    """`addr` as a pointer to `like`'s element type."""
    if not (isinstance(addr, types.Integer) and isinstance(like, types.Array)):
        return None
    ptr = types.CPointer(like.dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return ptr(addr, like), codegen


@njit(cache=True, _nrt=False, inline="always")
def _column(top, c, n, out):
    """Copy child `c`'s n values into `out` (of the column's own type); False when unusable."""
    o, d, _ = _child(top, c, n)
    if d == 0:
        return False
    src = _pointer_like(d, out)
    for i in range(n):
        out[i] = src[o + i]
    return True


@njit(cache=True, _nrt=False)
def read_columns(addr, plan, has_recv, symmap, dkey, ts, recv, kind, side, price, qty, seq, codes, res):
    """Read the exported batch at `addr` (`plan`: child index per F_* slot) into the scratch
    arrays, the symbol column mapped through `symmap`. Returns True when every column was read;
    else res[0] says why: 2 = a symbol dictionary other than `dkey`'s, 1 = not for this path
    (nulls, an unexpected layout). The export is not released here (`release_export`)."""
    top = _p64(addr)
    n = top[_A_LEN]
    res[0] = 1
    if top[_A_NULLS] != 0 or top[_A_OFF] != 0:
        return False
    if not (_column(top, plan[F_TS], n, ts) and (not has_recv or _column(top, plan[F_RECV], n, recv))
            and _column(top, plan[F_KIND], n, kind) and _column(top, plan[F_SIDE], n, side)
            and _column(top, plan[F_PRICE], n, price) and _column(top, plan[F_QTY], n, qty)
            and _column(top, plan[F_SEQ], n, seq)):
        return False
    o, d, sa = _child(top, plan[F_SYM], n)
    if d == 0:
        return False
    # the dictionary must be the one `symmap` was made for: same buffers (kept alive by the
    # caller, so their addresses cannot be reused), offset and length
    sym = _p64(sa)
    if sym[_A_DICT] == 0:
        return False
    res[0] = 2
    dd = _p64(sym[_A_DICT])
    if dd[_A_NBUF] != 3 or dd[_A_LEN] != dkey[0] or dd[_A_OFF] != dkey[1] or dd[_A_NULLS] != dkey[4]:
        return False
    db = _p64(dd[_A_BUFS])
    if db[1] != dkey[2] or db[2] != dkey[3]:
        return False
    res[0] = 1
    idx = _pi32(d)
    m = len(symmap)
    for i in range(n):
        k = idx[o + i]
        if k < 0 or k >= m:
            return False
        codes[i] = symmap[k]
    res[0] = 0
    return True


@njit(cache=True, _nrt=False)
def release_export(addr):
    """Release the export at `addr` (its `release` callback clears the struct)."""
    top = _p64(addr)
    fn = top[_A_RELEASE]
    if fn != 0:
        _call_release(fn, addr)


def dictionary_key(dictionary: pa.Array) -> np.ndarray:
    """What `read_columns` compares an exported symbol dictionary with: length, offset, offsets and
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

    def same_dictionary(self, batch: pa.RecordBatch) -> bool:
        """After a read that met another symbol dictionary object (res[0] == 2): whether it equals
        the known one. If so it becomes the known one (same mapping) and the read can be retried."""
        d = batch.column(int(self.plan[F_SYM])).dictionary
        if self.dictionary is None or not d.equals(self.dictionary):
            return False
        self.set_dictionary(d, self.symmap)
        return True

    def learn_dictionary(self, batch: pa.RecordBatch, ids) -> None:
        """Remember the mapping of `batch`'s symbol dictionary (a batch of this reader's schema
        the caller's general path has just read): `ids(name)` is the caller's id of a symbol."""
        if self.plan is not None:
            d = batch.column(int(self.plan[F_SYM])).dictionary
            self.set_dictionary(d, np.array([ids(x) for x in d.to_pylist()], np.int32))

    def read(self, batch: pa.RecordBatch, n: int) -> tuple[np.ndarray, ...] | None:
        """(ts, kind, side, price, qty, seq, symbol ids) of a batch of n ≤ SMALL_ROWS rows of the
        prepared schema, in scratch arrays valid until the next read; None when the caller must
        take its general path (nulls, a symbol dictionary not learned yet)."""
        ts, recv, kind, side, price, qty, seq, codes, _, _ = self.arrays(n)
        for _ in range(2):
            self.export(batch)
            try:
                ok = read_columns(self.addr, self.plan, False, self.symmap, self.dkey, ts, recv, kind, side, price, qty, seq,
                                  codes, self.res)
            finally:
                release_export(self.addr)
            if ok:
                return ts, kind, side, price, qty, seq, codes
            if self.res[0] != 2 or not self.same_dictionary(batch):
                return None
        return None
