"""Kite ticker binary frames → market-schema record batches, vectorised in numba.

One numba kernel walks any number of frames in one pass (no per-packet Python): every packet
layout — ltp (8 bytes), index quote (28), index full (32), quote (44), full (184 with five bid and
five ask depth entries) — with the segment-dependent price divisor (token & 0xFF: CDS 3 → 1e7,
BCD 6 and NCO 12 → 1e4, else 100). Rows follow docs/streams.md:

* every packet is one venue message with its own `seq` (a local counter, +1 per packet);
* full packets give `clear`, up to 5 + 5 `level` rows (empty entries skipped), `snapshot_end`,
  then one `tick` row; all other packets give one `tick` row; a quote or full packet may begin
  with a derived `trade` row (below);
* `tick` rows carry last price (and last qty where the layout has it, else 0: readers such as
  `sq book` require finite quantities) and the nullable columns of `EXTRA_FIELDS` (volume,
  average price, buy/sell totals, OHLC, OI, last trade time, and `change`: the index packets'
  absolute price change at bytes 24–28, which the official Python client skips in favour of a
  computed percentage); `level`/`clear`/`snapshot_end` rows leave them null;
* `ts` is the packet's exchange timestamp (full and index-full layouts), else the receive time;
* `trade` rows are derived (the ticker has no trade messages): when a quote or full packet's
  cumulative day volume exceeds the previous quote/full packet's of the same instrument, the
  packet's rows begin with one `trade` row (before its `clear`, so a reader applies it to the book
  as it was before the packet) — qty the volume increase, price the last traded price, side the
  aggressor (last price ≥ the previous packet's best ask → +1, ≤ its best bid → −1, else the tick
  test against the previous last price: up +1, down −1, unchanged the last change's direction, 0
  when none is known), ts the last trade time (full packets) kept within [the previous packet's
  ts, this packet's ts], else the packet's ts. An instrument's first packet, a volume that goes
  down and a new IST day (a reset) give no trade. The state is one int64 row of `tstate` per
  token (prices as the wire's integers: no division on this path), updated in the same pass
  (docs/streams.md, "Zerodha: derived trades").

Output: the kernel writes each batch as one Arrow IPC record-batch message into a buffer with room
for every row (sq.core.arrow_message: values, validity bitmaps and metadata), which pyarrow reads
zero-copy — one read instead of building 22 arrays, ~25 µs a batch. Buffers come from a pool that
hands one out again only once no batch (or anything taken from one) points into it, so a live
stream reuses warm memory and a kept batch never changes.

Malformed input never raises: a 1-byte frame is a heartbeat; an empty frame, a packet count or
length that runs past the frame, or an unknown packet length is counted in `ParserStats` and the
rest of that frame skipped (packets before it are kept). Packets for tokens the parser was not
given are counted as `unknown_tokens` and dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
from numba import njit

from sq.core import schemas as S
from sq.core.arrow_message import NO_GROUP, BufferPool, MessageLayout, write_metadata

# extra nullable columns after the base market columns (tick rows only)
EXTRA_FIELDS = [
    pa.field("volume", pa.float64()),
    pa.field("average_price", pa.float64()),
    pa.field("buy_quantity", pa.float64()),
    pa.field("sell_quantity", pa.float64()),
    pa.field("open", pa.float64()),
    pa.field("high", pa.float64()),
    pa.field("low", pa.float64()),
    pa.field("close", pa.float64()),
    pa.field("oi", pa.float64()),
    pa.field("oi_day_high", pa.float64()),
    pa.field("oi_day_low", pa.float64()),
    pa.field("change", pa.float64()),
    pa.field("last_trade_time", S.TS),
]
N_EXTRA_F = 12  # float extras, in EXTRA_FIELDS order; then last_trade_time (int64 ns, 0 = null)

# stats slots
ST_PACKETS, ST_HEARTBEATS, ST_BAD_FRAMES, ST_BAD_PACKETS, ST_UNKNOWN, ST_SEQ = 0, 1, 2, 3, 4, 5

SEG_CDS, SEG_BCD, SEG_INDICES, SEG_NCO = 3, 6, 9, 12

# per-token derivation state (int64 rows of `tstate`, one per instrument token, in `keys` order): of
# the token's last quote/full packet, its day volume (-1: none yet), ts, the start of its IST day
# (ns UTC), last price and best bid and ask as the wire's integers (no touch: NO_BID / NO_ASK, which
# no price reaches), and the sign of the last price change
T_VOL, T_TS, T_DAY, T_LAST, T_BID, T_ASK, T_DIR = range(7)
N_TSTATE = 7
NO_BID, NO_ASK = -(1 << 62), 1 << 62
IST_OFFSET_NS = 19_800_000_000_000  # +05:30: a trading day is an IST day
NS_PER_DAY = 86_400_000_000_000


def divisor(token: int) -> float:
    """The price divisor of an instrument token's segment (pure Python twin of the kernel's)."""
    seg = token & 0xFF
    if seg == SEG_CDS:
        return 10_000_000.0
    if seg in (SEG_BCD, SEG_NCO):
        return 10_000.0
    return 100.0


@njit(cache=True, inline="always", _nrt=False)
def _u32(b, i):
    return (np.int64(b[i]) << 24) | (np.int64(b[i + 1]) << 16) | (np.int64(b[i + 2]) << 8) | np.int64(b[i + 3])


@njit(cache=True, inline="always", _nrt=False)
def _i32(b, i):
    v = _u32(b, i)
    if v >= 2147483648:
        v -= 4294967296
    return v


@njit(cache=True, inline="always", _nrt=False)
def _u16(b, i):
    return (np.int64(b[i]) << 8) | np.int64(b[i + 1])


@njit(cache=True, inline="always", _nrt=False)
def _row(n, ts, recv, sym, kind, side, px, qty, orders, seq, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty, o_ord, o_seq, xf, x_ltt, x_lay):
    """Write one row: base columns, and zeros for the extras (null outside tick rows, but never
    stale memory: output buffers are uninitialised or reused, and every used row is written here;
    tick rows then set x_lay and their extras)."""
    o_ts[n] = ts
    o_recv[n] = recv
    o_sym[n] = sym
    o_kind[n] = kind
    o_side[n] = side
    o_px[n] = px
    o_qty[n] = qty
    o_ord[n] = orders
    o_seq[n] = seq
    for k in range(xf.shape[0]):
        xf[k, n] = 0.0
    x_ltt[n] = 0
    x_lay[n] = 0
    return n + 1


@njit(cache=True, inline="always", _nrt=False)
def _best(buf, d, none):
    """The wire price of the depth entry at byte d when it holds quantity, else `none`."""
    if _u32(buf, d) == 0:
        return none
    return _i32(buf, d + 4)


@njit(cache=True, _nrt=False)
def _parse_rows(buf, fstart, fend, frecv, keys, syms, tstate, stats, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty, o_ord, o_seq, xf, x_ltt, x_lay):
    """Parse frames buf[fstart[i]:fend[i]] received at frecv[i]; return the number of rows written.

    keys: sorted instrument tokens; syms: their symbol codes; tstate: the per-token state of the
    trade derivation (T_* columns), read and updated here. xf: (N_EXTRA_F, cap) float extras,
    x_ltt: last trade time (ns), x_lay: the packet length of tick rows (0 on other rows), which
    says which extras a tick row has.
    stats: int64 counters (see ST_*); stats[ST_SEQ] is the next seq and is advanced.
    """
    n = 0
    seq = stats[ST_SEQ]
    nk = keys.shape[0]
    for f in range(fstart.shape[0]):
        a = fstart[f]
        e = fend[f]
        recv = frecv[f]
        size = e - a
        if size == 1:
            stats[ST_HEARTBEATS] += 1
            continue
        if size < 2:
            stats[ST_BAD_FRAMES] += 1
            continue
        npk = _u16(buf, a)
        p = a + 2
        for _ in range(npk):
            if p + 2 > e:
                stats[ST_BAD_FRAMES] += 1
                break
            ln = _u16(buf, p)
            p += 2
            if p + ln > e:
                stats[ST_BAD_FRAMES] += 1
                break
            q = p
            p += ln
            if ln != 8 and ln != 28 and ln != 32 and ln != 44 and ln != 184:
                stats[ST_BAD_PACKETS] += 1
                continue
            if n + (14 if ln == 184 else (2 if ln == 44 else 1)) > o_ts.shape[0]:  # never with row_bound's room
                stats[ST_BAD_FRAMES] += 1
                break
            token = _u32(buf, q)
            j = np.searchsorted(keys, token)
            if j >= nk or keys[j] != token:
                stats[ST_UNKNOWN] += 1
                continue
            sym = syms[j]
            seg = token & 0xFF
            div = 100.0
            if seg == 3:
                div = 10000000.0
            elif seg == 6 or seg == 12:
                div = 10000.0
            stats[ST_PACKETS] += 1
            last = _i32(buf, q + 4) / div
            ts = recv
            if ln == 184:
                ets = _u32(buf, q + 60)
                if ets > 0:
                    ts = ets * 1000000000
            if ln == 44 or ln == 184:  # derived trade: the day volume grew since this token's last quote/full packet
                vol = _u32(buf, q + 16)
                raw = _i32(buf, q + 4)
                pvol = tstate[j, T_VOL]
                plast = tstate[j, T_LAST]
                day = tstate[j, T_DAY]
                newday = ts - day >= NS_PER_DAY or ts < day
                if newday:
                    day = (ts + IST_OFFSET_NS) // NS_PER_DAY * NS_PER_DAY - IST_OFFSET_NS
                reset = pvol < 0 or vol < pvol or newday  # first packet, volume reset, new day
                # the aggressor: the previous touch, else the tick test (on an unchanged price, the last move's sign)
                move = np.int64(raw > plast) - np.int64(raw < plast)
                tick = move if move != 0 else tstate[j, T_DIR]
                if not reset and vol > pvol:
                    side = 1 if raw >= tstate[j, T_ASK] else (-1 if raw <= tstate[j, T_BID] else tick)
                    tts = ts
                    if ln == 184:
                        ltt = _u32(buf, q + 44) * 1000000000
                        if ltt > 0:
                            tts = min(max(ltt, tstate[j, T_TS]), ts)
                    n = _row(n, tts, recv, sym, 2, side, last, np.float64(vol - pvol), -1, seq, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty, o_ord, o_seq, xf, x_ltt, x_lay)
                tstate[j, T_DIR] = 0 if reset else tick
                tstate[j, T_VOL] = vol
                tstate[j, T_TS] = ts
                tstate[j, T_DAY] = day
                tstate[j, T_LAST] = raw
                if ln == 184:
                    tstate[j, T_BID] = _best(buf, q + 64, NO_BID)
                    tstate[j, T_ASK] = _best(buf, q + 124, NO_ASK)
                else:
                    tstate[j, T_BID] = NO_BID
                    tstate[j, T_ASK] = NO_ASK
            if ln == 184:
                n = _row(n, ts, recv, sym, 3, 0, 0.0, 0.0, -1, seq, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty, o_ord, o_seq, xf, x_ltt, x_lay)
                for lv in range(10):
                    d = q + 64 + 12 * lv
                    dq = _u32(buf, d)
                    dp = _i32(buf, d + 4)
                    if dq == 0 and dp == 0:
                        continue
                    side = 1 if lv < 5 else -1
                    n = _row(n, ts, recv, sym, 1, side, dp / div, np.float64(dq), _u16(buf, d + 8), seq, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty, o_ord, o_seq, xf, x_ltt, x_lay)
                n = _row(n, ts, recv, sym, 4, 0, 0.0, 0.0, -1, seq, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty, o_ord, o_seq, xf, x_ltt, x_lay)
            if ln == 32:
                ets = _u32(buf, q + 28)
                if ets > 0:
                    ts = ets * 1000000000
            if ln == 44 or ln == 184:
                t = _row(n, ts, recv, sym, 5, 0, last, np.float64(_u32(buf, q + 8)), -1, seq, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty, o_ord, o_seq, xf, x_ltt, x_lay)
                x_lay[n] = ln
                xf[0, n] = _u32(buf, q + 16)
                xf[1, n] = _i32(buf, q + 12) / div
                xf[2, n] = _u32(buf, q + 20)
                xf[3, n] = _u32(buf, q + 24)
                xf[4, n] = _i32(buf, q + 28) / div
                xf[5, n] = _i32(buf, q + 32) / div
                xf[6, n] = _i32(buf, q + 36) / div
                xf[7, n] = _i32(buf, q + 40) / div
                if ln == 184:
                    x_ltt[n] = _u32(buf, q + 44) * 1000000000
                    xf[8, n] = _u32(buf, q + 48)
                    xf[9, n] = _u32(buf, q + 52)
                    xf[10, n] = _u32(buf, q + 56)
                n = t
            elif ln == 28 or ln == 32:
                t = _row(n, ts, recv, sym, 5, 0, last, 0.0, -1, seq, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty, o_ord, o_seq, xf, x_ltt, x_lay)
                x_lay[n] = ln
                xf[5, n] = _i32(buf, q + 8) / div
                xf[6, n] = _i32(buf, q + 12) / div
                xf[4, n] = _i32(buf, q + 16) / div
                xf[7, n] = _i32(buf, q + 20) / div
                xf[11, n] = _i32(buf, q + 24) / div
                n = t
            else:  # ltp
                t = _row(n, ts, recv, sym, 5, 0, last, 0.0, -1, seq, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty, o_ord, o_seq, xf, x_ltt, x_lay)
                x_lay[n] = 8
                n = t
            seq += 1
    stats[ST_SEQ] = seq
    return n


# validity groups: columns that share their nulls share one bitmap
G_ORDERS, G_QUOTE, G_OHLC, G_OI, G_CHANGE = range(5)
N_GROUPS = 5
# which validity each float extra shares (EXTRA_FIELDS order); last_trade_time shares the OI one
_EXTRA_GROUPS = (G_QUOTE, G_QUOTE, G_QUOTE, G_QUOTE, G_OHLC, G_OHLC, G_OHLC, G_OHLC, G_OI, G_OI, G_OI, G_CHANGE)
FIELD_GROUPS = [NO_GROUP] * 7 + [G_ORDERS, NO_GROUP] + list(_EXTRA_GROUPS) + [G_OI]
F_SYMBOL = 2  # the symbol column (schema order): the message holds its dictionary indices
F_EXTRA = 9  # the first extra column
# `at` slots: the message offsets of the 22 columns' values (schema order), then of the N_GROUPS
# bitmaps, then the row room and the position of the row count in the metadata
A_BITMAPS = len(FIELD_GROUPS)
A_CAP = A_BITMAPS + N_GROUPS
A_LENGTH_POS = A_CAP + 1


@njit(cache=True, _nrt=False)
def _write_validity(out, at, o_ord, x_lay, n, nulls):
    """The five validity bitmaps of rows 0…n-1 (from orders ≥ 0 and the tick rows' packet
    lengths), and their null counts into nulls[G_*]."""
    b0, b1, b2, b3, b4 = at[A_BITMAPS], at[A_BITMAPS + 1], at[A_BITMAPS + 2], at[A_BITMAPS + 3], at[A_BITMAPS + 4]
    a0 = a1 = a2 = a3 = a4 = 0
    v0 = v1 = v2 = v3 = v4 = 0
    for r in range(n):
        lay = x_lay[r]
        q = 1 if lay == 44 or lay == 184 else 0
        ix = 1 if lay == 28 or lay == 32 else 0
        od = 1 if o_ord[r] >= 0 else 0
        fu = 1 if lay == 184 else 0
        bit = r & 7
        a0 |= od << bit
        a1 |= q << bit
        a2 |= (q | ix) << bit
        a3 |= fu << bit
        a4 |= ix << bit
        v0 += od
        v1 += q
        v2 += q | ix
        v3 += fu
        v4 += ix
        if bit == 7 or r == n - 1:
            k = r >> 3
            out[b0 + k] = a0
            out[b1 + k] = a1
            out[b2 + k] = a2
            out[b3 + k] = a3
            out[b4 + k] = a4
            a0 = a1 = a2 = a3 = a4 = 0
    nulls[G_ORDERS] = n - v0
    nulls[G_QUOTE] = n - v1
    nulls[G_OHLC] = n - v2
    nulls[G_OI] = n - v3
    nulls[G_CHANGE] = n - v4


@njit(cache=True, _nrt=False)
def row_bound(buf, fstart, fend):
    """At most how many rows these frames give, from their headers only: per frame the fewer of 14
    per packet it announces (a full packet with a derived trade) and one per 10 bytes (every packet
    takes its length's 2 bytes plus ≥ 8, and only a 184-byte full packet gives more than one row:
    14 for 186 bytes)."""
    rows = 0
    for f in range(fstart.shape[0]):
        size = fend[f] - fstart[f]
        if size < 2:
            continue
        rows += min(14 * _u16(buf, fstart[f]), size // 10)
    return rows


@njit(cache=True, _nrt=False)
def parse_frames(buf, fstart, fend, frecv, keys, syms, tstate, stats, out, at, header, plan, x_lay, nulls):
    """Parse frames buf[fstart[i]:fend[i]] received at frecv[i] into the IPC record-batch message
    `out` (laid out by sq.core.arrow_message.MessageLayout: `at` holds its offsets, `header` and
    `plan` its metadata); return the number of rows. x_lay: scratch (the packet length of each
    row's packet on tick rows, else 0); nulls: scratch for the null counts. The rest as `_parse_rows`.
    """
    cap = at[A_CAP]
    o_ts = out[at[0]:at[0] + 8 * cap].view(np.int64)
    o_recv = out[at[1]:at[1] + 8 * cap].view(np.int64)
    o_sym = out[at[2]:at[2] + 4 * cap].view(np.int32)
    o_kind = out[at[3]:at[3] + cap].view(np.uint8)
    o_side = out[at[4]:at[4] + cap].view(np.int8)
    o_px = out[at[5]:at[5] + 8 * cap].view(np.float64)
    o_qty = out[at[6]:at[6] + 8 * cap].view(np.float64)
    o_ord = out[at[7]:at[7] + 4 * cap].view(np.int32)
    o_seq = out[at[8]:at[8] + 8 * cap].view(np.int64)
    stride = (at[F_EXTRA + 1] - at[F_EXTRA]) // 8  # the float extras: equally spaced regions of ≥ cap rows
    xf = out[at[F_EXTRA]:at[F_EXTRA] + 8 * N_EXTRA_F * stride].view(np.float64).reshape((N_EXTRA_F, stride))
    x_ltt = out[at[F_EXTRA + N_EXTRA_F]:at[F_EXTRA + N_EXTRA_F] + 8 * cap].view(np.int64)
    n = _parse_rows(buf, fstart, fend, frecv, keys, syms, tstate, stats, o_ts, o_recv, o_sym, o_kind, o_side, o_px, o_qty,
                    o_ord, o_seq, xf, x_ltt, x_lay)
    if n > 0:
        _write_validity(out, at, o_ord, x_lay, n, nulls)
        write_metadata(out, header, at[A_LENGTH_POS], plan, n, nulls)
    return n


@dataclass
class ParserStats:
    """Counters of everything the parser saw besides good packets (fuzzed input lands here)."""

    packets: int = 0
    heartbeats: int = 0
    bad_frames: int = 0
    bad_packets: int = 0
    unknown_tokens: int = 0
    text_messages: int = 0
    bad_text: int = 0


@dataclass
class TextMessage:
    """A decoded text frame: `type` is order | error | message (or whatever the venue sent)."""

    type: str
    data: object
    raw: Mapping = field(default_factory=dict)


def parse_text(text: str | bytes) -> TextMessage | None:
    """Decode a ticker text frame (order postback, error, message); None when it is not JSON."""
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    return TextMessage(str(obj.get("type", "")), obj.get("data"), obj)


TRADES_EXTRA = "trades"  # instrument extra: where a stream's `trade` rows come from
TRADES_DERIVED = "derived"  # … derived from the day volume of consecutive packets, not venue trade messages


def marked_derived(inst: S.Instrument) -> S.Instrument:
    """`inst` with the extra `trades: "derived"`: its `trade` rows in a ticker stream are derived
    (the market schema has no per-row flag; every trade row of a Kite ticker stream is derived)."""
    return S.Instrument(inst.symbol, inst.venue, inst.tick_size, inst.lot_size, {**inst.extra, TRADES_EXTRA: TRADES_DERIVED})


class TickerParser:
    """Stateful parser for one stream: token → symbol map, the schema, the seq counter, stats and
    the per-token state of the trade derivation (the previous quote/full packet's volume, last
    price and touch).

    `tokens` maps instrument token → canonical symbol; `instruments` is the schema metadata (each
    marked with `trades: "derived"`).
    """

    def __init__(self, tokens: Mapping[int, str], instruments: Mapping[str, S.Instrument], seq0: int = 1):
        symbols = list(instruments)
        order = sorted(tokens)
        self.keys = np.array(order, dtype=np.int64)
        self.syms = np.array([symbols.index(tokens[t]) for t in order], dtype=np.int32)
        self.instruments = {s: marked_derived(i) for s, i in instruments.items()}
        self.schema = S.market_schema(self.instruments, EXTRA_FIELDS)
        self.dictionary = S.symbol_dictionary(symbols)
        self._tstate = np.zeros((len(order), N_TSTATE), dtype=np.int64)
        self._tstate[:, T_VOL] = -1  # no packet yet
        self._tstate[:, T_DAY] = NO_ASK  # no day yet: the first packet starts one
        self._stats = np.zeros(6, dtype=np.int64)
        self._stats[ST_SEQ] = seq0
        self.text = ParserStats()
        self._symbol_field = self.schema.field(F_SYMBOL)
        self._layouts: dict[int, tuple[MessageLayout, np.ndarray]] = {}
        self._pool = BufferPool()
        self._lay = np.empty(0, np.int16)  # kernel scratch: each row's packet layout
        self._nulls = np.zeros(N_GROUPS, np.int64)  # kernel scratch: null counts per validity group
        self._one = tuple(np.zeros(1, np.int64) for _ in range(3))  # one frame's start (0), end, receive time

    @property
    def stats(self) -> ParserStats:
        s = self._stats
        return ParserStats(int(s[ST_PACKETS]), int(s[ST_HEARTBEATS]), int(s[ST_BAD_FRAMES]), int(s[ST_BAD_PACKETS]),
                           int(s[ST_UNKNOWN]), self.text.text_messages, self.text.bad_text)

    def parse(self, frames: Sequence[bytes], recv_ns: Iterable[int] | int) -> pa.RecordBatch | None:
        """Parse binary frames (received at `recv_ns`, one value or one per frame) into one batch.

        Returns None when the frames held no rows (heartbeats, unknown tokens, garbage).
        """
        if not frames:
            return None
        if len(frames) == 1:  # the live path's common case: one frame, no joining, no new index arrays
            start, end, recv = self._one  # the kernel reads them during the call only
            end[0] = len(frames[0])
            recv[0] = recv_ns if isinstance(recv_ns, (int, np.integer)) else next(iter(recv_ns))
            return self.parse_buffer(np.frombuffer(frames[0], dtype=np.uint8), start, end, recv)
        lens = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
        fend = np.cumsum(lens)
        fstart = fend - lens
        buf = np.frombuffer(b"".join(frames), dtype=np.uint8)
        if isinstance(recv_ns, (int, np.integer)):
            recv = np.full(len(frames), int(recv_ns), dtype=np.int64)
        else:
            recv = np.asarray(list(recv_ns), dtype=np.int64)
        return self.parse_buffer(buf, fstart, fend, recv)

    def parse_chunks(self, buf: np.ndarray, fstart: np.ndarray, fend: np.ndarray, recv: np.ndarray,
                     max_rows: int = 1 << 16) -> Iterator[pa.RecordBatch]:
        """Bulk parsing (replay, files): batches of about `max_rows` rows, whole frames each.

        Moderate batches keep the working set in cache and let the allocator reuse memory, which
        is several times faster than one huge batch. A full packet (186 bytes with its length)
        gives 13 rows (14 with a derived trade), so ~14 bytes of frames make one row.
        """
        nf = len(fstart)
        start = 0
        while start < nf:
            stop = int(np.searchsorted(fend, fstart[start] + max_rows * 14, side="right"))
            stop = max(stop, start + 1)
            b = self.parse_buffer(buf, fstart[start:stop], fend[start:stop], recv[start:stop])
            if b is not None:
                yield b
            start = stop

    def parse_buffer(self, buf: np.ndarray, fstart: np.ndarray, fend: np.ndarray, recv: np.ndarray) -> pa.RecordBatch | None:
        """Parse frames laid out in one uint8 buffer into one batch.

        The kernel writes the batch as one Arrow IPC message (sq.core.arrow_message) into a
        buffer with room for every row — from a pool that reuses a buffer only once no
        batch points into it — which pyarrow reads zero-copy; only the symbol column is
        rewrapped as a dictionary column.
        """
        layout, at = self._layout(row_bound(buf, fstart, fend))
        out = self._pool.take(layout.size)
        if self._lay.shape[0] < layout.cap:
            self._lay = np.empty(layout.cap, np.int16)
        n = parse_frames(buf, fstart, fend, recv, self.keys, self.syms, self._tstate, self._stats,
                         out, at, layout.header, layout.plan, self._lay, self._nulls)
        if n == 0:
            return None
        b = layout.read(out)
        return b.set_column(F_SYMBOL, self._symbol_field, pa.DictionaryArray.from_arrays(b.column(F_SYMBOL), self.dictionary, safe=False))

    def _layout(self, rows: int) -> tuple[MessageLayout, np.ndarray]:
        """The message layout for at least `rows` rows and its `at` offsets for the kernel. The
        room is rounded up to a multiple of 64 rows and to an eighth of a power of two (at most
        12% spare): a steady stream needs one or two layouts, and few pages go unused."""
        step = max(64, 1 << max(0, rows.bit_length() - 3))
        cap = max(step, (rows + step - 1) // step * step)
        got = self._layouts.get(cap)
        if got is None:
            if len(self._layouts) >= 32:
                self._layouts.clear()
            layout = MessageLayout(self.schema, FIELD_GROUPS, cap)
            v = layout.values
            if len({int(b - a) for a, b in zip(v[F_EXTRA:F_EXTRA + N_EXTRA_F], v[F_EXTRA + 1:F_EXTRA + N_EXTRA_F])}) != 1:
                raise AssertionError("the float extras must be equally spaced (one 2-D block for the kernel)")
            at = np.concatenate([v, layout.bitmaps, [cap, layout.length_pos]]).astype(np.int64)
            got = self._layouts[cap] = (layout, at)
        return got
