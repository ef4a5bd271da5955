"""`sq kill` against the local Binance fake, as the Binance kill tests drive it: an in-process
gateway on spot and futures (`binance_gateway`), resting orders placed through it
(`rest_orders`), the orders still open at the fake (`open_orders`), and `sq kill` as a real
subprocess (`sq_kill`)."""

from __future__ import annotations

import subprocess

from tests.support.process import SQ_BIN, subprocess_env


def binance_gateway():
    """The Binance order gateway of this process (spot and futures, no user-data stream)."""
    from sq.core.config import load_config
    from sq.venues.binance.gateway import BinanceGateway

    return BinanceGateway.open(load_config(), None, user_stream=False, markets=("spot", "futures"))


def rest_orders(fake, gw, symbol="BINANCE:BTCUSDT", n=3, side=1):
    """Place `n` orders on `symbol` through `gw`, each a tick further from the fake's touch, so
    they rest; returns their states (all accepted)."""
    from sq.venues.base import OrderRequest

    market = "futures" if symbol.startswith("BINANCE-FUT") else "spot"
    bid, ask = fake.market("BTCUSDT", market).best()
    out = []
    for i in range(n):
        px = (bid - 1 - i) if side > 0 else (ask + 1 + i)
        out.append(gw.place(OrderRequest(symbol, side, 0.01, round(px, 2))))
    assert all(o.status == "accepted" for o in out)
    return out


def open_orders(fake, market=None):
    """The fake's open orders (of one market, "spot" or "futures", or of both)."""
    return [o for o in fake.exchange.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED") and (market is None or o.market == market)]


def sq_kill(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([SQ_BIN, "kill", *args], capture_output=True, text=True, env=env or subprocess_env(), timeout=timeout)


def store_credentials(creds) -> None:
    """Store Binance credentials as `sq auth binance` does (the file must come out 0600)."""
    import os

    from sq.venues.binance import credentials

    path = credentials.save(creds)
    assert os.stat(path).st_mode & 0o777 == 0o600


def ed25519_key(tmp_path):
    """A fresh Ed25519 key: (its private PEM file, 0600; its public key PEM for the fake)."""
    import os

    from Crypto.PublicKey import ECC

    key = ECC.generate(curve="ed25519")
    pem = tmp_path / "ed25519.pem"
    pem.write_text(key.export_key(format="PEM"))
    os.chmod(pem, 0o600)
    return pem, key.public_key().export_key(format="PEM")
