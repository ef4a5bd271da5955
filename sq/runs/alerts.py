"""Alerts of a run through apprise URLs (`--alert URL`, `[monitoring] alerts`; docs/monitoring.md).

`Alerts.send(kind, subject, text)` never blocks and never raises: the alert goes into a bounded
queue that one daemon thread works off, sending to every channel (an `apprise.Apprise` of its
own per URL, so a failing channel is told apart from the others). What keeps it from slowing or
stopping a run:

  * dedupe and rate limit: the same (kind, subject) at most once per `min_interval_s`, and at
    most `BURST` alerts per minute in all (the end-of-run summary always goes);
  * a full queue (a channel that hangs) drops the alert and counts it — the trading loop never
    waits for a network;
  * a channel that fails (an error, a refusal, a 500) is reported once on stderr, masked, and
    tried again for later alerts without another word; nothing it does ends the run.

Alert URLs hold tokens and passwords: every place this module shows one goes through
`sq.core.redact` (`mask_url`, `scrub`), and apprise's own log output is switched off.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sq.core.exits import UsageError
from sq.core.redact import mask_url, scrub

QUEUE_SIZE = 256
BURST = 30  # alerts per minute at most, summary excepted
ALWAYS = ("summary",)  # kinds never deduplicated or rate-limited

KINDS = ("halt", "loss_limit", "breaker_open", "breaker_closed", "feed_down", "feed_back", "kill", "exit",
         "reconcile", "token_expiry", "summary")


@dataclass
class AlertCounts:
    sent: int = 0  # delivered to at least one channel
    failed: int = 0  # no channel took it
    suppressed: int = 0  # dropped as a duplicate or by the rate limit
    dropped: int = 0  # dropped because the queue was full (a slow channel)
    kinds: list = field(default_factory=list)  # the kinds accepted, in order

    def to_json(self) -> dict:
        return {"sent": self.sent, "failed": self.failed, "suppressed": self.suppressed, "dropped": self.dropped}


def _quiet_apprise() -> None:
    """apprise logs through `logging` (and Python's last-resort handler prints warnings to
    stderr): not a word of it, it may quote a URL."""
    import logging

    log = logging.getLogger("apprise")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    log.setLevel(logging.CRITICAL + 1)


def open_channels(urls: list[str]) -> list[Any]:
    """One `apprise.Apprise` per URL; a URL apprise cannot read is a usage error (masked)."""
    import warnings

    with warnings.catch_warnings():  # apprise's plugins import the deprecated `imghdr` on Python 3.11/3.12
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        _quiet_apprise()
        channels = []
        for url in urls:
            a = apprise.Apprise()
            if not a.add(url):
                raise UsageError(f"--alert {mask_url(url)}: not an alert URL apprise knows (see https://github.com/caronc/apprise/wiki)")
            channels.append(a)
    return channels


class Alerts:
    """The run's alert sender: `send` queues, a daemon thread delivers; `close` waits a bounded
    time for what is queued (the summary)."""

    def __init__(self, urls: list[str], *, warn: Callable[[str], None], title: str = "sq", min_interval_s: float = 300.0,
                 queue_size: int = QUEUE_SIZE, channels: list[Any] | None = None, clock: Callable[[], float] = time.monotonic):
        self.urls = list(urls)
        self.masked = [mask_url(u) for u in self.urls]
        self.channels = channels if channels is not None else open_channels(self.urls)
        self.warn = warn
        self.title = title
        self.min_interval_s = float(min_interval_s)
        self.clock = clock
        self.counts = AlertCounts()
        self._last: dict[tuple[str, str], float] = {}
        self._recent: list[float] = []
        self._failed_once: set[int] = set()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._deliver, name="sq-alerts", daemon=True)
        self._thread.start()

    # -- the run's side: never blocks
    def send(self, kind: str, text: str, *, subject: str = "", level: str = "warning") -> bool:
        """Queue one alert; False when it was deduplicated, rate-limited or the queue was full."""
        now = self.clock()
        if kind not in ALWAYS:
            key = (kind, subject)
            last = self._last.get(key)
            if last is not None and now - last < self.min_interval_s:
                self.counts.suppressed += 1
                return False
            self._recent = [t for t in self._recent if now - t < 60.0]
            if len(self._recent) >= BURST:
                self.counts.suppressed += 1
                return False
            self._last[key] = now
            self._recent.append(now)
        title = f"{self.title}: {kind.replace('_', ' ')}" + (f" ({subject})" if subject else "")
        try:
            self._queue.put_nowait((kind, title, text, level))
        except queue.Full:
            self.counts.dropped += 1
            return False
        self.counts.kinds.append(kind)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Let the queued alerts go out for at most `timeout` seconds, then stop the thread (a
        daemon: a hung channel never holds the process)."""
        self._closing.set()
        self._thread.join(timeout)

    # -- the thread's side
    def _deliver(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            kind, title, text, level = item
            delivered = False
            for i, channel in enumerate(self.channels):
                delivered |= self._one(i, channel, title, text, level)
            if delivered:
                self.counts.sent += 1
            else:
                self.counts.failed += 1

    def _one(self, i: int, channel: Any, title: str, text: str, level: str) -> bool:
        try:
            import apprise

            ok = bool(channel.notify(title=title, body=text, notify_type={"info": apprise.NotifyType.INFO, "failure": apprise.NotifyType.FAILURE}.get(level, apprise.NotifyType.WARNING)))
            why = "the channel refused it or could not be reached"
        except Exception as e:  # noqa: BLE001 - a channel never ends a run
            ok, why = False, scrub(f"{type(e).__name__}: {e}", self.urls)
        if not ok and i not in self._failed_once:
            self._failed_once.add(i)
            self.warn(f"alert channel {self.masked[i]}: not delivered ({why}); the run goes on, later failures of this channel are not reported")
        return ok


def config_alerts(env: Any, config: Any, title: str) -> "Alerts | None":
    """The config's alert URLs (`[monitoring] alerts`) as one-shot `Alerts` for a command that is
    not a run (`sq kill`, `sq reconcile`): None when none are configured or they cannot be used
    (said once as a warning). apprise is imported only when there are URLs."""
    from sq.core.exits import SqError

    urls = list(getattr(getattr(config, "monitoring", None), "alerts", ()) or ())
    if not urls:
        return None
    try:
        return Alerts(urls, warn=env.warn, title=title, min_interval_s=0.0)
    except SqError as e:
        env.warn(e.message)
        return None
