"""Where the Binance API key and secret come from, and where `sq auth binance` keeps them.

Order: the config / environment (`BINANCE_API_KEY`, `BINANCE_API_SECRET`), then the file
`<config dir>/binance.json` (mode 0600, written atomically by `sq auth binance`). Only masked
forms ever leave this module in printable values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sq.core import paths
from sq.core.config import Secret
from sq.core.exits import AuthError

FILE_NAME = "binance.json"


def mask(key: str | None) -> str:
    """`abcd…wxyz` for a long key, `***` otherwise."""
    if not key:
        return ""
    return f"{key[:4]}…{key[-4:]}" if len(key) >= 16 else "***"


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: Secret | None
    ed25519_key_file: str | None = None
    testnet: bool = False
    source: str = "config"  # config | file

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask(self.api_key)!r}, source={self.source!r}, testnet={self.testnet})"


def store_path(environ=None) -> Path:
    return paths.config_dir(environ) / FILE_NAME


def stored(environ=None) -> Credentials | None:
    p = store_path(environ)
    if not p.is_file():
        return None
    try:
        d = json.loads(p.read_text())
        return Credentials(d["api_key"], Secret(d["api_secret"]) if d.get("api_secret") else None,
                           d.get("ed25519_key_file"), bool(d.get("testnet", False)), "file")
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"{p} is not a Binance credentials file; re-run `sq auth binance`") from None


def save(creds: Credentials, environ=None) -> Path:
    doc = {"api_key": creds.api_key, "api_secret": creds.api_secret.reveal() if creds.api_secret else None,
           "ed25519_key_file": creds.ed25519_key_file, "testnet": creds.testnet}
    return paths.write_secret_file(store_path(environ), json.dumps(doc, indent=1))


def resolve(config, ed25519_key_file: str | None = None, environ=None) -> Credentials:
    """The credentials to use: config/environment first, else the stored file; AuthError if none."""
    b = config.binance
    if b.api_key and (b.api_secret or ed25519_key_file):
        return Credentials(b.api_key, b.api_secret, ed25519_key_file, b.testnet, "config")
    s = stored(environ)
    if s is not None:
        if ed25519_key_file:
            s = Credentials(s.api_key, s.api_secret, ed25519_key_file, s.testnet, s.source)
        return s
    raise AuthError("no Binance API key: set BINANCE_API_KEY and BINANCE_API_SECRET (environment, .env or the "
                    "[binance] config section), then run `sq auth binance` to verify and store them")
