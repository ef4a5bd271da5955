"""Request signing: HMAC-SHA256 (hex) with the API secret, or Ed25519 (base64) with a key file.

Binance signs the exact parameter string sent (REST: query string + body; WebSocket API: the
params sorted by name, `k=v&…`, without `signature`). The key material stays inside the signer;
its repr is masked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from sq.core.exits import AuthError


class Signer:
    """Signs payload strings; `kind` is "hmac" or "ed25519"."""

    def __init__(self, secret: str | None = None, ed25519_key_file: str | None = None):
        self._secret = secret
        self._ed = None
        self.key_file = ed25519_key_file
        if ed25519_key_file:
            try:
                from Crypto.PublicKey import ECC
                from Crypto.Signature import eddsa
            except ImportError:  # pragma: no cover - pycryptodome ships with python-binance
                raise AuthError("Ed25519 signing needs pycryptodome: pip install pycryptodome") from None
            try:
                self._ed = eddsa.new(ECC.import_key(Path(ed25519_key_file).read_text()), "rfc8032")
            except FileNotFoundError:
                raise AuthError(f"Ed25519 key file {ed25519_key_file} does not exist") from None
            except (ValueError, IndexError, TypeError):
                raise AuthError(f"{ed25519_key_file} is not an Ed25519 private key (PEM, PKCS#8)") from None
        elif not secret:
            raise AuthError("no Binance API secret: set BINANCE_API_SECRET (or run `sq auth binance`)")

    @property
    def kind(self) -> str:
        return "ed25519" if self._ed is not None else "hmac"

    def sign(self, payload: str) -> str:
        if self._ed is not None:
            return base64.b64encode(self._ed.sign(payload.encode())).decode()
        return hmac.new(self._secret.encode(), payload.encode(), hashlib.sha256).hexdigest()

    def ws_params(self, params: dict) -> dict:
        """WebSocket API params with `signature` over the sorted `k=v&…` string."""
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        return {**dict(sorted(params.items())), "signature": self.sign(payload)}

    def __repr__(self) -> str:
        return f"Signer({self.kind}, ***)"
