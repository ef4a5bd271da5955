"""`sq paper`: the backtest engine driven by a live or replayed market, journaled (README: Exit codes).

One run = one market source, one `Engine`, one journal, one registry entry:

  * source — live (`open_market_source` of the symbols' venue, real time) or a replay (`--from`:
    recorded data at the data's clock, as fast as possible, or paced by its timestamps with
    `--realtime`; `--for` is then data time);
  * every market batch goes through `Engine.process`; the orders, fills, pnl rows and risk
    rejections it produced are written to the journal with one write + fsync, together with a
    checkpoint of the engine's state, *before* the run shows them or takes the next batch
    (write-ahead: what the journal holds is what the run knew);
  * SIGINT, SIGTERM (`sq kill`) or the end of the source → `Engine.cancel_all` closes every
    working order (journaled), the journal is sealed and compacted to Parquet, the registry
    entry removed, and the status is 0;
  * `--resume DIR` verifies the journal of a crashed run, restores the engine from its last
    checkpoint (positions, counters, order ids, working orders) and checks the restored positions
    against the journal's fills before appending anything. A replay then continues from the first
    event after the checkpoint — the finished journal equals an uninterrupted run's. A live run
    first closes the orders the dead process had working (they lived in its simulated venue),
    then trades on the market as it is now.

The dashboard is supplied by the command layer (`view`): this module only calls it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import sys
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from sq.core import journal as J
from sq.core import summary as RS
from sq.core.exits import DataError, UsageError
from sq.core.redact import mask_argv

DEFAULT_SYMBOL = "SIM:DEMO"
REALTIME_SLICE_NS = 10_000_000  # a paced replay hands the engine at most 10 ms of data at a time


@dataclass
class PaperOptions:
    """What the user asked for (the command's flags, unvalidated)."""

    strategy: str | None = None
    symbols: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    duration: str | None = None
    journal: str | None = None
    realtime: bool = False
    params: list[str] = field(default_factory=list)
    resume: str | None = None
    seed: int = 1
    json: bool = False
    clean: bool | None = None  # --clean/--no-clean; None: the config's clean.enabled
    start: str | None = None  # --start/--end of a --from replay: YYYY-MM-DD, UTC days
    end: str | None = None
    expiry: str | None = None  # --expiry: which contract a continuous futures name stands for (near, next, far)
    monitor: Any = None  # --metrics, --metrics-file, --alert (sq.runs.monitor.MonitorOptions); None: the config's
    fill: dict = field(default_factory=dict)  # the fill-model flags backtest takes too: FillModelConfig overrides (None: the config's)
    funding: str | None = None  # --funding FILE|DIR of a replay (else the funding files in or beside its inputs)


@dataclass
class Plan:
    """A validated run: what to trade, from where, with which parameters, journaled where."""

    run_id: str
    strategy: str
    symbols: list[str]
    inputs: list[str]  # absolute paths of a replay; empty when live
    duration_ns: int | None
    realtime: bool
    params: list[str]
    seed: int
    journal_dir: Path
    resume: "J.Loaded | None" = None
    clean: Any = None  # the [clean] settings a replay is cleaned with (CleanConfig), None: not cleaned
    window: tuple = (None, None)  # (start, end) dates of a replay's --start/--end
    contracts: dict = field(default_factory=dict)  # contract symbol → Contract: the continuous names traded (sq.runs.contracts)
    fill: dict = field(default_factory=dict)  # FillModelConfig overrides (--latency, --queue-model, …), kept by --resume
    funding: list = field(default_factory=list)  # a replay's funding files (sq.runs.funding)

    @property
    def live(self) -> bool:
        return not self.inputs

    @property
    def venue(self) -> str:
        if self.live:
            from sq.venues.registry import venue_of

            return venue_of(self.symbols[0])
        return "replay"


# ----------------------------------------------------------------------------------------------
# planning


def make_plan(env: Any, opts: PaperOptions, config: Any) -> Plan:
    """Validate the options (and, with --resume, take them from the journal's start record)."""
    from sq.core import paths
    from sq.core.datasets import parse_window
    from sq.core.durations import parse_duration_ns
    from sq.core.strategy import loader
    from sq.runs import contracts
    from sq.runs.marketprep import clean_settings
    from sq.venues.registry import one_venue, parse_symbols

    if opts.resume:
        return _resume_plan(opts)
    if not opts.strategy:
        raise UsageError(f"--strategy is required: one of {', '.join(loader.BUILTINS)}, a file (./mine.py) "
                         "or package.module:NAME (or --resume DIR to continue a run)")
    strategy = loader.load(opts.strategy).spec
    if opts.inputs and opts.symbols:
        raise UsageError("give SYMBOLs to trade live or --from INPUT to replay, not both")
    if opts.realtime and not opts.inputs:
        raise UsageError("--realtime paces a --from replay; a live market is always real time")
    window = parse_window(opts.start, opts.end)
    if window != (None, None) and not opts.inputs:
        raise UsageError("--start/--end select days of a --from replay; a live market has no past to select")
    inputs: list[str] = []
    for item in opts.inputs:
        inputs.append(item if item == "-" or any(c in item for c in "*?[") or "://" in item else str(Path(item).resolve()))  # s3://… as given
    if opts.inputs and opts.expiry is not None:
        raise UsageError("--expiry picks the contract of a continuous futures name to trade live; a --from replay trades what was recorded")
    chosen: dict = {}
    params = list(opts.params)
    if opts.inputs:
        symbols: list[str] = []
    else:
        texts = opts.symbols or list(config.symbols) or [DEFAULT_SYMBOL]
        parsed = parse_symbols(texts)
        one_venue(parsed, "run one sq paper per venue")
        resolved = contracts.resolve(env, config, parsed, expiry=opts.expiry)
        symbols, chosen = resolved.names, resolved.contracts
        params = contracts.params_for(params, chosen)
    duration_ns = parse_duration_ns(opts.duration, option="--for") if opts.duration else None
    if duration_ns is not None and duration_ns <= 0:
        raise UsageError("--for must be longer than zero")
    if opts.clean is not None and not opts.inputs:
        raise UsageError("--clean/--no-clean filter a --from replay; a live market is traded as it comes")
    from sq.core.engine.runner import FillModelConfig

    FillModelConfig.from_config(config, **opts.fill).validate()  # a bad --latency-dist or --queue-model: exit 2 before anything opens
    if opts.funding and not opts.inputs:
        raise UsageError("--funding gives a --from replay its funding rates; a live market's come from the venue")
    from sq.runs import funding as FU

    funding = [str(p.resolve()) for p in FU.funding_files(opts.funding, [i for i in inputs if i != "-"])] if opts.inputs else []
    run_id = J.new_run_id()
    journal_dir = Path(opts.journal) if opts.journal else paths.data_dir() / "runs" / run_id
    return Plan(run_id, strategy, symbols, inputs, duration_ns, opts.realtime, params, opts.seed, journal_dir,
                clean=clean_settings(config, opts.clean) if opts.inputs else None, window=window, contracts=chosen, fill=dict(opts.fill),
                funding=funding)


def _spec(text: str) -> str:
    from sq.core.strategy import loader

    return loader.load(text).spec


def _resume_plan(opts: PaperOptions) -> Plan:
    from sq.core.datasets import parse_window
    from sq.core.durations import parse_duration_ns
    from sq.runs import contracts

    loaded = J.load(opts.resume)
    start = loaded.start
    strategy = str(start.get("strategy", ""))
    if opts.strategy and _spec(opts.strategy) != strategy:
        raise UsageError(f"--resume {opts.resume}: that run trades {strategy!r}, not {opts.strategy!r}; drop --strategy")
    fill_given = any(v is not None for k, v in opts.fill.items() if k != "queue_model") or opts.fill.get("queue_model", "risk-averse") != "risk-averse"
    if (opts.symbols or opts.inputs or opts.params or opts.journal or opts.clean is not None or opts.start or opts.end or opts.expiry
            or opts.funding or fill_given):
        raise UsageError("--resume takes the symbols, --expiry, --from, --start/--end, --param, --clean, --funding, the fill flags "
                         "(--latency, --queue-model, …) and --journal of the original run; give only --for, --json")
    if loaded.last("checkpoint") is None:
        raise DataError(f"--resume {opts.resume}: the journal has no engine checkpoint yet (the run ended before its first step); start a new run")
    duration_ns = parse_duration_ns(opts.duration, option="--for") if opts.duration else None
    return Plan(
        run_id=str(start.get("run_id", Path(opts.resume).name)),
        strategy=strategy,
        symbols=list(start.get("symbols", [])) if not start.get("inputs") else [],
        inputs=list(start.get("inputs", [])),
        duration_ns=duration_ns,
        realtime=bool(start.get("realtime", False)),
        params=list(start.get("params", [])),
        seed=int(start.get("seed", 1)),
        journal_dir=Path(opts.resume),
        resume=loaded,
        clean=_clean_of(start.get("clean")),
        window=tuple(parse_window(start.get("start"), start.get("end"))),
        contracts=contracts.from_json(start.get("contracts")),
        fill=dict(start.get("fill") or {}),
        funding=list(start.get("funding") or []),
    )


def _clean_of(recorded: Any) -> Any:
    """The [clean] settings a journal's start record holds (None: the run did not clean),
    checked like the config's table."""
    from sq.core.config import parse_config

    return parse_config({"clean": recorded}, name="the journal's start record").clean if recorded else None


# ----------------------------------------------------------------------------------------------
# market sources


class ReplaySource:
    """A recorded market stream at its own clock: as fast as possible, or paced by its timestamps.

    `duration_ns` stops after that much data time from the first event (`--for` on a replay);
    `skip` drops the first rows (a resumed replay continues after its checkpoint); `clean` (a
    CleanConfig) filters bad ticks first — before `skip`, so a resumed run skips the same rows.
    """

    def __init__(self, env: Any, inputs: list[str], *, duration_ns: int | None, realtime: bool, skip: int = 0, clean: Any = None,
                 window: tuple = (None, None), kinds: tuple[str, ...] = ("market",)):
        from sq.core.streams import open_input
        from sq.runs.marketprep import prepare

        self._src = open_input(env, inputs, kinds, start=window[0], end=window[1])
        self.data = prepare(self._src.instruments, self._src.batches(), settings=clean if self._src.kind == "market" else None)
        self.schema = self._src.schema
        self.instruments = self.data.instruments
        self.total_rows = self._src.total_rows  # the input files' rows (a view's % through the replay); None for stdin
        self.duration_ns = duration_ns
        self.realtime = realtime
        self.skip = int(skip)
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop.set()

    def batches(self) -> Iterator[Any]:
        from sq.core.schemas import int64_view

        t0: int | None = None
        wall0 = 0
        skip = self.skip
        for batch in self.data.batches:
            if self._stop.is_set():
                return
            if skip:
                if batch.num_rows <= skip:
                    skip -= batch.num_rows
                    continue
                batch = batch.slice(skip)
                skip = 0
            ts = int64_view(batch.column("ts"))
            if t0 is None:
                t0, wall0 = int(ts[0]), time.monotonic_ns()
            done = False
            if self.duration_ns is not None and int(ts[-1]) - t0 >= self.duration_ns:
                import numpy as np

                k = int(np.searchsorted(ts, t0 + self.duration_ns, side="left"))
                batch, ts, done = batch.slice(0, k), ts[:k], True
            if not self.realtime:
                if batch.num_rows:
                    yield batch
            else:
                yield from self._paced(batch, ts, t0, wall0)
            if done:
                return

    def _paced(self, batch: Any, ts: Any, t0: int, wall0: int) -> Iterator[Any]:
        import numpy as np

        i, n = 0, batch.num_rows
        while i < n and not self._stop.is_set():
            j = int(np.searchsorted(ts, ts[i] + REALTIME_SLICE_NS, side="left"))
            j = max(j, i + 1)
            due = wall0 + (int(ts[i]) - t0)
            wait = (due - time.monotonic_ns()) / 1e9
            if wait > 0 and self._stop.wait(wait):
                return
            yield batch.slice(i, j - i)
            i = j


def open_live_source(env: Any, plan: Plan, config: Any) -> Any:
    """The venue's live market source (real time) through the registry."""
    from sq.venues import registry

    symbols = registry.parse_symbols(plan.symbols)
    registry.one_venue(symbols, "run one sq paper per venue")
    options = registry.SourceOptions(config=config, env=env, seed=plan.seed, duration_ns=plan.duration_ns, clock="real",
                                     contracts=plan.contracts)
    return registry.open_market_source(symbols, options)


# ----------------------------------------------------------------------------------------------
# engine state in the journal


def encode_state(state: Any) -> str:
    """An engine snapshot (a mapping of NumPy arrays, lists and scalars) as compact text.

    Layout: zlib(JSON header + NUL + the arrays' raw bytes), base64. The header keeps lists and
    scalars as JSON and, per array, its dtype, full shape and how many leading rows were stored:
    trailing all-zero rows (unused buffer space: outbox, schedule) are dropped and padded back by
    `decode_state`, so the round trip is exact. No pickles: loading a journal runs nothing in it.
    """
    import numpy as np

    header: dict[str, Any] = {}
    blobs = []
    for k, v in dict(state).items():
        if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
            a = np.ascontiguousarray(v)
            n = a.shape[0] if a.ndim else 0
            if a.ndim >= 1 and a.size > 64:
                used = np.flatnonzero(a.reshape(a.shape[0], -1).any(axis=1))
                n = int(used[-1]) + 1 if len(used) else 0
            part = a[:n] if a.ndim else a
            header[k] = {"dtype": a.dtype.str, "shape": list(a.shape), "rows": n, "nbytes": part.nbytes}
            blobs.append(part.tobytes())
        else:
            header[k] = {"json": v.tolist() if isinstance(v, np.ndarray) else v.item() if isinstance(v, np.generic) else v}
    raw = json.dumps(header, separators=(",", ":")).encode() + b"\0" + b"".join(blobs)
    return base64.b64encode(zlib.compress(raw, 1)).decode("ascii")


def decode_state(text: str) -> dict[str, Any]:
    """The inverse of `encode_state`: arrays at their full shape, lists and scalars as JSON gave them."""
    import numpy as np

    raw = zlib.decompress(base64.b64decode(text))
    head, _, body = raw.partition(b"\0")
    header = json.loads(head)
    out: dict[str, Any] = {}
    pos = 0
    for k, h in header.items():
        if "json" in h:
            out[k] = h["json"]
            continue
        dtype, shape, n = np.dtype(h["dtype"]), tuple(h["shape"]), int(h["rows"])
        part = np.frombuffer(body, dtype=dtype, count=h["nbytes"] // dtype.itemsize, offset=pos)
        pos += h["nbytes"]
        if not shape:
            out[k] = part.reshape(()).copy()
            continue
        full = np.zeros(shape, dtype=dtype)
        full[:n] = part.reshape((n,) + shape[1:])
        out[k] = full
    return out


FULL_CHECKPOINT_EVERY_S = 10.0


def split_state(state: Any) -> tuple[tuple, dict[str, Any], list[bytes]]:
    """A snapshot as (layout: the arrays' names, dtypes and shapes; the non-array values as
    JSON-able data; each array's bytes, in layout order)."""
    import numpy as np

    layout, values, blobs = [], {}, []
    for k, v in dict(state).items():
        if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
            a = np.ascontiguousarray(v)
            layout.append((k, a.dtype.str, a.shape))
            blobs.append(a.tobytes())
        else:
            values[k] = v.tolist() if isinstance(v, np.ndarray) else v.item() if isinstance(v, np.generic) else v
    return tuple(layout), values, blobs


def join_state(layout: tuple, values: dict[str, Any], blobs: list[bytes]) -> dict[str, Any]:
    """The inverse of `split_state`."""
    import numpy as np

    out: dict[str, Any] = dict(values)
    for (k, dtype, shape), blob in zip(layout, blobs):
        out[k] = np.frombuffer(blob, dtype=np.dtype(dtype)).reshape(shape).copy()
    return out


class Checkpointer:
    """Checkpoint payloads for the journal, small enough to write with every engine step.

    A full snapshot (`state`, see `encode_state`) every FULL_CHECKPOINT_EVERY_S or when an array
    changed shape; in between a sparse delta against the previous checkpoint (`delta`, `prev` =
    its record number): for each array whose bytes changed, the positions and XOR values of the
    changed 8-byte words. A step changes a few dozen words of the engine's ~0.4 MB of state, so a delta
    is ~0.2 kB where a full snapshot is ~3 kB. `checkpoint_state` follows the chain back.
    """

    def __init__(self) -> None:
        self.prev_n = 0
        self.layout: tuple | None = None
        self.blobs: list[bytes] = []
        self.full_t = 0.0

    def payload(self, state: Any, rows: int, record_n: int) -> dict[str, Any]:
        import numpy as np

        layout, values, blobs = split_state(state)
        now = time.monotonic()
        prev_n, prev_blobs = self.prev_n, self.blobs
        self.prev_n, self.blobs = record_n, blobs
        if layout != self.layout or now - self.full_t > FULL_CHECKPOINT_EVERY_S:
            self.layout, self.full_t = layout, now
            return {"rows": rows, "state": encode_state(state)}
        changed, parts = [], []
        for i, (new, old) in enumerate(zip(blobs, prev_blobs)):
            if new == old:
                continue
            word = np.uint64 if len(new) % 8 == 0 else np.uint8  # compare 8 bytes at a time
            x = np.bitwise_xor(np.frombuffer(new, word), np.frombuffer(old, word))
            idx = np.flatnonzero(x).astype(np.uint32)
            changed.append([i, len(idx), x.itemsize])
            parts += [idx.tobytes(), x[idx].tobytes()]
        head = json.dumps({"values": values, "changed": changed}, separators=(",", ":")).encode()
        text = base64.b64encode(zlib.compress(head + b"\0" + b"".join(parts), 1)).decode("ascii")
        return {"rows": rows, "prev": prev_n, "delta": text}


def checkpoint_state(loaded: "J.Loaded", record: "J.Record") -> dict[str, Any]:
    """The engine snapshot a checkpoint record holds, following a delta chain back to its full
    snapshot and applying the deltas forward."""
    import numpy as np

    chain = [record]
    while "state" not in chain[-1].data:
        here = chain[-1]
        n = int(here.data.get("prev", 0))
        prev = loaded.records[n - 1] if 0 < n < here.n else None
        if prev is None or prev.kind != "checkpoint":
            raise DataError(f"journal {loaded.path} record {here.n}: checkpoint delta refers to record {n}, which is not an earlier checkpoint")
        chain.append(prev)
    layout, values, blobs = split_state(decode_state(chain[-1].data["state"]))
    arrays = [bytearray(b) for b in blobs]
    for rec in reversed(chain[:-1]):
        head, _, body = zlib.decompress(base64.b64decode(rec.data["delta"])).partition(b"\0")
        meta = json.loads(head)
        pos = 0
        for i, count, size in meta["changed"]:
            word = np.uint64 if size == 8 else np.uint8
            idx = np.frombuffer(body, np.uint32, count=count, offset=pos)
            pos += 4 * count
            x = np.frombuffer(body, word, count=count, offset=pos)
            pos += size * count
            if i >= len(arrays) or (count and int(idx.max()) >= len(arrays[i]) // size):
                raise DataError(f"journal {loaded.path} record {rec.n}: checkpoint delta does not fit its state")
            np.frombuffer(arrays[i], word)[idx] ^= x
        values = meta["values"]
    return join_state(layout, values, [bytes(a) for a in arrays])


# ----------------------------------------------------------------------------------------------
# the run


def engine_records(out: Any) -> list[tuple[str, dict]]:
    """Journal records of one `EngineOutput`: orders rows (risk/venue rejections as `reject`),
    fills, pnl marks, in the engine's order."""
    recs: list[tuple[str, dict]] = []
    if not any(out.rows):  # nothing happened: no Arrow work
        return [("funding", r) for r in getattr(out, "funding", ())]
    for row in J.rows_from_batch(out.orders):
        recs.append(("reject" if row.get("event") == "rejected" else "order", row))
    recs.extend(("fill", row) for row in J.rows_from_batch(out.fills))
    recs.extend(("pnl", row) for row in J.rows_from_batch(out.pnl))
    recs.extend(("funding", r) for r in getattr(out, "funding", ()))
    return recs


class PaperRun:
    """Drives one engine over one source, journaling each step; `stop()` ends it cleanly."""

    def __init__(self, env: Any, plan: Plan, source: Any, engine: Any, journal: "J.Journal", view: Any = None, *, rows0: int = 0):
        self.env = env
        self.plan = plan
        self.source = source
        self.engine = engine
        self.journal = journal
        self.view = view
        self.rows = rows0  # market rows consumed from the source (counting a resumed run's past)
        self.stop_reason: str | None = None
        self.halted_reason: str = ""
        self.last_ts = 0
        self.run_elapsed = 0.0
        self.checkpoint_s = 0.0
        self.checkpointer = Checkpointer()
        self.inputs_replayed = not plan.live
        from sq.runs.monitor import OFF
        from sq.runs.heartbeat import Heartbeat

        self.monitor: Any = OFF  # metrics and alerts (sq.runs.monitor), set by run_paper

        self.heartbeat = Heartbeat("paper")
        self.funding: Any = None  # on a live feed: the perpetuals' funding times (sq.runs.funding.FundingPoller)
        self.started_ns = time.time_ns()  # wall clock, for the summary's `started`

    def stop(self, reason: str) -> None:
        """Ask the run to end (safe from a signal handler or another thread)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        try:
            self.source.close()
        except Exception:
            pass

    def step(self, batch: Any) -> Any:
        """One market batch through the engine; its records journaled before anything else.

        A live venue source never splits a message across batches (the MarketSource contract),
        so its batch closes the message at once and an order it prompts leaves now; a replayed
        file may cut messages anywhere, so there the next batch closes it."""
        out = self.engine.process(batch, complete=self.plan.live)
        self.rows += batch.num_rows
        extra = []
        reason = self.engine.halted
        if reason and not self.halted_reason:  # the risk layer halted the strategy (loss limits)
            self.halted_reason = reason
            extra.append(("halt", {"ts": self.engine.now_ns, "reason": reason, "by": "risk"}))
        self.record(out, extra)
        return out

    def record(self, out: Any, extra: list[tuple[str, dict]] | None = None) -> None:
        """Journal an engine output (+ extra records) and a checkpoint: one write, one fsync."""
        recs = engine_records(out) + list(extra or [])
        if recs:
            t0 = time.perf_counter()
            n = self.journal.n + len(recs) + 1  # the checkpoint's record number
            recs.append(("checkpoint", self.checkpointer.payload(self.engine.snapshot_state(), self.rows, n)))
            self.checkpoint_s += time.perf_counter() - t0
            self.journal.write_step(recs)

    def run(self) -> None:
        """Process batches until the source ends, `--for` elapses or `stop()` is called; then
        close every working order (journaled)."""
        from sq.core.schemas import int64_view

        t0 = time.perf_counter()
        deadline = None
        if self.plan.live and self.plan.duration_ns is not None:
            deadline = time.monotonic() + self.plan.duration_ns / 1e9 + 1.0  # the source stops itself; a hung one, here
        for batch in self.source.batches():
            if self.stop_reason is not None:
                break
            if batch.num_rows == 0:
                continue
            if self.funding is not None:
                self.funding.drain(self.engine)
            out = self.step(batch)
            self.last_ts = int(int64_view(batch.column("ts"))[-1])
            self.heartbeat.market(self.last_ts)
            self.heartbeat.beat(self.beat_state)  # about once a second (a due check otherwise)
            self.monitor.market(batch)
            self.monitor.step(self)  # alerts on transitions; a metrics snapshot when due
            if self.view is not None:
                self.view.update(batch, out, self)
            if deadline is not None and time.monotonic() > deadline:
                self.stop("for")
                break
        self.run_elapsed = time.perf_counter() - t0
        self.close_out()

    def beat_state(self) -> dict:
        """The heartbeat of a paper run: the engine's state and how far through its input it is."""
        from sq.runs.heartbeat import engine_state

        doc = engine_state(self.engine)
        doc["halted"] = self.halted_reason or doc["halted"]
        doc["rows"] = self.rows
        doc["feed"] = "live" if self.plan.live else "replay"
        return doc

    def close_out(self) -> None:
        """Close every working order, journaled with a `halt` record.

        Source exhausted (end of a replay, `--for`): `finish` first — exactly what a backtest does
        at the end of its input, so a replay's orders and fills equal the backtest's — then
        cancel what still works. Stopped (signal, `sq kill`): cancel at once, then finish.
        """
        reason = self.stop_reason or ("for" if self.plan.duration_ns else "end")
        ts = time.time_ns() if self.plan.live else (self.last_ts or self.engine.now_ns)
        halt = ("halt", {"ts": ts, "reason": reason, "by": "signal" if reason.startswith("SIG") else "run"})
        if self.stop_reason is None:
            first, second = self.engine.finish(), self.engine.cancel_all(ts, reason)
        else:
            first, second = self.engine.cancel_all(ts, reason), self.engine.finish()
        self.record(first)
        self.record(second, [halt])
        if self.view is not None:
            self.view.update(None, first, self)
            self.view.update(None, second, self)


def journal_positions(loaded: "J.Loaded") -> dict[str, float]:
    """Position per symbol from the journal's fills alone (an independent check on a checkpoint)."""
    pos: dict[str, float] = {}
    for r in loaded.of("fill"):
        d = r.data
        pos[d["symbol"]] = pos.get(d["symbol"], 0.0) + float(d["side"]) * float(d["qty"])
    return pos


# ----------------------------------------------------------------------------------------------
# the command body


def run_paper(env: Any, opts: PaperOptions, *, view_factory: Callable[..., Any] | None = None) -> dict:
    """Plan, open, register, run and seal one paper run; return its summary (`make_summary`)."""
    from sq.core.config import load_config
    from sq.core.engine import params as engine_params
    from sq.core.strategy import loader
    from sq.runs import contracts, lifecycle
    from sq.runs.backtest import input_kinds

    config = load_config(env)
    plan = make_plan(env, opts, config)
    config = contracts.config_for(config, plan.contracts)  # [[instruments]] of a continuous name apply to its contract
    strategy = loader.load(plan.strategy)
    if plan.live:  # parameters checked before anything is opened (exit 2 / 78)
        engine_params.resolve(strategy, plan.symbols, config, plan.params)
        from sq.runs.warmup import cache_is_cold

        if not cache_is_cold("bar" if strategy.kind == "bar" else "event"):  # (a cold warm-up compiles it, in parallel)
            loader.compiled(strategy)  # a handler that does not compile: exit 2 before any data is read
    checkpoint = plan.resume.last("checkpoint").data if plan.resume is not None else None
    # compile (or load) the kernels before any market data or clock starts: a live source's
    # clock runs from when it opens, and a first-time compile takes tens of seconds
    warm_up(env, config, strategy, calendar=needs_calendar(plan, config), venues=live_venues(plan))
    if plan.live:
        source = open_live_source(env, plan, config)
    else:
        source = ReplaySource(env, plan.inputs, duration_ns=plan.duration_ns, realtime=plan.realtime,
                              skip=int(checkpoint["rows"]) if checkpoint else 0, clean=plan.clean, window=plan.window,
                              kinds=input_kinds(strategy))
        plan.symbols = sorted(source.instruments)
    engine = make_engine(plan, source.instruments, config)
    if getattr(engine, "calendars", None) is not None and engine.calendars.entries and not needs_calendar(plan, config):
        warm_up(env, config, strategy, calendar=True)  # calendars from a replay's instruments: their path too

    if plan.resume is None:
        journal = J.Journal.create(plan.journal_dir, _start_record(plan, config))
    else:
        def restore(loaded: "J.Loaded") -> None:
            engine.restore_state(checkpoint_state(loaded, loaded.last("checkpoint")))
            check_positions(engine, loaded)
            engine.seed_metrics(J.table_of(loaded, "fills"), J.table_of(loaded, "pnl"))  # the whole run's metrics

        journal, loaded = J.Journal.reopen(plan.journal_dir, {"pid": os.getpid(), "ts": time.time_ns(), "argv": mask_argv(sys.argv[1:])}, restore)
        checkpoint = loaded.last("checkpoint").data

    run = PaperRun(env, plan, source, engine, journal, rows0=int(checkpoint["rows"]) if checkpoint else 0)
    if plan.live:
        from sq.runs.funding import FundingPoller

        run.funding = FundingPoller(plan.symbols, config, config.live.sweep_interval_s, env.warn)
        if not run.funding.symbols:
            run.funding = None
    venues = sorted({(i.venue or "").lower() for i in source.instruments.values()} - {""})
    from sq.runs.monitor import open_monitor

    run.monitor = monitor = open_monitor(env, config, opts.monitor, mode="paper", run=plan.run_id, strategy=engine.strategy,
                                         venue=plan.venue if plan.live else ",".join(venues) or "replay")
    monitor.attach(run)
    if run.funding is not None:
        run.funding.start()
    try:
        summary = _run_registered(env, plan, run, engine, journal, strategy, view_factory)
    except BaseException as e:
        if run.funding is not None:
            run.funding.stop()
        monitor.close(error=None if isinstance(e, (KeyboardInterrupt, SystemExit)) else e, run=run)
        raise
    if run.funding is not None:
        run.funding.stop()
    monitor.close(summary, run=run)
    return summary


def _run_registered(env: Any, plan: Plan, run: PaperRun, engine: Any, journal: "J.Journal", strategy: Any,
                    view_factory: Callable[..., Any] | None) -> dict:
    """Register the run, trade until the source ends or a stop, seal the journal; the summary."""
    from sq.core import heap
    from sq.runs import lifecycle

    source = run.source
    venues = sorted({(i.venue or "").lower() for i in source.instruments.values()} - {""})
    with lifecycle.StopOnSignals(run.stop), \
            lifecycle.registered(engine.strategy, plan.venue if plan.live else ",".join(venues) or "replay", plan.symbols,
                                 mode="paper", journal=str(plan.journal_dir)), \
            lifecycle.resumable_on_error(journal, lambda e: isinstance(e, Exception) and _close_after_error(run, e)):
        if plan.resume is not None and plan.live:
            # the dead process's working orders died with its simulated venue: close them first,
            # then let the strategy trade again on the market as it is now
            now = time.time_ns()
            run.record(engine.cancel_all(now, "resume"), [("halt", {"ts": now, "reason": "resume", "by": "resume"})])
            engine.resume_trading()
        run.view = view_factory(plan, source) if view_factory is not None else None
        with heap.frozen():  # no collection mid-run walks the start-up's objects (sq.core.heap)
            if run.view is not None:
                with run.view:
                    run.run()
            else:
                run.run()
        summary = make_summary(run)
        for w in dict.fromkeys(engine.warnings):  # the engine's own (tick size inferred, a size below the lot, …)
            env.warn(w)
        if strategy.kind == "bar" and summary.get("bars", 0) < 2:
            # a signal at one bar's close trades in the next bar: fewer than two bars trade nothing
            env.warn(f"only {summary.get('bars', 0)} {summary.get('interval')} bar(s) in the run (the last one cut short "
                     f"by its end): strategy {strategy.name} needs a bar's close and the next bar to trade; run longer")
        if not plan.live:
            source.data.report(env, summary)
        journal.seal({"ts": time.time_ns(), "reason": run.stop_reason or "end", "summary": summary})
    return summary


def _close_after_error(run: PaperRun, error: Exception) -> bool:
    """On an error mid-run, still cancel every working order and seal the journal when the
    engine allows it (bad input data, a venue gone); if even that fails, leave the journal as it
    is — verified and resumable. Returns whether it was sealed. A full disk (`IOFailure`) leaves
    it unsealed, as the failed write cut it back: `--resume` continues it once there is room."""
    from sq.core.exits import IOFailure

    if isinstance(error, IOFailure):
        return False
    try:
        if run.stop_reason is None:
            run.stop_reason = "error"
        run.close_out()
        run.journal.seal({"ts": time.time_ns(), "reason": "error", "error": f"{type(error).__name__}: {error}"})
        return True
    except Exception:
        return False


def make_engine(plan: Plan, instruments: dict, config: Any) -> Any:
    """The engine with the run's parameters (defaults → config instruments → --param) and the
    exchange's rules (`marketrules`: trading hours, holidays, square-off, circuit limits)."""
    from sq.core.engine import make_engine
    from sq.core.engine import params as engine_params
    from sq.core.strategy import loader
    from sq.runs import marketrules
    from sq.venues.registry import trading_session

    symbols = sorted(instruments) or plan.symbols
    strategy = loader.load(plan.strategy)
    params = engine_params.resolve(strategy, symbols, config, plan.params) if symbols else {}
    if not symbols:  # a foreign stream without instrument metadata: one parameter set for all
        params = {engine_params.ALL: engine_params.resolve(strategy, [engine_params.ALL], config, [p for p in plan.params if "." not in p.split("=")[0]])[engine_params.ALL]}
    from sq.core.engine.runner import FillModelConfig

    fill = FillModelConfig.from_config(config, **plan.fill)
    fill.validate()
    engine = make_engine(strategy, dict(instruments), params, config=config, fill=fill, seed=plan.seed, session_of=trading_session)
    marketrules.apply(engine, instruments, config)
    from sq.runs import funding as FU

    files = [Path(p) for p in plan.funding]
    FU.apply(engine, instruments, config, FU.read(files), hours=FU.intervals(files))
    return engine


def warm_up(env: Any, config: Any, strategy: Any, *, calendar: bool = False, venues: tuple[str, ...] = ()) -> dict:
    """Load (or compile) every kernel the run uses and the Parquet writer before the source opens
    and the run registers itself (`sq.runs.warmup`: announced on stderr when it compiles)."""
    from sq.runs import warmup

    return warmup.warm_up(env, config, strategy, calendar=calendar, venues=venues, engine_warm_up=_ENGINE_WARM_UP)


_ENGINE_WARM_UP = None  # tests inject a slow engine warm-up here (None: the engine's own)


def live_venues(plan: Plan) -> tuple[str, ...]:
    """The venues a live run's source comes from (their own compiled code is warmed too)."""
    if not plan.live:
        return ()
    from sq.venues import registry

    return tuple(sorted({registry.venue_of(s) for s in plan.symbols}))


def needs_calendar(plan: Plan, config: Any) -> bool:
    """Whether a live run's engine gets a market calendar (a broker square-off path to warm up)."""
    from sq.runs.warmup import calendars_needed

    return plan.live and calendars_needed(plan.symbols, config)


def _start_record(plan: Plan, config: Any) -> dict:
    from sq import __version__
    from sq.runs import contracts

    return {
        "run_id": plan.run_id,
        "mode": "paper",
        "strategy": plan.strategy,
        "symbols": plan.symbols,
        "inputs": plan.inputs,
        "start": plan.window[0].isoformat() if plan.window[0] else None,
        "end": plan.window[1].isoformat() if plan.window[1] else None,
        "realtime": plan.realtime,
        "duration_ns": plan.duration_ns,
        "params": plan.params,
        "seed": plan.seed,
        "fill": plan.fill,
        "clean": asdict(plan.clean) if plan.clean is not None else None,
        "contracts": contracts.to_json(plan.contracts),
        "funding": list(plan.funding),
        "config": J.config_summary(config),
        "pid": os.getpid(),
        "argv": mask_argv(sys.argv[1:]),
        "ts": time.time_ns(),
        "version": __version__,
    }


def check_positions(engine: Any, loaded: "J.Loaded") -> None:
    """The restored engine must hold the positions the journal's fills add up to."""
    want = journal_positions(loaded)
    have = engine.summary().get("position") or {}
    for sym, qty in want.items():
        got = float(have.get(sym, 0.0))
        if not math.isclose(got, qty, rel_tol=1e-9, abs_tol=1e-9):
            raise DataError(f"journal {loaded.path}: the last checkpoint holds position {got:g} in {sym} but the fills add up to {qty:g}")


def make_summary(run: PaperRun) -> dict:
    """The summary document (the keys of `sq backtest --json`) plus the run's own facts.

    `elapsed_s` is the wall time of this process's run; `events_per_s` the engine's throughput
    (events per second of engine work, source waiting excluded), as in a backtest. `params` are
    the parameters each symbol ran with; `started`/`ended` ISO-8601 UTC wall times; numbers at
    the instruments' precision (`sq.core.summary.present`).
    """
    s = dict(run.engine.summary())
    s["strategy"] = run.engine.strategy
    s["symbols"] = list(run.plan.symbols) or s.get("symbols", [])
    s["elapsed_s"] = round(run.run_elapsed, 6)
    s["mode"] = "paper"
    s["source"] = "replay" if run.inputs_replayed else "live"
    s["run_id"] = run.plan.run_id
    s["journal"] = str(run.plan.journal_dir)
    s["stopped_by"] = run.stop_reason or ("for" if run.plan.duration_ns else "end")
    s["halted"] = run.halted_reason or None
    s["journal_fsyncs"] = run.journal.fsyncs
    s["checkpoint_s"] = round(run.checkpoint_s, 6)
    s["params"] = RS.params_used(run.engine.params, s["symbols"])
    s["started"], s["ended"] = RS.now_iso(run.started_ns), RS.now_iso(time.time_ns())
    return RS.present(s, run.engine.instruments)
