"""Zerodha's charges (docs/costs.md): the dated table shipped as `charges.csv` (or the user's
`[zerodha] charges_file`), and each symbol's segment in it.

A symbol's segment comes from its Kite exchange and instrument: NSE/BSE equities are intraday
under the MIS product and delivery otherwise; NFO/BFO contracts are options when they are calls
or puts (instrument type CE/PE, or a tradingsymbol ending so) and futures otherwise, charged at
NSE's or BSE's rates; CDS/BCD the same for currency. Commodities (MCX) are not tabled: None, so
the fill model's fees apply. A bad table is a configuration error (exit 78) naming the line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sq.core.costs import CostRates, CostSchedule
from sq.core.exits import ConfigError

SHIPPED = "charges.csv"
HEADER = ("effective_from", "segment", "exchange", "brokerage_pct", "brokerage_cap", "brokerage_flat", "stt_buy_pct",
          "stt_sell_pct", "txn_pct", "sebi_pct", "stamp_buy_pct", "gst_pct")
SEGMENTS = ("equity_delivery", "equity_intraday", "futures", "options", "currency_futures", "currency_options")
IST = dt.timedelta(hours=5, minutes=30)
# Kite exchange segment → (the exchange whose rates apply, the segment family)
EXCHANGES = {"NSE": ("NSE", "equity"), "BSE": ("BSE", "equity"), "NFO": ("NSE", "fno"), "BFO": ("BSE", "fno"),
             "CDS": ("NSE", "currency"), "BCD": ("BSE", "currency")}

Table = dict[tuple[str, str], tuple[tuple[dt.date, CostRates], ...]]


def _rates(row: dict[str, str]) -> CostRates:
    pct = lambda k: float(row[k]) / 100.0  # noqa: E731
    return CostRates(brokerage_pct=pct("brokerage_pct"), brokerage_cap=float(row["brokerage_cap"]),
                     brokerage_flat=float(row["brokerage_flat"]), tax_buy=pct("stt_buy_pct"), tax_sell=pct("stt_sell_pct"),
                     txn=pct("txn_pct"), regulatory=pct("sebi_pct"), stamp_buy=pct("stamp_buy_pct"), gst=pct("gst_pct"))


def parse(text: str, name: str) -> Table:
    """The table in `text` (CSV with `HEADER`; `#` lines are comments) by (segment, exchange)."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    if not lines or tuple(c.strip() for c in lines[0][1].split(",")) != HEADER:
        raise ConfigError(f"{name}: the charges table must start with the header {','.join(HEADER)}")
    out: dict[tuple[str, str], list[tuple[dt.date, CostRates]]] = {}
    for n, line in lines[1:]:
        cells = next(csv.reader(io.StringIO(line)))
        row = dict(zip(HEADER, (c.strip() for c in cells)))
        try:
            if len(cells) != len(HEADER):
                raise ValueError(f"{len(cells)} columns, not {len(HEADER)}")
            if row["segment"] not in SEGMENTS:
                raise ValueError(f"segment {row['segment']!r} is not one of {', '.join(SEGMENTS)}")
            if row["exchange"] not in ("NSE", "BSE"):
                raise ValueError(f"exchange {row['exchange']!r} is not NSE or BSE")
            rates = _rates(row)
            if any(v < 0 for v in rates.row()):
                raise ValueError("a negative rate")
            out.setdefault((row["segment"], row["exchange"]), []).append((dt.date.fromisoformat(row["effective_from"]), rates))
        except ValueError as e:
            raise ConfigError(f"{name}:{n}: {e}") from None
    return {k: tuple(sorted(v, key=lambda p: p[0])) for k, v in out.items()}


@lru_cache(maxsize=8)
def load(path: str | None = None) -> Table:
    """The shipped table, or the user's file at `path` instead."""
    if path is None:
        return parse(resources.files("sq.venues.zerodha").joinpath(SHIPPED).read_text("utf-8"), SHIPPED)
    try:
        text = Path(path).expanduser().read_text("utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the charges table ({e.strerror or e})") from None
    return parse(text, str(path))


def segment(symbol: str, instrument=None, product: str = "MIS") -> tuple[str, str] | None:
    """(segment, exchange) of a symbol in the table, or None when its market is not tabled."""
    exchange, _, name = str(symbol).partition(":")
    where = EXCHANGES.get(exchange.strip().upper())
    if where is None:
        return None
    rates_exchange, family = where
    if family == "equity":
        return ("equity_intraday" if product == "MIS" else "equity_delivery"), rates_exchange
    kind = str(((getattr(instrument, "extra", None) or {}).get("instrument_type")) or "").upper()
    option = kind in ("CE", "PE") or (not kind and name.strip().upper().endswith(("CE", "PE")))
    prefix = "" if family == "fno" else "currency_"
    return f"{prefix}{'options' if option else 'futures'}", rates_exchange


def schedule(symbol: str, instrument=None, config=None) -> CostSchedule | None:
    """The symbol's Zerodha charges by trade date (IST), or None when its segment is not tabled."""
    z = getattr(config, "zerodha", None)
    where = segment(symbol, instrument, getattr(z, "product", "MIS"))
    if where is None:
        return None
    periods = load(getattr(z, "charges_file", None)).get(where)
    if not periods:
        return None
    return CostSchedule(periods, IST, f"Zerodha {where[1]} {where[0].replace('_', ' ')}")
