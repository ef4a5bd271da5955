"""Continuous futures names: `NFO:NIFTY-FUT` → the dated contract it stands for now.

A continuous name is `<EXCHANGE>:<UNDERLYING>-FUT` on a futures segment (NFO, BFO, MCX, CDS, BCD).
UNDERLYING is the instruments dump's `name` of the underlying's futures: NIFTY, BANKNIFTY,
RELIANCE, CRUDEOIL …; `NIFTY50` and `NIFTYBANK` (the indices as the plan writes them) are NIFTY
and BANKNIFTY. Its contracts are the dump's FUT rows of that exchange and name. A contract is
listed until the close of its expiry day (the segment's normal session, `market_rules.SESSIONS`)
in IST; after that the next one is the nearest. `near` is the nearest listed contract, `next`
the 2nd, `far` the 3rd.

Kite's own continuous day candles (`sq fetch --continuous`, history.py) are stitched by Kite from
the instrument token asked for; this module only decides which token that is.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Mapping

from sq.core.exits import UsageError
from sq.core.symbols import suggest
from sq.venues.base import EXPIRY_RULES
from sq.venues.zerodha.instruments import KiteInstrument
from sq.venues.zerodha.market_rules import SESSIONS
from sq.venues.zerodha.session import IST

SUFFIX = "-FUT"
RULES = EXPIRY_RULES  # near, next, far: the 1st, 2nd and 3rd listed contract
FUTURES_EXCHANGES = ("NFO", "BFO", "MCX", "CDS", "BCD")
CASH_FUTURES = {"NSE": "NFO", "BSE": "BFO"}  # where a cash market's futures trade
UNDERLYING_ALIASES = {"NIFTY50": "NIFTY", "NIFTYBANK": "BANKNIFTY"}


def now_ist() -> dt.datetime:
    """The moment continuous names are resolved at (tests pin it)."""
    return dt.datetime.now(IST)


def is_continuous(symbol: str) -> bool:
    """Whether `symbol` (canonical) is a continuous futures name; `NSE:RELIANCE-FUT` is a usage
    error naming the futures segment, since the cash market lists no futures."""
    exchange, _, name = symbol.strip().upper().partition(":")
    if not name.endswith(SUFFIX) or len(name) == len(SUFFIX):
        return False
    if exchange in CASH_FUTURES:
        raise UsageError(f"{exchange} lists no futures: {exchange}:{name}'s futures trade on {CASH_FUTURES[exchange]} "
                         f"(write {CASH_FUTURES[exchange]}:{name})")
    return exchange in FUTURES_EXCHANGES


def listed(table: Mapping[str, KiteInstrument], exchange: str, underlying: str, now: dt.datetime) -> list[KiteInstrument]:
    """The futures contracts of `underlying` on `exchange` still listed at `now`, nearest expiry first."""
    close = SESSIONS[exchange][1]
    out = []
    for ki in table.values():
        if ki.exchange != exchange or ki.instrument_type != "FUT" or ki.name.upper() != underlying or not ki.expiry:
            continue
        try:
            expiry = dt.date.fromisoformat(ki.expiry)
        except ValueError:
            continue
        if now.astimezone(IST) < dt.datetime.combine(expiry, close, IST):
            out.append(ki)
    return sorted(out, key=lambda k: (k.expiry, k.tradingsymbol))


def choose(symbol: str, table: Mapping[str, KiteInstrument], rule: str, now: dt.datetime) -> KiteInstrument:
    """The contract continuous name `symbol` stands for at `now` under `rule` (near, next, far);
    an unknown underlying, or fewer listed contracts than the rule needs, is a usage error."""
    if rule not in RULES:
        raise UsageError(f"expiry must be one of {', '.join(RULES)}; got {rule!r}")
    exchange, _, name = symbol.strip().upper().partition(":")
    underlying = name[: -len(SUFFIX)]
    underlying = UNDERLYING_ALIASES.get(underlying, underlying)
    contracts = listed(table, exchange, underlying, now)
    if not contracts:
        futures = [ki for ki in table.values() if ki.instrument_type == "FUT" and ki.name]
        here = [ki for ki in futures if ki.exchange == exchange and ki.name.upper() == underlying]
        if here:
            last = max(ki.expiry for ki in here)
            raise UsageError(f"{exchange}:{name}: every {underlying} futures contract in the {exchange} instruments dump has expired "
                             f"(the last on {last})")
        known = sorted({ki.name.upper() for ki in futures if ki.exchange == exchange})
        close = [f"{exchange}:{c}{SUFFIX}" for c in suggest(underlying, known + [a for a, u in UNDERLYING_ALIASES.items() if u in known])]
        close += sorted({f"{ki.exchange}:{name}" for ki in futures if ki.name.upper() == underlying})  # listed on another segment
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"{exchange}:{name}: no {exchange} futures contract has the underlying {underlying}{hint}")
    rank = RULES.index(rule)
    if rank >= len(contracts):
        have = ", ".join(ki.tradingsymbol for ki in contracts)
        raise UsageError(f"{exchange}:{name}: the {rule} expiry is the {('2nd', '3rd')[rank - 1]} listed contract; "
                         f"{exchange} lists {len(contracts)} ({have})")
    return contracts[rank]


def resolve_continuous(symbols: Iterable[str], table: Mapping[str, KiteInstrument], rule: str,
                       now: dt.datetime) -> dict[str, KiteInstrument]:
    """Continuous name (canonical) → its contract, for every continuous name among `symbols`."""
    return {s.strip().upper(): choose(s, table, rule, now) for s in symbols if is_continuous(s)}
