"""Arrow IPC record-batch messages written in place by a numba kernel, read back zero-copy.

Building a RecordBatch from NumPy columns costs about 1 µs of Python per column plus ~10 µs to
assemble the batch: ~25 µs for a 22-column market batch, far more than parsing a 50-packet ticker
frame. Reading one IPC record-batch message costs ~5 µs whatever the column count. So a kernel
fills one preallocated buffer laid out as an encapsulated IPC message — the 8-byte prefix, the
flatbuffer metadata, then the body — and one `pa.ipc.read_message` + `pa.ipc.read_record_batch`
turns it into a batch whose columns point into that buffer (no copy).

For a schema of fixed-width columns the metadata has the same shape for every batch: only the row
count, the null counts and the buffer lengths change. `MessageLayout` takes the metadata of a
pyarrow-serialized one-row template, finds the byte positions of those numbers (by walking the
flatbuffer: Message → RecordBatch → nodes and buffers), places every column's values — and one
validity bitmap per group of columns that share their nulls — at fixed 64-byte-aligned offsets of a
body with room for `cap` rows, and writes the offsets and the body length into its `header`.
`write_metadata` (njit, called by the kernel once its rows are written) copies the header and
writes the row count, null counts and lengths.

Buffers come from a `BufferPool`, which hands a buffer out again only once no batch points into
it: a fresh buffer's pages must be faulted in by the OS (~1 µs per 4 KiB page: more than the
kernel's parsing), a reused one is already mapped and in cache. Big fresh buffers stay on 4 KiB
pages (`_fresh`).
"""

from __future__ import annotations

import struct
import sys

import numpy as np
import pyarrow as pa
from numba import njit

ALIGN = 64  # every region of the body starts on a 64-byte boundary (Arrow's recommended alignment)
NO_GROUP = -1  # a column without a validity bitmap (no nulls, ever)

# plan columns, one row per field: where its FieldNode and its two Buffer entries sit in the
# message, its validity group, its value width in bytes
P_NODE, P_VALIDITY, P_VALUES, P_GROUP, P_WIDTH = range(5)


def _round_up(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to


def storage_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with every dictionary field replaced by its index type (what the message holds)."""
    fields = [pa.field(f.name, f.type.index_type, f.nullable, f.metadata) if pa.types.is_dictionary(f.type) else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


class _Flatbuffer:
    """Just enough of a flatbuffer reader to find where a table's fields live."""

    def __init__(self, data: bytes):
        self.data = data

    def u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.data, pos)[0]

    def field(self, table: int, index: int) -> int | None:
        """The absolute position of field `index` of the table at `table`, None when absent."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        size = struct.unpack_from("<H", self.data, vtable)[0]
        slot = 4 + 2 * index
        if slot >= size:
            return None
        off = struct.unpack_from("<H", self.data, vtable + slot)[0]
        return table + off if off else None

    def ref(self, pos: int) -> int:
        """Follow the offset stored at `pos` (to a table or a vector)."""
        return pos + self.u32(pos)


# field indexes in Arrow's Message.fbs / Schema.fbs
_MESSAGE_HEADER_TYPE, _MESSAGE_HEADER, _MESSAGE_BODY_LENGTH = 1, 2, 3
_HEADER_RECORD_BATCH = 3
_RB_LENGTH, _RB_NODES, _RB_BUFFERS, _RB_COMPRESSION = 0, 1, 2, 3


class MessageLayout:
    """Where everything sits in the IPC message of one batch of up to `cap` rows.

    `schema`: fixed-width columns (integers, floats, timestamps; dictionary columns hold their
    indices); `groups[i]`: the validity group of field i (0…n_groups-1), or NO_GROUP. Attributes
    for the kernel: `header` (the metadata with the fixed numbers written), `plan` (P_* per field),
    `values[i]` and `bitmaps[g]`: absolute byte offsets of field i's values and group g's bitmap in
    the message, `size`: the message's length in bytes.
    """

    def __init__(self, schema: pa.Schema, groups: list[int], cap: int):
        self.cap = cap
        self.storage = storage_schema(schema)
        widths = []
        for f in self.storage:
            if not (pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_timestamp(f.type)):
                raise TypeError(f"{f.name}: {f.type} is not a fixed-width column")
            widths.append(f.type.bit_width // 8)
        template = pa.RecordBatch.from_arrays([pa.array([0], type=f.type) for f in self.storage], schema=self.storage).serialize()
        prefix, meta_len = struct.unpack_from("<Ii", template, 0)
        if prefix != 0xFFFFFFFF or meta_len % 8:
            raise ValueError("unexpected IPC message prefix")
        fb = _Flatbuffer(template.to_pybytes()[8:8 + meta_len])
        root = fb.ref(0)
        if fb.data[fb.field(root, _MESSAGE_HEADER_TYPE)] != _HEADER_RECORD_BATCH:
            raise ValueError("not a record batch message")
        rb = fb.ref(fb.field(root, _MESSAGE_HEADER))
        nodes, buffers = fb.ref(fb.field(rb, _RB_NODES)), fb.ref(fb.field(rb, _RB_BUFFERS))
        nf = len(widths)
        if fb.u32(nodes) != nf or fb.u32(buffers) != 2 * nf or fb.field(rb, _RB_COMPRESSION) is not None:
            raise ValueError("unexpected record batch layout")
        body_len_pos, length_pos = fb.field(root, _MESSAGE_BODY_LENGTH), fb.field(rb, _RB_LENGTH)
        if body_len_pos is None or length_pos is None:
            raise ValueError("template lacks the body or row count")

        head = 8 + meta_len  # the body starts here (a multiple of 8)
        n_groups = max(groups, default=NO_GROUP) + 1
        off = 0
        bitmaps = []
        for _ in range(n_groups):
            bitmaps.append(off)
            off += _round_up((cap + 7) // 8)
        values = []
        for w in widths:
            values.append(off)
            # one spare cache line after each region: were regions multiples of 4 KiB apart, a
            # kernel writing row by row would hit the same L1 sets in every column (3× slower)
            off += _round_up(cap * w) + ALIGN
        body = off
        header = bytearray(template.to_pybytes()[:head])
        plan = np.zeros((nf, 5), np.int64)
        for i, (w, g) in enumerate(zip(widths, groups)):
            node, validity, vals = nodes + 4 + 16 * i, buffers + 4 + 32 * i, buffers + 4 + 32 * i + 16
            plan[i] = (8 + node, 8 + validity, 8 + vals, g, w)
            struct.pack_into("<qq", header, 8 + validity, bitmaps[g] if g != NO_GROUP else 0, 0)
            struct.pack_into("<qq", header, 8 + vals, values[i], 0)
        struct.pack_into("<q", header, 8 + body_len_pos, body)
        self.header = np.frombuffer(bytes(header), np.uint8)
        self.length_pos = 8 + length_pos
        self.plan = plan
        self.n_groups = n_groups
        self.values = np.array([head + v for v in values], np.int64)
        self.bitmaps = np.array([head + b for b in bitmaps], np.int64)
        self.size = head + body

    def read(self, message: np.ndarray) -> pa.RecordBatch:
        """The batch in `message` (zero-copy: its columns keep `message` alive), storage schema."""
        return pa.ipc.read_record_batch(pa.ipc.read_message(pa.py_buffer(message)), self.storage)


@njit(cache=True, inline="always", _nrt=False)
def put_i64(out, pos, v):
    """Store int64 `v` little-endian at byte `pos` of a uint8 array."""
    for k in range(8):
        out[pos + k] = (v >> (8 * k)) & 0xFF


@njit(cache=True, _nrt=False)
def write_metadata(out, header, length_pos, plan, n, nulls):
    """Write the metadata of an n-row batch into message `out`: the layout's header, then the row
    count, every field's length and null count (nulls[group]; 0 without a group) and its buffers'
    lengths (a bitmap only when the field has nulls)."""
    for k in range(header.shape[0]):
        out[k] = header[k]
    put_i64(out, length_pos, n)
    for i in range(plan.shape[0]):
        g = plan[i, P_GROUP]
        nc = nulls[g] if g >= 0 else 0
        put_i64(out, plan[i, P_NODE], n)
        put_i64(out, plan[i, P_NODE] + 8, nc)
        put_i64(out, plan[i, P_VALIDITY] + 8, (n + 7) // 8 if nc > 0 else 0)
        put_i64(out, plan[i, P_VALUES] + 8, n * plan[i, P_WIDTH])


class BufferPool:
    """Message buffers, handed out again only once no batch points into them.

    A batch read from a buffer keeps a reference to it — pyarrow's buffer holds the NumPy array
    through the buffer protocol for as long as any column, slice or C++ consumer of the batch
    (a table, a polars frame, an exported C array) lives — so a buffer whose only references are
    the pool's own is free: nobody can see it being overwritten. A free buffer is reused for a
    request of half its size or more (a small batch never pins a big buffer); up to `keep` buffers
    are pooled, and a fresh one replaces a free misfit first, else the oldest.
    """

    def __init__(self, keep: int = 4):
        self.keep = keep
        self._bufs: list[np.ndarray] = []
        self._next = 0  # the pooled buffer a fresh one replaces when none is free
        probe = [np.empty(1, np.uint8)]
        self._free = self._refs(probe, 0)

    @staticmethod
    def _refs(bufs: list[np.ndarray], i: int) -> int:
        """References to bufs[i]: the list's, this frame's and getrefcount's when no batch holds it."""
        b = bufs[i]
        return sys.getrefcount(b)

    def take(self, size: int) -> np.ndarray:
        """An uninitialised buffer of at least `size` bytes that no batch points into."""
        bufs, misfit = self._bufs, -1
        for i in range(len(bufs)):
            if self._refs(bufs, i) == self._free:
                if size <= bufs[i].shape[0] <= 2 * size:
                    return bufs[i]
                misfit = i
        fresh = _fresh(size)
        if misfit >= 0:
            bufs[misfit] = fresh
        elif len(bufs) < self.keep:
            bufs.append(fresh)
        else:  # all in use: drop the pool's reference to the oldest (its batch keeps it alive while needed)
            bufs[self._next] = fresh
            self._next = (self._next + 1) % self.keep
        return fresh


HUGE = 1 << 22  # NumPy madvises arrays from 4 MiB up for transparent huge pages
_MADV_NOHUGEPAGE = 15


def _libc_madvise():
    """libc's madvise on Linux (None elsewhere, or where ctypes cannot reach it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        f = ctypes.CDLL(None, use_errno=True).madvise
        f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        return f
    except (OSError, AttributeError):
        return None


_madvise = _libc_madvise()


def _fresh(size: int) -> np.ndarray:
    """A new buffer; a big one is kept on 4 KiB pages. NumPy asks for huge pages from 4 MiB up, and
    where the kernel must compact memory to find them, the first pass over a capture ran up to
    twice as long as on small pages (only the pages the rows reach are faulted in)."""
    buf = np.empty(size, np.uint8)
    if size >= HUGE and _madvise is not None:
        start = -(-buf.ctypes.data // 4096) * 4096
        _madvise(start, (buf.ctypes.data + size - start) // 4096 * 4096, _MADV_NOHUGEPAGE)
    return buf
