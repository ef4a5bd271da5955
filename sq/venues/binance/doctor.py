"""What `sq doctor` asks Binance before the open: is each market's REST API reachable from here,
how far this machine's clock is from Binance's, and does Binance accept the account's key.

Binance rejects a signed request whose `timestamp` is more than 1000 ms ahead of its clock or
older than `recvWindow` (error -1021), so a clock off by a second fails every order: over 1000 ms
is a failure, over 250 ms a warning. The offset is the server's `serverTime` against the
midpoint of the request. The USD-M futures API is geo-restricted in places where spot is not: an
unreachable futures API is a warning (spot still trades), unreachable spot a failure.

Standard library only (like `kill`): a morning check from cron must not wait for the SDKs.
Secrets go into the signature and the key header only; no finding quotes either.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

from sq.venues.base import FAIL, OK, WARN, Check
from sq.venues.binance import kill
from sq.venues.binance.endpoints import FUTURES, PREFIXES, SPOT, endpoints
from sq.venues.panic import VenueError, request

CLOCK_FAIL_MS = 1000.0  # Binance refuses a timestamp this far ahead of its clock
CLOCK_WARN_MS = 250.0
FIX_CLOCK = "sync this machine's clock (timedatectl set-ntp true, or chronyc makestep)"


def clock_check(name: str, offset_ms: float) -> Check:
    """The verdict on a measured clock offset (positive: this machine is ahead)."""
    status = FAIL if abs(offset_ms) > CLOCK_FAIL_MS else WARN if abs(offset_ms) > CLOCK_WARN_MS else OK
    side = "ahead of" if offset_ms > 0 else "behind"
    return Check(name, status, f"this machine is {abs(offset_ms):.0f} ms {side} Binance's clock", "" if status == OK else FIX_CLOCK)


def checks(config: Any, env: Any = None) -> list[Check]:
    """Reachability and clock of spot and USD-M futures, then the key (if one is configured)."""
    acct = kill.account(config)
    used = acct is not None or any(i.symbol.upper().split(":", 1)[0] in PREFIXES for i in config.instruments)
    if not used:
        return [Check("binance", OK, "no Binance key and no Binance instruments configured: not checked")]
    eps = acct.endpoints if acct is not None else endpoints(config.binance, config.binance.testnet)
    out: list[Check] = []
    reachable = {}
    for market in (SPOT, FUTURES):
        url = eps.url(market, "time")
        host = urlparse(url).netloc
        try:
            sent = time.time()
            server_ms = float(request("GET", url, {})["serverTime"])
            back = time.time()
        except (VenueError, KeyError, TypeError, ValueError) as e:
            reachable[market] = False
            status = FAIL if market == SPOT else WARN
            out.append(Check(f"binance {market} API", status, f"{host}: {e}",
                             "check the network/firewall/proxy to " + host + ("" if market == SPOT else " (or ignore: spot does not need it)")))
            continue
        reachable[market] = True
        out.append(Check(f"binance {market} API", OK, f"{host} answered in {(back - sent) * 1000:.0f} ms"))
        out.append(clock_check(f"binance {market} clock", (sent + back) / 2 * 1000 - server_ms))
    if acct is None:
        out.append(Check("binance key", FAIL, "Binance instruments are configured but no key is", "sq auth binance"))
        return out
    if not reachable.get(SPOT):
        out.append(Check("binance key", WARN, "not checked: the spot API cannot be reached", "fix the spot API check above first"))
        return out
    try:
        doc = kill.BinanceKill(acct)._call(SPOT, "GET", "account")
    except VenueError as e:
        out.append(Check("binance key", FAIL, f"Binance refused the key: {e}",
                         "check the key's permissions and IP whitelist on Binance, then sq auth binance"))
        return out
    except Exception as e:  # noqa: BLE001 - an unreadable Ed25519 key file: AuthError names the file
        out.append(Check("binance key", FAIL, getattr(e, "message", str(e)), "sq auth binance"))
        return out
    can = doc.get("canTrade", True) if isinstance(doc, dict) else True
    out.append(Check("binance key", OK if can else FAIL, f"key {kill.credentials.mask(acct.credentials.api_key)} accepted"
                     + ("" if can else "; the account cannot trade"), "" if can else "enable trading for this key on Binance"))
    return out
