"""`sq auth binance [--testnet] [--ed25519-key FILE]` and the Binance part of `sq auth status`.

login: take the key and secret from the config / `BINANCE_API_KEY` + `BINANCE_API_SECRET` (or a
prompt on a terminal), verify them with a signed account request, then store them (0600) in the
config dir. The summary reports permissions (spot trading, futures), the server clock offset and
the request weight used; a wrong secret is exit 77 with a hint. Nothing printed or raised here
ever contains the secret; the key is shown masked.
"""

from __future__ import annotations

from sq.core.config import Secret
from sq.core.exits import AuthError, SqError, UsageError
from sq.venues.binance import credentials
from sq.venues.binance.credentials import Credentials, mask
from sq.venues.binance.endpoints import FUTURES, SPOT, endpoints


def _prompt(env) -> Credentials:
    """Ask on a terminal (never when stdin is not one: cron and scripts must not hang)."""
    if not getattr(env, "stdin_isatty", False):
        raise AuthError("no Binance API key: set BINANCE_API_KEY and BINANCE_API_SECRET (environment, .env or the "
                        "[binance] config section); sq prompts only on a terminal")
    import getpass

    key = input("Binance API key: ").strip()
    secret = getpass.getpass("Binance API secret (not shown): ").strip()
    if not key or not secret:
        raise AuthError("an API key and secret are both needed")
    return Credentials(key, Secret(secret), None, False, "prompt")


def require_credentials(config) -> None:
    """A key and secret are configured or stored (else AuthError 77 naming how to provide them);
    no network: `sq live` calls this before it opens any connection."""
    credentials.resolve(config)


def login(env, config, options) -> dict:
    from sq.venues.binance.rest import BinanceRest

    testnet = bool(getattr(options, "testnet", False))
    ed_key = getattr(options, "ed25519_key", None)
    if getattr(options, "request_token", None):
        raise UsageError("--request-token is Zerodha's login (sq auth zerodha --request-token TOKEN); Binance uses an API key")
    try:
        creds = credentials.resolve(config, ed_key)
    except AuthError:
        creds = _prompt(env)
        if ed_key:
            creds = Credentials(creds.api_key, creds.api_secret, ed_key, creds.testnet, creds.source)
    testnet = testnet or creds.testnet or config.binance.testnet
    ep = endpoints(config.binance, testnet)
    secret = creds.api_secret.reveal() if creds.api_secret else None
    rest = BinanceRest(ep, creds.api_key, None if creds.ed25519_key_file else secret, creds.ed25519_key_file, max_retries=1)
    offset = rest.sync_time(SPOT)
    try:
        account = rest.call(SPOT, "get", "account", signed=True, weight=20, what="account check")
    except SqError as e:
        if e.status == AuthError.status:
            hint = {
                -1022: "the secret does not match the key (or the key is Ed25519/RSA: pass --ed25519-key FILE)",
                -2014: "the API key is malformed",
                -2015: "the key is unknown, restricted to other IPs, or lacks permissions",
                -1021: "the local clock is far off (check NTP)",
            }.get(getattr(e, "code", None), "check the key and secret")
            raise AuthError(f"Binance rejected the key {mask(creds.api_key)}: {hint}. "
                            "Fix BINANCE_API_KEY/BINANCE_API_SECRET and run `sq auth binance` again.") from None
        raise
    spot_perm = bool(account.get("canTrade")) and ("SPOT" in (account.get("permissions") or ["SPOT"]) or account.get("accountType") == "SPOT")
    futures = "no"
    try:
        fa = rest.call(FUTURES, "get", "account", signed=True, weight=5, version=2, what="futures account check")
        futures = "yes" if fa.get("canTrade", True) else "read-only"
    except SqError as e:
        futures = f"no ({e.message.split(': ', 1)[-1][:80]})"
    to_store = Credentials(creds.api_key, creds.api_secret, creds.ed25519_key_file, testnet, "file")
    path = credentials.save(to_store)
    return {
        "state": "verified",
        "key": mask(creds.api_key),
        "signing": "ed25519" if creds.ed25519_key_file else "hmac-sha256",
        "testnet": testnet,
        "spot_trading": "yes" if spot_perm else "no",
        "futures_trading": futures,
        "account_type": account.get("accountType", ""),
        "permissions": ",".join(account.get("permissions") or []),
        "clock_offset_ms": offset,
        "weight_used_1m": rest.limits.used_weight,
        "weight_limit_1m": rest.limits.weight_1m,
        "stored": str(path),
        "endpoint": ep.rest_url,
    }


def status(env, config) -> dict:
    """What is configured or stored, masked; no network."""
    b = config.binance
    try:
        s = credentials.stored()
    except AuthError as e:
        return {"state": "broken", "detail": e.message}
    if b.api_key:
        return {"state": "configured", "key": mask(b.api_key), "secret": "set" if b.api_secret else "missing",
                "testnet": b.testnet, "stored": "yes" if s else "no"}
    if s is not None:
        return {"state": "stored", "key": mask(s.api_key), "signing": "ed25519" if s.ed25519_key_file else "hmac-sha256",
                "testnet": s.testnet, "file": str(credentials.store_path())}
    return {"state": "missing", "detail": "run `sq auth binance` with BINANCE_API_KEY/BINANCE_API_SECRET set"}
