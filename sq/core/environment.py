"""The injected environment: the process's streams and whether each is a terminal.

Commands never look at `sys.stdout` or `os.isatty` directly; they ask the `Environment`
they are given, so tests can fake a terminal or a pipe (the httpie pattern). Whether stdout
is a terminal is decided by `os.isatty` on the real file descriptor — rich's own detection is
fooled by FORCE_COLOR / TTY_COMPATIBLE (README: Design).
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, field
from typing import IO, Any


def _isatty(stream: Any) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _ispipe(stream: Any) -> bool:
    """Whether `stream` is a pipe or socket (a reader downstream), not a terminal, a regular file
    or a device such as /dev/null."""
    import stat

    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _binary(stream: Any) -> IO[bytes]:
    return getattr(stream, "buffer", stream)


@dataclass
class Environment:
    """Streams and terminal flags, plus the global options every command sees."""

    stdin: IO[bytes] = field(default_factory=lambda: _binary(sys.stdin))
    stdout: IO[bytes] = field(default_factory=lambda: _binary(sys.stdout))
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool = field(default_factory=lambda: _isatty(sys.stdin))
    stdout_isatty: bool = field(default_factory=lambda: _isatty(sys.stdout))
    stderr_isatty: bool = field(default_factory=lambda: _isatty(sys.stderr))
    stdout_ispipe: bool = field(default_factory=lambda: _ispipe(sys.stdout))  # a reader downstream (not a file)
    debug: bool = False
    quiet: bool = False
    config_path: str | None = None
    console_width: int | None = None  # fixed width for tests; None = the terminal's

    def warn(self, message: str) -> None:
        """A one-line warning on stderr (suppressed by --quiet)."""
        if not self.quiet:
            print(f"sq: warning: {message}", file=self.stderr, flush=True)

    def info(self, message: str) -> None:
        """A one-line informational message on stderr (suppressed by --quiet)."""
        if not self.quiet:
            print(f"sq: {message}", file=self.stderr, flush=True)

    def write_json(self, doc: Any, *, indent: int | None = None) -> None:
        """One JSON document on stdout (`--json`): NaN/inf become null, NumPy values plain numbers."""
        import json

        self.stdout.write((json.dumps(_plain(doc), indent=indent, default=_json_default) + "\n").encode())
        self.stdout.flush()

    def console(self, *, stderr: bool = False):
        """A rich Console on stdout (or stderr), isolated from FORCE_COLOR/NO_COLOR/COLUMNS in tests."""
        from rich.console import Console

        is_tty = self.stderr_isatty if stderr else self.stdout_isatty
        target = self.stderr if stderr else _text(self.stdout)
        return Console(
            file=target,
            force_terminal=is_tty,
            width=self.console_width,
            color_system="auto" if is_tty else None,
            force_jupyter=False,
            legacy_windows=False,
            _environ={} if self.console_width else None,
        )


def _plain(v: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by None, recursively."""
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    np = sys.modules.get("numpy")  # never import NumPy just for this (sq kill stays light)
    if np is not None and isinstance(v, np.generic):
        return _plain(v.item())
    return v


def _json_default(o: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(o, np.ndarray):
        return _plain(o.tolist())
    return str(o)


class _TextOut(io.TextIOBase):
    """A text view of a binary stream that never closes it (a TextIOWrapper would, when collected)."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._stream.write(text.encode("utf-8"))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:  # the underlying stream belongs to the process, not to us
        self.flush()

    def detach(self) -> IO[bytes]:
        self.flush()
        return self._stream


def _text(stream: IO[bytes]) -> IO[str]:
    if isinstance(stream, io.TextIOBase):
        return stream  # type: ignore[return-value]
    return _TextOut(stream)
