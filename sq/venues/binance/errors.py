"""Binance error codes → clear messages and the sq exit status each one deserves.

Binance answers `{"code": -N, "msg": "…"}`; HTTP 429 means "back off" (Retry-After) and HTTP 418
an IP ban for continuing after a 429. Messages never include request parameters or keys.
"""

from __future__ import annotations

import json

from sq.core.exits import AuthError, SqError, TempFailure, UsageError, VenueUnavailable

# code → (message, exception class)
ERRORS: dict[int, tuple[str, type[SqError]]] = {
    -1000: ("unknown error at Binance while processing the request", VenueUnavailable),
    -1001: ("Binance internal error: disconnected; retry", VenueUnavailable),
    -1002: ("not authorized for this request (API key missing or lacks the permission)", AuthError),
    -1003: ("too many requests: request weight or connection limit exceeded; back off", TempFailure),
    -1006: ("unexpected response from Binance's message bus; the order state is unknown — check open orders", VenueUnavailable),
    -1007: ("timeout waiting for Binance's backend; the order state is unknown — check open orders", VenueUnavailable),
    -1008: ("Binance server is overloaded; retry later", TempFailure),
    -1013: ("order rejected by a symbol filter (price, lot size or notional)", UsageError),
    -1014: ("unsupported order combination", UsageError),
    -1015: ("too many new orders: order-count limit exceeded; back off", TempFailure),
    -1016: ("this service is no longer available", VenueUnavailable),
    -1021: ("timestamp outside recvWindow: the local clock is off from Binance's (sq syncs with server time; check NTP)", AuthError),
    -1022: ("signature for this request is not valid: wrong API secret, or a key of another type (HMAC vs Ed25519)", AuthError),
    -1100: ("illegal characters in a parameter", UsageError),
    -1101: ("too many parameters", UsageError),
    -1102: ("a mandatory parameter was missing or empty", UsageError),
    -1103: ("an unknown parameter was sent", UsageError),
    -1104: ("not all sent parameters were read", UsageError),
    -1105: ("a parameter was empty", UsageError),
    -1106: ("a parameter was sent when not required", UsageError),
    -1111: ("precision is over the maximum defined for this asset", UsageError),
    -1112: ("no orders on the book for this symbol", UsageError),
    -1114: ("timeInForce sent when not required", UsageError),
    -1115: ("invalid timeInForce", UsageError),
    -1116: ("invalid order type", UsageError),
    -1117: ("invalid side", UsageError),
    -1118: ("new client order id was empty", UsageError),
    -1119: ("original client order id was empty", UsageError),
    -1120: ("invalid interval", UsageError),
    -1121: ("invalid symbol", UsageError),
    -1125: ("this listenKey does not exist", VenueUnavailable),
    -1127: ("lookup interval is too big", UsageError),
    -1128: ("invalid combination of optional parameters", UsageError),
    -1130: ("invalid data sent for a parameter", UsageError),
    -1131: ("recvWindow must be less than 60000", UsageError),
    -2010: ("new order rejected", UsageError),
    -2011: ("cancel rejected (unknown or already closed order)", UsageError),
    -2013: ("no such order", UsageError),
    -2014: ("API key format invalid", AuthError),
    -2015: ("invalid API key, IP, or permissions for this action", AuthError),
    -2019: ("margin is insufficient", UsageError),
    -2022: ("reduceOnly order rejected", UsageError),
    -4003: ("quantity less than or equal to zero", UsageError),
    -4046: ("no need to change margin type", UsageError),
    -4059: ("no need to change position side", UsageError),
    -4164: ("order notional must be at least the minimum notional", UsageError),
}


class BinanceError(SqError):
    """A Binance error answer: keeps `code`, `http_status` and Retry-After for the caller."""

    def __init__(self, message: str, *, code: int | None, http_status: int | None, retry_after: float | None = None, status=None):
        super().__init__(message, status=status)
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after


def explain(code: int | None, msg: str, http_status: int | None, what: str) -> tuple[str, type[SqError]]:
    if http_status == 418:
        return f"binance {what}: IP banned (HTTP 418) for continuing after rate-limit warnings; wait before retrying", TempFailure
    if http_status == 429:
        return f"binance {what}: rate limited (HTTP 429); back off", TempFailure
    known = ERRORS.get(code) if code is not None else None
    if known:
        text, cls = known
        extra = f" ({msg})" if msg and msg.lower().rstrip(".") not in text.lower() else ""
        if code == -1022:
            text += "; re-run `sq auth binance` with the right BINANCE_API_SECRET"
        elif code in (-2014, -2015):
            text += "; check the key, its IP whitelist and its permissions (spot/futures trading)"
        return f"binance {what}: {text} [code {code}]{extra}", cls
    if http_status is not None and http_status >= 500:
        return f"binance {what}: server error HTTP {http_status}; the request's outcome is unknown", VenueUnavailable
    return f"binance {what}: {msg or 'error'}" + (f" [code {code}]" if code is not None else "") + (f" (HTTP {http_status})" if http_status else ""), VenueUnavailable


_CLASSES: dict[type, type] = {}


def _class(base: type[SqError]) -> type:
    """BinanceError mixed with the sq error class its exit status belongs to (AuthError, TempFailure…)."""
    if base not in _CLASSES:
        _CLASSES[base] = type(f"Binance{base.__name__}", (BinanceError, base), {})
    return _CLASSES[base]


def error_for(code: int | None, msg: str, http_status: int | None, what: str, retry_after: float | None = None) -> BinanceError:
    """The exception for a Binance error answer: a BinanceError that is also AuthError/TempFailure/…"""
    text, cls = explain(code, msg, http_status, what)
    if http_status == 418 and retry_after:
        text += f" (ban lifts in {retry_after:.0f}s)"
    return _class(cls)(text, code=code, http_status=http_status, retry_after=retry_after, status=cls.status)


def raise_for_reply(reply, what: str) -> None:
    """Raise the BinanceError of a non-2xx `http.Reply`."""
    code, msg = None, ""
    try:
        doc = json.loads(reply.body or b"{}")
        code, msg = doc.get("code"), str(doc.get("msg", ""))
    except ValueError:
        msg = reply.body[:200].decode("utf-8", "replace")
    ra = reply.headers.get("retry-after")
    raise error_for(code, msg, reply.status, what, float(ra) if ra else None)
