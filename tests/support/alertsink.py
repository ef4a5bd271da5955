"""A local HTTP sink for apprise's JSON webhook alerts (`json://127.0.0.1:PORT/...`), on 127.0.0.1.

`AlertSink(delay_s=…, status=…)` records every request body (parsed JSON) in arrival order;
`delay_s` makes it slow, `status` 500 makes it fail. Used as a context manager.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AlertSink:
    def __init__(self, *, delay_s: float = 0.0, status: int = 200):
        self.delay_s = delay_s
        self.status = status
        self.bodies: list[bytes] = []
        self.alerts: list[dict] = []
        self.paths: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if sink.delay_s:
                    time.sleep(sink.delay_s)
                sink.bodies.append(body)
                sink.paths.append(self.path)
                try:
                    sink.alerts.append(json.loads(body))
                except ValueError:
                    sink.alerts.append({"raw": body.decode("utf-8", "replace")})
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def wait_for(self, pred, timeout: float = 60.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred(self.alerts):
                return True
            time.sleep(0.05)
        return pred(self.alerts)

    def __enter__(self) -> "AlertSink":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
