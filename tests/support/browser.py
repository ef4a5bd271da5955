"""Headless Chromium driven over the DevTools protocol (a websocket, the `websockets` package):
load a page, collect its console errors, uncaught exceptions and network requests, evaluate
JavaScript, take a screenshot; and a small PNG decoder (zlib + struct) to look at it.

Chromium starts with its own throw-away profile and `--remote-debugging-port=0`; the port it
picked is read from `DevToolsActivePort` in the profile directory. Everything waits by polling
with generous deadlines (the machine may be busy), never by a fixed sleep."""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-port=0"]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:", "devtools:")


def chromium_path() -> str | None:
    """The Chromium binary: /usr/bin/chromium, else `chromium` on PATH."""
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


@dataclass
class PageLog:
    """What a page did while it loaded: console errors, uncaught exceptions, log errors, requests."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    loaded: bool = False

    @property
    def errors(self) -> list[str]:
        return self.console_errors + self.exceptions + self.log_errors

    @property
    def remote_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]


class Browser:
    """One headless Chromium process and a websocket to it; `open(url)` gives a `Page`."""

    def __init__(self, binary: str | None = None, timeout: float = 120.0):
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="sq-chromium-")
        binary = binary or chromium_path()
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while True:
            if port_file.is_file():
                lines = port_file.read_text().splitlines()
                if len(lines) >= 2:
                    break
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited ({self.proc.returncode}): {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError("chromium did not write DevToolsActivePort")
            time.sleep(0.1)
        port, path = lines[0].strip(), lines[1].strip()
        self._stack = ExitStack()  # the connection as a context manager (websockets ≥ 17.1 warns otherwise)
        try:
            self.ws = self._stack.enter_context(connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=timeout))
        except BaseException:
            self.close()
            raise
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 120.0) -> dict[str, Any]:
        """A DevTools command and its answer; events that arrive meanwhile are kept in `events`."""
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {method}")
            m = json.loads(self.ws.recv(timeout=left))
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def pump(self, seconds: float) -> None:
        """Read events for up to `seconds` (returns early when none arrive for a while)."""
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                m = json.loads(self.ws.recv(timeout=max(0.01, min(0.5, deadline - time.monotonic()))))
            except TimeoutError:
                return
            except ConnectionClosed:
                return
            if "method" in m:
                self.events.append(m)

    def open(self, url: str, *, width: int = 1200, height: int = 900, timeout: float = 180.0) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + timeout
        while not page.collect().loaded:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            self.pump(0.5)
        return page

    def close(self) -> None:
        try:
            self._stack.close()
        except Exception:  # noqa: BLE001
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab attached over a flat session."""

    def __init__(self, browser: Browser, session: str):
        self.browser = browser
        self.session = session
        self.log = PageLog()

    def collect(self) -> PageLog:
        """Move the browser's events for this page into `log`."""
        rest = []
        for m in self.browser.events:
            if m.get("sessionId") != self.session:
                rest.append(m)
                continue
            method, p = m["method"], m.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                self.log.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                self.log.exceptions.append(str((d.get("exception") or {}).get("description") or d.get("text")))
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                self.log.log_errors.append(f"{e.get('source')}: {e.get('text')} {e.get('url', '')}")
            elif method == "Network.requestWillBeSent":
                self.log.requests.append(p.get("request", {}).get("url", ""))
            elif method == "Page.loadEventFired":
                self.log.loaded = True
        self.browser.events[:] = rest
        return self.log

    def evaluate(self, expression: str) -> Any:
        r = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 120.0) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.evaluate(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression} (last {v!r})")
            self.browser.pump(0.25)

    def screenshot(self, clip: dict[str, float] | None = None) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": 1}
            params["captureBeyondViewport"] = True
        return base64.b64decode(self.browser.send("Page.captureScreenshot", params, session=self.session)["data"])


# ----------------------------------------------------------------------------------------------
# PNG


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, channels, raw pixel bytes) of an 8-bit, non-interlaced RGB/RGBA/grey PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, (depth, interlace)
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    out = bytearray(stride * height)
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 255
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 255
        elif f == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return width, height, channels, bytes(out)


def colour_stats(png: bytes) -> tuple[int, float]:
    """(distinct colours, share of pixels that are not white) of a PNG."""
    width, height, ch, raw = decode_png(png)
    n = width * height
    colours = set()
    white = 0
    for i in range(0, len(raw), ch):
        px = raw[i:i + min(ch, 3)]
        colours.add(px)
        white += px == b"\xff\xff\xff"[:len(px)]
    return len(colours), 1.0 - white / max(1, n)
