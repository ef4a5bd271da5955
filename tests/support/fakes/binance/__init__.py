"""A local Binance-protocol server for tests (see `server.py`), and the `binance_fake` fixture.

    def test_x(binance_fake):   # registered for every test by tests/conftest.py
        fake = binance_fake(faults=Faults(drop_every=40))   # started, env pointed at it
        ...

The fixture factory starts a `FakeBinance` on 127.0.0.1, sets the `SQ_BINANCE_*_URL` variables,
an isolated `SQ_HOME` and the fake account's API key/secret, and stops every fake it made.
"""

from __future__ import annotations

import pytest

from tests.support.fakes.binance.market import FakeMarket, SymbolSpec
from tests.support.fakes.binance.server import Account, FakeBinance, Faults

__all__ = ["Account", "FakeBinance", "FakeMarket", "Faults", "SymbolSpec", "binance_fake"]


@pytest.fixture
def binance_fake(tmp_path, monkeypatch):
    """Factory: `binance_fake(**FakeBinance kwargs) -> FakeBinance` (started, environment set)."""
    made: list[FakeBinance] = []

    def make(*, credentials: bool = True, **kw) -> FakeBinance:
        fake = FakeBinance(**kw).start()
        made.append(fake)
        for k, v in fake.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("SQ_HOME", str(tmp_path / "sqhome"))
        monkeypatch.delenv("SQ_CONFIG", raising=False)
        if credentials:
            monkeypatch.setenv("BINANCE_API_KEY", fake.account.api_key)
            monkeypatch.setenv("BINANCE_API_SECRET", fake.account.api_secret)
        else:
            monkeypatch.delenv("BINANCE_API_KEY", raising=False)
            monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
        return fake

    yield make
    for fake in made:
        fake.stop()
