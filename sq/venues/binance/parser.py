"""Binance market frames (bytes) → typed event arrays, fast.

Depth diffs are most of the traffic and Python's per-string `float()` alone costs more than the
200k frames/s budget, so a numba kernel scans the raw bytes of frames (`scan_frame`; `scan` for a
whole batch, and the pipeline's burst kernel, `burst.feed_burst`, frame by frame):
it walks each JSON object (combined-stream wrapper `{"stream","data"}` or a bare event), reads the
integer ids (`E`, `T`, `U`, `u`, `pu`), the symbol's byte range and every `[price, qty]` pair of
`b`/`a` straight into preallocated NumPy arrays, converting decimal strings exactly (integer
mantissa ÷ power of ten is correctly rounded, the same double `float(str)` gives). Unknown keys are
skipped and counted. Anything the kernel does not handle (trades, bookTicker, control replies,
numbers too long for an exact mantissa, malformed JSON) is marked and parsed by orjson (or json)
in Python, so correctness never depends on the fast path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

try:  # orjson is several times faster than json; both give the same objects here
    import orjson as _json

    loads = _json.loads
except ImportError:  # pragma: no cover - depends on the environment
    import json as _json

    loads = _json.loads

# frame status codes set by the kernel
ST_DEPTH = 0  # a depthUpdate fully decoded by the kernel
ST_OTHER = 1  # a well-formed frame that is not a depthUpdate: parse in Python
ST_FALLBACK = 2  # the kernel could not decode it (malformed, exotic numbers): parse in Python

_MAX_EXACT = 1 << 53
_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)

# key codes
K_OTHER, K_e, K_E, K_T, K_s, K_U, K_u, K_pu, K_b, K_a, K_stream, K_data = range(12)


@njit(cache=True, _nrt=False)
def _ws(buf, p, n):
    while p < n:
        c = buf[p]
        if c != 32 and c != 9 and c != 10 and c != 13:
            break
        p += 1
    return p


@njit(cache=True, _nrt=False)
def _skip_string(buf, p, n):
    """p at the opening quote; index after the closing quote, or -1."""
    p += 1
    while p < n:
        c = buf[p]
        if c == 92:
            p += 2
            continue
        if c == 34:
            return p + 1
        p += 1
    return -1


@njit(cache=True, _nrt=False)
def _skip_value(buf, p, n):
    """Skip any JSON value starting at p; index after it, or -1 when malformed."""
    if p >= n:
        return -1
    c = buf[p]
    if c == 34:
        return _skip_string(buf, p, n)
    if c == 123 or c == 91:  # { [
        depth = 0
        while p < n:
            c = buf[p]
            if c == 34:
                p = _skip_string(buf, p, n)
                if p < 0:
                    return -1
                continue
            if c == 123 or c == 91:
                depth += 1
            elif c == 125 or c == 93:
                depth -= 1
                if depth == 0:
                    return p + 1
            p += 1
        return -1
    start = p
    while p < n:
        c = buf[p]
        if c == 44 or c == 125 or c == 93 or c == 32 or c == 10 or c == 13 or c == 9:
            break
        p += 1
    return p if p > start else -1


@njit(cache=True, _nrt=False)
def _key(buf, p, n):
    """p at a key's opening quote → (key code, index after the closing quote) or (-1, -1)."""
    q = p + 1
    e = q
    while e < n and buf[e] != 34:
        if buf[e] == 92:
            return -1, -1
        e += 1
    if e >= n:
        return -1, -1
    ln = e - q
    code = K_OTHER
    if ln == 1:
        c = buf[q]
        if c == 101:
            code = K_e
        elif c == 69:
            code = K_E
        elif c == 84:
            code = K_T
        elif c == 115:
            code = K_s
        elif c == 85:
            code = K_U
        elif c == 117:
            code = K_u
        elif c == 98:
            code = K_b
        elif c == 97:
            code = K_a
    elif ln == 2 and buf[q] == 112 and buf[q + 1] == 117:
        code = K_pu
    elif ln == 4 and buf[q] == 100 and buf[q + 1] == 97 and buf[q + 2] == 116 and buf[q + 3] == 97:
        code = K_data
    elif ln == 6 and buf[q] == 115 and buf[q + 1] == 116 and buf[q + 2] == 114 and buf[q + 5] == 109:
        code = K_stream
    return code, e + 1


@njit(cache=True, _nrt=False)
def _int(buf, p, n):
    """A non-negative JSON integer at p → (value, index after) or (-1, -1)."""
    v = 0
    start = p
    while p < n and 48 <= buf[p] <= 57:
        v = v * 10 + (buf[p] - 48)
        p += 1
    if p == start or p - start > 18:
        return -1, -1
    return v, p


@njit(cache=True, _nrt=False)
def _dec(buf, p, n, pow10):
    """A quoted decimal string at p ("123.45") → (value, index after, ok)."""
    if p >= n or buf[p] != 34:
        return 0.0, -1, False
    p += 1
    neg = False
    if p < n and buf[p] == 45:
        neg = True
        p += 1
    mant = 0
    frac = 0
    seen_dot = False
    digits = 0
    while p < n:
        c = buf[p]
        if 48 <= c <= 57:
            if digits >= 15 and mant > 900719925474099:  # one more digit could pass 2**53: not exact
                return 0.0, -1, False
            mant = mant * 10 + (c - 48)
            digits += 1
            if seen_dot:
                frac += 1
        elif c == 46 and not seen_dot:
            seen_dot = True
        elif c == 34:
            break
        else:
            return 0.0, -1, False
        p += 1
    if p >= n or digits == 0 or frac > 22:
        return 0.0, -1, False
    v = mant / pow10[frac]
    return (-v if neg else v), p + 1, True


@njit(cache=True, _nrt=False)
def _levels(buf, p, n, sgn, px, qty, side, lframe, fi, nl, pow10):
    """Parse `[["p","q"],…]` at p into the level arrays from index nl → (index after, new nl)."""
    if buf[p] != 91:
        return -1, nl
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 93:
        return p + 1, nl
    while p < n:
        if buf[p] != 91:
            return -1, nl
        p = _ws(buf, p + 1, n)
        v, p, ok = _dec(buf, p, n, pow10)
        if not ok:
            return -1, nl
        p = _ws(buf, p, n)
        if p >= n or buf[p] != 44:
            return -1, nl
        p = _ws(buf, p + 1, n)
        q, p, ok = _dec(buf, p, n, pow10)
        if not ok:
            return -1, nl
        p = _ws(buf, p, n)
        if p >= n or buf[p] != 93:
            return -1, nl
        px[nl] = v
        qty[nl] = q
        side[nl] = sgn
        lframe[nl] = fi
        nl += 1
        p = _ws(buf, p + 1, n)
        if p < n and buf[p] == 44:
            p = _ws(buf, p + 1, n)
            continue
        if p < n and buf[p] == 93:
            return p + 1, nl
        return -1, nl
    return -1, nl


@njit(cache=True, _nrt=False)
def _event(buf, p, n, fi, ints, px, qty, side, lframe, nl, pow10):
    """Scan one event object at p. ints[fi] row: status, E, T, U, u, pu, s0, s1, unknown.

    Returns (index after the object, new level count, is_wrapper, data_start).
    """
    if p >= n or buf[p] != 123:
        return -1, nl, False, -1
    nl0 = nl
    is_depth = False
    has_e = False
    wrapper = False
    data_at = -1
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 125:
        return p + 1, nl, False, -1
    while p < n:
        if buf[p] != 34:
            return -1, nl0, False, -1
        k, p = _key(buf, p, n)
        if k < 0:
            return -1, nl0, False, -1
        p = _ws(buf, p, n)
        if p >= n or buf[p] != 58:
            return -1, nl0, False, -1
        p = _ws(buf, p + 1, n)
        if p >= n:
            return -1, nl0, False, -1
        if k == K_e:
            has_e = True
            # "depthUpdate" = 11 bytes
            if p + 12 < n and buf[p + 1] == 100 and buf[p + 6] == 85 and buf[p + 12] == 34:
                is_depth = True
            p = _skip_string(buf, p, n) if buf[p] == 34 else -1
        elif k == K_E or k == K_T or k == K_U or k == K_u or k == K_pu:
            v, p = _int(buf, p, n)
            if p >= 0:
                col = 1 if k == K_E else (2 if k == K_T else (3 if k == K_U else (4 if k == K_u else 5)))
                ints[fi, col] = v
        elif k == K_s:
            if buf[p] != 34:
                return -1, nl0, False, -1
            ints[fi, 6] = p + 1
            p = _skip_string(buf, p, n)
            if p >= 0:
                ints[fi, 7] = p - 1
        elif (k == K_b or k == K_a) and buf[p] == 91:
            p, nl = _levels(buf, p, n, 1 if k == K_b else -1, px, qty, side, lframe, fi, nl, pow10)
        elif k == K_data and buf[p] == 123:
            wrapper = True
            data_at = p
            p = _skip_value(buf, p, n)
        else:
            if k != K_stream:
                ints[fi, 8] += 1
            p = _skip_value(buf, p, n)
        if p < 0:
            return -1, nl0, False, -1
        p = _ws(buf, p, n)
        if p < n and buf[p] == 44:
            p = _ws(buf, p + 1, n)
            continue
        if p < n and buf[p] == 125:
            if not wrapper and not (has_e and is_depth):
                nl = nl0
            return p + 1, nl, wrapper, data_at
        return -1, nl0, False, -1
    return -1, nl0, False, -1


_WRAP = np.frombuffer(b'{"stream":"', dtype=np.uint8)
_DATA = np.frombuffer(b',"data":', dtype=np.uint8)


@njit(cache=True, _nrt=False)
def _match(buf, p, n, pat):
    if p + len(pat) > n:
        return False
    for k in range(len(pat)):
        if buf[p + k] != pat[k]:
            return False
    return True


@njit(cache=True, _nrt=False)
def _fnv(buf, s, e):
    h = np.int64(-3750763034362895579)  # FNV-1a offset basis as int64 (wrapping arithmetic)
    for p in range(s, e):
        h = (h ^ np.int64(buf[p])) * np.int64(1099511628211)
    return h


@njit(cache=True, _nrt=False)
def _lookup(buf, s0, s1, hashes, order, sym_buf, sym_off):
    """Index of the symbol bytes buf[s0:s1] in the table, or -1."""
    if s0 < 0 or s1 < s0:
        return -1
    h = _fnv(buf, s0, s1)
    j = np.searchsorted(hashes, h)
    while j < len(hashes) and hashes[j] == h:
        k = order[j]
        a, b = sym_off[k], sym_off[k + 1]
        if b - a == s1 - s0:
            same = True
            for t in range(b - a):
                if sym_buf[a + t] != buf[s0 + t]:
                    same = False
                    break
            if same:
                return k
        j += 1
    return -1


@njit(cache=True, _nrt=False)
def _reset(ints, fi):
    for c in range(1, 10):
        ints[fi, c] = -1
    ints[fi, 8] = 0


@njit(cache=True, _nrt=False)
def scan_frame(buf, start, n, fi, ints, px, qty, side, lframe, nl, hashes, order, sym_buf, sym_off):
    """Scan the frame buf[start:n]: fill row fi of ints, its levels from index nl; the new level count.

    ints[fi, 0] is ST_DEPTH, ST_OTHER or ST_FALLBACK (levels are kept only for ST_DEPTH);
    ints[fi, 9] the symbol's index in the table (-1 unknown).
    """
    _reset(ints, fi)
    p = _ws(buf, start, n)
    end = -1
    nl2 = nl
    done = False
    # fast path: {"stream":"…","data":{…}} — parse the data object in place
    if _match(buf, p, n, _WRAP):
        q = _skip_string(buf, p + len(_WRAP) - 1, n)
        if q > 0 and _match(buf, q, n, _DATA):
            d = _ws(buf, q + len(_DATA), n)
            end, nl2, w2, d2 = _event(buf, d, n, fi, ints, px, qty, side, lframe, nl, _POW10)
            if end >= 0 and not w2:
                end = _ws(buf, end, n)
                if end < n and buf[end] == 125:
                    done = True
            if not done:
                _reset(ints, fi)
                nl2 = nl
                end = -1
    if not done:
        end, nl2, wrapper, data_at = _event(buf, p, n, fi, ints, px, qty, side, lframe, nl, _POW10)
        if end >= 0 and wrapper:
            _reset(ints, fi)
            end, nl2, w2, d2 = _event(buf, data_at, n, fi, ints, px, qty, side, lframe, nl, _POW10)
    if end < 0:
        ints[fi, 0] = ST_FALLBACK
        return nl
    ints[fi, 9] = _lookup(buf, ints[fi, 6], ints[fi, 7], hashes, order, sym_buf, sym_off)
    if nl2 == nl and ints[fi, 4] < 0:
        ints[fi, 0] = ST_OTHER
        return nl
    if ints[fi, 3] < 0 or ints[fi, 4] < 0 or ints[fi, 6] < 0:
        ints[fi, 0] = ST_FALLBACK  # a depth event without its ids: let Python judge it
        return nl
    ints[fi, 0] = ST_DEPTH
    return nl2


@njit(cache=True, _nrt=False)
def scan_frames(buf, starts, ends, ints, px, qty, side, lframe, hashes, order, sym_buf, sym_off):
    """Scan every frame [starts[i], ends[i]) of buf (see `scan_frame`); the number of levels written."""
    nl = 0
    for fi in range(len(starts)):
        nl = scan_frame(buf, starts[fi], ends[fi], fi, ints, px, qty, side, lframe, nl, hashes, order, sym_buf, sym_off)
    return nl


class SymbolTable:
    """Venue symbol names (bytes) for the kernel's lookup: FNV-1a hashes sorted, with the bytes."""

    def __init__(self, names: list[bytes]):
        self.names = list(names)
        self.sym_buf = np.frombuffer(b"".join(self.names) or b"\0", dtype=np.uint8)
        self.sym_off = np.zeros(len(self.names) + 1, dtype=np.int64)
        if self.names:
            self.sym_off[1:] = np.cumsum([len(x) for x in self.names])
        hs = np.array([_fnv(np.frombuffer(x, dtype=np.uint8), 0, len(x)) if x else 0 for x in self.names], dtype=np.int64)
        self.order = np.argsort(hs, kind="stable").astype(np.int64)
        self.hashes = hs[self.order]


_EMPTY_TABLE: SymbolTable | None = None


# columns of Scan.ints
C_STATUS, C_E, C_T, C_U, C_u, C_pu, C_S0, C_S1, C_UNKNOWN, C_CODE = range(10)


@dataclass
class Scan:
    """A scanned batch: per-frame integer fields, and every depth level of every ST_DEPTH frame.

    `lframe[j]` is the frame index of level j; levels are in frame order, bids before asks as
    sent. Fields absent from a frame are -1.
    """

    frames: list[bytes]
    buf: bytes
    ints: np.ndarray  # (n, 10) int64
    px: np.ndarray
    qty: np.ndarray
    side: np.ndarray  # int8
    lframe: np.ndarray  # int64

    def symbol(self, i: int) -> bytes:
        return self.buf[self.ints[i, C_S0] : self.ints[i, C_S1]]


def scan(frames: list[bytes], symbols: SymbolTable | None = None) -> Scan:
    """Scan a batch of frames (bytes or str) in one kernel call; `symbols` resolves `s` to an index."""
    global _EMPTY_TABLE
    if symbols is None:
        symbols = _EMPTY_TABLE = _EMPTY_TABLE or SymbolTable([])
    try:
        buf = b"".join(frames)
    except TypeError:  # text frames (str): the kernel reads UTF-8 bytes
        frames = [f.encode() if isinstance(f, str) else f for f in frames]
        buf = b"".join(frames)
    lens = np.fromiter(map(len, frames), dtype=np.int64, count=len(frames))
    ends = np.cumsum(lens)
    starts = ends - lens
    cap = len(buf) // 9 + 1  # every level takes at least 9 bytes: ["1","1"]
    ints = np.empty((len(frames), 10), dtype=np.int64)
    px = np.empty(cap, dtype=np.float64)
    qty = np.empty(cap, dtype=np.float64)
    side = np.empty(cap, dtype=np.int8)
    lframe = np.empty(cap, dtype=np.int64)
    arr = np.frombuffer(buf or b"\0", dtype=np.uint8)  # always a read-only view: one compiled signature
    nl = scan_frames(arr, starts, ends, ints, px, qty, side, lframe, symbols.hashes, symbols.order, symbols.sym_buf, symbols.sym_off)
    return Scan(frames, buf, ints, px[:nl], qty[:nl], side[:nl], lframe[:nl])


def decimal(text) -> float:
    """One Binance decimal string (or number) as a finite float; ValueError when it is not one."""
    v = float(text)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite decimal: {str(text)[:40]!r}")
    return v


def event_of(obj):
    """The event object of a parsed frame: `data` of a combined-stream wrapper, else the frame."""
    if isinstance(obj, dict) and "data" in obj and "stream" in obj and isinstance(obj["data"], dict):
        return obj["data"]
    return obj


DEPTH_KEYS = frozenset("e E T s U u pu b a".split())
TRADE_KEYS = frozenset("e E s t p q T m M b a X".split())
AGG_TRADE_KEYS = frozenset("e E s a p q f l T m M nq".split())
BOOK_TICKER_KEYS = frozenset("e E T u s b B a A".split())
KNOWN_KEYS = {"depthUpdate": DEPTH_KEYS, "trade": TRADE_KEYS, "aggTrade": AGG_TRADE_KEYS, "bookTicker": BOOK_TICKER_KEYS}


def kind_of(event: dict) -> str:
    """The event type: `e`, or `bookTicker` for spot book tickers (which carry no `e`)."""
    e = event.get("e")
    if e is None and "u" in event and "b" in event and "B" in event and "A" in event:
        return "bookTicker"
    return e if isinstance(e, str) else ""


def unknown_keys(event: dict, kind: str) -> list[str]:
    known = KNOWN_KEYS.get(kind)
    return [k for k in event if k not in known] if known else []
