"""Frames and REST depth snapshots → market rows, through the parser and the local-book sync.

One `MarketPipeline` serves every symbol of a source, live or replayed: `feed(frames, recv_ns,
market)` for each burst of WebSocket frames, `snapshot(code, body, recv_ns)` for each REST depth
answer. It keeps Binance's ordering: a depth diff is emitted only when the symbol's sync says
APPLY; while a symbol is unsynced its diffs are buffered and `wanted()` names it for a snapshot;
a snapshot becomes one message clear + levels + snapshot_end (seq = lastUpdateId) followed by the
buffered events it bridges. Trades (`trade`, `aggTrade`) become trade rows; `bookTicker` (quote
mode) becomes a top-1 view (clear + bid + ask + snapshot_end). Malformed frames, unknown fields,
unknown symbols and server errors are counted in `counters` and logged (rate-limited), and the
stream goes on. The hot path is one numba call per burst (`burst.feed_burst`: scan, sync rules,
rows); Python sees only the frames off that path.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from sq.core.schemas import CLEAR, LEVEL, SNAPSHOT_END, TRADE
from sq.venues.binance import burst, parser
from sq.venues.binance.book_sync import APPLY, BUFFER, GAP, IGNORE, RETRY, S_LAST, SymbolSync, new_table

log = logging.getLogger("sq.binance")

MS = 1_000_000
NAN = float("nan")  # price of clear / snapshot_end rows, as the SIM venue writes them


def _event_ns(ms, recv: int) -> int:
    """A venue time in ms → ns; absent or non-positive (not a real time) → the receive time."""
    v = int(ms) if ms is not None else 0
    return v * MS if v > 0 else recv


@dataclass
class Rows:
    """Market rows as NumPy columns (prices/quantities in venue units; `sym` is a symbol code)."""

    ts: np.ndarray
    recv: np.ndarray
    sym: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    seq: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @staticmethod
    def empty() -> "Rows":
        z = np.zeros(0, dtype=np.int64)
        return Rows(z, z, z.astype(np.int32), z.astype(np.uint8), z.astype(np.int8), z.astype(np.float64), z.astype(np.float64), z)

    @staticmethod
    def concat(parts: list["Rows"]) -> "Rows":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Rows.empty()
        if len(parts) == 1:
            return parts[0]
        return Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in Rows.__dataclass_fields__))


def _rows_of(out: burst.Outputs, lo: int, hi: int) -> Rows:
    """Rows lo…hi-1 of a burst's output columns (views)."""
    i, f = out.i64, out.f64
    return Rows(i[0, lo:hi], i[1, lo:hi], out.sym[lo:hi], out.kind[lo:hi], out.side[lo:hi], f[0, lo:hi], f[1, lo:hi], i[2, lo:hi])


class _Extra:
    """Row lists for the slow paths (trades, snapshots, fallback parses), with an ordering key."""

    __slots__ = ("ts", "recv", "sym", "kind", "side", "price", "qty", "seq", "key")

    def __init__(self):
        for f in self.__slots__:
            setattr(self, f, [])

    def add(self, ts, recv, sym, kind, side, price, qty, seq, key=0):
        self.ts.append(ts)
        self.recv.append(recv)
        self.sym.append(sym)
        self.kind.append(kind)
        self.side.append(side)
        self.price.append(price)
        self.qty.append(qty)
        self.seq.append(seq)
        self.key.append(key)

    def rows(self) -> tuple[Rows, np.ndarray]:
        r = Rows(
            np.array(self.ts, dtype=np.int64), np.array(self.recv, dtype=np.int64), np.array(self.sym, dtype=np.int32),
            np.array(self.kind, dtype=np.uint8), np.array(self.side, dtype=np.int8), np.array(self.price, dtype=np.float64),
            np.array(self.qty, dtype=np.float64), np.array(self.seq, dtype=np.int64),
        )
        return r, np.array(self.key, dtype=np.int64)


@dataclass(frozen=True)
class PipeSymbol:
    """A symbol the pipeline serves: canonical name, venue name (BTCUSDT) and its market."""

    canonical: str
    venue_symbol: str
    market: str  # "spot" | "futures"


COUNTERS = (
    "frames", "depth_frames", "trades", "tickers", "malformed", "unknown_fields", "unknown_symbols", "server_errors",
    "control", "ignored", "gaps", "snapshots", "snapshot_retries", "resyncs", "duplicates", "stalls",
)


class MarketPipeline:
    """Parser + per-symbol book sync for a set of symbols; see the module docstring."""

    def __init__(self, symbols: list[PipeSymbol], *, book: str = "depth"):
        self.symbols = list(symbols)
        self.book = book  # "depth" (diff stream + snapshots), "ticker" (bookTicker views) or "none"
        self.counters = {k: 0 for k in COUNTERS}
        self._map: dict[str, dict[bytes, int]] = {"spot": {}, "futures": {}}
        for code, s in enumerate(self.symbols):
            self._map[s.market][s.venue_symbol.encode()] = code
        # the kernel's symbol tables give codes in the pipeline's numbering, per market
        self._tables: dict[str, tuple[parser.SymbolTable, np.ndarray]] = {}
        for market, m in self._map.items():
            names = sorted(m, key=m.get)
            self._tables[market] = (parser.SymbolTable(names), np.array([m[x] for x in names] + [-1], dtype=np.int64))
        self.table = new_table(len(self.symbols))  # per-symbol sync state; S_LAST is the last emitted seq
        self.syncs = [SymbolSync(s.market == "futures", self.table, code) for code, s in enumerate(self.symbols)]
        self._want: set[int] = set()
        self._seen_unknown: set[str] = set()
        self._logged: dict[str, int] = {}
        # recent sync events, oldest first: ("gap", code, local id, U, u) and ("snapshot", code, L)
        self.sync_log: deque = deque(maxlen=10_000)
        # the burst kernel's scratch: the last frame's scan fields, its report, a one-time recv
        self._ints = np.empty((1, 10), dtype=np.int64)
        self._info = np.empty(burst.N_INFO, dtype=np.int64)
        self._recv1 = np.empty(1, dtype=np.int64)
        self._ticker_dups = 0  # duplicate bookTickers (diff duplicates are counted in the state table)

    # ------------------------------------------------------------------------------ bookkeeping

    def code(self, market: str, venue_symbol: str) -> int | None:
        return self._map[market].get(venue_symbol.upper().encode())

    def wanted(self) -> list[int]:
        """Symbols whose book needs a REST snapshot now (cleared when one is applied)."""
        return sorted(self._want)

    def reset(self, codes: list[int]) -> None:
        """A new connection for these symbols: their books start over (buffer, then snapshot).

        Nothing is emitted now; the next snapshot message (clear + levels) replaces the book.
        """
        for code in codes:
            self.syncs[code].restart()
            self._want.discard(code)

    def _note(self, what: str, msg: str, *args) -> None:
        """Log the first occurrences of each problem, then every 1000th (the counters keep all)."""
        n = self._logged.get(what, 0) + 1
        self._logged[what] = n
        if n <= 5 or n % 1000 == 0:
            log.warning(msg + (" (%d so far)" % n if n > 5 else ""), *args)

    def _unknown_fields(self, event: dict, kind: str) -> None:
        extra = parser.unknown_keys(event, kind)
        if not extra:
            return
        self.counters["unknown_fields"] += len(extra)
        new = [k for k in extra if f"{kind}.{k}" not in self._seen_unknown]
        if new:
            self._seen_unknown.update(f"{kind}.{k}" for k in new)
            log.info("binance %s frames carry fields sq does not use: %s (ignored)", kind, ", ".join(sorted(new)))

    # ------------------------------------------------------------------------------ frames

    @property
    def seq(self) -> np.ndarray:
        """Seq of the last message emitted per symbol (-1 before the first)."""
        return self.table[:, S_LAST]

    def feed(self, frames: list[bytes], recv_ns, market: str = "spot") -> Rows:
        """Parse and sync one burst of frames (arrival order); return the rows to emit.

        `recv_ns`: one receive time for the burst or one per frame. One kernel call
        (`burst.feed_burst`) scans the burst, judges every depth diff and writes the rows of the
        applied ones; it hands back only the frames that need Python (trades, tickers, buffering,
        gaps, unknown fields or symbols, odd frames), each handled here before the kernel goes on
        from the next frame, so rows keep stream order however the stream is cut into bursts.
        """
        n = len(frames)
        if n == 0:
            return Rows.empty()
        try:
            buf = b"".join(frames)
        except TypeError:  # text frames (str): the kernel reads UTF-8 bytes
            frames = [f.encode() if isinstance(f, str) else f for f in frames]
            buf = b"".join(frames)
        lens = np.fromiter(map(len, frames), dtype=np.int64, count=n)
        if isinstance(recv_ns, int):
            recv = self._recv1
            recv[0] = recv_ns
        else:
            recv = np.ascontiguousarray(recv_ns, dtype=np.int64)
        if recv.shape == (1,):
            step = 0
        elif recv.shape == (n,):
            step = 1
        else:
            raise ValueError(f"recv_ns: one time or one per frame ({n}), got shape {recv.shape}")
        table, codemap = self._tables[market]
        out = burst.Outputs(len(buf))
        ints, info = self._ints, self._info  # the kernel's scratch, read before the next call
        judge = 1 if self.book == "depth" else 0
        self.counters["frames"] += n
        parts: list[Rows] = []
        f = b = r = done = 0  # next frame, its byte offset, rows written, rows already in parts
        while f < n:
            burst.feed_burst(buf or b"\0", lens, f, b, recv, step, self.table, codemap, judge, table.hashes, table.order,
                             table.sym_buf, table.sym_off, ints, out.i64, out.f64, out.sym, out.kind, out.side, r, info)
            stop, k, nxt, r, lev_end, verdict, ndepth, dups = info.tolist()  # burst.I_STOP … I_DUPS
            self.counters["depth_frames"] += ndepth
            self.counters["duplicates"] = dups + self._ticker_dups
            if stop == burst.DONE:
                break
            x = _Extra()
            if stop == burst.STOP_FRAME:
                self._slow_frame(frames[k], int(recv[k * step]), market, 0, x)
            else:
                self._stopped_depth(buf, ints[0], int(codemap[ints[0, parser.C_CODE]]), verdict, frames[k], int(recv[k * step]), out, r, lev_end)
            if x.ts:
                if r > done:
                    parts.append(_rows_of(out, done, r))
                    done = r
                parts.append(x.rows()[0])
            f, b = k + 1, nxt
        if not parts:
            return _rows_of(out, 0, r)
        if r > done:
            parts.append(_rows_of(out, done, r))
        return Rows.concat(parts)

    def _stopped_depth(self, buf: bytes, ints: np.ndarray, code: int, verdict: int, frame: bytes, recv: int,
                       out: burst.Outputs, lo: int, hi: int) -> None:
        """A depth diff the kernel judged but left to Python (its levels are out[lo:hi])."""
        if code < 0:
            self.counters["unknown_symbols"] += 1
            sym = buf[ints[parser.C_S0] : ints[parser.C_S1]]
            self._note("unknown_symbol", "binance: depth frame for a symbol not subscribed: %s", sym.decode("utf-8", "replace"))
            return
        if ints[parser.C_UNKNOWN]:
            self._unknown_fields(parser.event_of(parser.loads(frame)), "depthUpdate")
        if self.book != "depth":
            self.counters["ignored"] += 1
            return
        if verdict in (BUFFER, GAP):
            E = int(ints[parser.C_E])
            payload = (E * MS if E > 0 else recv, recv, out.f64[0, lo:hi].copy(), out.f64[1, lo:hi].copy(), out.side[lo:hi].copy())
            self._buffer(code, verdict, int(ints[parser.C_U]), int(ints[parser.C_u]), int(ints[parser.C_pu]), payload)

    def _buffer(self, code: int, verdict: int, U: int, u: int, pu: int, payload) -> None:
        sync = self.syncs[code]
        if verdict == GAP:
            sync.buffer.clear()
            self.counters["gaps"] += 1
            self.sync_log.append(("gap", code, sync.last, U, u))
            self._note("gap", "binance %s: depth gap (local id %d, next event U=%d u=%d pu=%d): resyncing from a fresh snapshot",
                       self.symbols[code].canonical, sync.last, U, u, pu)
        sync.push(U, u, pu, payload)
        self._want.add(code)

    def _slow_frame(self, frame: bytes, recv: int, market: str, key: int, x: _Extra, seq_at: int | None = None) -> None:
        """Every frame the kernel left to Python: trades, tickers, control replies, odd depth frames."""
        try:
            obj = parser.loads(frame)
        except ValueError:
            self.counters["malformed"] += 1
            self._note("malformed", "binance: malformed frame ignored: %r", frame[:120])
            return
        if isinstance(obj, dict) and ("error" in obj or ("code" in obj and "msg" in obj)):
            self.counters["server_errors"] += 1
            err = obj.get("error", obj)
            self._note("server_error", "binance stream error: %s", err)
            return
        if isinstance(obj, dict) and "result" in obj and "id" in obj:
            self.counters["control"] += 1
            return
        ev = parser.event_of(obj)
        if not isinstance(ev, dict):
            self.counters["malformed"] += 1
            self._note("malformed", "binance: frame is not an event object: %r", frame[:120])
            return
        kind = parser.kind_of(ev)
        try:
            if kind == "depthUpdate":
                self._depth_py(ev, recv, market, key, x)
            elif kind in ("trade", "aggTrade"):
                self._trade(ev, recv, market, key, x, kind, seq_at)
            elif kind == "bookTicker":
                self._ticker(ev, recv, market, key, x)
            else:
                self.counters["ignored"] += 1
                self._note("ignored:" + kind, "binance: event type %r ignored", kind)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            self.counters["malformed"] += 1
            self._note("malformed", "binance: malformed %s event ignored (%s: %s)", kind or "unknown", type(e).__name__, e)

    def _sym(self, ev: dict, market: str) -> int | None:
        s = ev["s"]
        code = self._map[market].get(str(s).upper().encode())
        if code is None:
            self.counters["unknown_symbols"] += 1
            self._note("unknown_symbol", "binance: event for a symbol not subscribed: %s", s)
        return code

    def _depth_py(self, ev: dict, recv: int, market: str, key: int, x: _Extra) -> None:
        U, u = int(ev["U"]), int(ev["u"])
        pu = int(ev.get("pu", -1))
        levels = [(1, parser.decimal(p), parser.decimal(q)) for p, q in ev["b"]] + [(-1, parser.decimal(p), parser.decimal(q)) for p, q in ev["a"]]
        code = self._sym(ev, market)
        if code is None:
            return
        self._unknown_fields(ev, "depthUpdate")
        self.counters["depth_frames"] += 1
        if self.book != "depth":
            self.counters["ignored"] += 1
            return
        ts = _event_ns(ev.get("E"), recv)
        v = self.syncs[code].on_diff(U, u, pu)
        if v == APPLY:
            for side, p, q in levels:
                x.add(ts, recv, code, LEVEL, side, p, q, u, key)
        elif v != IGNORE:
            arr = np.array([(p, q) for _, p, q in levels], dtype=np.float64).reshape(-1, 2)
            sides = np.array([s for s, _, _ in levels], dtype=np.int8)
            self._buffer(code, v, U, u, pu, (ts, recv, arr[:, 0].copy(), arr[:, 1].copy(), sides))

    def _trade(self, ev: dict, recv: int, market: str, key: int, x: _Extra, kind: str, seq_at: int | None = None) -> None:
        price, qty = parser.decimal(ev["p"]), parser.decimal(ev["q"])
        side = -1 if ev["m"] else 1
        tid = int(ev["t"] if kind == "trade" else ev["a"])
        # the event time E, like depth events, so one symbol's rows keep stream order in time (T is the match time)
        ts = _event_ns(ev.get("E", ev.get("T")), recv)
        code = self._sym(ev, market)
        if code is None:
            return
        self._unknown_fields(ev, kind)
        last = self.seq[code] if seq_at is None else seq_at
        seq = int(last) if last >= 0 else tid
        x.add(ts, recv, code, TRADE, side, price, qty, seq, key)
        self.counters["trades"] += 1

    def _ticker(self, ev: dict, recv: int, market: str, key: int, x: _Extra) -> None:
        u = int(ev["u"])
        bp, bq, ap, aq = parser.decimal(ev["b"]), parser.decimal(ev["B"]), parser.decimal(ev["a"]), parser.decimal(ev["A"])
        code = self._sym(ev, market)
        if code is None:
            return
        self._unknown_fields(ev, "bookTicker")
        if self.book != "ticker":
            self.counters["ignored"] += 1
            return
        if u <= self.seq[code]:
            self._ticker_dups += 1
            self.counters["duplicates"] += 1
            return
        ts = _event_ns(ev.get("E"), recv)
        self.seq[code] = u
        x.add(ts, recv, code, CLEAR, 0, NAN, 0.0, u, key)
        x.add(ts, recv, code, LEVEL, 1, bp, bq, u, key)
        x.add(ts, recv, code, LEVEL, -1, ap, aq, u, key)
        x.add(ts, recv, code, SNAPSHOT_END, 0, NAN, 0.0, u, key)
        self.counters["tickers"] += 1

    # ------------------------------------------------------------------------------ snapshots

    def snapshot(self, code: int, body: bytes | str, recv_ns: int) -> Rows:
        """Apply a REST depth answer for symbol `code`; the rows to emit (maybe none: retry)."""
        sym = self.symbols[code]
        try:
            snap = parser.loads(body)
            L = int(snap["lastUpdateId"])
            bids = [(parser.decimal(p), parser.decimal(q)) for p, q, *_ in snap["bids"]]
            asks = [(parser.decimal(p), parser.decimal(q)) for p, q, *_ in snap["asks"]]
        except (ValueError, KeyError, TypeError) as e:
            self.counters["malformed"] += 1
            self._note("malformed_snapshot", "binance %s: malformed depth snapshot (%s); fetching again", sym.canonical, type(e).__name__)
            return Rows.empty()
        sync = self.syncs[code]
        verdict, events = sync.on_snapshot(L)
        self.counters["snapshot_retries"] = sum(s.snapshot_retries for s in self.syncs)
        if verdict == RETRY:
            self._note("snapshot_retry", "binance %s: snapshot %d older than the buffered events; fetching again", sym.canonical, L)
            return Rows.empty()
        self.counters["snapshots"] += 1
        self.sync_log.append(("snapshot", code, L))
        if sync.synced:
            self._want.discard(code)
        else:
            self.counters["gaps"] += 1
            self.sync_log.append(("gap", code, sync.last, sync.buffer[0].U, sync.buffer[0].u))
            self._note("gap", "binance %s: buffered depth events break after snapshot %d: resyncing", sym.canonical, L)
        # spot snapshots carry no time: stamp them with the exchange time of the first event they
        # bridge (so a symbol's ts stays on the exchange clock), else the receive time
        ts = _event_ns(snap.get("E"), events[0].payload[0] if events else int(recv_ns))
        x = _Extra()
        x.add(ts, recv_ns, code, CLEAR, 0, NAN, 0.0, L)
        for p, q in bids:
            x.add(ts, recv_ns, code, LEVEL, 1, p, q, L)
        for p, q in asks:
            x.add(ts, recv_ns, code, LEVEL, -1, p, q, L)
        x.add(ts, recv_ns, code, SNAPSHOT_END, 0, NAN, 0.0, L)
        parts = [x.rows()[0]]
        for ev in events:
            ets, erecv, px, qty, side = ev.payload
            k = len(px)
            parts.append(Rows(np.full(k, ets, np.int64), np.full(k, erecv, np.int64), np.full(k, code, np.int32),
                              np.full(k, LEVEL, np.uint8), side, px, qty, np.full(k, ev.u, np.int64)))
        return Rows.concat(parts)

    def gaps(self) -> int:
        return self.counters["gaps"]
