"""Symbols: `EXCHANGE:NAME` (README: CLI reference), the grammar of the data contract.

Case-insensitive on input, canonical upper-case on output. The prefix names an exchange or
market segment — Kite's segments (NSE, BSE, NFO, BFO, CDS, BCD, MCX), Binance spot and USD-M
futures (BINANCE, BINANCE-FUT) and the simulated exchange (SIM). Which venue serves each
prefix is the venue registry's knowledge (`sq.venues.registry.venue_of`), never core's.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sq.core.exits import UsageError

EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "BINANCE", "BINANCE-FUT", "SIM")


@dataclass(frozen=True)
class Symbol:
    """A parsed symbol: `exchange` is the prefix (NSE, BINANCE-FUT, SIM…), `name` the rest."""

    exchange: str
    name: str

    @property
    def canonical(self) -> str:
        return f"{self.exchange}:{self.name}"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.canonical


def parse_symbol(text: str) -> Symbol:
    """Parse one symbol; a missing or unknown prefix, or an empty/invalid name, is a usage error
    (an unknown prefix with close matches)."""
    raw = text.strip()
    if ":" not in raw:
        hint = f" (did you mean SIM:{raw.upper()} or NSE:{raw.upper()}?)" if raw else ""
        raise UsageError(f"symbol {text!r} has no venue prefix; write VENUE:SYMBOL{hint}")
    prefix, name = raw.split(":", 1)
    prefix = prefix.strip().upper()
    name = name.strip().upper()
    if prefix not in EXCHANGES:
        close = difflib.get_close_matches(prefix, EXCHANGES, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(c + ':' + name for c in close)}?" if close else ""
        raise UsageError(f"unknown venue prefix {prefix!r} in symbol {text!r} (known: {', '.join(EXCHANGES)}){hint}")
    if not name or any(c in name for c in "/\\\x00\n"):
        raise UsageError(f"symbol {text!r} has an empty or invalid name after the prefix")
    return Symbol(prefix, name)


def parse_symbols(texts) -> list[Symbol]:
    """Parse many symbols, dropping duplicates while keeping the order given."""
    seen: dict[str, Symbol] = {}
    for t in texts:
        s = parse_symbol(t)
        seen.setdefault(s.canonical, s)
    return list(seen.values())


def suggest(name: str, known: list[str], n: int = 3) -> list[str]:
    """Close matches of `name` among `known` names (for unknown-prefix and unknown-symbol errors)."""
    return difflib.get_close_matches(name.upper(), [k.upper() for k in known], n=n, cutoff=0.6)
