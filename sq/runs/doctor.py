"""Behind `sq doctor`: what a desk checks before the open, each finding ok/warn/fail with its fix.

This machine's part — credential file modes, free disk space against the recent write rate,
stale registry entries, the numba cache of the engine kernels, the configured markets' session
today — is read from disk; each account venue's part (endpoints reachable, clock offset, key or
token accepted, token expiry) comes from its `doctor` module (sq.venues.base). Nothing here
changes anything: the fix of each finding is a command the user runs.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any, Iterable

from sq.venues.base import FAIL, OK, WARN, Check

GIB = 1 << 30
MIB = 1 << 20
DISK_FAIL_BYTES = 200 * MIB
DISK_WARN_BYTES = 2 * GIB
DAYS_FAIL = 0.5  # at the recent write rate the disk fills within this many days
DAYS_WARN = 3.0
RATE_WINDOW_S = 86400.0
MAX_FILES_SCANNED = 200_000


def credential_files(config: Any) -> list[Check]:
    """Every existing credential file must be readable by its owner only (0600)."""
    from sq.venues.registry import secret_files

    out = []
    for p in secret_files(None, config):
        try:
            mode = stat.S_IMODE(os.stat(p).st_mode)
        except FileNotFoundError:
            continue
        except OSError as e:
            out.append(Check("credential file", WARN, f"{p}: cannot be read ({e.strerror})", f"check the permissions of {p}"))
            continue
        if mode & 0o077:
            out.append(Check("credential file", FAIL, f"{p} has mode {mode:04o}: others can read a secret", f"chmod 600 {p}"))
        else:
            out.append(Check("credential file", OK, f"{p} is {mode:04o}"))
    if not out:
        out.append(Check("credential files", OK, "none stored"))
    return out


def recent_bytes(root: Path, now: float, window_s: float = RATE_WINDOW_S) -> tuple[int, bool]:
    """Bytes of the files under `root` changed in the last `window_s` (and whether the scan was cut short)."""
    total, seen = 0, 0
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    seen += 1
                    if seen > MAX_FILES_SCANNED:
                        return total, True
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(Path(e.path))
                        elif e.is_file(follow_symlinks=False):
                            st = e.stat(follow_symlinks=False)
                            if now - st.st_mtime <= window_s:
                                total += st.st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total, False


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def disk_check(name: str, path: Path, free: int, written_per_day: int) -> Check:
    """The verdict on one file system's free space against what sq wrote to it in the last day."""
    days = free / written_per_day if written_per_day > 0 else None
    rate = f", {_size(written_per_day)} written in the last day" if written_per_day > 0 else ""
    if days is not None and days < 365:
        rate += f": full in {days:.1f} days at that rate"
    detail = f"{path}: {_size(free)} free{rate}"
    fix = f"free space on {path}'s file system, or move sq's data (SQ_HOME / [paths]) to a larger one"
    if free < DISK_FAIL_BYTES or (days is not None and days < DAYS_FAIL):
        return Check(name, FAIL, detail, fix)
    if free < DISK_WARN_BYTES or (days is not None and days < DAYS_WARN):
        return Check(name, WARN, detail, fix)
    return Check(name, OK, detail)


def disk_space(now: float) -> list[Check]:
    """Free space where sq writes recordings and journals (the data dir) and its state."""
    from sq.core import paths

    out, devices = [], set()
    for name, path in (("disk (data, journals)", paths.data_dir()), ("disk (state)", paths.state_dir())):
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            dev = os.stat(probe).st_dev
            usage = shutil.disk_usage(probe)
        except OSError as e:
            out.append(Check(name, WARN, f"{path}: {e.strerror}", f"check {path}"))
            continue
        if dev in devices:
            continue
        devices.add(dev)
        written, _ = recent_bytes(path, now) if path.exists() else (0, False)
        out.append(disk_check(name, path, usage.free, written))
    return out


def registry() -> list[Check]:
    """Registry entries of processes that are gone (a crash, kill -9), and runs that are alive."""
    from sq.core import runtime

    entries = runtime.list_procs(clean=False)
    alive = [e for e in entries if e.alive()]
    try:
        names = [n for n in os.listdir(runtime.procs_dir()) if n.endswith(".json") and not n.startswith(".")]
    except FileNotFoundError:
        names = []
    stale = len(names) - len(alive)
    out = [Check("running sq processes", OK, f"{len(alive)} running" + (f": {', '.join(f'{e.mode} pid {e.pid}' for e in alive)}" if alive else ""))]
    if stale > 0:
        out.append(Check("registry", WARN, f"{stale} entr{'y' if stale == 1 else 'ies'} of sq processes that are gone (a crash or kill -9)",
                         "sq status (removes them); continue a crashed run's journal with sq paper/live --resume DIR"))
    return out


def numba_cache() -> Check:
    """Whether the engine kernels are compiled and cached (else the first run compiles them)."""
    import importlib.util

    spec = importlib.util.find_spec("sq.core.engine.kernel")
    origin = Path(spec.origin) if spec and spec.origin else None
    places = [origin.parent / "__pycache__"] if origin else []
    if os.environ.get("NUMBA_CACHE_DIR"):
        places.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    stem = origin.stem if origin else "kernel"
    for place in places:
        if place.is_dir() and next(place.rglob(f"{stem}.*.nbi"), None) is not None:
            return Check("numba cache", OK, f"engine kernels cached in {place}")
    return Check("numba cache", WARN, "engine kernels are not compiled yet: the first run compiles them (about a minute)",
                 "run sq paper --strategy mm SIM:DEMO --for 1s once (or make demo) before the open")


def markets_today(config: Any, now: dt.datetime) -> list[Check]:
    """For each configured instrument's market: does it trade today (weekend, holiday)?"""
    from sq.venues.registry import market_calendar

    out, seen = [], set()
    symbols: Iterable[str] = [i.symbol for i in config.instruments]
    for symbol in symbols:
        try:
            cal = market_calendar(symbol, config)
        except Exception as e:  # noqa: BLE001 - an unknown venue: config check reports it
            out.append(Check(f"market {symbol}", WARN, getattr(e, "message", str(e))))
            continue
        if cal is None:
            key = "24/7"
            if key not in seen:
                seen.add(key)
                out.append(Check(f"market {symbol}", OK, "trades around the clock"))
            continue
        day = cal.local_day(int(now.timestamp() * 1e9))
        key = (cal.session, cal.holidays)
        if key in seen:
            continue
        seen.add(key)
        date = cal.date_of(day)
        why = cal.closed(day)
        if why:
            out.append(Check(f"market {symbol}", WARN, f"closed today ({date.isoformat()}, {why})", "nothing will trade today; no fix needed"))
        elif not cal.covers(day):
            out.append(Check(f"market {symbol}", WARN, f"open today by weekday, but sq's holiday list does not cover {date.year}",
                             "set [zerodha] holidays_file to this year's exchange holiday list"))
        else:
            out.append(Check(f"market {symbol}", OK, f"open today ({date.isoformat()}): {cal.session.describe()}"))
    return out


def venues(config: Any, env: Any) -> list[Check]:
    """Each account venue's own checks (endpoints, clock, credentials)."""
    from sq.venues.registry import ACCOUNT_VENUES, venue_module

    out = []
    for v in ACCOUNT_VENUES:
        try:
            out += venue_module(v, "doctor").checks(config, env)
        except Exception as e:  # noqa: BLE001 - one venue's failure never hides the others' findings
            out.append(Check(f"{v}", FAIL, f"the check itself failed: {getattr(e, 'message', None) or type(e).__name__}", "run with --debug"))
    return out


def run_doctor(env: Any) -> list[Check]:
    """Every check, this machine's first."""
    from sq.core.config import load_config
    from sq.core.exits import SqError

    now = time.time()
    out = [*disk_space(now), *registry(), numba_cache()]
    try:
        config = load_config(env)
    except SqError as e:
        return [Check("config", FAIL, e.message, "sq config check"), *out]
    out = [Check("config", OK, "loads and validates"), *credential_files(config), *out]
    out += markets_today(config, dt.datetime.fromtimestamp(now, dt.timezone.utc))
    out += venues(config, env)
    return out
