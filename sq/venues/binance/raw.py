"""Raw captures (docs/streams.md): every WebSocket frame and REST answer the parser needs, as JSON Lines.

One object per line, in arrival order: `{"t": recv_ns, "src": "ws"|"rest", "venue": "binance",
"stream": url-or-path, "kind": "text", "data": text, "market": "spot"|"futures"}`. `market` is an
addition to the contract's keys: spot and futures share symbol names, so a replay needs to know
which market a frame came from (readers ignore keys they do not know; without it the market is
guessed from the URL). REST records are exchangeInfo and every depth snapshot, where they
happened in time, so `--replay` needs no network.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import IO, Iterator

from sq.core.exits import DataError, NoInputError
from sq.venues.binance.parser import loads

try:
    import orjson

    def _dumps(obj) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    import json

    def _dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


class RawWriter:
    """Appends records to a capture file; flushed after every burst so a crash loses little."""

    def __init__(self, path: str):
        self.path = path
        self._f: IO[bytes] = open(path, "wb")
        self.records = 0

    def write(self, t: int, src: str, stream: str, data: bytes | str, market: str) -> None:
        if isinstance(data, bytes):
            try:
                text, kind = data.decode("utf-8"), "text"
            except UnicodeDecodeError:
                text, kind = base64.b64encode(data).decode(), "binary"
        else:
            text, kind = data, "text"
        rec = {"t": int(t), "src": src, "venue": "binance", "stream": stream, "kind": kind, "data": text, "market": market}
        self._f.write(_dumps(rec) + b"\n")
        self.records += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


@dataclass(frozen=True)
class Record:
    t: int
    src: str
    stream: str
    data: bytes
    market: str


def guess_market(stream: str) -> str:
    s = stream.lower()
    return "futures" if ("/fapi/" in s or "fstream" in s or "binancefuture" in s) else "spot"


def read_records(path: str) -> Iterator[Record]:
    """Binance records of a capture, in order; other venues' records are skipped."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise NoInputError(f"raw capture {path} does not exist") from None
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = loads(line)
                if rec.get("venue", "binance") != "binance":
                    continue
                data = rec["data"]
                payload = base64.b64decode(data) if rec.get("kind") == "binary" else data.encode()
                stream = str(rec.get("stream", ""))
                yield Record(int(rec["t"]), str(rec["src"]), stream, payload, rec.get("market") or guess_market(stream))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise DataError(f"{path}:{lineno}: not a raw capture record ({type(e).__name__})") from None
