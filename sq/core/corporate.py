"""Corporate actions (splits, bonuses, dividends) and the back-adjustment of prices and volumes.

A corporate-actions file is CSV with a header (docs/corporate-actions.md has a worked example):

    symbol,ex_date,kind,ratio_from,ratio_to,amount,prev_close
    NSE:ABC,2024-01-03,split,10,2,,
    NSE:ABC,2024-01-05,bonus,1,1,,
    NSE:ABC,2024-01-09,dividend,,,10,105

* `symbol` — canonical (`NSE:ABC`); only markets whose equities have corporate actions (the
  venue registry says which prefixes, and their time zone) are accepted;
* `ex_date` — the ex-date as the exchange's local date, `YYYY-MM-DD` or NSE's `DD-Mon-YYYY`;
* `kind` — `split`: face value `ratio_from` → `ratio_to` (NSE "from Rs 10/- to Rs 2/-": 10, 2);
  `bonus`: NSE's "a:b", `ratio_from` = a new shares for every `ratio_to` = b held;
  `dividend`: `amount` per share, in the price's currency;
* `prev_close` (optional column) — for a dividend, the close before the ex-date. Bars take it
  from their own last close before the ex-date when it is empty; a market stream needs it.

Price factors, for everything before the ex-date: split new/old face value (`ratio_to /
ratio_from`), bonus b/(a+b), dividend (P − d)/P with P the close before the ex-date. Prices
before an ex-date are multiplied by the product of the factors of every later action (the
latest prices stay as traded), volumes are divided by the product of the split and bonus
factors alone. A malformed file is a DataError (exit 65) naming the file and line.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import pyarrow as pa

from sq.core import schemas
from sq.core.exits import DataError, NoInputError, SqError
from sq.core.symbols import parse_symbol

KINDS = ("split", "bonus", "dividend")
COLUMNS = ("symbol", "ex_date", "kind", "ratio_from", "ratio_to", "amount")
OPTIONAL_COLUMNS = ("prev_close",)
NS_PER_MINUTE = 60_000_000_000
PRICE_COLUMNS = ("open", "high", "low", "close", "vwap")  # bars columns scaled by the price factor


@dataclass(frozen=True)
class Action:
    """One corporate action as the file gives it (`line`: where, for messages)."""

    symbol: str
    ex_date: dt.date
    kind: str
    ratio_from: float | None = None
    ratio_to: float | None = None
    amount: float | None = None
    prev_close: float | None = None
    line: int = 0

    @property
    def volume_factor(self) -> float:
        """What a split or bonus does to the price (volumes are divided by it); 1 for a dividend."""
        if self.kind == "split":
            return self.ratio_to / self.ratio_from
        if self.kind == "bonus":
            return self.ratio_to / (self.ratio_from + self.ratio_to)
        return 1.0

    def price_factor(self, prev_close: float | None = None) -> float:
        """The factor for prices before the ex-date; a dividend's needs the close before it."""
        if self.kind != "dividend":
            return self.volume_factor
        close = self.prev_close if self.prev_close is not None else prev_close
        if close is None:
            return math.nan
        return (close - self.amount) / close

    def describe(self) -> str:
        return f"{self.symbol} {self.kind} ex {self.ex_date.isoformat()} (line {self.line})"


@dataclass(frozen=True)
class CorporateActions:
    """Every action of a file, by symbol in ex-date order, and each symbol's exchange UTC offset
    (ex-dates are local dates: the adjustment changes at local midnight)."""

    by_symbol: Mapping[str, tuple[Action, ...]]
    utc_offset_min: Mapping[str, int]
    source: str = ""

    @property
    def symbols(self) -> list[str]:
        return sorted(self.by_symbol)

    def boundaries(self, symbol: str) -> np.ndarray:
        """The ns (UTC) at which each distinct ex-date of `symbol` begins, ascending."""
        off = int(self.utc_offset_min[symbol]) * NS_PER_MINUTE
        days = sorted({a.ex_date for a in self.by_symbol[symbol]})
        return np.array([_epoch_ns(d) - off for d in days], np.int64)

    def factors(self, symbol: str, closes: Callable[[int], float | None] | None = None) -> "Factors":
        """The symbol's cumulative price and volume factors by period; `closes(boundary_ns)`
        gives the close before a boundary for a dividend without `prev_close` (else NaN)."""
        bounds = self.boundaries(symbol)
        price = np.ones(len(bounds) + 1)
        volume = np.ones(len(bounds) + 1)
        for a in self.by_symbol[symbol]:
            j = int(np.searchsorted(bounds, _epoch_ns(a.ex_date) - int(self.utc_offset_min[symbol]) * NS_PER_MINUTE))
            close = closes(int(bounds[j])) if (closes is not None and a.kind == "dividend" and a.prev_close is None) else None
            f = a.price_factor(close)
            if a.kind == "dividend" and close is not None and not f > 0:
                raise DataError(f"{self.source}: {a.describe()}: the dividend {a.amount:g} is not below the close "
                                f"before the ex-date ({close:g})")
            price[: j + 1] *= f
            volume[: j + 1] *= a.volume_factor
        return Factors(bounds, price, volume, self.by_symbol[symbol])


@dataclass(frozen=True)
class Factors:
    """One symbol's factors: rows with ts in [bounds[j-1], bounds[j]) take price[j] and volume[j]."""

    bounds: np.ndarray
    price: np.ndarray
    volume: np.ndarray
    actions: tuple[Action, ...] = field(default=())

    def at(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(price factor, volume factor) for each timestamp (ns)."""
        j = np.searchsorted(self.bounds, ts, side="right")
        return self.price[j], self.volume[j]

    def missing_close(self, first_ts: int) -> Action | None:
        """A dividend without a close that applies to rows at or after `first_ts`, if any."""
        j = int(np.searchsorted(self.bounds, first_ts, side="right"))
        if np.isfinite(self.price[j:]).all():
            return None
        bad = [a for a in self.actions if a.kind == "dividend" and a.prev_close is None]
        return bad[-1] if bad else None


def _epoch_ns(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86_400_000_000_000


# ----------------------------------------------------------------------------------------------
# reading the file


def load_actions(path: str | Path, markets_of: Callable[[Iterable[str]], Mapping[str, int]]) -> CorporateActions:
    """Parse and check a corporate-actions CSV. `markets_of(symbols)` (the run layer asks the
    venue registry) gives, for the prefixes of those symbols that have corporate actions,
    the exchange's UTC offset in minutes; a symbol of any other prefix is an error."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NoInputError(f"{p}: corporate-actions file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read the corporate-actions file: {getattr(e, 'strerror', None) or e}") from None
    actions = list(_parse(p, text))
    markets = dict(markets_of(sorted({a.symbol for a in actions})))
    offsets: dict[str, int] = {}
    for a in actions:
        prefix = a.symbol.partition(":")[0]
        if prefix not in markets:
            known = ", ".join(sorted(markets)) or "none among this file's symbols"
            raise DataError(f"{p} line {a.line}: {a.symbol} has no corporate actions to adjust for: only equities "
                            f"of these exchanges do ({known})")
        offsets[a.symbol] = int(markets[prefix])
    by_symbol: dict[str, list[Action]] = {}
    for a in sorted(actions, key=lambda a: (a.symbol, a.ex_date, a.line)):
        by_symbol.setdefault(a.symbol, []).append(a)
    return CorporateActions({s: tuple(v) for s, v in by_symbol.items()}, offsets, str(p))


def _parse(p: Path, text: str) -> Iterator[Action]:
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise DataError(f"{p}: empty corporate-actions file: the header {','.join(COLUMNS)} is missing")
    rows = csv.reader([line for _, line in lines])
    header = [h.strip().lower() for h in next(rows)]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"{p} line {lines[0][0]}: the header lacks column {missing[0]!r} "
                        f"(columns: {','.join(COLUMNS)}[,{','.join(OPTIONAL_COLUMNS)}])")
    unknown = [h for h in header if h not in COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise DataError(f"{p} line {lines[0][0]}: unknown column {unknown[0]!r} (columns: {','.join(COLUMNS)}[,{','.join(OPTIONAL_COLUMNS)}])")
    for (n, _), row in zip(lines[1:], rows):
        if len(row) != len(header):
            raise DataError(f"{p} line {n}: {len(row)} fields where the header has {len(header)}")
        yield _action(p, n, dict(zip(header, (v.strip() for v in row))))


def _action(p: Path, n: int, rec: dict[str, str]) -> Action:
    where = f"{p} line {n}"
    try:
        symbol = parse_symbol(rec["symbol"]).canonical
    except SqError as e:
        raise DataError(f"{where}: {e.message}") from None
    day = _date(where, rec["ex_date"])
    kind = rec["kind"].lower()
    if kind not in KINDS:
        raise DataError(f"{where}: unknown kind {rec['kind']!r} (known: {', '.join(KINDS)})")
    if kind == "dividend":
        _empty(where, rec, ("ratio_from", "ratio_to"), "a dividend has an amount, not a ratio")
        amount = _positive(where, rec, "amount")
        close = _positive(where, rec, "prev_close") if rec.get("prev_close") else None
        if close is not None and amount >= close:
            raise DataError(f"{where}: the dividend {amount:g} is not below prev_close {close:g}")
        return Action(symbol, day, kind, amount=amount, prev_close=close, line=n)
    _empty(where, rec, ("amount", "prev_close"), f"a {kind} has a ratio, not an amount")
    return Action(symbol, day, kind, ratio_from=_positive(where, rec, "ratio_from"), ratio_to=_positive(where, rec, "ratio_to"), line=n)


def _date(where: str, text: str) -> dt.date:
    for fmt in ("%Y-%m-%d", "%d-%b-%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise DataError(f"{where}: ex_date {text!r} is not a date (YYYY-MM-DD or DD-Mon-YYYY)")


def _positive(where: str, rec: dict[str, str], name: str) -> float:
    text = rec.get(name, "")
    try:
        v = float(text)
    except ValueError:
        raise DataError(f"{where}: {name} {text!r} is not a number") from None
    if not (math.isfinite(v) and v > 0):
        raise DataError(f"{where}: {name} must be a positive number, got {text}")
    return v


def _empty(where: str, rec: dict[str, str], names: tuple[str, ...], why: str) -> None:
    for name in names:
        if rec.get(name):
            raise DataError(f"{where}: {name} must be empty ({why})")


# ----------------------------------------------------------------------------------------------
# applying it


def adjust_bars(table: pa.Table, actions: CorporateActions) -> pa.Table:
    """Bars with open, high, low, close and vwap multiplied by the price factor of their `ts`
    and volume divided by the volume factor; other columns, symbols and metadata unchanged.
    A dividend without `prev_close` uses the close of the symbol's last bar before its ex-date."""
    if table.num_rows == 0 or not actions.by_symbol:
        return table
    symbols = np.asarray(table.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    ts = schemas.int64_view(table.column("ts"))
    close = table.column("close").to_numpy(zero_copy_only=False)
    price_f = np.ones(table.num_rows)
    volume_f = np.ones(table.num_rows)
    for sym in actions.symbols:
        rows = np.flatnonzero(symbols == sym)
        if not len(rows):
            continue
        order = rows[np.argsort(ts[rows], kind="stable")]

        def last_close(boundary: int, order=order) -> float | None:
            k = int(np.searchsorted(ts[order], boundary, side="left"))
            return float(close[order[k - 1]]) if k else None

        f = actions.factors(sym, last_close)
        price_f[rows], volume_f[rows] = f.at(ts[rows])
    out = table
    for name in PRICE_COLUMNS + ("volume",):
        if name not in table.column_names:
            continue
        i = table.column_names.index(name)
        col = table.column(i)
        values = col.to_numpy(zero_copy_only=False).astype(np.float64)
        values = values * price_f if name != "volume" else values / volume_f
        mask = col.is_null().to_numpy(zero_copy_only=False) if col.null_count else None
        out = out.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type, mask=mask))
    return out


class StreamAdjustment:
    """Back-adjusts market batches for a backtest: LEVEL, TRADE and TICK prices × the price
    factor of their `ts`, quantities ÷ the volume factor.

    Prices before an ex-date are no longer on the exchange's grid, and the engine keeps one tick
    size per symbol: an adjusted symbol's tick becomes its tick × the smallest factor in effect
    from the data's first timestamp on, the exchange's tick in adjusted terms for the earliest
    period. Splits and bonuses that divide evenly (1:2, 1:5, 1:1) keep every price exact; after a
    dividend, later prices are rounded by the engine to that grid (at most half of it off).
    """

    def __init__(self, actions: CorporateActions, instruments: Mapping[str, schemas.Instrument], first_ts: int):
        self.actions = actions
        self.factors: dict[str, Factors] = {}
        self.instruments = dict(instruments)
        for sym in actions.symbols:
            f = actions.factors(sym)
            gap = f.missing_close(first_ts)
            if gap is not None:
                raise DataError(f"{actions.source}: {gap.describe()}: adjusting a market stream needs the close before "
                                "the ex-date: fill in prev_close")
            self.factors[sym] = f
            inst = self.instruments.get(sym)
            j = int(np.searchsorted(f.bounds, first_ts, side="right"))
            if inst is not None:
                scale = float(min(f.price[j:].min(), 1.0))
                self.instruments[sym] = schemas.Instrument(sym, inst.venue, inst.tick_size * scale, inst.lot_size, inst.extra)
        self._last: tuple[pa.Schema, pa.Schema] | None = None  # (input schema, the same with adjusted instruments)

    def adjust(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One market batch, adjusted (same columns; the schema carries the adjusted instruments)."""
        schema = self._schema(batch.schema)
        col = batch.column("symbol")
        names = col.dictionary.to_pylist() if pa.types.is_dictionary(col.type) else None
        if names is None:
            col = col.cast(pa.string()).dictionary_encode()
            names = col.dictionary.to_pylist()
        hit = [(code, self.factors[name]) for code, name in enumerate(names) if name in self.factors]
        if not hit or batch.num_rows == 0:
            return pa.RecordBatch.from_arrays(batch.columns, schema=schema)
        codes = col.indices.to_numpy(zero_copy_only=False)
        kind = batch.column("kind").to_numpy(zero_copy_only=False)
        ts = schemas.int64_view(batch.column("ts"))
        price_f = np.ones(batch.num_rows)
        volume_f = np.ones(batch.num_rows)
        priced = (kind == schemas.LEVEL) | (kind == schemas.TRADE) | (kind == schemas.TICK)
        for code, f in hit:
            rows = np.flatnonzero((codes == code) & priced)
            price_f[rows], volume_f[rows] = f.at(ts[rows])
        cols = list(batch.columns)
        i, k = batch.schema.get_field_index("price"), batch.schema.get_field_index("qty")
        cols[i] = pa.array(batch.column(i).to_numpy(zero_copy_only=False) * price_f)
        cols[k] = pa.array(batch.column(k).to_numpy(zero_copy_only=False) / volume_f)
        return pa.RecordBatch.from_arrays(cols, schema=schema)

    def _schema(self, schema: pa.Schema) -> pa.Schema:
        if self._last is None or self._last[0] is not schema:
            md = dict(schema.metadata or {})
            md[schemas.META_INSTRUMENTS] = schemas.instruments_to_json(self.instruments).encode()
            self._last = (schema, schema.with_metadata(md))
        return self._last[1]


def adjust_stream(batches: Iterable[pa.RecordBatch], actions: CorporateActions,
                  instruments: Mapping[str, schemas.Instrument]) -> tuple[dict[str, schemas.Instrument], Iterator[pa.RecordBatch]]:
    """(the adjusted instruments, the adjusted batches) of a market stream; reads the first
    batch at once, as the tick sizes depend on where the data begins."""
    it = iter(batches)
    first = next((b for b in it if b.num_rows), None)
    if first is None:
        return dict(instruments), iter(())
    adj = StreamAdjustment(actions, instruments, int(schemas.int64_view(first.column("ts")).min()))

    def run() -> Iterator[pa.RecordBatch]:
        yield adj.adjust(first)
        for b in it:
            if b.num_rows:
                yield adj.adjust(b)

    return adj.instruments, run()
