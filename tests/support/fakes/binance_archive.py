"""A local Binance public data archive (data.binance.vision) on 127.0.0.1, and its fixture.

    def test_x(binance_archive):          # registered for every test by tests/conftest.py
        archive = binance_archive()       # started, SQ_BINANCE_DATA_URL pointed at it
        archive.put_day(day_path("spot", "aggTrades", "BTCUSDT", day), csv_text)

It serves what a test puts in it as the real archive lays it out: the zip of one CSV and the
`.CHECKSUM` beside it (`<sha256 hex>  <file name>`), 404 (an S3-style XML body) for anything else.
`put_day` builds both from CSV text and can break them: a wrong checksum, or a zip cut short
(with a checksum of the cut file, so only the zip itself tells). Every GET is logged
(`requests`, `count`), and a path can be answered slowly (`delays`) for interruption tests.
`make_csv` writes real-shaped CSV text of every kind, `csv_rows` reads it back,
`expected_trades` / `expected_bars` are the rows sq must make of it, and
`rest_agg_trades` / `rest_klines` turn it into the REST answers of the same data (for the
`binance_fake`'s history endpoints).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest


def day_path(market: str, kind: str, symbol: str, day: dt.date, interval: str | None = None) -> str:
    """Where the archive keeps one day's zip (spot, or USD-M futures)."""
    root = "/data/futures/um/daily" if market == "futures" else "/data/spot/daily"
    if kind == "klines":
        return f"{root}/klines/{symbol}/{interval}/{symbol}-{interval}-{day.isoformat()}.zip"
    return f"{root}/{kind}/{symbol}/{symbol}-{kind}-{day.isoformat()}.zip"


def zip_of(name: str, text: str | bytes) -> bytes:
    """A zip holding one file `name` (as the archive's zips do)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, text if isinstance(text, bytes) else text.encode())
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# real-shaped archive CSV text

HEADERS = {
    ("futures", "trades"): "id,price,qty,quote_qty,time,is_buyer_maker",
    ("futures", "aggTrades"): "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",
    ("futures", "bookTicker"): "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time",
    ("futures", "klines"): "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore",
}
INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
               "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000}
SPOT_MICROS_FROM = dt.date(2025, 1, 1)  # spot files carry microseconds from this day on


def make_csv(kind: str, market: str, day: dt.date, n: int = 40, seed: int = 1, unit: str | None = None,
             start_hour: int = 0, interval: str = "1m") -> str:
    """`n` rows of `kind` for one UTC day, shaped as the archive writes them: spot without a
    header (prices with 8 decimals, True/False), futures with one (true/false); times in
    microseconds for spot days from 2025 on, else milliseconds (or as `unit` says). Trades fall
    from `start_hour` on; klines are `n` consecutive `interval` candles, one without volume."""
    rng = random.Random(seed)
    unit = unit or ("us" if market == "spot" and day >= SPOT_MICROS_FROM else "ms")
    per_ms = 1000 if unit == "us" else 1
    day_ms = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
    spot = market == "spot"
    px_fmt, qty_fmt = (".8f", ".8f") if spot else (".1f", ".3f")
    tick = 0.01 if spot else 0.1
    yes, no = ("True", "False") if spot else ("true", "false")
    lines = [HEADERS[(market, kind)]] if not spot else []
    if kind == "klines":
        step = INTERVAL_MS[interval]
        for i in range(n):
            o = round(60_000 + rng.randint(-500, 500) * tick, 2)
            h, lo, c = o + rng.randint(0, 50) * tick, o - rng.randint(0, 50) * tick, o + rng.randint(-50, 50) * tick
            vol = 0.0 if i == n // 2 else rng.randint(1, 100_000) / 1000
            quote = vol * (lo + h) / 2
            count = 0 if vol == 0 else rng.randint(1, 900)
            t = (day_ms + i * step) * per_ms
            close_t = (day_ms + (i + 1) * step - 1) * per_ms
            lines.append(f"{t},{o:{px_fmt}},{h:{px_fmt}},{lo:{px_fmt}},{c:{px_fmt}},{vol:{qty_fmt}},{close_t},{quote:.8f},{count},"
                         f"{vol / 2:{qty_fmt}},{quote / 2:.8f},0")
        return "\n".join(lines) + "\n"
    times = sorted(rng.randint((day_ms + start_hour * 3_600_000) * per_ms, (day_ms + 86_400_000) * per_ms - 1) for _ in range(n))
    ident = 3_000_000_000 + seed * 1_000_000
    for t in times:
        ident += rng.randint(1, 5)
        px = round(60_000 + rng.randint(-5_000, 5_000) * tick, 2)
        qty = rng.randint(1, 50_000) / 10_000 if spot else rng.randint(1, 5_000) / 1000
        maker = yes if rng.random() < 0.5 else no
        if kind == "trades":
            tail = ",True" if spot else ""
            lines.append(f"{ident},{px:{px_fmt}},{qty:{qty_fmt}},{px * qty:.8f},{t},{maker}{tail}")
        elif kind == "aggTrades":
            first = ident * 3
            tail = ",True" if spot else ""
            lines.append(f"{ident},{px:{px_fmt}},{qty:{qty_fmt}},{first},{first + rng.randint(0, 4)},{t},{maker}{tail}")
        elif kind == "bookTicker":
            bid = px
            ask = round(bid + rng.randint(1, 3) * tick, 2)
            lines.append(f"{ident},{bid:{px_fmt}},{qty:{qty_fmt}},{ask:{px_fmt}},{rng.randint(1, 9000) / 1000:{qty_fmt}},{t},{t + rng.randint(0, 9)}")
        else:
            raise ValueError(kind)
    return "\n".join(lines) + "\n"


def csv_rows(text: str) -> list[list[str]]:
    """The data rows of archive CSV text (a header row, if any, left out)."""
    return [line.split(",") for line in text.splitlines() if line and line[0].isdigit()]


def _ns(text: str, unit: str) -> int:
    return int(text) * (1_000 if unit == "us" else 1_000_000)


def expected_trades(kind: str, text: str, unit: str) -> list[dict]:
    """The market rows sq must make of trades/aggTrades CSV text (times in `unit`), as dicts."""
    time_col, maker_col = (4, 5) if kind == "trades" else (5, 6)
    return [{"ts": _ns(r[time_col], unit), "recv_ts": _ns(r[time_col], unit), "kind": 2, "side": -1 if r[maker_col].lower() == "true" else 1,
             "price": float(r[1]), "qty": float(r[2]), "orders": None, "seq": int(r[0])} for r in csv_rows(text)]


def expected_bars(text: str, unit: str) -> list[dict]:
    """The bars rows sq must make of klines CSV text, as dicts (symbol left out)."""
    return [{"ts": _ns(r[0], unit), "open": float(r[1]), "high": float(r[2]), "low": float(r[3]), "close": float(r[4]),
             "volume": float(r[5]), "trades": int(r[8]), "vwap": float(r[7]) / float(r[5]) if float(r[5]) > 0 else None, "oi": None}
            for r in csv_rows(text)]


def rest_agg_trades(text: str) -> list[dict]:
    """The REST `aggTrades` answer rows of the same trades (millisecond times)."""
    return [{"a": int(r[0]), "p": r[1], "q": r[2], "f": int(r[3]), "l": int(r[4]), "T": int(r[5]), "m": r[6].lower() == "true", "M": True}
            for r in csv_rows(text)]


def rest_klines(text: str) -> list[list]:
    """The REST `klines` answer rows of the same candles (millisecond times)."""
    return [[int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], int(r[8]), r[9], r[10], r[11]] for r in csv_rows(text)]


class FakeArchive:
    """The fake archive: `files` path → bytes; `start()` binds a port on 127.0.0.1."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.delays: dict[str, float] = {}  # path → seconds to wait before answering
        self.requests: list[tuple[str, int]] = []  # (path, status) of every GET
        self.lock = threading.Lock()
        self.http: ThreadingHTTPServer | None = None

    def put_day(self, path: str, csv_text: str | bytes, *, bad_checksum: bool = False, truncate: bool = False) -> bytes:
        """Serve `csv_text` zipped at `path` with its CHECKSUM; returns the zip as served."""
        name = path.rsplit("/", 1)[-1]
        data = zip_of(name[: -len(".zip")] + ".csv", csv_text)
        if truncate:
            data = data[: len(data) * 2 // 3]
        digest = hashlib.sha256(data).hexdigest()
        if bad_checksum:
            digest = hashlib.sha256(data + b"tampered").hexdigest()
        self.files[path] = data
        self.files[path + ".CHECKSUM"] = f"{digest}  {name}\n".encode()
        return data

    def count(self, path: str) -> int:
        """GETs of `path` so far (any answer)."""
        with self.lock:
            return sum(1 for p, _ in self.requests if p == path)

    def zip_requests(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.requests if p.endswith(".zip")]

    def start(self) -> "FakeArchive":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                return

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                body = fake.files.get(path)
                status = 200 if body is not None else 404
                if body is None:
                    body = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>"
                with fake.lock:  # counted on arrival, so a test can act while a slow answer is pending
                    fake.requests.append((path, status))
                delay = fake.delays.get(path, 0.0)
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/zip" if status == 200 else "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, name="fake-binance-archive", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture
def binance_archive(monkeypatch):
    """Factory: `binance_archive() -> FakeArchive`, started, with SQ_BINANCE_DATA_URL set."""
    made: list[FakeArchive] = []

    def make() -> FakeArchive:
        fake = FakeArchive().start()
        made.append(fake)
        monkeypatch.setenv("SQ_BINANCE_DATA_URL", fake.url)
        return fake

    yield make
    for fake in made:
        fake.stop()
