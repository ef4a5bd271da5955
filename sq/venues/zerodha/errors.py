"""Kite errors → sq errors with a clear message and exit status (README: Exit codes).

Kite answers `{"status": "error", "error_type": …, "message": …}`; the kiteconnect client raises
the exception class named by `error_type` (UserException, MarginException and HoldingException
arrive as GeneralException) and lets `requests` errors through. Every path lands here:

    TokenException                      → AuthError 77 ("… run sq auth zerodha")
    PermissionException                 → AuthError 77 (static-IP rule named when it applies)
    InputException                      → UsageError 2
    OrderException / Margin / Holding   → OrderRejected 65 (the gateway turns these into
                                          rejected order states instead of raising)
    HTTP 429 (any type)                 → TempFailure 75 (rate limited)
    NetworkException / DataException,
    GeneralException, network failures  → VenueUnavailable 69
Messages come from Kite (never from our request), so they carry no secrets.
"""

from __future__ import annotations

from sq.core.exits import AuthError, DataError, SqError, TempFailure, UsageError, VenueUnavailable

RELOGIN = "run sq auth zerodha"


class OrderRejected(DataError):
    """The venue refused an order (order, margin, holding or input rule)."""


def token_error(detail: str = "access token expired or revoked") -> AuthError:
    return AuthError(f"zerodha: {detail}; {RELOGIN}")


def from_kite_error(error_type: str, message: str, http_status: int | None = None) -> SqError:
    """Map one Kite error (type name, message, HTTP status) to an SqError."""
    msg = (message or "").strip() or error_type
    if error_type == "TokenException":
        return token_error(f"session rejected by Kite ({msg})")
    if http_status == 429:
        return TempFailure(f"zerodha: rate limited by Kite ({msg}); retry later")
    if error_type == "PermissionException":
        if "ip" in msg.lower().split() or "whitelist" in msg.lower() or "static" in msg.lower():
            return AuthError(f"zerodha: permission denied ({msg}); orders are accepted only from your "
                             "whitelisted static IP — set it in the Kite developer console")
        return AuthError(f"zerodha: permission denied ({msg})")
    if error_type == "InputException":
        return UsageError(f"zerodha: invalid request ({msg})")
    if error_type in ("OrderException", "MarginException", "HoldingException", "UserException"):
        return OrderRejected(f"zerodha: order rejected ({msg})")
    if error_type in ("NetworkException", "DataException"):
        return VenueUnavailable(f"zerodha: Kite backend unavailable ({msg}); retry later")
    if error_type == "GeneralException" and any(w in msg.lower() for w in ("margin", "holding", "insufficient")):
        return OrderRejected(f"zerodha: order rejected ({msg})")
    return VenueUnavailable(f"zerodha: Kite error {error_type} ({msg})")


def from_http_error(http_status: int, body: bytes) -> SqError:
    """Map a Kite HTTP error answer (status and raw body, JSON when Kite wrote it) to an SqError."""
    import json

    try:
        doc = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    return from_kite_error(str(doc.get("error_type") or "GeneralException"), str(doc.get("message") or f"HTTP {http_status}"), http_status)


def map_exception(exc: BaseException) -> SqError:
    """Map a kiteconnect or requests exception (or an SqError, returned as is)."""
    if isinstance(exc, SqError):
        return exc
    try:
        from kiteconnect import exceptions as kex
    except ModuleNotFoundError:  # pragma: no cover - the adapter needs kiteconnect for REST anyway
        kex = None
    if kex is not None and isinstance(exc, kex.KiteException):
        code = getattr(exc, "code", None)
        name = type(exc).__name__
        return from_kite_error(name, str(exc), code)
    try:
        import requests
    except ModuleNotFoundError:  # pragma: no cover
        requests = None
    if requests is not None and isinstance(exc, requests.exceptions.RequestException):
        return VenueUnavailable(f"zerodha: cannot reach Kite ({type(exc).__name__})")
    if isinstance(exc, (OSError, TimeoutError)):
        return VenueUnavailable(f"zerodha: cannot reach Kite ({type(exc).__name__})")
    return VenueUnavailable(f"zerodha: unexpected error ({type(exc).__name__})")
