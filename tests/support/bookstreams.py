"""Market streams for the book tests: `make_batches` (event tuples → market batches, optionally
split), `run_stream` (batches through a BookStream → rows as dicts), `random_stream` (a random
multi-symbol stream exercising every event kind and the awkward cases) and `reference_rows` (the
rows of `RefBook`, an independent plain-dict reference book recomputed from scratch at every
complete message)."""

from __future__ import annotations

import math
import random
from collections import deque

import numpy as np
import pyarrow as pa

from sq.core import schemas as S
from sq.core.bookstream import BookStream

TICKS = [0.0001, 0.0005, 0.001, 0.01, 0.05, 0.25, 0.5, 1.0]
DEPTH = 3
VWAP_WIN = 5_000_000_000
HALFLIFE = 10.0


def make_batches(events, symbols, ticks, *, split=None, extra=None):
    """events: (ts, sym_index, kind, side, price, qty, seq) → market batches (optionally split)."""
    inst = {s: S.Instrument(s, "sim", t, 1.0, dict(extra.get(s, {})) if extra else {}) for s, t in zip(symbols, ticks) if t}
    schema = S.market_schema(inst)
    d = S.symbol_dictionary(symbols)
    a = list(zip(*events)) if events else [[]] * 7
    ts = np.array(a[0], dtype=np.int64)
    batch = S.market_batch(schema, d, ts, ts, np.array(a[1], dtype=np.int32), np.array(a[2], dtype=np.uint8),
                           np.array(a[3], dtype=np.int8), np.array(a[4], dtype=np.float64),
                           np.array(a[5], dtype=np.float64), np.array(a[6], dtype=np.int64))
    if not split:
        return schema, [batch]
    out, pos = [], 0
    for cut in sorted(set(split)) + [batch.num_rows]:
        if cut > pos:
            out.append(batch.slice(pos, cut - pos))
            pos = cut
    return schema, out


def run_stream(schema, batches, **opts):
    """Run batches through a BookStream; rows as dicts (NaN kept as NaN)."""
    bs = BookStream(S.schema_instruments(schema), warn=lambda m: None, **opts)
    tables = []
    for b in batches:
        out = bs.process(b)
        if out is not None:
            tables.append(out)
    out = bs.finish()
    if out is not None:
        tables.append(out)
    rows = []
    for t in tables:
        cols = {name: (t.column(name).cast(pa.string()).to_pylist() if name == "symbol" else
                       S.int64_view(t.column(name)).tolist() if name == "ts" else
                       t.column(name).to_numpy(zero_copy_only=False).tolist())
                for name in t.schema.names}
        rows += [dict(zip(cols, vals)) for vals in zip(*cols.values())]
    return rows, bs


class RefBook:
    """Plain-Python reference: dict levels by integer tick, features recomputed from scratch."""

    def __init__(self, symbols, ticks, depth, vwap_win, halflife):
        self.depth, self.vwap_win = depth, vwap_win
        self.alpha = 1.0 - 0.5 ** (1.0 / halflife)
        self.inv = {s: round(1 / t) for s, t in zip(symbols, ticks)}
        self.st = {s: dict(bids={}, asks={}, snap=False, last=math.nan, agg=math.nan, trades=deque(),
                           prev_mid=math.nan, var=math.nan, nret=0) for s in symbols}
        self.locked = self.crossed = 0

    def event(self, sym, kind, side, price, qty, ts):
        b = self.st[sym]
        if kind == S.LEVEL:
            book = b["bids"] if side > 0 else b["asks"]
            t = round(price * self.inv[sym])
            if qty == 0:
                book.pop(t, None)
            else:
                book[t] = qty
        elif kind == S.TRADE:
            if side > 0 and b["asks"]:
                b["agg"] = qty / b["asks"][min(b["asks"])]
            elif side < 0 and b["bids"]:
                b["agg"] = qty / b["bids"][max(b["bids"])]
            else:
                b["agg"] = math.nan
            b["last"] = price
            b["trades"].append((ts, price, qty))
        elif kind == S.TICK:
            b["last"] = price
        elif kind == S.CLEAR:
            b["bids"].clear()
            b["asks"].clear()
            b["snap"] = True
        elif kind == S.SNAPSHOT_END:
            b["snap"] = False

    def end(self, sym, ts, seq):
        """The row a complete message yields (None inside a snapshot)."""
        b = self.st[sym]
        if b["snap"]:
            return None
        inv, n = self.inv[sym], self.depth
        bids = sorted(b["bids"].items(), reverse=True)[:n]
        asks = sorted(b["asks"].items())[:n]
        if bids and asks and bids[0][0] >= asks[0][0]:
            if bids[0][0] == asks[0][0]:
                self.locked += 1
            else:
                self.crossed += 1
        row = {"ts": ts, "symbol": sym, "seq": seq}
        for name, lv in (("bid", bids), ("ask", asks)):
            for i in range(n):
                row[f"{name}_px_{i}"] = lv[i][0] / inv if i < len(lv) else math.nan
                row[f"{name}_qty_{i}"] = lv[i][1] if i < len(lv) else math.nan
        nan = math.nan
        if bids and asks:
            (bt, bq), (at, aq) = bids[0], asks[0]
            mid = (bt + at) / inv / 2
            row.update(mid=mid, spread=(at - bt) / inv, microprice=(bt / inv * aq + at / inv * bq) / (bq + aq))
        else:
            mid = nan
            row.update(mid=nan, spread=nan, microprice=nan)
        sb, sa = sum(q for _, q in bids), sum(q for _, q in asks)
        row["imbalance"] = (sb - sa) / (sb + sa) if bids or asks else nan
        row["last_trade_px"] = b["last"]
        row["agg_trade_ratio"] = b["agg"]
        while b["trades"] and b["trades"][0][0] <= ts - self.vwap_win:
            b["trades"].popleft()
        q = sum(t[2] for t in b["trades"])
        row["vwap"] = sum(t[1] * t[2] for t in b["trades"]) / q if q > 0 else nan
        if mid == mid and mid > 0:
            if b["prev_mid"] == b["prev_mid"] and mid != b["prev_mid"]:
                r = math.log(mid / b["prev_mid"])
                b["var"] = r * r if b["nret"] == 0 else b["var"] + self.alpha * (r * r - b["var"])
                b["nret"] += 1
            b["prev_mid"] = mid
        else:
            b["prev_mid"] = nan
        row["volatility"] = math.sqrt(b["var"]) if b["nret"] else nan
        return row


def reference_rows(events, symbols, ticks, depth=DEPTH):
    ref = RefBook(symbols, ticks, depth, VWAP_WIN, HALFLIFE)
    rows, pend = [], None
    for ts, si, kind, side, price, qty, seq in events:
        if pend is not None and (pend[0], pend[1]) != (si, seq):
            r = ref.end(symbols[pend[0]], pend[2], pend[1])
            if r is not None:
                rows.append(r)
        ref.event(symbols[si], kind, side, price, qty, ts)
        pend = (si, seq, ts)
    if pend is not None:
        r = ref.end(symbols[pend[0]], pend[2], pend[1])
        if r is not None:
            rows.append(r)
    return rows, ref


def random_stream(seed, n_symbols, n_messages, tick_idx):
    """A random multi-symbol market stream exercising every kind and the awkward cases."""
    rng = random.Random(seed)
    symbols = [f"SIM:S{i}" for i in range(n_symbols)]
    ticks = [TICKS[(tick_idx + 3 * i) % len(TICKS)] for i in range(n_symbols)]
    inv = [round(1 / t) for t in ticks]
    centre = [rng.randint(60_000, 5_000_000) for _ in symbols]
    live = [{1: set(), -1: set()} for _ in symbols]
    seqs = [0] * n_symbols
    ts = 1_000_000_000
    events = []
    for _ in range(n_messages):
        si = rng.randrange(n_symbols)
        seqs[si] += rng.randint(1, 3)
        seq = seqs[si]
        ts += rng.choice([0, 1, 1000, 400_000_000, 3_000_000_000])
        roll = rng.random()
        px = lambda t: t / inv[si]  # noqa: E731
        if roll < 0.04:  # a jump of thousands of ticks
            centre[si] = max(50_000, centre[si] + rng.choice([-1, 1]) * rng.randint(1000, 30000))
        if roll < 0.10:  # a snapshot, complete in this message or spread over several
            events.append((ts, si, S.CLEAR, 0, 0.0, 0.0, seq))
            live[si] = {1: set(), -1: set()}
            for _ in range(rng.randint(0, 6)):
                side = rng.choice([1, -1])
                t = centre[si] - side * rng.randint(1, 20)
                events.append((ts, si, S.LEVEL, side, px(t), float(rng.randint(1, 50)), seq))
                live[si][side].add(t)
            if rng.random() < 0.7:
                events.append((ts, si, S.SNAPSHOT_END, 0, 0.0, 0.0, seq))
            continue
        if roll < 0.13:
            events.append((ts, si, S.SNAPSHOT_END, 0, 0.0, 0.0, seq))
            continue
        if roll < 0.17:  # empty one side completely in one message
            side = rng.choice([1, -1])
            for t in sorted(live[si][side]):
                events.append((ts, si, S.LEVEL, side, px(t), 0.0, seq))
            live[si][side] = set()
            if not live[si][side] and rng.random() < 0.5:
                continue
        for _ in range(rng.choice([1, 1, 1, 2, 3, 5])):
            r = rng.random()
            if r < 0.15:
                side = rng.choice([1, -1, 0])
                events.append((ts, si, S.TRADE, side, px(centre[si] + rng.randint(-3, 3)), float(rng.randint(1, 20)), seq))
            elif r < 0.18:
                events.append((ts, si, S.TICK, 0, px(centre[si]), 1.0, seq))
            elif r < 0.45 and (live[si][1] or live[si][-1]):
                side = 1 if live[si][1] and (not live[si][-1] or rng.random() < 0.5) else -1
                t = rng.choice(sorted(live[si][side]))
                events.append((ts, si, S.LEVEL, side, px(t), 0.0, seq))
                live[si][side].discard(t)
            else:
                side = rng.choice([1, -1])
                t = centre[si] - side * rng.randint(0, 25)
                if rng.random() < 0.05:
                    t = centre[si] - side * rng.randint(1000, 8000)  # far away, then the centre may move
                if rng.random() < 0.05:
                    events.append((ts, si, S.LEVEL, side, px(t + 999_999), 0.0, seq))  # delete of a price never held
                events.append((ts, si, S.LEVEL, side, px(t), float(rng.randint(1, 100)), seq))
                live[si][side].add(t)
        centre[si] += rng.randint(-3, 3)
    return events, symbols, ticks
