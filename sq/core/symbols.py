"""Symbols: `VENUE_OR_EXCHANGE:SYMBOL` (ARCHITECTURE §2).

Case-insensitive on input, canonical upper-case on output. The prefix says which venue
serves the symbol: Zerodha exchange segments (NSE, BSE, NFO, BFO, CDS, BCD, MCX), Binance
spot (BINANCE) and USD-M futures (BINANCE-FUT), and the simulated exchange (SIM).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sq.core.exits import UsageError

ZERODHA_SEGMENTS = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX")
PREFIX_VENUE: dict[str, str] = {
    **{seg: "zerodha" for seg in ZERODHA_SEGMENTS},
    "BINANCE": "binance",
    "BINANCE-FUT": "binance",
    "SIM": "sim",
}


@dataclass(frozen=True)
class Symbol:
    """A parsed symbol: `exchange` is the prefix (NSE, BINANCE-FUT, SIM…), `venue` the adapter."""

    exchange: str
    name: str

    @property
    def venue(self) -> str:
        return PREFIX_VENUE[self.exchange]

    @property
    def canonical(self) -> str:
        return f"{self.exchange}:{self.name}"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.canonical


def parse_symbol(text: str) -> Symbol:
    """Parse one symbol; an unknown or malformed prefix is a usage error with suggestions."""
    raw = text.strip()
    if ":" not in raw:
        hint = f" (did you mean SIM:{raw.upper()} or NSE:{raw.upper()}?)" if raw else ""
        raise UsageError(f"symbol {text!r} has no venue prefix; write VENUE:SYMBOL{hint}")
    prefix, name = raw.split(":", 1)
    prefix = prefix.strip().upper()
    name = name.strip().upper()
    if prefix not in PREFIX_VENUE:
        close = difflib.get_close_matches(prefix, list(PREFIX_VENUE), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(c + ':' + name for c in close)}?" if close else ""
        known = ", ".join(PREFIX_VENUE)
        raise UsageError(f"unknown venue prefix {prefix!r} in symbol {text!r} (known: {known}){hint}")
    if not name or any(c in name for c in "/\\\x00\n"):
        raise UsageError(f"symbol {text!r} has an empty or invalid name after the prefix")
    return Symbol(prefix, name)


def parse_symbols(texts: list[str] | tuple[str, ...]) -> list[Symbol]:
    """Parse many symbols, dropping duplicates while keeping the order given."""
    seen: dict[str, Symbol] = {}
    for t in texts:
        s = parse_symbol(t)
        seen.setdefault(s.canonical, s)
    return list(seen.values())


def suggest(name: str, known: list[str], n: int = 3) -> list[str]:
    """Close matches of `name` among `known` symbols (for venue-specific unknown-symbol errors)."""
    return difflib.get_close_matches(name.upper(), [k.upper() for k in known], n=n, cutoff=0.6)
