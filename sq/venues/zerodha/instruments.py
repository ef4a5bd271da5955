"""The Kite instruments dump: downloaded once a day, cached, and used to resolve symbols.

`NSE:RELIANCE`, `NFO:NIFTY25DECFUT`, `NSE:NIFTY 50` (indices as Kite names them) → instrument
token, tick size, lot size, expiry, segment. The dump (`GET /instruments`, CSV, every exchange) is
cached in the cache dir (or the config's `zerodha.instruments_cache_dir`) per IST date and per REST
root (so a fake server's dump never mixes with the real one). An unknown symbol is a usage error
naming it with close matches; a configured `ticker_id` that is not the symbol's token is a config
error.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from sq.core import paths
from sq.core.exits import ConfigError, UsageError
from sq.core.schemas import Instrument
from sq.core.symbols import suggest
from sq.venues.zerodha.endpoints import Endpoints, get_text
from sq.venues.zerodha.session import IST

COLUMNS = ("instrument_token", "exchange_token", "tradingsymbol", "name", "last_price", "expiry", "strike",
           "tick_size", "lot_size", "instrument_type", "segment", "exchange")
INDEX_TICK = 0.01  # the dump gives indices tick 0; their values move in paise
DEPTH_VIEW = 5  # Kite shows the top 5 levels a side


@dataclass(frozen=True)
class KiteInstrument:
    token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    expiry: str  # YYYY-MM-DD or ""
    strike: float
    tick_size: float
    lot_size: float
    instrument_type: str
    segment: str
    exchange: str

    @property
    def symbol(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}".upper()

    @property
    def is_index(self) -> bool:
        return self.segment == "INDICES" or (self.token & 0xFF) == 9

    def to_instrument(self) -> Instrument:
        """The sq Instrument (stream metadata) of this Kite instrument."""
        tick = self.tick_size if self.tick_size > 0 else INDEX_TICK
        extra = {"depth_view": DEPTH_VIEW, "instrument_token": self.token, "exchange": self.exchange,
                 "segment": self.segment, "instrument_type": self.instrument_type,
                 "tradable": not self.is_index}
        if self.expiry:
            extra["expiry"] = self.expiry
        if self.strike:
            extra["strike"] = self.strike
        return Instrument(self.symbol, "zerodha", tick, max(self.lot_size, 1.0), extra)


def parse_csv(text: str) -> dict[str, KiteInstrument]:
    """Parse the dump (or a subset with its header) into symbol → KiteInstrument."""
    out: dict[str, KiteInstrument] = {}
    for r in csv.DictReader(io.StringIO(text)):
        try:
            ki = KiteInstrument(int(r["instrument_token"]), int(r["exchange_token"] or 0), r["tradingsymbol"],
                                r.get("name") or "", r.get("expiry") or "", float(r.get("strike") or 0),
                                float(r.get("tick_size") or 0), float(r.get("lot_size") or 1),
                                r.get("instrument_type") or "", r.get("segment") or "", r.get("exchange") or "")
        except (KeyError, ValueError):
            continue
        out.setdefault(ki.symbol, ki)
    return out


def subset_csv(text: str, tokens: Iterable[int]) -> str:
    """Header + the rows of `tokens` only: what a raw capture keeps (docs/streams.md)."""
    want = {str(t) for t in tokens}
    lines = text.splitlines(keepends=True)
    out = [lines[0]] if lines else []
    out += [ln for ln in lines[1:] if ln.split(",", 1)[0] in want]
    return "".join(out)


def cache_path(endpoints: Endpoints, environ: Mapping[str, str] | None = None, today: dt.date | None = None,
               cache_dir: str | None = None) -> Path:
    """Today's dump for this API root, in `cache_dir` (the config's `zerodha.instruments_cache_dir`)
    or `<cache dir>/zerodha`."""
    today = today or dt.datetime.now(IST).date()
    tag = hashlib.sha256(endpoints.root.encode()).hexdigest()[:8]
    d = Path(cache_dir) if cache_dir else paths.cache_dir(environ) / "zerodha"
    return d / f"instruments-{today.isoformat()}-{tag}.csv"


def cached_symbols(prefix: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The symbols of exchange `prefix` (NSE, NFO, …) in the newest cached instruments dump, for
    shell completion; nothing is downloaded."""
    files = sorted((paths.cache_dir(environ) / "zerodha").glob("instruments-*.csv"))
    if not files:
        return []
    want = prefix.upper()
    try:
        with files[-1].open(newline="") as f:
            return sorted({f"{want}:{row['tradingsymbol']}" for row in csv.DictReader(f) if row.get("exchange", "").upper() == want})
    except (OSError, KeyError, csv.Error):
        return []


def download(endpoints: Endpoints, api_key: str | None, token: str | None, timeout: float = 30.0) -> str:
    """GET /instruments as CSV text; Kite errors mapped to sq errors."""
    return get_text(endpoints, "/instruments", api_key, token, what="download the instruments dump", timeout=timeout)


def load_dump(endpoints: Endpoints, api_key: str | None, token: str | None, environ: Mapping[str, str] | None = None,
              cache_dir: str | None = None) -> str:
    """Today's dump from the cache, downloading (and caching) it when missing."""
    p = cache_path(endpoints, environ, cache_dir=cache_dir)
    if p.is_file():
        return p.read_text()
    text = download(endpoints, api_key, token)
    paths.ensure_dir(p.parent)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(p)
    for old in p.parent.glob("instruments-*.csv"):  # yesterday's dumps are dead weight
        if old != p and old.name.endswith(p.name[-13:]):
            old.unlink(missing_ok=True)
    return text


def resolve(symbols: Iterable[str], table: Mapping[str, KiteInstrument]) -> list[KiteInstrument]:
    """Look up canonical symbols; an unknown one is a UsageError with close matches."""
    out = []
    for s in symbols:
        key = s.strip().upper()
        ki = table.get(key)
        if ki is None:
            exch = key.split(":", 1)[0]
            same = [k for k in table if k.startswith(exch + ":")] or list(table)
            close = suggest(key, same)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"unknown Zerodha symbol {s!r} (not in today's instruments dump){hint}")
        out.append(ki)
    return out


def check_ticker_ids(resolved: Iterable[KiteInstrument], config) -> None:
    """A configured `ticker_id` (the plan's name for Kite's instrument_token) must be the token the
    dump gives its symbol: a stale or mistyped id stops the run (78) instead of being ignored."""
    if config is None:
        return
    for ki in resolved:
        for i, inst in enumerate(config.instruments):
            if inst.symbol == ki.symbol and inst.ticker_id is not None and inst.ticker_id != ki.token:
                raise ConfigError(f"{config.source or '<config>'}: 'instruments[{i}].ticker_id' {inst.ticker_id} is not the instrument_token "
                                  f"of {ki.symbol} in today's instruments dump ({ki.token}); correct or remove it")
