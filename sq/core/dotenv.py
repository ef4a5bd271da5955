"""A tiny `.env` reader (README: Design): `KEY=VALUE` lines, read from the working directory
or an explicit path only — never searched for up the tree, so a stray `.env` elsewhere cannot
change what a cron job does.

Supported syntax, the common subset every dotenv tool agrees on: blank lines and `# comments`,
an optional `export ` prefix, unquoted values (a ` #` starts a trailing comment, surrounding
spaces are dropped), 'single-quoted' values taken literally, and "double-quoted" values with
\\n, \\t, \\", \\\\ escapes. No variable interpolation. The values never override variables that are
really set in the environment: `merge_environ` layers them underneath.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

from sq.core.exits import ConfigError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_dotenv(text: str, *, name: str = ".env") -> dict[str, str]:
    """Parse dotenv text into a dict; a malformed line is a ConfigError naming file and line.

    Error messages name the line and the key, never the value (values are often secrets).
    """
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        if "=" not in line:
            raise ConfigError(f"{name}:{lineno}: expected KEY=VALUE")
        key, value = line.split("=", 1)
        key = key.strip()
        if not _KEY.match(key):
            raise ConfigError(f"{name}:{lineno}: invalid variable name {key[:40]!r}")
        out[key] = _value(value.strip(), name, lineno, key)
    return out


def _value(v: str, name: str, lineno: int, key: str) -> str:
    if v[:1] == "'":
        end = v.find("'", 1)
        if end < 0:
            raise ConfigError(f"{name}:{lineno}: unterminated quote in the value of {key}")
        return v[1:end]
    if v[:1] == '"':
        buf = []
        i = 1
        while i < len(v):
            c = v[i]
            if c == "\\" and i + 1 < len(v):
                buf.append(_ESCAPES.get(v[i + 1], "\\" + v[i + 1]))
                i += 2
                continue
            if c == '"':
                return "".join(buf)
            buf.append(c)
            i += 1
        raise ConfigError(f"{name}:{lineno}: unterminated quote in the value of {key}")
    m = re.search(r"\s#", v)
    if m:
        v = v[: m.start()]
    return v.strip()


def read_dotenv(path: str | os.PathLike | None = None, *, cwd: str | os.PathLike | None = None) -> dict[str, str]:
    """Read `path`, or `.env` in `cwd` (default: the working directory) when it exists.

    An explicit path that does not exist is a ConfigError; a missing `./.env` is simply empty.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: .env file not found")
    else:
        p = Path(cwd or os.getcwd()) / ".env"
        if not p.is_file():
            return {}
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read .env file: {getattr(e, 'strerror', None) or type(e).__name__}") from None
    return parse_dotenv(text, name=str(p))


def merge_environ(dotenv: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The effective environment: dotenv values underneath, real environment variables on top."""
    merged = dict(dotenv)
    merged.update(environ)
    return merged
