"""The simulated exchange: market events generated per second in simulated time (target
≥ 1M/s), and the SIM market stream written to a pipe through `StreamWriter` (target ≥ 5M
rows/s), against pyarrow writing the same pre-built table to the same kind of pipe in the same
run. Also the end-to-end `sq subscribe SIM:DEMO --limit N | reader` pipeline.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

N_EVENTS = 5_000_000
SQ = str(Path(sys.executable).with_name("sq"))


def _generate(symbols: list[str], n: int):
    from sq.venues.sim import SimVenue

    venue = SimVenue(symbols, seed=1)
    src = venue.market_source(limit=n)
    t0 = time.perf_counter()
    batches = list(src.batches())
    dt = time.perf_counter() - t0
    return batches, sum(b.num_rows for b in batches), dt, src.schema


def _drain() -> subprocess.Popen:
    return subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)


def _write_sq(schema, batches) -> float:
    from sq.core.environment import Environment
    from sq.core.streams import StreamWriter

    proc = _drain()
    env = Environment(stdout=proc.stdin, stderr=io.StringIO(), stdout_isatty=False)
    t0 = time.perf_counter()
    with StreamWriter(env, schema, fmt="arrow") as w:
        for b in batches:
            w.write(b)
    proc.stdin.close()
    proc.wait()
    return time.perf_counter() - t0


def _write_pyarrow(table) -> float:
    import pyarrow.ipc as ipc

    proc = _drain()
    t0 = time.perf_counter()
    with ipc.new_stream(proc.stdin, table.schema) as w:
        w.write_table(table, max_chunksize=65_536)
    proc.stdin.close()
    proc.wait()
    return time.perf_counter() - t0


def run(report) -> None:
    import pyarrow as pa

    _generate(["SIM:DEMO"], 10_000)  # load the numba cache outside the timings
    batches, rows, dt, schema = _generate(["SIM:DEMO"], N_EVENTS)
    report(f"SIM:DEMO events generated, simulated time ({rows:,} rows)", rows / dt, "events/s", target=1_000_000)
    b2, rows2, dt2, _ = _generate(["SIM:DEMO", "SIM:FOO", "SIM:BAR"], N_EVENTS)
    report("3 SIM symbols interleaved, simulated time", rows2 / dt2, "events/s", target=1_000_000)

    table = pa.Table.from_batches(batches, schema=schema).combine_chunks()
    base = min(_write_pyarrow(table) for _ in range(3))
    ours = min(_write_sq(schema, batches) for _ in range(3))
    report("pyarrow write_table of the same table to a pipe (baseline)", rows / base, "rows/s")
    report("SIM stream via StreamWriter to a pipe", rows / ours, "rows/s", baseline=rows / base)
    report("SIM stream via StreamWriter to a pipe (target 5M rows/s)", rows / ours, "rows/s", target=5_000_000)

    reader = "import pyarrow.ipc as ipc,sys\nr=ipc.open_stream(sys.stdin.buffer)\nn=sum(b.num_rows for b in r)\nprint(n)"
    t0 = time.perf_counter()
    p = subprocess.run(
        ["bash", "-c", f"{SQ} subscribe SIM:DEMO --limit {N_EVENTS} | {sys.executable} -c '{reader}'"],
        capture_output=True, text=True, check=True,
    )
    e2e = time.perf_counter() - t0
    n = int(p.stdout.strip())
    report("sq subscribe SIM:DEMO --limit 5M | pyarrow reader, wall incl. startup", n / e2e, "rows/s")
