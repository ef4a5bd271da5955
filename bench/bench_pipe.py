"""`sq subscribe SIM:DEMO | sq book` through a pipe: two real `sq` processes (the console script
next to sys.executable), as a user runs them.

1. Throughput, events/s. `sq subscribe SIM:DEMO --limit N` runs the simulated exchange in
   simulated time, as fast as it can (the documented way to get a SIM stream at full speed;
   `--for` and no option pace it to the wall clock, ~7K events/s), piped into `sq book`
   (default options: depth 5, a row per change) whose Arrow output goes to /dev/null. Both
   processes' start-up (imports, numba cache loading) is taken out by timing two runs, N_SMALL
   and N_LARGE events, and dividing the extra events by the extra wall time: the steady rate
   of the pipe. Best of 3. Target ≥ 5M events/s. For comparison, in the same
   run and measured the same way: the producer alone into `cat` (the most the pipe can carry
   from this producer) and the consumer alone reading the same bytes from `cat FILE`.
2. Latency. A live pipe: `sq subscribe SIM:DEMO --for 10s` (real time: the source writes each
   burst of exchange events as soon as it is due, ~2K small batches/s) into `sq book`, whose
   output this process reads. A batch's latency is the time from the producer writing a
   market batch to the book rows it completes being read from `sq book`'s stdout: for each
   book batch, its read time minus (the newest row's `ts` + the source's feed lag, 250 µs). In
   real time a SIM event with exchange time `ts` is written at `ts` + lag or later, never
   earlier (the source waits for the lag so that every event of that moment is in), so this
   over-states the pipe's latency by the producer's own wake-up and batch building: an upper
   bound, from the clock both processes and this one share. A row comes out of `sq book` only
   when its venue message is known complete (the SIM stream says its batches end at message
   ends: sq.whole_messages, docs/streams.md). Only the last 4 s of exchange time count: the
   events written while `sq book` was still starting wait in the pipe, and that backlog takes
   a moment to drain. Target p99 < 1 ms. For comparison, the same figure for the producer
   alone (this process reading `sq subscribe` directly). The load average is printed: on a
   shared 2-core machine the p99 is mostly other processes' scheduling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SQ = str(Path(sys.executable).with_name("sq"))
N_EVENTS = 10_000_000
REPEAT = 3
LIVE_FOR = "10s"
LIVE_MEASURED_NS = 4_000_000_000  # the last 4 s of exchange time
FEED_LAG_NS = 250_003  # sq.venues.sim.source: FEED_LATENCY_NS + FEED_JITTER_NS


def _written(pid: int) -> int | None:
    """Bytes process `pid` has written so far (/proc/PID/io wchar); None once it is gone."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _steady_rate(writer: list[str], reader: list[str] | None, stdin_path: str | None = None) -> tuple[float, float]:
    """Run `writer | reader` (reader None: into /dev/null through `cat`); returns (bytes/s the
    writer put into the pipe between 10% and 90% of its output, total bytes). The writer's
    progress is the reader's: a pipe buffers only 64 KiB, so the writer's write of a batch
    returns once the reader has taken all but that much of it."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    w = subprocess.Popen(writer, stdin=stdin, stdout=subprocess.PIPE)
    r = subprocess.Popen(reader or ["cat"], stdin=w.stdout, stdout=subprocess.DEVNULL)
    w.stdout.close()
    samples = []
    while w.poll() is None:
        n = _written(w.pid)
        if n is not None:
            samples.append((time.perf_counter(), n))
        time.sleep(0.002)
    if w.wait() or r.wait():
        raise RuntimeError(f"{' '.join(writer)} | {' '.join(reader or ['cat'])} failed")
    if stdin_path:
        stdin.close()
    t = np.array([x[0] for x in samples])
    b = np.array([x[1] for x in samples], dtype=np.float64)
    total = b[-1]
    i = int(np.searchsorted(b, 0.1 * total))
    j = int(np.searchsorted(b, 0.9 * total))
    return (b[j] - b[i]) / max(t[j] - t[i], 1e-9), total


def _live_latencies(book: bool = True) -> tuple[np.ndarray, int]:
    """Per batch read from a live `sq subscribe | sq book` (book False: from `sq subscribe`
    itself): read time − (newest ts + lag), in s, over the last LIVE_MEASURED_NS; and the rows."""
    import pyarrow.ipc as ipc

    from sq.core import schemas as S

    sub = subprocess.Popen([SQ, "subscribe", "SIM:DEMO", "--for", LIVE_FOR], stdout=subprocess.PIPE)
    if book:
        last = subprocess.Popen([SQ, "book"], stdin=sub.stdout, stdout=subprocess.PIPE)
        sub.stdout.close()
    else:
        last = sub
    got = []
    reader = ipc.open_stream(last.stdout)
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        now = time.time_ns()
        if batch.num_rows:
            got.append((int(S.int64_view(batch.column("ts")).max()), now, batch.num_rows))
    if last.wait() or sub.wait():
        raise RuntimeError("the live sq subscribe | sq book pipe failed")
    a = np.array(got, dtype=np.int64)
    last = a[a[:, 0] >= a[-1, 0] - LIVE_MEASURED_NS]
    return (last[:, 1] - last[:, 0] - FEED_LAG_NS) / 1e9, int(last[:, 2].sum())


def run(report) -> None:
    subprocess.run([SQ, "subscribe", "SIM:DEMO", "--limit", "1000"], check=True, stdout=subprocess.DEVNULL)  # warm caches
    sub = [SQ, "subscribe", "SIM:DEMO", "--limit", str(N_EVENTS)]
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "sim.arrow")
        with open(path, "wb") as f:  # the Arrow stream itself, as the pipe carries it
            subprocess.run(sub, check=True, stdout=f)
        per_event = os.path.getsize(path) / N_EVENTS
        rates = {"producer": [], "consumer": [], "pipe": []}
        for _ in range(REPEAT):  # alternately, so a busy moment of the machine hurts each alike
            rates["producer"].append(_steady_rate(sub, None)[0])
            rates["consumer"].append(_steady_rate(["cat"], [SQ, "book"], stdin_path=path)[0])
            rates["pipe"].append(_steady_rate(sub, [SQ, "book"])[0])
    prod, cons, pipe = (max(rates[k]) / per_event for k in ("producer", "consumer", "pipe"))
    report(f"load average (1 min) on {os.cpu_count()} cores", os.getloadavg()[0], "")
    report(f"producer alone: sq subscribe SIM:DEMO --limit N | cat ({per_event:.0f} B/event)", prod / 1e6, "M events/s")
    report("consumer alone: cat SIM stream | sq book", cons / 1e6, "M events/s")
    report(f"sq subscribe SIM:DEMO --limit {N_EVENTS / 1e6:.0f}M | sq book, steady", pipe / 1e6, "M events/s",
           baseline=min(prod, cons) / 1e6)
    report("same, against the 5M events/s target", pipe / 1e6, "M events/s", target=5.0)

    alone, _ = _live_latencies(book=False)
    lat, rows = _live_latencies()
    report(f"live pipe, last 4 s: book batches read ({rows:,} rows; load avg {os.getloadavg()[0]:.1f})", float(len(lat)), "batches")
    report("live, producer alone (sq subscribe -> here): latency p99", float(np.percentile(alone, 99)) * 1e3, "ms")
    report("live pipe: batch latency p50", float(np.percentile(lat, 50)) * 1e3, "ms")
    report("live pipe: batch latency p99", float(np.percentile(lat, 99)) * 1e3, "ms", target=1.0, lower_is_better=True)
    report("live pipe: batch latency max", float(lat.max()) * 1e3, "ms")
