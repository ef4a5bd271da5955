"""The runtime registry of trading processes and the cron lock (docs/streams.md).

Every running `sq paper`, `sq live` and `sq record` writes one small JSON file,
`state_dir()/procs/<pid>.json`, saying who it is (pid, strategy, venue, symbols, mode, journal
directory, start time) and removes it when it exits; beside it, `<pid>.beat`, a heartbeat it
rewrites about once a second (events, position, PnL, working orders, breaker, feed). `sq kill`
reads this directory to find what to halt (paper and live); `sq status` to show every run. Entries whose process is gone (a crash, `kill -9`) are ignored and deleted on sight; an
entry also records the kernel's start time of its pid, so a recycled pid is not mistaken for it.

`try_lock(name)` is the non-blocking `flock` that keeps overlapping cron runs apart: when another
process holds the lock it raises `TempFailure` (exit 75, "try again later").

Standard library only: `sq kill` imports this and must start fast (no numba, polars, pyarrow).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from sq.core import paths
from sq.core.exits import TempFailure


TRADING_MODES = ("paper", "live")  # what `sq kill` halts; `record` entries are only shown by `sq status`


def procs_dir() -> Path:
    """Where process entries live: `state_dir()/procs`."""
    return paths.state_dir() / "procs"


def locks_dir() -> Path:
    """Where cron lock files live: `state_dir()/locks`."""
    return paths.state_dir() / "locks"


def proc_start_ticks(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot, /proc/PID/stat field 22), or None.

    Together with the pid it identifies one process for its whole life, even after pid reuse.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    rest = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def pid_state(pid: int) -> str | None:
    """The /proc state letter of `pid` (R, S, D, Z, T…), or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        try:  # no procfs: fall back to a null signal
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"
    rest = stat[stat.rfind(b")") + 2 :].split()
    return rest[0].decode() if rest else "?"


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether `pid` is a live process (not a zombie) — the same one, when `start_ticks` is given."""
    state = pid_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    if start_ticks is not None:
        now = proc_start_ticks(pid)
        if now is not None and now != start_ticks:
            return False  # the pid was recycled by another process
    return True


@dataclass
class ProcEntry:
    """One registered trading process, as stored in its registry file."""

    pid: int
    strategy: str
    venue: str
    symbols: list[str]
    mode: str  # paper | live | record
    journal: str
    started_ns: int = field(default_factory=time.time_ns)
    start_ticks: int | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return procs_dir() / f"{self.pid}.json"

    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_ticks)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ProcEntry":
        return cls(
            pid=int(d["pid"]),
            strategy=str(d.get("strategy", "")),
            venue=str(d.get("venue", "")),
            symbols=[str(s) for s in d.get("symbols", [])],
            mode=str(d.get("mode", "paper")),
            journal=str(d.get("journal", "")),
            started_ns=int(d.get("started_ns", 0)),
            start_ticks=d.get("start_ticks"),
            argv=[str(a) for a in d.get("argv", [])],
        )


class Registration:
    """This process's registry entry; a context manager that removes the entry on exit."""

    def __init__(self, entry: ProcEntry):
        self.entry = entry
        self.path = entry.path

    def __enter__(self) -> "Registration":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        _unlink(self.path)
        _unlink(halt_path(self.entry.pid))
        _unlink(beat_path(self.entry.pid))


def halt_path(pid: int) -> Path:
    """`procs/<pid>.halt`: written by `sq kill` just before its SIGTERM, so the process can tell a
    halt by `sq kill` (exit 0) from any other SIGTERM (exit 143; README: Exit codes)."""
    return procs_dir() / f"{pid}.halt"


def beat_path(pid: int) -> Path:
    """`procs/<pid>.beat`: the run's heartbeat, a small JSON document it rewrites (atomically)
    about once a second — what `sq status` shows without ever talking to the process."""
    return procs_dir() / f"{pid}.beat"


def write_beat(doc: dict, pid: int | None = None) -> None:
    """Replace this process's heartbeat with `doc` (write a temporary file, then rename: a reader
    sees the old document or the new one, never half of one). A failing write (a full disk) is
    ignored: the heartbeat's age then tells `sq status` the run is not reporting."""
    pid = os.getpid() if pid is None else pid
    path = beat_path(pid)
    tmp = path.with_name(f".{pid}.beat.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        _unlink(tmp)


def read_beat(pid: int) -> dict | None:
    """The last heartbeat of process `pid`, or None (none written yet, or unreadable)."""
    try:
        doc = json.loads(beat_path(pid).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def request_halt(entry: ProcEntry) -> None:
    """Mark `entry` as halted by `sq kill` (the marker names the process's start time, so a
    recycled pid never inherits it)."""
    try:
        halt_path(entry.pid).write_text(str(entry.start_ticks), encoding="utf-8")
    except OSError:
        pass  # then the process reports an ordinary SIGTERM


def halt_requested(pid: int | None = None) -> bool:
    """Whether `sq kill` asked process `pid` (default: this one) to halt."""
    pid = os.getpid() if pid is None else pid
    try:
        return halt_path(pid).read_text(encoding="utf-8") == str(proc_start_ticks(pid))
    except OSError:
        return False


def register(strategy: str, venue: str, symbols: list[str], *, mode: str, journal: str, argv: list[str] | None = None) -> Registration:
    """Register the current process (atomic write of `procs/<pid>.json`); remove it with the result."""
    import sys

    from sq.core.redact import mask_argv

    pid = os.getpid()
    entry = ProcEntry(
        pid=pid,
        strategy=strategy,
        venue=venue,
        symbols=list(symbols),
        mode=mode,
        journal=str(journal),
        start_ticks=proc_start_ticks(pid),
        argv=mask_argv(sys.argv if argv is None else argv),  # an --alert URL's token never lands in the registry
    )
    d = paths.ensure_dir(procs_dir())
    tmp = d / f".{pid}.json.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(entry.to_json(), f)
    os.replace(tmp, entry.path)
    return Registration(entry)


def list_procs(*, clean: bool = True) -> list[ProcEntry]:
    """Registered processes that are alive, oldest first; dead or unreadable entries are deleted
    (when `clean`) and skipped."""
    d = procs_dir()
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        p = d / name
        try:
            entry = ProcEntry.from_json(json.loads(p.read_text(encoding="utf-8")))
        except FileNotFoundError:
            continue  # removed while we looked: it exited
        except (OSError, ValueError, KeyError, TypeError):
            if clean and _older_than(p, 5.0):  # not a registration being written right now
                _unlink(p)
            continue
        if entry.alive():
            out.append(entry)
        elif clean:
            _unlink(p)
            _unlink(halt_path(entry.pid))
            _unlink(beat_path(entry.pid))
    out.sort(key=lambda e: (e.started_ns, e.pid))
    return out


def is_registered_pid(pid: int | None = None) -> bool:
    """Whether process `pid` (default: this one) has a registry entry."""
    return (procs_dir() / f"{os.getpid() if pid is None else pid}.json").exists()


def is_registered(entry: ProcEntry) -> bool:
    """Whether the entry's file is still there (a clean exit removes it)."""
    return entry.path.exists()


def _older_than(p: Path, seconds: float) -> bool:
    try:
        return time.time() - p.stat().st_mtime > seconds
    except OSError:
        return False


def _unlink(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


@contextmanager
def try_lock(name: str, *, what: str | None = None) -> Iterator[Path]:
    """Hold the non-blocking exclusive `flock` `state_dir()/locks/<name>.lock` for the block.

    Another holder (an overlapping cron run) → `TempFailure` (exit 75). The kernel drops the lock
    when the holder dies, so a crashed run never leaves a stale lock behind.
    """
    import fcntl

    d = paths.ensure_dir(locks_dir())
    path = d / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TempFailure(f"{what or name} is already running (lock {path} is held); try again later") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)
