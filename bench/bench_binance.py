"""Binance depth-diff frames parsed, synced and applied to the book, per second.

Frames: combined-stream `depthUpdate`s as Binance sends them (8-decimal strings, 2–10 levels a
side, a random-walking mid), deterministic from a seed, preceded by a REST snapshot so the
local book is synced from the first frame. Measured: `MarketPipeline.feed` over bursts of frames
(the numba scanner, the documented sync checks, market rows as NumPy arrays) plus the book
kernel (`sq.core.book.BookState.run`) applying every row, prices turned into ticks by the kernel
`sq book` uses. Baseline: plain `json.loads` of the same frames in the same run (no float
conversion, no book). Targets: ≥ 3× the baseline for bursts of 1000 and of 32 frames, and
≥ 200k frames/s.

Rates are frames per CPU second of this process (`time.process_time`), best of three, so a
machine shared with other jobs does not distort them; wall-clock rates are printed alongside.
"""

from __future__ import annotations

import json
import random
import time

import numpy as np

N_FRAMES = 200_000
TICK = 0.01
RATIO_TARGET = 3.0  # × json.loads, for bursts of 1000 and of 32 (a live burst is often a few frames)


def make_frames(n: int = N_FRAMES, seed: int = 5) -> tuple[bytes, list[bytes]]:
    rng = random.Random(seed)
    mid = 6_000_000  # ticks
    u = 10_000_000
    snap = {"lastUpdateId": u, "bids": [[f"{(mid - i) * TICK:.8f}", "1.00000000"] for i in range(1, 200)],
            "asks": [[f"{(mid + i) * TICK:.8f}", "1.00000000"] for i in range(1, 200)]}
    frames = []
    for i in range(n):
        mid += rng.choice((-1, 0, 0, 1))
        b = [[f"{(mid - rng.randint(1, 60)) * TICK:.8f}", f"{rng.random() * (rng.random() > 0.2):.8f}"] for _ in range(rng.randint(2, 10))]
        a = [[f"{(mid + rng.randint(1, 60)) * TICK:.8f}", f"{rng.random() * (rng.random() > 0.2):.8f}"] for _ in range(rng.randint(2, 10))]
        k = rng.randint(1, 20)
        ev = {"e": "depthUpdate", "E": 1_700_000_000_000 + i * 100, "s": "BTCUSDT", "U": u + 1, "u": u + k, "b": b, "a": a}
        u += k
        frames.append(json.dumps({"stream": "btcusdt@depth@100ms", "data": ev}, separators=(",", ":")).encode())
    return json.dumps(snap).encode(), frames


def parse_and_apply(snap: bytes, frames: list[bytes], burst: int) -> tuple[int, int]:
    """Feed all frames through the pipeline in bursts, applying every row to the book kernel."""
    from sq.core import book as B
    from sq.core.bookstream import _level_ticks
    from sq.venues.binance.pipeline import MarketPipeline, PipeSymbol

    p = MarketPipeline([PipeSymbol("BINANCE:BTCUSDT", "BTCUSDT", "spot")])
    state = B.BookState(depth=5, mode=B.MODE_NONE)
    state.ensure(1, [TICK], [0])
    out = state.outputs(1)
    tick_sizes = np.array([TICK])
    applied = 0

    def apply(rows):
        nonlocal applied
        n = len(rows)
        if not n:
            return
        tick = np.empty(n, dtype=np.int64)  # price → ticks as `sq book` does it (one kernel pass)
        _level_ticks(rows.kind, rows.sym, rows.price, tick_sizes, tick)
        state.run(rows.ts, rows.sym, rows.kind, rows.side, tick, rows.price, rows.qty, rows.seq, np.arange(n, dtype=np.int64), out)
        applied += n

    p.feed(frames[:1], 0)
    apply(p.snapshot(0, snap, 0))
    for i in range(1, len(frames), burst):
        apply(p.feed(frames[i : i + burst], i))
    assert p.counters["gaps"] == 0 and p.counters["malformed"] == 0
    return len(frames), applied


def _timed(fn, repeat: int = 3):
    """(best CPU seconds, best wall seconds, last result) over `repeat` runs."""
    cpu = wall = float("inf")
    out = None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - w0)
    return cpu, wall, out


def run(report) -> None:
    snap, frames = make_frames()
    parse_and_apply(snap, frames[:5000], 500)  # numba cache load / compile, imports

    def baseline():
        for f in frames:
            json.loads(f)

    cpu, wall, _ = _timed(baseline)
    base = len(frames) / cpu / 1e3
    report("baseline: json.loads of the same frames (per CPU s)", base, "k frames/s")
    for burst, target in ((1000, 200.0), (32, None)):
        cpu, wall, (n, rows) = _timed(lambda: parse_and_apply(snap, frames, burst))
        rate = n / cpu / 1e3
        report(f"depth diffs parsed+synced+applied to book, bursts of {burst} (per CPU s)", rate, "k frames/s", baseline=base,
               target=RATIO_TARGET)
        report(f"  same, wall clock ({rows / n:.1f} rows/frame)", n / wall / 1e3, "k frames/s")
        if target is not None:
            report("  absolute target (per CPU s)", rate, "k frames/s", target=target)
