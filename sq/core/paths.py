"""Where sq keeps its files (README: Configuration): config, state, cache and data directories.

By default these are the platform's per-user directories (platformdirs: `~/.config/sq`,
`~/.local/state/sq`, `~/.cache/sq`, `~/.local/share/sq` on Linux). When `SQ_HOME` is set,
everything lives under it instead (`$SQ_HOME/config`, `…/state`, `…/cache`, `…/data`), which is
how tests and throw-away runs isolate themselves from the user's real files.

Secrets and tokens are written with `write_secret_file`: mode 0600 from the first byte (the
file is created with that mode, never chmod'ed afterwards) and atomically (temp file + rename),
so a crash never leaves a half-written or briefly world-readable secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

APP = "sq"


def _home(environ: Mapping[str, str] | None) -> Path | None:
    env = os.environ if environ is None else environ
    home = env.get("SQ_HOME")
    return Path(home).expanduser() if home else None


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Directory of `sq.toml` / `config.json` and stored credentials."""
    home = _home(environ)
    if home is not None:
        return home / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Runtime state: the registry of running paper/live processes, cron locks."""
    home = _home(environ)
    if home is not None:
        return home / "state"
    import platformdirs

    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Re-downloadable data: instrument dumps, exchange info."""
    home = _home(environ)
    if home is not None:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """User data: recordings (default `sq record --out`), journals."""
    home = _home(environ)
    if home is not None:
        return home / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def ensure_dir(path: str | os.PathLike, mode: int = 0o700) -> Path:
    """Create `path` (and parents) if missing; new directories get `mode` (private by default)."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=mode)
    return p


def write_secret_file(path: str | os.PathLike, text: str | bytes) -> Path:
    """Write `text` to `path` atomically with mode 0600, creating a private parent dir if needed.

    The temp file is created with O_EXCL and mode 0600 in the target's directory, fsync'ed, then
    renamed over the target, so readers see either the old or the new content, never a mix, and
    the secret is never readable by others, not even for an instant.
    """
    target = Path(path)
    ensure_dir(target.parent)
    data = text.encode() if isinstance(text, str) else bytes(text)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask can only remove bits; make the mode exact anyway
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, target)
    try:
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return target


datasync = getattr(os, "fdatasync", os.fsync)  # a file's data (and its size when it changed) only; macOS has no fdatasync


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or a new file in `path` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
