"""Raw capture files (docs/streams.md): JSON Lines, one record per ticker frame or REST answer.

`{"t": recv_ns, "src": "ws"|"rest", "venue": "zerodha", "stream": url-or-path, "kind": "text"|"binary",
"data": text or base64}` in arrival order. A Zerodha capture starts with the `/instruments` CSV
(header + the subscribed rows) so a replay needs no network; binary frames keep their exact bytes,
heartbeats included. Ticker URLs are written without their credentials.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from sq.core.exits import DataError, NoInputError


@dataclass(frozen=True)
class RawRecord:
    t: int
    src: str
    stream: str
    kind: str
    data: bytes | str  # bytes for binary frames, str for text


class RawWriter:
    """Appends records to a capture file; `flush()` after each burst so a crash loses little."""

    def __init__(self, path: str | Path):
        p = Path(path)
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        self.f: IO[str] = open(p, "w", encoding="utf-8")

    def write(self, t: int, src: str, stream: str, data: bytes | str) -> None:
        if isinstance(data, (bytes, bytearray, memoryview)):
            rec = {"t": t, "src": src, "venue": "zerodha", "stream": stream, "kind": "binary", "data": base64.b64encode(bytes(data)).decode()}
        else:
            rec = {"t": t, "src": src, "venue": "zerodha", "stream": stream, "kind": "text", "data": data}
        self.f.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        if not self.f.closed:
            self.f.close()


def read_raw(path: str | Path) -> Iterator[RawRecord]:
    """Records of a capture in file order; a malformed line is a DataError naming the line."""
    p = Path(path)
    if not p.is_file():
        raise NoInputError(f"{path}: raw capture file not found")
    with open(p, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                if d.get("venue", "zerodha") != "zerodha":
                    raise DataError(f"{path}:{i}: a {d.get('venue')} capture, not a Zerodha one")
                data = base64.b64decode(d["data"]) if d["kind"] == "binary" else d["data"]
                yield RawRecord(int(d["t"]), d["src"], d.get("stream", ""), d["kind"], data)
            except (ValueError, KeyError, TypeError):
                raise DataError(f"{path}:{i}: not a raw capture record") from None
