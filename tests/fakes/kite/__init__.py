"""A local Kite Connect server for tests: REST (official mocks), web login with TOTP, and a binary
ticker driven by the SIM matching engine — all on 127.0.0.1.

    from tests.fakes.kite import kite_fake, kite_env   # pytest fixtures

`kite_fake` is a running `KiteFake`; `kite_env` also points sq at it (SQ_KITE_*_URL, ZKITE_*
credentials, an isolated SQ_HOME and working directory) and returns the fake.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "kite"
if not VECTORS.is_dir():  # the repo may live elsewhere than /work/main
    VECTORS = Path("/work/shared/vectors/kite")

# instruments the tests trade, added to the official dump sample (same columns)
EXTRA_ROWS = [
    "738561,2885,RELIANCE,RELIANCE INDUSTRIES,0.0,,0.0,0.05,1,EQ,NSE,NSE",
    "408065,1594,INFY,INFOSYS,0.0,,0.0,0.05,1,EQ,NSE,NSE",
    "884737,3456,TATAMOTORS,TATA MOTORS,0.0,,0.0,0.05,1,EQ,NSE,NSE",
    "256265,1001,NIFTY 50,NIFTY 50,0.0,,0.0,0.0,0,EQ,INDICES,NSE",
    "13238786,51714,NIFTY25DECFUT,NIFTY,0.0,2025-12-30,0.0,0.1,75,FUT,NFO-FUT,NFO",
    "412675,1612,USDINR25DECFUT,USDINR,0.0,2025-12-29,0.0,0.0025,1,FUT,CDS-FUT,CDS",
]
START_PRICES = {738561: 1400.0, 408065: 1570.0, 884737: 420.0, 256265: 24000.0, 13238786: 24100.0, 412675: 84.5}


class KiteFake:
    api_key = "kitetestkey"
    api_secret = "kite-test-secret-0123"
    user_id = "XX0000"
    password = "fake-password-9"
    totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    redirect_url = "http://127.0.0.1:9/callback"

    def __init__(self, *, seed: int = 7, interval: float = 0.05):
        from tests.fakes.kite.market import SimMarket

        self.lock = threading.RLock()
        base = (VECTORS / "instruments_all.csv").read_text()
        self.instruments_csv = base.rstrip("\n") + "\n" + "\n".join(EXTRA_ROWS) + "\n"
        import csv
        import io

        self.rows = {f"{r['exchange']}:{r['tradingsymbol']}".upper(): r for r in csv.DictReader(io.StringIO(self.instruments_csv))}
        specs = {}
        for r in self.rows.values():
            t = int(r["instrument_token"])
            if t in START_PRICES:
                tick = float(r["tick_size"]) or 0.05
                specs[t] = (f"{r['exchange']}:{r['tradingsymbol']}", tick, max(float(r["lot_size"]), 1.0), START_PRICES[t])
        self.market = SimMarket(specs, seed=seed, start_ns=time.time_ns())
        from tests.fakes.kite.matching import FakeMatching

        self.matching = FakeMatching(self)
        self.valid_tokens: set[str] = set()
        self.request_tokens: set[str] = set()
        self.enctokens: set[str] = set()
        self.login_requests: dict[str, str] = {}
        self.orders: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.circuits: dict[str, tuple[float, float]] = {}
        self.forced_error: tuple[int, str, str] | None = None  # next API call answers this error
        self.reject_orders: tuple[str, str] | None = None  # (error_type, message) for every placement
        self.rate_limit: float | None = None  # requests per second before 429
        self.paused = False
        self._ids = itertools.count(250101000000001)
        self._window: list[float] = []
        self.interval = interval
        self.http = None
        self.ticker = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> "KiteFake":
        from tests.fakes.kite.rest import serve
        from tests.fakes.kite.ticker import TickerServer

        self.http, _ = serve(self)
        self.ticker = TickerServer(self, self.interval)
        self.ticker.start()
        return self

    def stop(self) -> None:
        if self.ticker is not None:
            self.ticker.stop()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ticker.port}"

    def environ(self) -> dict[str, str]:
        """Environment variables that point sq at this fake with its credentials."""
        return {"SQ_KITE_ROOT_URL": self.root, "SQ_KITE_WS_URL": self.ws, "SQ_KITE_LOGIN_URL": self.root,
                "ZKITE_API_KEY": self.api_key, "ZKITE_API_SECRET": self.api_secret, "ZKITE_USER_ID": self.user_id,
                "ZKITE_PWD": self.password, "ZKITE_TOTP_SECRET": self.totp_secret}

    # ---------------------------------------------------------------- state helpers

    def mock(self, name: str) -> dict:
        return json.loads((VECTORS / f"{name}.json").read_text())

    def issue_token(self) -> str:
        import secrets

        tok = secrets.token_hex(16)
        self.valid_tokens.add(tok)
        return tok

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def next_order_id(self) -> str:
        return str(next(self._ids))

    def token_of(self, key: str) -> int | None:
        r = self.rows.get(key.upper())
        return int(r["instrument_token"]) if r else None

    def market_quote(self, token: int) -> dict:
        with self.lock:
            return self.market.quote_entry(token) if token in self.market.books else {"instrument_token": token}

    def circuit(self, key: str, token: int) -> tuple[float, float]:
        if key in self.circuits:
            return self.circuits[key]
        p = START_PRICES.get(token, 100.0)
        return round(p * 0.8, 2), round(p * 1.2, 2)

    def rate_limit_exceeded(self) -> bool:
        if self.rate_limit is None:
            return False
        now = time.monotonic()
        with self.lock:
            self._window = [t for t in self._window if now - t < 1.0] + [now]
            return len(self._window) > self.rate_limit

    def postback(self, order: dict) -> None:
        if self.ticker is not None:
            self.ticker.broadcast(json.dumps({"type": "order", "data": order}))


@pytest.fixture
def kite_fake():
    fake = KiteFake().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def kite_env(kite_fake, tmp_path, monkeypatch):
    for k, v in kite_fake.environ().items():
        monkeypatch.setenv(k, v)
    for k in ("ZKITE_ACCESS_TOKEN", "SQ_CONFIG", "SQ_DOTENV"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SQ_HOME", str(tmp_path / "sqhome"))
    monkeypatch.chdir(tmp_path)
    return kite_fake
