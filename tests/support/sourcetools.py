"""Reusable checks of a venue market source's `connected` flag against a local fake, the same for
every venue: the flag sampled through an outage in which the server accepts each reconnect and
hangs up at once."""

from __future__ import annotations

import threading
import time
from typing import Callable


def _wait_connected(src, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not src.connected and time.monotonic() < deadline:
        time.sleep(0.005)
    return bool(src.connected)


def connected_through_outage(src, outage: Callable[[float], None], handshakes: Callable[[], int],
                             outage_s: float = 1.5) -> tuple[list[bool], int, bool]:
    """Read `src` in a thread; once connected, start `outage(outage_s)` and sample `src.connected`
    every 0.5 ms for most of it. Returns (samples, reconnect handshakes the server saw meanwhile,
    connected again after the outage). The source is closed at the end."""
    reader = threading.Thread(target=lambda: [None for _ in src.batches()], daemon=True)
    reader.start()
    try:
        assert _wait_connected(src), "never connected"
        before = handshakes()
        outage(outage_s)
        time.sleep(0.1)  # the close reaches the client
        samples, end = [], time.monotonic() + outage_s - 0.2
        while time.monotonic() < end:
            samples.append(bool(src.connected))
            time.sleep(0.0005)
        attempts = handshakes() - before
        back = _wait_connected(src)
    finally:
        src.close()
        reader.join(30)
    return samples, attempts, back
