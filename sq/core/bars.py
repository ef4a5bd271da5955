"""Bars from priced market events: the interval grammar and the numba kernel (docs/streams.md "bars").

Intervals (`parse_interval`):

* time bars `Ns`, `Nm`, `Nh`, `Nd` (any N ≥ 1): [k·size, (k+1)·size) ns since the epoch, UTC —
  the buckets of polars' `group_by_dynamic(every=…)`; a bar is labelled by its open;
* `session`: one bar per day of the symbol's regular session ([open, close) local time, see
  `sq.core.sessions`), labelled by the UTC instant of the open; events outside it are left out;
* tick bars `Nt`: every N trades of a symbol, labelled by the time of the bar's first trade;
* volume bars `Nv` (N may be fractional): every N units of traded volume; a trade that crosses
  a boundary is split — the part that completes the bar goes to it, the rest opens the next bar
  (several bars when the trade is bigger than N), and each bar a trade reaches counts it once in
  `trades`. A remainder within 1e-9·N of zero counts as zero (float rounding).

The kernel (`BarState.run`) walks a batch of events once. Per symbol it holds the open bar
(open, high, low, close, volume, Σ price·qty, trade count) and the symbol's *source*: trades
(price and qty) once it has shown a `trade` row, before that ticks (last price only, no volume).
At a symbol's first trade the bar its ticks opened is dropped (that bar is made from trades; bars
already written stay), and later ticks are ignored (counted): a venue that sends both, such as a
Zerodha stream with derived trades, repeats its trades' last price in its ticks. Time and session bars close when
the stream's clock (the highest `ts` seen on any row, whatever its kind) reaches the bar's end,
so a quiet symbol's bar is written as soon as the market moves past it; all bars closing at one
moment are written in (open time, symbol name) order. An event that belongs to a bar before its
symbol's open or last bar (time going backwards) is left out and counted. Count bars close when
full; `finish` writes the bars still open (the last bar of a symbol ends where the input ends).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numba import njit

from sq.core.exits import UsageError
from sq.core.sessions import NS_PER_DAY, TradingSession

BAR_TIME, BAR_SESSION, BAR_TICKS, BAR_VOLUME = 0, 1, 2, 3
TRADE, TICK = 2, 5  # market `kind` codes (sq.core.schemas)
SRC_NONE, SRC_TRADES, SRC_TICKS = 0, 1, 2

_UNIT_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": NS_PER_DAY}
_TIME = re.compile(r"^(\d+)([smhd])$")
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)([tv])$")
MAX_TIME_BAR_NS = 3660 * NS_PER_DAY  # ten years: bar ends stay far from the int64 limit
MAX_COUNT = 1e15
VOLUME_EPS = 1e-9  # a volume remainder below this fraction of the bar size is rounding, not volume
INTERVAL_HELP = "1s, 5s, 1m, 15m, 1h, 4h, 1d (any N with s, m, h or d), session, 500t (trades) or 100v (volume)"


@dataclass(frozen=True)
class BarSpec:
    """A parsed interval: its mode, its size (ns for time bars, a count, or a volume) and its text."""

    mode: int
    size: float
    label: str


def parse_interval(text: str) -> BarSpec:
    """`1m` → time bars of 60 s, `session`, `500t`, `100v`; anything else is a usage error."""
    raw = (text or "").strip().lower()
    if raw == "session":
        return BarSpec(BAR_SESSION, 0.0, raw)
    m = _TIME.match(raw)
    if m:
        n = int(m.group(1))
        if n == 0:
            raise UsageError(f"bar interval {text!r} is zero; bars need a positive length")
        if n * _UNIT_NS[m.group(2)] > MAX_TIME_BAR_NS:
            raise UsageError(f"bar interval {text!r} is longer than {MAX_TIME_BAR_NS // NS_PER_DAY} days")
        return BarSpec(BAR_TIME, float(n * _UNIT_NS[m.group(2)]), raw)
    m = _COUNT.match(raw)
    if m:
        value = float(m.group(1))
        if m.group(2) == "t" and "." in m.group(1):
            raise UsageError(f"bar interval {text!r}: tick bars count whole trades (500t)")
        if value == 0:
            raise UsageError(f"bar interval {text!r} is zero; bars need a positive size")
        if value > MAX_COUNT:
            raise UsageError(f"bar interval {text!r} is larger than {MAX_COUNT:.0e}")
        return BarSpec(BAR_TICKS if m.group(2) == "t" else BAR_VOLUME, value, raw)
    raise UsageError(f"unknown bar interval {text!r}; use {INTERVAL_HELP}")


# per-symbol integer state (columns of `si`)
I_ACTIVE, I_KEY, I_END, I_TRADES, I_SRC, I_HAS_LAST, I_LAST, I_OFF, I_OPEN, I_CLOSE, I_RANK = range(11)
NI = 11
# per-symbol float state (columns of `sf`) and output float rows (rows of `out_f`)
F_OPEN, F_HIGH, F_LOW, F_CLOSE, F_VOL, F_PQ = range(6)
NF = 6
# stream-wide counters (`g`)
G_WATER, G_NEXT, G_LATE, G_LATE_ROW, G_TICKS_AFTER, G_OUTSIDE, G_NOVOL, G_ROWS = range(8)
NG = 8
_MAX = np.iinfo(np.int64).max
_MIN = np.iinfo(np.int64).min


@njit(cache=True, _nrt=False)
def _emit(si, sf, s, r, out_ts, out_sym, out_n, out_src, out_f):
    """Write symbol s's open bar as output row r and close it."""
    out_ts[r] = si[s, I_KEY]
    out_sym[r] = s
    out_n[r] = si[s, I_TRADES]
    out_src[r] = si[s, I_SRC]
    for j in range(NF):
        out_f[j, r] = sf[s, j]
    si[s, I_ACTIVE] = 0
    si[s, I_HAS_LAST] = 1
    si[s, I_LAST] = si[s, I_KEY]
    return r + 1


@njit(cache=True, _nrt=False)
def _open(si, sf, s, key, end):
    si[s, I_ACTIVE] = 1
    si[s, I_KEY] = key
    si[s, I_END] = end
    si[s, I_TRADES] = 0
    sf[s, F_VOL] = 0.0
    sf[s, F_PQ] = 0.0


@njit(cache=True, _nrt=False)
def _add(si, sf, s, px, q):
    """One trade (or tick, q = 0) of `q` at `px` into symbol s's open bar."""
    if si[s, I_TRADES] == 0:
        sf[s, F_OPEN] = px
        sf[s, F_HIGH] = px
        sf[s, F_LOW] = px
    else:
        if px > sf[s, F_HIGH]:
            sf[s, F_HIGH] = px
        if px < sf[s, F_LOW]:
            sf[s, F_LOW] = px
    sf[s, F_CLOSE] = px
    sf[s, F_VOL] += q
    sf[s, F_PQ] += px * q
    si[s, I_TRADES] += 1


@njit(cache=True, _nrt=False)
def _close_due(si, sf, g, nsym, upto, scratch, r, out_ts, out_sym, out_n, out_src, out_f):
    """Close every open bar whose end is ≤ `upto`, in (open, symbol name) order; recompute the
    next end. Returns the new output row count."""
    m = 0
    nxt = _MAX
    for s in range(nsym):
        if si[s, I_ACTIVE] != 0:
            if si[s, I_END] <= upto:
                # insertion by (key, rank): few bars close at one moment
                j = m
                while j > 0 and (si[scratch[j - 1], I_KEY] > si[s, I_KEY] or
                                 (si[scratch[j - 1], I_KEY] == si[s, I_KEY] and si[scratch[j - 1], I_RANK] > si[s, I_RANK])):
                    scratch[j] = scratch[j - 1]
                    j -= 1
                scratch[j] = s
                m += 1
            elif si[s, I_END] < nxt:
                nxt = si[s, I_END]
    for j in range(m):
        r = _emit(si, sf, scratch[j], r, out_ts, out_sym, out_n, out_src, out_f)
    g[G_NEXT] = nxt
    return r


@njit(cache=True, _nrt=False)
def _late(g, row):
    if g[G_LATE] == 0:
        g[G_LATE_ROW] = row
    g[G_LATE] += 1


@njit(cache=True, _nrt=False)
def run_bars(mode, size_i, size_v, ts, sym, kind, price, qty, row0, si, sf, g, scratch, out_ts, out_sym, out_n, out_src, out_f):
    """Apply one batch of market events; returns the number of closed bars written to `out_*`
    (sized by the caller: rows + symbols, plus Σ qty / size for volume bars). `size_i` is the
    bar length in ns (time bars) or trades (tick bars), `size_v` the volume of a volume bar."""
    r = 0
    nsym = si.shape[0]
    timed = mode == BAR_TIME or mode == BAR_SESSION
    eps = size_v * VOLUME_EPS
    for i in range(len(ts)):
        t = ts[i]
        if timed:
            if t > g[G_WATER]:
                g[G_WATER] = t
                if t >= g[G_NEXT]:
                    r = _close_due(si, sf, g, nsym, t, scratch, r, out_ts, out_sym, out_n, out_src, out_f)
        k = kind[i]
        if k == TRADE:
            src = SRC_TRADES
        elif k == TICK:
            src = SRC_TICKS
        else:
            continue
        s = sym[i]
        cur = si[s, I_SRC]
        if cur != src:
            if cur == SRC_NONE:
                si[s, I_SRC] = src
            elif src == SRC_TRADES:  # trades take over from ticks; the bar the ticks opened is dropped
                si[s, I_SRC] = SRC_TRADES
                si[s, I_ACTIVE] = 0
            else:  # a tick of a symbol that has trades repeats their last price
                g[G_TICKS_AFTER] += 1
                continue
        px = price[i]
        q = qty[i] if src == SRC_TRADES else 0.0
        if mode == BAR_TICKS:
            if si[s, I_ACTIVE] == 0:
                _open(si, sf, s, t, _MAX)
            _add(si, sf, s, px, q)
            if si[s, I_TRADES] >= size_i:
                r = _emit(si, sf, s, r, out_ts, out_sym, out_n, out_src, out_f)
            continue
        if mode == BAR_VOLUME:
            if src != SRC_TRADES:
                g[G_NOVOL] += 1
                continue
            rest = q
            while True:
                if si[s, I_ACTIVE] == 0:
                    _open(si, sf, s, t, _MAX)
                room = size_v - sf[s, F_VOL]
                if rest >= room - eps:
                    part = room if rest > room else rest
                    _add(si, sf, s, px, part)
                    r = _emit(si, sf, s, r, out_ts, out_sym, out_n, out_src, out_f)
                    rest -= part
                    if rest <= eps:
                        break
                else:
                    _add(si, sf, s, px, rest)
                    break
            continue
        if mode == BAR_TIME:
            key = (t // size_i) * size_i
            end = key + size_i
        else:
            local = t + si[s, I_OFF]
            day = (local // NS_PER_DAY) * NS_PER_DAY
            tod = local - day
            if tod < si[s, I_OPEN] or tod >= si[s, I_CLOSE]:
                g[G_OUTSIDE] += 1
                continue
            key = day + si[s, I_OPEN] - si[s, I_OFF]
            end = day + si[s, I_CLOSE] - si[s, I_OFF]
        if si[s, I_ACTIVE] != 0:
            if key < si[s, I_KEY]:
                _late(g, row0 + i)
                continue
            if key > si[s, I_KEY]:  # only when the symbol's own clock jumped past the stream's
                r = _emit(si, sf, s, r, out_ts, out_sym, out_n, out_src, out_f)
        if si[s, I_ACTIVE] == 0:
            if si[s, I_HAS_LAST] != 0 and key <= si[s, I_LAST]:
                _late(g, row0 + i)
                continue
            _open(si, sf, s, key, end)
            if end < g[G_NEXT]:
                g[G_NEXT] = end
        _add(si, sf, s, px, q)
    g[G_ROWS] += len(ts)
    return r


@njit(cache=True, _nrt=False)
def finish_bars(si, sf, g, scratch, out_ts, out_sym, out_n, out_src, out_f):
    """Close every open bar (the end of the input), in (open, symbol name) order."""
    return _close_due(si, sf, g, si.shape[0], _MAX, scratch, 0, out_ts, out_sym, out_n, out_src, out_f)


class BarState:
    """The kernel's arrays for any number of symbols; `ensure` adds symbols as they appear."""

    def __init__(self, spec: BarSpec):
        self.spec = spec
        self.si = np.zeros((0, NI), dtype=np.int64)
        self.sf = np.zeros((0, NF), dtype=np.float64)
        self.g = np.zeros(NG, dtype=np.int64)
        self.g[G_WATER] = _MIN
        self.g[G_NEXT] = _MAX
        self.scratch = np.zeros(0, dtype=np.int64)

    @property
    def symbols(self) -> int:
        return self.si.shape[0]

    def ensure(self, sessions: list[TradingSession], ranks: np.ndarray) -> None:
        """Know len(sessions) symbols (each one's session; used by session bars) and rank them
        by name (`ranks[s]`: the position of symbol s's name in sorted order)."""
        n, old = len(sessions), self.symbols
        if n > old:
            si = np.zeros((n, NI), dtype=np.int64)
            si[:old] = self.si
            sf = np.zeros((n, NF), dtype=np.float64)
            sf[:old] = self.sf
            for s in range(old, n):
                si[s, I_OFF] = sessions[s].offset_ns
                si[s, I_OPEN] = sessions[s].open_ns
                si[s, I_CLOSE] = sessions[s].close_ns
            self.si, self.sf = si, sf
            self.scratch = np.zeros(n, dtype=np.int64)
        self.si[:, I_RANK] = ranks[: self.symbols]

    def capacity(self, kind: np.ndarray, qty: np.ndarray) -> int:
        """Output rows one batch can produce at most."""
        cap = len(kind) + self.symbols + 1
        if self.spec.mode == BAR_VOLUME:
            traded = qty[kind == TRADE]
            cap += int(np.floor(traded / self.spec.size).sum()) if len(traded) else 0
        return cap

    @staticmethod
    def outputs(cap: int):
        return (np.empty(cap, np.int64), np.empty(cap, np.int32), np.empty(cap, np.int64), np.empty(cap, np.int8),
                np.empty((NF, cap), np.float64))

    def run(self, ts, sym, kind, price, qty, row0: int, out) -> int:
        spec = self.spec
        size_i = int(spec.size) if spec.mode in (BAR_TIME, BAR_TICKS) else 0
        return int(run_bars(spec.mode, size_i, float(spec.size), ts, sym, kind, price, qty, row0, self.si, self.sf, self.g,
                            self.scratch, *out))

    def finish(self, out) -> int:
        return int(finish_bars(self.si, self.sf, self.g, self.scratch, *out))

    def source(self, s: int) -> int:
        return int(self.si[s, I_SRC])
