"""`Engine`: one trading run over market batches — backtest, paper and live share it.

Python glue only: map symbols to ids, validate and convert a market batch to arrays (ticks,
local receive times), call the numba kernel once, make room when it asks, and turn the journal
buffers into Arrow batches in the canonical orders/fills/pnl schemas. No per-event Python.

Results do not depend on how the input is cut into batches: the kernel carries the open venue
message, the schedule of in-flight requests/answers and all state across calls (see
`sq.core.engine.kernel`). A paper replay of a file and a backtest of it therefore produce the
same orders and fills.
"""

from __future__ import annotations

import math
import operator
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sq.core import book as B
from sq.core import features as F
from sq.core import schemas as S
from sq.core import smallbatch as SB
from sq.core.bookstream import infer_tick_size
from sq.core.costs import COMPONENTS, CostSchedule
from sq.core.engine import calendars as C
from sq.core.engine import funding as FU
from sq.core.engine import inputs as IN
from sq.core.engine import kernel as K
from sq.core.engine import layout as L
from sq.core.engine import params as engine_params
from sq.core.exits import DataError, StrategyError, UsageError
from sq.core.sessions import MarketCalendar
from sq.core.strategy.declaration import Strategy

if TYPE_CHECKING:
    from sq.core.analytics import Basis
from sq.core.streams import SymbolRegistry

# the state arrays the strategy context points into (`make_context` order), fetched in one C call
_CONTEXT_ARRAYS = operator.attrgetter("book.qbuf", "book.ist", "si", "sf", "oi", "of", "g", "gf", "rej", "ob", "obf", "oo_i", "oo_f",
                                      "pf", "us")
INITIAL_ROWS = 4096
INITIAL_HEAP = 1024
SMALL = 64  # journal rows built from Python lists below this many (cheaper than vectorised compute)
_REC_PNL = np.array([L.POF_POS, L.POF_MARK, L.POF_TOTAL], np.intp)  # the pnl row columns the run's metrics keep


@dataclass(frozen=True)
class FillModelConfig:
    """How the simulated venue fills orders. Defaults are conservative and documented:

    * order_latency_ns: 20 ms one way (request → venue, venue → answer), the config's
      `paper_trading.order_latency_ms`; latency_dist `constant`, or `exponential` / `uniform`
      with `latency_jitter_ns` added (seeded, reproducible), the config's `latency_dist` and
      `latency_jitter_ms` (the plan's `min_latency_ms`/`max_latency_ms`: uniform between them);
    * feed_latency_ns: None = each event's `recv_ts − ts` from the data (never negative), else
      this constant;
    * queue_model `risk-averse`: a level decrease not explained by trades is taken from the front
      of our queue only for `queue_cancel_share` of it (config `paper_trading.queue_cancel_share`,
      default 0.5); `prob`: hftbacktest-style power-probability split with exponent `prob_power`;
    * fees in basis points of notional, maker and taker (config `paper_trading`);
    * fill_probability: each fill the simulated venue would give happens with this probability
      (seeded draws; 1: always), and slippage_model `book` | `fixed` | `normal` | `pareto` moves
      each immediate (taker) fill price against the order by ticks of scale `slippage_ticks`
      (config `paper_trading`, where the plan's trading.json sets them).
    """

    order_latency_ns: int = 20_000_000
    latency_dist: str = "constant"
    latency_jitter_ns: int = 0
    feed_latency_ns: int | None = None
    queue_model: str = "risk-averse"
    queue_cancel_share: float = 0.5
    prob_power: float = 3.0
    maker_fee_bps: float = 2.0
    taker_fee_bps: float = 5.0
    fee_ccy: str = "INR"
    pnl_interval_ns: int = 1_000_000_000
    fill_probability: float = 1.0
    slippage_model: str = "book"
    slippage_ticks: float = 1.0

    @classmethod
    def from_config(cls, config, **overrides) -> "FillModelConfig":
        pt = config.paper_trading
        base = dict(order_latency_ns=int(round(pt.order_latency_ms * 1e6)), latency_dist=pt.latency_dist,
                    latency_jitter_ns=int(round(pt.latency_jitter_ms * 1e6)), queue_cancel_share=float(pt.queue_cancel_share),
                    maker_fee_bps=float(pt.maker_fee_bps), taker_fee_bps=float(pt.taker_fee_bps), fee_ccy=pt.currency,
                    fill_probability=float(pt.fill_probability), slippage_model=str(pt.slippage_model).lower(),
                    slippage_ticks=float(pt.slippage_ticks),
                    feed_latency_ns=None if pt.feed_latency_ms is None else int(round(pt.feed_latency_ms * 1e6)))
        base.update({k: v for k, v in overrides.items() if v is not None})
        if base.get("feed_latency_ns") == "data":  # `--feed-latency data`: the data's own delays, whatever the config says
            base["feed_latency_ns"] = None
        return cls(**base)

    def validate(self) -> None:
        if self.latency_dist not in L.LATENCY_DISTS:
            raise UsageError(f"unknown latency distribution {self.latency_dist!r}; valid: {', '.join(L.LATENCY_DISTS)}")
        if self.queue_model not in L.QUEUE_MODELS:
            raise UsageError(f"unknown queue model {self.queue_model!r}; valid: {', '.join(L.QUEUE_MODELS)}")
        if self.order_latency_ns < 0 or self.latency_jitter_ns < 0 or (self.feed_latency_ns is not None and self.feed_latency_ns < 0):
            raise UsageError("latencies must not be negative")
        if not 0.0 <= self.queue_cancel_share <= 1.0:
            raise UsageError(f"queue cancel share must be within 0..1, got {self.queue_cancel_share}")
        if not 0.0 < self.fill_probability <= 1.0:
            raise UsageError(f"fill probability must be within (0, 1], got {self.fill_probability}")
        if self.slippage_model not in L.SLIPPAGE_MODELS:
            raise UsageError(f"unknown slippage model {self.slippage_model!r}; valid: {', '.join(L.SLIPPAGE_MODELS)}")
        if not self.slippage_ticks >= 0.0:
            raise UsageError(f"slippage ticks must be ≥ 0, got {self.slippage_ticks}")


# the int and float columns of an orders row and the ints of a pnl row in the order their journal
# dicts take them (`_orders_dicts`, `_pnl_dicts`): when that is the layout itself, rows are read
# whole (a fancy-indexing copy costs ~3 µs of a live order step)
_ORDERS_I = (L.OO_TS, L.OO_SYM, L.OO_COID, L.OO_VOID, L.OO_EVENT, L.OO_SIDE, L.OO_REASON)
_ORDERS_F = (L.OOF_PX, L.OOF_QTY, L.OOF_FILLED, L.OOF_LEAVES)
_ORDERS_AS_LAID_OUT = _ORDERS_I == tuple(range(L.NOO_I)) and _ORDERS_F == tuple(range(L.NOO_F))
_PNL_I = (L.PO_TS, L.PO_SYM)
_PNL_AS_LAID_OUT = _PNL_I == tuple(range(L.NPO_I))


class EngineOutput:
    """What one call produced: journal rows (canonical schemas, possibly 0 rows) and how many events.

    `orders`, `fills` and `pnl` are Arrow record batches built on first access, so the engine
    hands control back (the orders have already left through the outbox) before any Arrow work.
    """

    __slots__ = ("events", "funding", "_raw", "_build", "_dict", "_done", "_dicts")

    def __init__(self, raw, build, events: int, dictionary=None, funding=None, dicts=None):
        self._raw = raw  # per stream: (int rows, float rows) or a ready batch
        self._build = build  # per stream: f(int rows, float rows, symbol dictionary) -> batch
        self._dicts = dicts  # per stream: f(int rows, float rows) -> row dicts, or None
        self._dict = dictionary  # the symbol dictionary when the rows were taken
        self._done: list[pa.RecordBatch | None] = [None, None, None]
        self.events = events
        self.funding: list[dict] = funding or []  # `funding` journal records (perpetuals' funding payments)

    def _get(self, k: int) -> pa.RecordBatch:
        b = self._done[k]
        if b is None:
            raw = self._raw[k]
            b = raw if isinstance(raw, pa.RecordBatch) else self._build[k](raw[0], raw[1], self._dict)
            self._done[k] = b
        return b

    def dicts(self, k: int) -> list[dict] | None:
        """Stream `k`'s rows (0 orders, 1 fills, 2 pnl) as plain dicts — the values
        `sq.core.journal.rows_from_batch` gives for the built batch — straight from the kernel's
        arrays, without Arrow (a live run journals them between a tick and its order). None when
        the stream has no such path (read the batch)."""
        raw = self._raw[k]
        if isinstance(raw, pa.RecordBatch):
            return [] if raw.num_rows == 0 else None
        make = self._dicts[k] if self._dicts is not None else None
        return None if make is None else make(raw[0], raw[1])

    @property
    def orders(self) -> pa.RecordBatch:
        return self._get(0)

    @property
    def fills(self) -> pa.RecordBatch:
        return self._get(1)

    @property
    def pnl(self) -> pa.RecordBatch:
        return self._get(2)

    @property
    def rows(self) -> tuple[int, int, int]:
        """Row counts (orders, fills, pnl) without building the batches."""
        return tuple(r.num_rows if isinstance(r, pa.RecordBatch) else len(r[0]) for r in self._raw)

    def __iter__(self):
        return iter((self.orders, self.fills, self.pnl))


class Engine:
    """One strategy run: `process` market batches, then `finish` (or `cancel_all` to halt).

    `strategy` is a `Strategy` declaration or what `--strategy` takes (a built-in name, a file,
    `package.module:NAME`); its handlers are compiled here, before any data is processed."""

    def __init__(self, strategy: "str | Strategy", instruments: Mapping[str, S.Instrument], params: Mapping[str, Mapping[str, float]], *,
                 config, fill: FillModelConfig | None = None, seed: int = 0, sim_venue: bool = True):
        from sq.core.strategy import loader

        self.declaration = strategy if isinstance(strategy, Strategy) else loader.load(strategy)
        self.strategy = self.declaration.name
        self.handlers = loader.compiled(self.declaration)
        self.instruments: dict[str, S.Instrument] = {k.upper(): v for k, v in instruments.items()}
        self.params = engine_params.normalise(self.declaration, params)
        self._ctx: Any = None
        self._tail: tuple | None = None  # the kernel's trailing arguments (`_kernel_tail`)
        self._ctx_arrays: tuple | None = None
        self.strategy_exception: tuple | None = None  # (type, value, traceback) of a handler's exception
        self.config = config
        self.fill = fill or FillModelConfig.from_config(config)
        self.fill.validate()
        self.seed = int(seed)
        self.registry = SymbolRegistry()
        self.book = B.BookState(depth=1, mode=B.MODE_NONE)
        self.ticks: list[float] = []
        self._ccy: list[str] = []  # fee currency per symbol: the instrument's quote currency, else the config's
        self.warnings: list[str] = []
        self.elapsed = 0.0
        self.trades_seen = 0
        self._last_loc = np.iinfo(np.int64).min
        self._inv_ticks = np.zeros(0, np.float64)
        self._reader = IN.ColumnReader()
        self._small = SB.SmallReader()
        self._alloc(sim_venue)
        self._schemas = (S.orders_schema(), S.fills_schema(), S.pnl_schema())
        self._pending: list[tuple[np.ndarray, ...]] = [[], [], []]
        self._empty = None
        self._empty_raw = None
        self._dict_builders: tuple | None = None
        self._builders = None
        self._dict = (-1, None)  # (symbols, dictionary): built on first use, even with no symbols yet
        self.calendars = C.Calendars()  # market calendars by symbol name (`set_calendar`)
        self._circuits: dict[str, tuple[float, float]] = {}  # circuit limits of symbols without state yet
        self._fees: dict[str, tuple[float, float]] = {}  # per-symbol (maker, taker) bps: the venue account's rates
        self.funding = FU.FundingSchedule()  # perpetuals' funding events to come (`set_funding`)
        self._funding_rows: list[dict] = []
        self._t0: int | None = None  # local time of the first batch (funding-data warnings)
        self._record: list[list[tuple[np.ndarray, np.ndarray]]] = [[], []]  # fills and pnl rows taken so far (metrics)
        self.returns_basis: str | None = None  # the metrics' returns basis (`--returns-basis`); None: the config's
        self.calendar_market = False  # a market with a calendar (252 trading days a year in the metrics): set by the run

    # -- state
    def _alloc(self, sim_venue: bool) -> None:
        self._ctx = None
        self._tail = None
        risk = self.config.risk
        self.n = 0
        self.oi = np.zeros((0, L.NOI), np.int64)
        self.of = np.zeros((0, L.NOF), np.float64)
        self.si = np.zeros((0, L.NSI), np.int64)
        self.sf = np.zeros((0, L.NSF), np.float64)
        self.rest = np.zeros((0, L.REST_CAP), np.int64)
        self.g = np.zeros(L.NG, np.int64)
        self.gf = np.zeros(L.NGF, np.float64)
        self.rej = np.zeros(L.NR, np.int64)
        self.hq = np.zeros((INITIAL_HEAP, L.NH), np.int64)
        self.hf = np.zeros(INITIAL_HEAP, np.float64)
        self.ob = np.zeros((INITIAL_ROWS, L.NOB), np.int64)
        self.obf = np.zeros(INITIAL_ROWS, np.float64)
        self.oo_i = np.zeros((INITIAL_ROWS, L.NOO_I), np.int64)
        self.oo_f = np.zeros((INITIAL_ROWS, L.NOO_F), np.float64)
        self.fo_i = np.zeros((INITIAL_ROWS, L.NFO_I), np.int64)
        self.fo_f = np.zeros((INITIAL_ROWS, L.NFO_F), np.float64)
        self.po_i = np.zeros((INITIAL_ROWS, L.NPO_I), np.int64)
        self.po_f = np.zeros((INITIAL_ROWS, L.NPO_F), np.float64)
        self.eq = np.zeros(1024, np.float64)
        self.pf = np.zeros((0, max(1, len(self.declaration.params))), np.float64)
        self.us = np.zeros((0, max(1, self.declaration.state)), np.float64)
        g, gf, f = self.g, self.gf, self.fill
        g[L.G_TIMER_NS] = int(self.declaration.timer_ns)
        has = self.declaration.handlers
        g[L.G_HMASK] = ((L.HAS_BOOK if "on_book" in has else 0) | (L.HAS_TRADE if "on_trade" in has else 0)
                        | (L.HAS_FILL if "on_fill" in has else 0) | (L.HAS_TIMER if "on_timer" in has else 0))
        g[L.G_NEXT_COID] = 1
        g[L.G_NEXT_VOID] = 1
        g[L.G_NEXT_TRADE] = 1
        g[L.G_RNG] = (self.seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & 0x7FFFFFFFFFFFFFFF
        g[L.G_DAY] = -1
        g[L.G_QMODEL] = L.QUEUE_MODELS[f.queue_model]
        g[L.G_LATDIST] = L.LATENCY_DISTS[f.latency_dist]
        g[L.G_LAT] = int(f.order_latency_ns)
        g[L.G_LATJIT] = int(f.latency_jitter_ns)
        g[L.G_PNL_INT] = int(f.pnl_interval_ns)
        g[L.G_MAX_OPEN] = -1 if risk.max_open_orders is None else int(risk.max_open_orders)
        g[L.G_SIMVENUE] = 1 if sim_venue else 0
        g[L.G_HALT_ON_LOSS] = 1 if risk.halt_on_max_loss else 0
        g[L.G_TOKEN_TS] = np.iinfo(np.int64).min // 2
        rate = float(risk.max_order_rate or 0.0)
        gf[L.GF_RATE] = rate
        gf[L.GF_BURST] = max(1.0, rate)
        gf[L.GF_TOKENS] = max(1.0, rate)
        gf[L.GF_DAILY] = abs(float(risk.max_daily_loss or 0.0))
        gf[L.GF_BAND] = float(risk.price_band_pct or 0.0)
        gf[L.GF_NOTIONAL] = float(risk.max_notional or 0.0)
        gf[L.GF_POS_VALUE] = float(risk.max_position_value or 0.0)
        gf[L.GF_FILL_PROB] = float(f.fill_probability)
        gf[L.GF_SLIP_TICKS] = float(f.slippage_ticks)
        g[L.G_SLIP_MODEL] = L.SLIPPAGE_MODELS[f.slippage_model]
        gf[L.GF_SHARE] = float(f.queue_cancel_share)
        gf[L.GF_POWER] = float(f.prob_power)
        gf[L.GF_MAKER_BPS] = float(f.maker_fee_bps)
        gf[L.GF_TAKER_BPS] = float(f.taker_fee_bps)

    def _ensure_symbols(self, batch: pa.RecordBatch, codes: np.ndarray, kind: np.ndarray, price: np.ndarray) -> None:
        n = len(self.registry.symbols)
        if n == self.n:
            return
        meta = S.schema_instruments(batch.schema)
        old = self.n
        k = n - old
        self.si = np.concatenate([self.si, np.zeros((k, L.NSI), np.int64)])
        self.sf = np.concatenate([self.sf, np.zeros((k, L.NSF), np.float64)])
        self.rest = np.concatenate([self.rest, np.zeros((k, L.REST_CAP), np.int64)])
        self.pf = np.concatenate([self.pf, np.zeros((k, self.pf.shape[1]), np.float64)])
        self.us = np.concatenate([self.us, np.zeros((k, self.us.shape[1]), np.float64)])
        extra = np.zeros((k * L.POOL_PER_SYMBOL, L.NOI), np.int64)
        self.oi = np.concatenate([self.oi, extra])
        self.of = np.concatenate([self.of, np.zeros((k * L.POOL_PER_SYMBOL, L.NOF), np.float64)])
        for s in range(old, n):
            name = self.registry.symbols[s]
            inst = self.instruments.get(name) or meta.get(name)
            if inst is None or not inst.tick_size > 0:
                mine = (codes == s) & ((kind == S.LEVEL) | (kind == S.TRADE))
                tick = infer_tick_size(price[mine])
                self.warnings.append(f"{name}: no tick size in the instruments; inferred {tick:g} from its prices")
                inst = S.Instrument(name, inst.venue if inst else "", tick, inst.lot_size if inst else 1.0)
            self.instruments[name] = inst
            self.ticks.append(float(inst.tick_size))
            self._ccy.append(str(inst.extra.get("quote") or inst.extra.get("currency") or self.fill.fee_ccy))
            p = self.params.get(name) or self.params.get(engine_params.ALL)
            si, sf = self.si, self.sf
            si[s, L.SI_SLOT] = -1
            si[s, L.SI_SLOT + 1] = -1
            si[s, L.SI_PSLOT] = -1
            si[s, L.SI_PSLOT + 1] = -1
            si[s, L.SI_HOURS_OPEN] = -1
            si[s, L.SI_HOURS_CLOSE] = -1
            sf[s, L.SF_TICK] = inst.tick_size
            sf[s, L.SF_INV] = F.tick_inverse(inst.tick_size)
            sf[s, L.SF_LOT] = inst.lot_size
            sf[s, L.SF_MARK] = math.nan
            sf[s, L.SF_MAKER_BPS], sf[s, L.SF_TAKER_BPS] = self._fees.get(name, (self.gf[L.GF_MAKER_BPS], self.gf[L.GF_TAKER_BPS]))
            every = float(inst.extra.get("funding_interval_h") or 0.0)
            if every > 0:
                self.funding.expect(name, int(every * FU.NS_PER_HOUR))
            if p is not None:
                si[s, L.SI_CONF] = 1
                for k_, param in enumerate(self.declaration.params):
                    self.pf[s, k_] = p[param.name]
                for size_name in ("clip", "size"):  # an order size below the lot rounds down to nothing
                    v = p.get(size_name)
                    if v is not None and 0.0 < v < inst.lot_size:
                        self.warnings.append(f"{name}: {size_name} {v:g} is below the lot size {inst.lot_size:g}; "
                                             "its orders round down to nothing")
                sf[s, L.SF_MAXORD] = p["max_order_size"]
                sf[s, L.SF_MAXPOS] = p["max_position"]
                sf[s, L.SF_MAXLOSS] = p["max_loss"]
            else:
                self.warnings.append(f"{name}: no strategy parameters; its orders are rejected (unconfigured_symbol)")
        self.book.ensure(n, self.ticks, [0] * n)
        self._inv_ticks = 1.0 / np.asarray(self.ticks, np.float64)
        self.n = n
        self._invalidate_context()
        for name in [x for x in self._circuits if self.registry.find(x) is not None and self.registry.find(x) < n]:
            self.set_circuit_limits(name, *self._circuits.pop(name))
        if self.calendars.entries:
            self.calendars.attach(self.registry.find, n)

    def set_trading_hours(self, symbol: str, open_ns: int, close_ns: int) -> None:
        """Risk hook a venue fills in: orders only between these times of the UTC day (ns)."""
        s = self.registry.id(symbol.upper())
        self.require_symbol(s)
        self.si[s, L.SI_HOURS_OPEN] = int(open_ns)
        self.si[s, L.SI_HOURS_CLOSE] = int(close_ns)

    def set_fees(self, symbol: str, maker_bps: float, taker_bps: float) -> None:
        """The symbol's own maker/taker fees in bps of notional (a venue account's commission
        rates), instead of the fill model's global ones; a symbol not seen yet gets them when it
        appears."""
        name = symbol.upper()
        self._fees[name] = (float(maker_bps), float(taker_bps))
        s = self.registry.find(name)
        if s is not None and s < self.n:
            self.sf[s, L.SF_MAKER_BPS], self.sf[s, L.SF_TAKER_BPS] = self._fees[name]

    def set_funding(self, symbol: str, ts_ns: int, rate: float, mark: float = math.nan) -> None:
        """A perpetual's funding event: at local time `ts_ns` the position pays position × mark ×
        `rate` (a NaN mark: the engine's last mid). Applied when the engine's clock reaches it."""
        self.funding.add(symbol, ts_ns, rate, mark)

    def apply_funding(self, ts_ns: int, symbol: str, rate: float, mark: float = math.nan) -> dict | None:
        """Book one funding payment on the symbol's current position now; its `funding` journal
        record, or None when nothing is held (nothing paid)."""
        s = self.registry.find(symbol.upper())
        if s is None or s >= self.n:
            return None
        sf = self.sf[s]
        pos = float(sf[L.SF_POS])
        if pos == 0.0:
            return None
        m = float(mark) if math.isfinite(mark) and mark > 0 else float(sf[L.SF_MARK])
        if not math.isfinite(m):
            m = float(sf[L.SF_OV_BUY] / pos) if pos > 0 else float(sf[L.SF_OV_SELL] / -pos)
        amount = FU.payment(pos, m, float(rate))
        sf[L.SF_FUNDING] += amount
        rec = {"ts": int(ts_ns), "symbol": self.registry.symbols[s], "position": pos, "mark": m, "rate": float(rate),
               "amount": amount, "ccy": self._ccy[s]}
        self._funding_rows.append(rec)
        return rec

    def adjust_funding(self, symbol: str, delta: float) -> None:
        """Correct the symbol's funding paid by `delta` (a live venue booked other than modelled)."""
        s = self.registry.find(symbol.upper())
        if s is not None and s < self.n:
            self.sf[s, L.SF_FUNDING] += float(delta)

    def _fund_due(self, now: int) -> None:
        for ts, sym, rate, mark in self.funding.due(now):
            self.apply_funding(ts, sym, rate, mark)

    def _by_funding(self, clock: np.ndarray, run) -> None:
        """Run `run(a, b, last)` over the index ranges of `clock` (local times) between funding
        times, booking each funding event before the first event at or after it."""
        n = len(clock)
        i = 0
        while i < n:
            nxt = self.funding.next_ns
            if int(clock[n - 1]) < nxt:
                run(i, n, True)
                return
            j = max(i, int(np.searchsorted(clock, nxt, side="left")))
            if j > i:
                run(i, j, False)
            self._fund_due(nxt)
            i = j

    def _check_funding_data(self) -> None:
        if self._t0 is None:
            self._t0 = self.now_ns
        if self.funding.expected:
            for name in self.funding.missing(self._t0, self.now_ns):
                self.warnings.append(f"{name}: a perpetual held across funding times without funding data; "
                                     "no funding is booked (give --funding FILE, see docs/funding.md)")

    def set_circuit_limits(self, symbol: str, low: float, high: float) -> None:
        """Risk hook the run fills in (the instrument's circuit limits): limit prices must stay
        within [low, high]. A symbol the data has not shown yet gets them when it appears."""
        name = symbol.upper()
        s = self.registry.find(name)
        if s is None or s >= self.n:
            self._circuits[name] = (float(low), float(high))
            return
        tick = self.ticks[s]
        self.si[s, L.SI_CIRC_LO] = int(math.ceil(low / tick - 1e-9))
        self.si[s, L.SI_CIRC_HI] = int(math.floor(high / tick + 1e-9))
        self.si[s, L.SI_HAS_CIRC] = 1

    def set_calendar(self, symbol: str, calendar: MarketCalendar, *, hours: bool = True) -> None:
        """The symbol's market calendar (docs/market-rules.md): on every local day of its market
        the risk check's trading-hours window is the session (`hours`; none on a weekend, and on
        an exchange holiday every order is rejected `holiday`), and when the calendar has a
        square-off, no new order after it that day while the engine cancels the symbol's orders
        and flattens its position (reason `square_off`). Applied when the engine's clock crosses
        those boundaries; a symbol the data has not shown yet gets it when it appears."""
        name = symbol.upper()
        self.calendars.add(name, calendar, hours)
        self.calendars.attach(self.registry.find, self.n)

    def set_costs(self, symbol: str, schedule: CostSchedule) -> None:
        """The symbol's cost model by trade date (`sq.core.costs`, docs/costs.md): each fill pays
        its charges under the rates in force on its local date instead of the fill model's
        maker/taker bps. Applied with the market calendars (a symbol the data has not shown yet
        gets it when it appears)."""
        name = symbol.upper()
        self.calendars.add_costs(name, schedule)
        self.calendars.attach(self.registry.find, self.n)

    def cost_schedule(self, symbol: str) -> CostSchedule | None:
        """The symbol's cost model by trade date (`set_costs`), or None (the fill model's fees)."""
        e = self.calendars.entries.get(symbol.upper())
        return None if e is None else e.costs

    def _roll_calendars(self, now: int, *, fresh: bool = False) -> None:
        """Apply the calendars' boundaries up to local time `now` (the input is split there);
        `fresh`: only open the first day of calendars just attached (no boundary is crossed)."""
        for s, when in self.calendars.roll(now, self.si, self.warnings.append, fresh=fresh, sf=self.sf):
            self._square_off(s, max(int(when), int(self.g[L.G_LASTLOC])))

    def _square_off(self, s: int, now: int) -> None:
        """The broker's cut-off for symbol `s` at local time `now` (`kernel.square_off_begin`)."""
        self.make_room(K.ST_FLUSH)
        while K._room(self.g, self.oo_i, self.fo_i, self.po_i, self.hq, self.ob, self._margin()) != K.ST_OK:
            self.make_room(K._room(self.g, self.oo_i, self.fo_i, self.po_i, self.hq, self.ob, self._margin()))
        K.square_off_begin(self.book.qbuf, self.book.ist, self.oi, self.of, self.si, self.sf, self.g, self.gf, self.hq, self.hf,
                           self.ob, self.obf, self.oo_i, self.oo_f, s, now)

    def _by_calendar(self, clock: np.ndarray, run) -> None:
        """Run `run(a, b, last)` over the index ranges of `clock` (local times, non-decreasing)
        between calendar boundaries, applying each boundary at the first time at or after it."""
        cal = self.calendars
        n = len(clock)
        if cal.fresh and n:
            self._roll_calendars(int(clock[0]), fresh=True)
        i = 0
        while i < n:
            if int(clock[n - 1]) < cal.next_ns:
                run(i, n, True)
                return
            j = max(i, int(np.searchsorted(clock, cal.next_ns, side="left")))
            if j > i:
                run(i, j, False)
            self._at_boundary(int(cal.next_ns))
            self._roll_calendars(int(clock[j]))
            i = j

    def _at_boundary(self, boundary: int | None = None) -> None:
        """Before a calendar boundary: the open venue message is complete (its `on_book` acts
        under the hours it arrived in; the next event starts a new message anyway), and what was
        scheduled before the boundary happens before it (a fill of the day pays that day's rates)."""
        self._close_message()
        if boundary is not None and self.g[L.G_HN] > 0:
            self._drain_all(boundary - 1)

    def advance(self, now_ns: int) -> EngineOutput:
        """Apply the market calendars up to local time `now_ns` without market data (a live run
        between ticks: its square-off cancels on time even when the market is quiet)."""
        now = max(int(now_ns), int(self.g[L.G_LASTLOC]))
        if self.calendars.fresh and self.n:
            self._roll_calendars(now, fresh=True)
        if self.calendars.entries and self.n and now >= self.calendars.next_ns:
            self._at_boundary()
            self._roll_calendars(now)
        if now >= self.funding.next_ns:  # a quiet market still pays its funding on time
            self._fund_due(now)
        return self.take_output(0)

    def require_symbol(self, s: int) -> None:
        """Give symbol id `s` its kernel state (a live venue answer may name a symbol before any data)."""
        if s >= self.n:
            name = self.registry.symbols[s]
            inst = self.instruments.get(name)
            if inst is None:
                raise UsageError(f"{name}: unknown instrument (no tick size)")
            empty = S.market_batch(S.market_schema({name: inst}), S.symbol_dictionary([name]), *([np.zeros(0)] * 8))
            self._ensure_symbols(empty, np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(0))

    # -- input conversion
    def _arrays(self, batch: pa.RecordBatch, run: bool | None = None):
        """The kernel's input arrays of a batch. With `run` (the `complete` flag) a small batch is
        also run through the kernel in the same compiled call: returns (arrays, status, next
        event), status None when it was not run."""
        n = batch.num_rows
        sm = self._small
        if n <= SB.SMALL_ROWS and sm.prepare_schema(batch.schema):
            out = self._arrays_small(batch, n, run)
            if out is None and sm.res[0] == 2 and sm.same_dictionary(batch):  # a new but equal dictionary: same mapping
                out = self._arrays_small(batch, n, run)
            if out is not None:
                return out
        out = self._arrays_general(batch, n)
        if n <= SB.SMALL_ROWS:  # a new symbol dictionary: remember its mapping
            sm.learn_dictionary(batch, self.registry.id)
        return out if run is None else (out, None, 0)

    def _arrays_small(self, batch: pa.RecordBatch, n: int, run: bool | None = None):
        """The small-batch path: one export and one compiled call into reused scratch arrays
        (and with `run`, the kernel run too); None when the batch needs the general path (nulls,
        a new symbol dictionary)."""
        sm = self._small
        ts, recv, kind, side, price, qty, seq, codes, tick, loc = sm.arrays(n)
        feed = self.fill.feed_latency_ns
        has_recv = feed is None and sm.has_recv_col
        res = sm.res
        st = i = None
        sm.export(batch)
        try:
            if run is None:
                IN.read_small(sm.addr, sm.plan, has_recv, int(feed or 0), sm.symmap, sm.dkey, self._inv_ticks, self._last_loc,
                              ts, recv, kind, side, price, qty, seq, codes, tick, loc, res)
            else:
                st, i = IN.read_run(sm.addr, sm.plan, has_recv, int(feed or 0), sm.symmap, sm.dkey, self._inv_ticks,
                                    self._last_loc, ts, recv, kind, side, price, qty, seq, codes, tick, loc, res, run,
                                    *self._kernel_tail())
        finally:
            sm.release()
        status, bad, last, trades = res.tolist()  # one call, not four NumPy scalar reads
        if status != 0:
            return None
        if bad >= 0:
            raise DataError(f"market row {bad} of the batch ({self.registry.symbols[int(codes[bad])]}): bad event "
                            f"(kind {int(kind[bad])}, side {int(side[bad])}, price {float(price[bad])!r}, qty {float(qty[bad])!r})")
        self._last_loc = last
        self.trades_seen += trades
        arrays = ts, loc, codes, kind, side, tick, qty, seq
        return arrays if run is None else (arrays, st, i)

    def _arrays_general(self, batch: pa.RecordBatch, n: int):
        cols = self._reader(batch)
        for name in ("ts", "kind", "side", "price", "qty", "seq"):
            if cols.get(name) is None:
                raise DataError(f"not a market stream: column {name!r} is " + ("missing" if name not in cols else "null in places"))
        sym = cols.get("symbol")
        if sym is None:
            raise DataError("not a market stream: column 'symbol' is missing or null in places")
        codes = self.registry.codes(sym)
        if codes.dtype != np.int32:
            codes = codes.astype(np.int32)
        kind, price, side, qty, seq, ts = cols["kind"], cols["price"], cols["side"], cols["qty"], cols["seq"], cols["ts"]
        if len(self.registry.symbols) != self.n:
            self._ensure_symbols(batch, codes, kind, price)
        feed = self.fill.feed_latency_ns
        has_recv = feed is None and "recv_ts" in cols
        recv = cols["recv_ts"] if has_recv else ts
        tick = np.empty(n, np.int64)
        loc = np.empty(n, np.int64)
        bad, last = IN.prepare(kind, side, price, qty, ts, recv, has_recv, int(feed or 0), codes, self._inv_ticks,
                               self._last_loc, tick, loc)
        if bad >= 0:
            j = int(bad)
            raise DataError(f"market row {j} of the batch ({self.registry.symbols[int(codes[j])]}): bad event "
                            f"(kind {int(kind[j])}, side {int(side[j])}, price {float(price[j])!r}, qty {float(qty[j])!r})")
        self._last_loc = int(last)
        self.trades_seen += int(np.count_nonzero(kind == S.TRADE)) if n > 1 else int(kind[0] == S.TRADE)
        return ts, loc, codes, kind, side, tick, qty, seq

    # -- running
    def _margin(self) -> int:
        return 64 + 8 * max(self.n, 1)

    def _state(self):
        b = self.book
        return (b.qbuf, b.ist, b.g, b.pv_tick, b.pv_qty, self.oi, self.of, self.si, self.sf, self.rest, self.g, self.gf,
                self.rej, self.hq, self.hf, self.ob, self.obf, self.oo_i, self.oo_f, self.fo_i, self.fo_f, self.po_i,
                self.po_f, self.eq)

    def context(self) -> Any:
        """The strategy context over the current state arrays (rebuilt when one was reallocated)."""
        if self._ctx is None:  # invalidated wherever an array is reallocated (`_invalidate_context`)
            from sq.core.engine.context import make_context  # here, not above: an import statement costs ~0.5 µs a call

            arrays = _CONTEXT_ARRAYS(self)
            self._ctx = make_context(*arrays)
            self._ctx_arrays = arrays  # the context's table points into these: keep them alive with it
        return self._ctx

    def _invalidate_context(self) -> None:
        """A state array may have been replaced: rebuild the context and the kernel's trailing
        arguments before the next call. Every reallocation of an engine or book array calls this."""
        self._ctx = None
        self._tail = None

    def _kernel_tail(self) -> tuple:
        """(state arrays…, symbols, margin, handler addresses, context table): the arguments every
        kernel call ends with, built once per layout. Building them (24 attribute reads, the
        context check) cost ~0.9 µs of every 1-event paper step."""
        t = self._tail
        if t is None:
            t = self._tail = (*self._state(), self.n, self._margin(), *self._strategy())
        return t

    def context_arrays(self) -> tuple:
        """The state arrays the strategy context is made of, in `make_context` order."""
        return _CONTEXT_ARRAYS(self)

    def _strategy(self) -> tuple:
        """The kernel's strategy arguments: the handlers' addresses and the context's table."""
        return self.handlers.addresses, self.context().table

    def strategy_failure(self, error: Exception) -> Exception:
        """An exception out of a kernel: the strategy's failure when a handler raised it (the
        engine records which handler runs), else the error itself."""
        if self.g[L.G_HANDLER] == L.HANDLER_NONE:
            return error
        self.strategy_exception = (type(error), error, error.__traceback__)
        g = self.g
        g[L.G_BAD] = L.BAD_RAISED
        g[L.G_BAD_SYM] = g[L.G_HSYM]
        g[L.G_BAD_HANDLER] = g[L.G_HANDLER]
        g[L.G_BAD_COUNT] += 1
        return self.failure()

    def failure(self) -> StrategyError:
        """The strategy's recorded failure as the error the runs report: what went wrong, in which
        handler, at which line of the strategy's file; the strategy is halted."""
        from sq.core.strategy.failures import describe

        message = describe(self)
        g = self.g
        g[L.G_BAD] = L.BAD_NONE  # reported once; the strategy is halted so it can fail no further
        g[L.G_HANDLER] = L.HANDLER_NONE
        if g[L.G_HALTED] == L.HALT_NONE:
            g[L.G_HALTED] = L.HALT_MANUAL
            g[L.G_HALT_REASON] = L.HALT_MANUAL
            self._manual_reason = "strategy_error"
        return StrategyError(message)
    def make_room(self, st: int) -> None:
        """Make the room the kernel asked for."""
        if st == K.ST_FLUSH:
            self._take_rows()
            if self.g[L.G_NOB] + self._margin() > len(self.ob):
                self.ob = np.concatenate([self.ob, np.zeros_like(self.ob)])
                self.obf = np.concatenate([self.obf, np.zeros_like(self.obf)])
                self._invalidate_context()
            for name in ("oo_i", "oo_f", "fo_i", "fo_f", "po_i", "po_f"):
                a = getattr(self, name)
                if len(a) < 4 * self._margin():
                    setattr(self, name, np.concatenate([a, np.zeros((4 * self._margin(), a.shape[1]), a.dtype)]))
                    self._invalidate_context()
        elif st == K.ST_GROW_HEAP:
            self.hq = np.concatenate([self.hq, np.zeros_like(self.hq)])
            self.hf = np.concatenate([self.hf, np.zeros_like(self.hf)])
            self._invalidate_context()
        elif st == K.ST_GROW_EQ:
            self.eq = np.concatenate([self.eq, np.zeros_like(self.eq)])
            self._invalidate_context()
        elif st == K.ST_GROW_BOOK:
            s = int(self.book.g[B.G_NEED_SYM])
            try:
                self.book.grow_window(s, int(self.book.g[B.G_NEED_SPAN]))
                self._invalidate_context()
            except OverflowError:
                raise DataError(f"{self.registry.symbols[s]}: live price levels span more than {B.MAX_WINDOW // 2} ticks") from None

    def process(self, batch: pa.RecordBatch, *, complete: bool = False) -> EngineOutput:
        """Run one conformed market batch through the engine; returns the journal rows it produced.

        `complete=True` says the batch ends on a venue-message boundary (closes the message now
        rather than at the next event; the results are the same).
        """
        t0 = time.perf_counter()
        if batch.num_rows == 0:
            return self.take_output(0)
        n = batch.num_rows
        if self._t0 is None:  # where the run's clock starts (funding times crossed without funding data)
            try:
                self._t0 = int(S.int64_view(batch.column("ts"))[0])
            except (KeyError, TypeError, ValueError, IndexError):
                pass
        if self.calendars.entries or self.funding.next_ns != FU.NEVER:  # split at calendar boundaries, funding times
            try:
                arrays = self._arrays(batch)
            except Exception as e:
                raise self.strategy_failure(e) from None

            def run(a: int, b: int, last: bool) -> None:
                part = arrays if a == 0 and b == n else tuple(x[a:b] for x in arrays)
                self._run(part, None, 0, complete and last)

            def by_calendar(a: int, b: int, last: bool) -> None:
                if not self.calendars.entries:
                    run(a, b, last)
                    return
                self._by_calendar(arrays[1][a:b], lambda x, y, end: run(a + x, a + y, last and end))

            self._by_funding(arrays[1], by_calendar)
        else:
            try:
                arrays, st, i = self._arrays(batch, bool(complete))  # small batches run the kernel here too
            except Exception as e:
                raise self.strategy_failure(e) from None
            self._run(arrays, st, i, complete)
        if self._t0 is None or self.funding.expected:
            self._check_funding_data()
        self.elapsed += time.perf_counter() - t0
        return self.take_output(n)

    def _run(self, arrays: tuple, st: int | None, i: int, complete: bool) -> None:
        """The event kernel over `arrays` from event `i` (`st`: the status of a run already made)."""
        ro = None
        while True:
            if st is None:
                if ro is None:
                    ro = IN.readonly_all(arrays)
                try:
                    st, i = K.run(*ro, i, complete, *self._kernel_tail())
                except Exception as e:
                    raise self.strategy_failure(e) from None
            if st == K.ST_OK:
                return
            if st == K.ST_BAD:
                raise self.failure()
            self.make_room(st)
            st = None

    def _drain_all(self, until: int | None = None) -> None:
        """Run every scheduled item (or those due before local/venue time `until`)."""
        t = K.T_END if until is None else until
        while True:
            try:
                st = K.drain(t, t, self.book.qbuf, self.book.ist, self.oi, self.of, self.si, self.sf, self.rest,
                             self.g, self.gf, self.hq, self.hf, self.ob, self.obf, self.oo_i, self.oo_f, self.fo_i, self.fo_f,
                             self.po_i, self.po_f, self.n, self._margin(), *self._strategy())
            except Exception as e:
                raise self.strategy_failure(e) from None
            if st == K.ST_OK:
                return
            if st == K.ST_BAD:
                raise self.failure()
            self.make_room(st)

    def _close_message(self) -> None:
        while K._room(self.g, self.oo_i, self.fo_i, self.po_i, self.hq, self.ob, self._margin()) != K.ST_OK:
            self.make_room(K._room(self.g, self.oo_i, self.fo_i, self.po_i, self.hq, self.ob, self._margin()))
        try:
            K.close_message(self.book.qbuf, self.book.ist, self.oi, self.of, self.si, self.sf, self.rest, self.g, self.gf, self.rej,
                            self.hq, self.hf, self.ob, self.obf, self.oo_i, self.oo_f, self.po_i, self.po_f, self.n,
                            *self._strategy())
        except Exception as e:
            raise self.strategy_failure(e) from None
        if self.g[L.G_BAD] != L.BAD_NONE:
            raise self.failure()

    def finish(self) -> EngineOutput:
        """End of input: close the open message, let every in-flight request and answer land,
        and write a closing pnl row per traded symbol."""
        t0 = time.perf_counter()
        self._close_message()
        self._drain_all()
        self.make_room(K.ST_FLUSH)
        K.final_rows(self.si, self.sf, self.g, self.po_i, self.po_f, self.n, self.now_ns)
        self.elapsed += time.perf_counter() - t0
        return self.take_output(0)

    def cancel_all(self, ts_ns: int, reason: str = "manual") -> EngineOutput:
        """Halt: no new orders; cancel every working order at local time `ts_ns` and let the
        simulated venue answer every in-flight request (all orders end DEAD or filled)."""
        code = {"max_loss": L.HALT_MAX_LOSS, "daily_loss": L.HALT_DAILY}.get(reason, L.HALT_MANUAL)
        self._manual_reason = reason
        self.make_room(K.ST_FLUSH)
        if self.g[L.G_HALTED] == L.HALT_NONE:
            self.g[L.G_HALTED] = code
            self.g[L.G_HALT_REASON] = code
        self._close_message()
        self.make_room(K.ST_FLUSH)
        now = max(int(ts_ns), int(self.g[L.G_LASTLOC]))
        K.halt_all(self.oi, self.of, self.si, self.sf, self.g, self.hq, self.hf, self.ob, self.obf, self.oo_i, self.oo_f,
                   self.g[L.G_HALTED], now)
        self._drain_all()
        return self.take_output(0)

    def carry_daily_loss(self, now_ns: int, earlier_total: float) -> None:
        """Count what other runs made today (the UTC day of `now_ns`) against `max_daily_loss`:
        the day's window starts at `-earlier_total` instead of at this run's first account total,
        so a restart (or a crash and `--resume`) never hands out a fresh daily allowance."""
        self.g[L.G_DAY] = int(now_ns) // L.NS_PER_DAY
        self.gf[L.GF_DAY_START] = -float(earlier_total)

    def resume_trading(self) -> None:
        """Lift a manual halt (`cancel_all`), e.g. after a resumed run closed the orders of the
        process that crashed. A risk halt (max loss, daily loss) is final for the run."""
        if int(self.g[L.G_HALTED]) == L.HALT_MANUAL:
            self.g[L.G_HALTED] = L.HALT_NONE
            self.g[L.G_HALT_REASON] = L.HALT_NONE

    @property
    def now_ns(self) -> int:
        """Local time of the engine's last action (the data's clock)."""
        return int(max(self.g[L.G_LASTLOC], 0))

    @property
    def halted(self) -> str | None:
        h = int(self.g[L.G_HALTED])
        if h == L.HALT_NONE:
            return None
        return getattr(self, "_manual_reason", None) if h == L.HALT_MANUAL else L.HALT_NAMES[h]

    # -- outputs
    _NROWS = np.array([L.G_NO, L.G_NF, L.G_NP], np.intp)

    def _take_rows(self) -> None:
        g = self.g
        ro, rf, rp = g[self._NROWS].tolist()
        if ro:
            self._pending[0].append((self.oo_i[:ro].copy(), self.oo_f[:ro].copy()))
            g[L.G_NO] = 0
        if rf:
            rows = (self.fo_i[:rf].copy(), self.fo_f[:rf].copy())
            self._pending[1].append(rows)
            self._record[0].append(rows)  # the same copies, kept for the run's metrics (`trader_metrics`)
            g[L.G_NF] = 0
        if rp:
            rows = (self.po_i[:rp].copy(), self.po_f[:rp].copy())
            self._pending[2].append(rows)
            self._record[1].append((rows[0], rows[1].take(_REC_PNL, axis=1)))  # ts, symbol; position, mark, total (take: a fraction of fancy indexing's cost on a row or two)
            g[L.G_NP] = 0

    def take_output(self, events: int) -> EngineOutput:
        """The orders/fills/pnl rows produced since the last call, as an `EngineOutput` counting `events`."""
        e = self._empty
        nsym = len(self.registry.symbols)
        if e is None or e[3] != nsym:
            z = ((np.zeros((0, L.NOO_I), np.int64), np.zeros((0, L.NOO_F))), (np.zeros((0, L.NFO_I), np.int64), np.zeros((0, L.NFO_F))),
                 (np.zeros((0, L.NPO_I), np.int64), np.zeros((0, L.NPO_F))))
            e = self._empty = (self._orders_batch(*z[0]), self._fills_batch(*z[1]), self._pnl_batch(*z[2]), nsym)
            self._empty_raw = e[:3]
        self._take_rows()
        pend = self._pending
        funding = None
        if self._funding_rows:
            funding, self._funding_rows = self._funding_rows, []
        if not (pend[0] or pend[1] or pend[2]):  # nothing produced (most paper events): no Arrow work
            return EngineOutput(self._empty_raw, None, events, funding=funding)
        self._pending = [[], [], []]
        raw = [e[k] if not c else c[0] if len(c) == 1 else (np.concatenate([x[0] for x in c]), np.concatenate([x[1] for x in c]))
               for k, c in enumerate(pend)]
        if self._builders is None:
            self._builders = (self._orders_batch, self._fills_batch, self._pnl_batch)
            self._dict_builders = (self._orders_dicts, None, self._pnl_dicts)
        return EngineOutput(raw, self._builders, events, self._symdict(), funding, self._dict_builders)

    def _symdict(self) -> pa.Array:
        if self._dict[0] != len(self.registry.symbols):
            self._dict = (len(self.registry.symbols), self.registry.dictionary())
        return self._dict[1]

    @staticmethod
    def _ts(a: np.ndarray) -> pa.Array:
        return pa.array(np.ascontiguousarray(a), type=pa.int64()).view(S.TS)

    @staticmethod
    def _ids(prefix: str, a: np.ndarray, null_zero: bool = False) -> pa.Array:
        if len(a) <= SMALL:
            return pa.array([None if (null_zero and x == 0) else f"{prefix}{x}" for x in a.tolist()], pa.string())
        strs = pa.array(np.ascontiguousarray(a), type=pa.int64()).cast(pa.string())
        out = pc.binary_join_element_wise(prefix, strs, "")
        if null_zero:
            out = pc.if_else(pa.array(a == 0), pa.nulls(len(a), pa.string()), out)
        return out

    @staticmethod
    def _names(names, idx: np.ndarray, null_zero: bool = False) -> pa.Array:
        if len(idx) <= SMALL:
            return pa.array([None if (null_zero and x == 0) else names[x] for x in idx.tolist()], pa.string())
        d = pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32), mask=(idx == 0) if null_zero else None),
                                           pa.array(list(names), pa.string()))
        return d.cast(pa.string())

    def _orders_batch(self, i, f, d=None) -> pa.RecordBatch:
        d = self._symdict() if d is None else d
        cols = [self._ts(i[:, L.OO_TS]), S.dict_column(i[:, L.OO_SYM], d), self._ids("", i[:, L.OO_COID]),
                self._ids("sim-", i[:, L.OO_VOID], null_zero=True), self._names(S.ORDER_EVENTS, i[:, L.OO_EVENT]),
                pa.array(i[:, L.OO_SIDE].astype(np.int8)), pa.array(f[:, L.OOF_PX]), pa.array(f[:, L.OOF_QTY]),
                pa.array(f[:, L.OOF_FILLED]), pa.array(f[:, L.OOF_LEAVES]), self._names(L.REASONS, i[:, L.OO_REASON], null_zero=True)]
        return pa.RecordBatch.from_arrays(cols, schema=self._schemas[0])

    def _orders_dicts(self, i, f) -> list[dict]:
        """`_orders_batch`'s rows as `journal.rows_from_batch` reads them, without Arrow."""
        names, syms, events, reasons = self._schemas[0].names, self.registry.symbols, S.ORDER_EVENTS, L.REASONS
        cols = (i if _ORDERS_AS_LAID_OUT else i[:, _ORDERS_I]).tolist()
        vals = (f if _ORDERS_AS_LAID_OUT else f[:, _ORDERS_F]).tolist()
        return [dict(zip(names, (ts, syms[sym], f"{coid}", None if void == 0 else f"sim-{void}", events[ev], side,
                                 px, qty, filled, leaves, None if reason == 0 else reasons[reason])))
                for (ts, sym, coid, void, ev, side, reason), (px, qty, filled, leaves) in zip(cols, vals)]

    def _pnl_dicts(self, i, f) -> list[dict]:
        """`_pnl_batch`'s rows as `journal.rows_from_batch` reads them, without Arrow."""
        names, syms = self._schemas[2].names, self.registry.symbols
        ids = i if _PNL_AS_LAID_OUT else i[:, _PNL_I]
        return [dict(zip(names, (ts, syms[sym], *vals))) for (ts, sym), vals in zip(ids.tolist(), f[:, :L.NPO_F].tolist())]

    def _fills_batch(self, i, f, d=None) -> pa.RecordBatch:
        d = self._symdict() if d is None else d
        ccy = pa.array([self._ccy[s] for s in i[:, L.FO_SYM].tolist()], pa.string())
        cols = [self._ts(i[:, L.FO_TS]), S.dict_column(i[:, L.FO_SYM], d), self._ids("", i[:, L.FO_COID]),
                self._ids("sim-", i[:, L.FO_VOID], null_zero=True), self._ids("t", i[:, L.FO_TRADE]),
                pa.array(i[:, L.FO_SIDE].astype(np.int8)), pa.array(f[:, L.FOF_PX]), pa.array(f[:, L.FOF_QTY]),
                pa.array(f[:, L.FOF_FEE]), ccy, self._names(("taker", "maker"), i[:, L.FO_LIQ])]
        return pa.RecordBatch.from_arrays(cols, schema=self._schemas[1])

    def _pnl_batch(self, i, f, d=None) -> pa.RecordBatch:
        d = self._symdict() if d is None else d
        cols = [self._ts(i[:, L.PO_TS]), S.dict_column(i[:, L.PO_SYM], d)] + [pa.array(np.ascontiguousarray(f[:, c])) for c in range(L.NPO_F)]
        return pa.RecordBatch.from_arrays(cols, schema=self._schemas[2])

    # -- reporting
    _COUNTERS = np.array([L.G_EVENTS, L.G_MESSAGES, L.G_ORDERS, L.G_CANCELS, L.G_FILLS, L.G_OPEN], np.intp)

    def counters(self) -> dict[str, int]:
        ev, msg, orders, cancels, fills, open_ = self.g[self._COUNTERS].tolist()
        return {"events": ev, "messages": msg, "orders": orders, "cancels": cancels, "fills": fills, "open_orders": open_,
                "rejections": sum(self.rej.tolist())}

    def rejections(self) -> dict[str, int]:
        return {L.REASONS[k]: int(v) for k, v in enumerate(self.rej) if k and v}

    def positions(self) -> dict[str, dict[str, float]]:
        """Per symbol: position, average price, realized (net of fees and funding), unrealized,
        total (net), gross (before costs), fees, funding paid, volume."""
        out = {}
        for s in range(self.n):
            sf = self.sf[s]
            pos = float(sf[L.SF_POS])
            avg = float(sf[L.SF_OV_BUY] / pos) if pos > 0 else float(sf[L.SF_OV_SELL] / -pos) if pos < 0 else None
            out[self.registry.symbols[s]] = {
                "position": pos, "avg_price": avg, "realized": float(sf[L.SF_REAL] - sf[L.SF_FEES] - sf[L.SF_FUNDING]),
                "unrealized": float(sf[L.SF_UNREAL]),
                "total": float(sf[L.SF_REAL] + sf[L.SF_UNREAL] - sf[L.SF_FEES] - sf[L.SF_FUNDING]),
                "gross": float(sf[L.SF_REAL] + sf[L.SF_UNREAL]), "fees": float(sf[L.SF_FEES]), "funding": float(sf[L.SF_FUNDING]),
                "volume": float(sf[L.SF_VOL]), "turnover": float(sf[L.SF_TURNOVER])}
        return out

    def costs(self) -> dict[str, Any]:
        """What the run's fills have cost, by component (`sq.core.costs.COMPONENTS`: brokerage,
        transaction tax, exchange charges, regulatory fees, stamp duty, GST), in total (the fees)
        and the same per symbol (`by_symbol`)."""
        sf = self.sf[:self.n]
        k = sf[:, L.SF_K_BROK:L.SF_K_GST + 1]
        out: dict[str, Any] = {name: float(k[:, i].sum()) for i, name in enumerate(COMPONENTS)}
        out["total"] = float(sf[:, L.SF_FEES].sum())
        out["by_symbol"] = {self.registry.symbols[s]: {**{name: float(k[s, i]) for i, name in enumerate(COMPONENTS)},
                                                       "total": float(sf[s, L.SF_FEES])} for s in range(self.n)}
        return out

    def summary(self) -> dict[str, Any]:
        """The `--json` summary document fields of the run so far."""
        pos = self.positions()
        realized = sum(p["realized"] for p in pos.values())
        unreal = sum(p["unrealized"] for p in pos.values())
        fees = sum(p["fees"] for p in pos.values())
        funding = sum(p["funding"] for p in pos.values())
        gross = sum(p["gross"] for p in pos.values())
        total = realized + unreal
        sent = float(self.gf[L.GF_SENT_QTY])
        events = int(self.g[L.G_EVENTS])
        fill_ratio = float(self.gf[L.GF_FILLED_QTY] / sent) if sent > 0 else 0.0
        turnover = sum(p["turnover"] for p in pos.values())
        metrics = self.metrics(total, fill_ratio, turnover)
        return {
            "strategy": self.strategy,
            "symbols": list(self.registry.symbols),
            "events": events,
            "messages": int(self.g[L.G_MESSAGES]),
            "orders": int(self.g[L.G_ORDERS]),
            "cancels": int(self.g[L.G_CANCELS]),
            "fills": int(self.g[L.G_FILLS]),
            "position": {s: p["position"] for s, p in pos.items()},
            "pnl": {"realized": realized, "unrealized": unreal, "total": total, "fees": fees,
                    "gross": gross, "funding": funding, "costs": fees + funding, "net": total},
            "charges": self.costs(),
            "per_symbol": pos,
            "max_drawdown": float(self.gf[L.GF_MAXDD]),
            "sharpe": metrics["sharpe"],
            "fill_ratio": fill_ratio,
            "turnover": turnover,
            "metrics": metrics,
            "rejections": self.rejections(),
            "halted": self.halted,
            "elapsed_s": self.elapsed,
            "events_per_s": events / self.elapsed if self.elapsed > 0 else 0.0,
        }

    def basis(self) -> "Basis":
        """The metrics' returns basis: `returns_basis` or the config's `[research] returns_basis`;
        a year of 252 trading days when the symbols' market keeps a calendar (`calendar_market`, or
        a market calendar given: NSE, BSE), else 365 (around the clock: Binance, SIM)."""
        from sq.core.analytics import parse_basis

        research = getattr(self.config, "research", None)
        text = self.returns_basis or getattr(research, "returns_basis", None) or "1d"
        calendar = self.calendar_market or any(not e.only_costs for e in self.calendars.entries.values())
        return parse_basis(text, calendar=calendar, option="--returns-basis" if self.returns_basis else "research.returns_basis")

    def metrics(self, net: float, fill_ratio: float, turnover: float) -> dict[str, Any]:
        """The run's trader metrics (docs/metrics.md) from the fills and pnl rows taken so far."""
        from sq.core.analytics import trader_metrics

        fi, ff = _stack(self._record[0], L.NFO_I, L.NFO_F)
        pi, pf = _stack(self._record[1], L.NPO_I, len(_REC_PNL))
        self._record = [[(fi, ff)] if len(fi) else [], [(pi, pf)] if len(pi) else []]  # concatenated once
        starts = [t for t in (self._t0, int(pi[:, L.PO_TS].min()) if len(pi) else None, int(fi[:, L.FO_TS].min()) if len(fi) else None)
                  if t is not None]
        start = min(starts) if starts else self.now_ns
        return trader_metrics(
            start_ns=start, end_ns=self.now_ns, nsym=self.n,
            pnl_ts=pi[:, L.PO_TS], pnl_sym=pi[:, L.PO_SYM], pnl_pos=pf[:, 0], pnl_mark=pf[:, 1], pnl_total=pf[:, 2],
            fill_ts=fi[:, L.FO_TS], fill_sym=fi[:, L.FO_SYM], fill_side=fi[:, L.FO_SIDE], fill_px=ff[:, L.FOF_PX], fill_qty=ff[:, L.FOF_QTY],
            fill_fee=ff[:, L.FOF_FEE], capital=float(self.config.paper_trading.starting_capital), basis=self.basis(), net=net,
            fill_ratio=fill_ratio, turnover=turnover, max_drawdown=float(self.gf[L.GF_MAXDD]))

    def seed_metrics(self, fills: pa.Table, pnl: pa.Table) -> None:
        """Count a resumed run's earlier fills and pnl rows (its journal's, canonical schemas) in
        its metrics, as if this engine had produced them (a pnl row without a mark: NaN; rows of
        symbols the engine does not hold are left out)."""
        def known(t: pa.Table) -> pa.Table:
            ids = [None if x is None else self.registry.find(str(x)) for x in t.column("symbol").cast(pa.string()).to_pylist()]
            keep = [i is not None and i < self.n for i in ids]
            return t if all(keep) else t.filter(pa.array(keep, pa.bool_()))

        def codes(t: pa.Table) -> np.ndarray:
            return np.array([self.registry.find(str(x)) for x in t.column("symbol").cast(pa.string()).to_pylist()], np.int64)

        fills, pnl = known(fills), known(pnl)

        def col(t: pa.Table, name: str) -> np.ndarray:
            if name not in t.column_names:
                return np.full(t.num_rows, math.nan)
            return t.column(name).to_numpy(zero_copy_only=False).astype(np.float64)

        fi = np.zeros((fills.num_rows, L.NFO_I), np.int64)
        ff = np.zeros((fills.num_rows, L.NFO_F), np.float64)
        if fills.num_rows:
            fi[:, L.FO_TS] = fills.column("ts").cast(pa.int64()).to_numpy()
            fi[:, L.FO_SYM] = codes(fills)
            fi[:, L.FO_SIDE] = col(fills, "side")
            ff[:, L.FOF_PX], ff[:, L.FOF_QTY], ff[:, L.FOF_FEE] = col(fills, "price"), col(fills, "qty"), np.nan_to_num(col(fills, "fee"))
        pi = np.zeros((pnl.num_rows, L.NPO_I), np.int64)
        pf = np.zeros((pnl.num_rows, len(_REC_PNL)), np.float64)
        if pnl.num_rows:
            pi[:, L.PO_TS] = pnl.column("ts").cast(pa.int64()).to_numpy()
            pi[:, L.PO_SYM] = codes(pnl)
            for c, name in enumerate(("position", "mark", "total")):  # `_REC_PNL`'s columns
                pf[:, c] = col(pnl, name)
        self._record = [[(fi, ff), *self._record[0]], [(pi, pf), *self._record[1]]]
        firsts = [int(a[:, 0].min()) for a in (fi, pi) if len(a)]
        if firsts:
            self._t0 = min(firsts + ([self._t0] if self._t0 is not None else []))

    # -- resume
    _ARRAYS = ("oi", "of", "si", "sf", "rest", "g", "gf", "rej", "hq", "hf", "ob", "obf", "eq", "pf", "us")
    _BOOK = ("qbuf", "ist", "fst", "g", "pv_tick", "pv_qty")

    def snapshot_state(self) -> dict[str, Any]:
        """Everything needed to continue this run later (positions, working orders, in-flight
        requests, the book, counters); plain arrays and lists, safe to pickle or np.savez."""
        self._take_rows()
        if any(self._pending):
            raise RuntimeError("take the pending journal rows (process/finish output) before snapshotting")
        state: dict[str, Any] = {k: getattr(self, k).copy() for k in self._ARRAYS}
        state.update({f"book_{k}": getattr(self.book, k).copy() for k in self._BOOK})
        state["symbols"] = list(self.registry.symbols)
        state["ticks"] = list(self.ticks)
        state["last_loc"] = self._last_loc
        state["trades_seen"] = self.trades_seen
        state["elapsed"] = self.elapsed
        state["calendars"] = self.calendars.snapshot()
        state["funding"] = self.funding.snapshot()
        state["fees"] = {k: list(v) for k, v in self._fees.items()}
        return state

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Continue from `snapshot_state()` output (same strategy, instruments and parameters)."""
        self.registry = SymbolRegistry(list(state["symbols"]))
        self.ticks = list(state["ticks"])
        self._ccy = [str((self.instruments.get(s).extra.get("quote") if self.instruments.get(s) else None) or self.fill.fee_ccy)
                     for s in self.registry.symbols]
        self.n = len(self.ticks)
        self.book.ensure(self.n, self.ticks, [0] * self.n)
        self._inv_ticks = 1.0 / np.asarray(self.ticks, np.float64)
        missing = [k for k in self._ARRAYS if k not in state]
        if missing:
            raise DataError(f"the checkpoint lacks {', '.join(missing)}: it was written by an older sq and cannot be resumed")
        for k in self._ARRAYS:
            v = np.array(state[k])
            mine = getattr(self, k)
            if k in ("g", "gf", "rej") and v.shape[0] < mine.shape[0]:  # written before a slot or reason was added:
                v = np.concatenate([v, mine[v.shape[0]:]])  # the new slots as this run's config sets them
            setattr(self, k, v)
        self._pad_layout()
        for k in self._BOOK:
            v = np.array(state[f"book_{k}"])
            if k == "g":
                self.book.g = v
            else:
                setattr(self.book, k, v)
        self._last_loc = int(state["last_loc"])
        self.trades_seen = int(state["trades_seen"])
        self.elapsed = float(state["elapsed"])
        self._pending = [[], [], []]
        self._invalidate_context()
        for name in self.registry.symbols:
            self.instruments.setdefault(name, S.Instrument(name, "", self.ticks[self.registry.id(name)]))
        self.calendars.restore(state.get("calendars") or {}, self.registry.find, self.n)
        self.calendars.write_costs(self.sf)
        self.funding.restore(state.get("funding") or {})
        self._fees.update({k: (float(v[0]), float(v[1])) for k, v in (state.get("fees") or {}).items()})
        self._record = [[], []]  # the rows before the checkpoint: `seed_metrics` from the journal

    def _pad_layout(self) -> None:
        """A checkpoint of an older sq has fewer per-symbol columns or rejection reasons: pad them
        (with zeros: no square-off in progress, nothing rejected for a new reason)."""
        if self.sf.shape[1] < L.NSF:  # before per-symbol fees and funding: the global fees, nothing paid
            old = self.sf.shape[1]
            self.sf = np.concatenate([self.sf, np.zeros((self.sf.shape[0], L.NSF - old), np.float64)], axis=1)
            if old <= L.SF_MAKER_BPS:
                self.sf[:, L.SF_MAKER_BPS] = self.gf[L.GF_MAKER_BPS]
                self.sf[:, L.SF_TAKER_BPS] = self.gf[L.GF_TAKER_BPS]
        if self.of.shape[1] < L.NOF:  # before per-order brokerage: none paid
            self.of = np.concatenate([self.of, np.zeros((self.of.shape[0], L.NOF - self.of.shape[1]), np.float64)], axis=1)
        if self.si.shape[1] < L.NSI:
            old = self.si.shape[1]
            self.si = np.concatenate([self.si, np.zeros((self.si.shape[0], L.NSI - old), np.int64)], axis=1)
            if old <= L.SI_PSLOT:  # before stops and take-profits: none
                self.si[:, L.SI_PSLOT:L.SI_PSLOT + 2] = -1
            if old <= L.SI_RB_LO:  # before the resting prices' range: worked out from the resting orders
                self._rest_ranges()
        if self.oi.shape[1] < L.NOI:  # before order types: every order a limit order
            self.oi = np.concatenate([self.oi, np.zeros((self.oi.shape[0], L.NOI - self.oi.shape[1]), np.int64)], axis=1)
        if self.ob.shape[1] < L.NOB:  # the outbox's order-type columns
            self.ob = np.concatenate([self.ob, np.zeros((self.ob.shape[0], L.NOB - self.ob.shape[1]), np.int64)], axis=1)
        if len(self.rej) < L.NR:
            self.rej = np.concatenate([self.rej, np.zeros(L.NR - len(self.rej), np.int64)])

    def _rest_ranges(self) -> None:
        """Every symbol's resting buy and sell price range (`SI_RB_*`, `SI_RA_*`) from its resting orders."""
        big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
        for s in range(self.si.shape[0]):
            orders = self.rest[s, :int(self.si[s, L.SI_NREST])]
            px, side = self.oi[orders, L.OI_PX], self.oi[orders, L.OI_SIDE]
            for lo, hi, mine in ((L.SI_RB_LO, L.SI_RB_HI, px[side > 0]), (L.SI_RA_LO, L.SI_RA_HI, px[side <= 0])):
                self.si[s, lo] = int(mine.min()) if len(mine) else big
                self.si[s, hi] = int(mine.max()) if len(mine) else small


def _stack(parts: list[tuple[np.ndarray, np.ndarray]], ni: int, nf: int) -> tuple[np.ndarray, np.ndarray]:
    """Row blocks (int rows, float rows) as one pair of arrays."""
    if not parts:
        return np.zeros((0, ni), np.int64), np.zeros((0, nf), np.float64)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def warm_up(config, strategy: "str | Strategy | None" = None, *, calendar: bool = True) -> None:
    """Load (or compile) the kernels a run uses once, on a tiny hand-made market, so a run's own
    timing (`elapsed_s`, `events_per_s`) and its first event's latency exclude numba's start-up,
    and `cancel_all`/`finish` (what `sq kill` needs) are loaded before the run registers.

    `strategy`: the run's own (its handlers compile here); None warms every built-in event
    strategy. `calendar`: also the broker square-off path, which only a run whose engine has
    market calendars takes (a cold compile costs seconds, so a run without them skips it)."""
    name = "SIM:WARMUP"
    inst = {name: S.Instrument(name, "sim", 1.0)}
    ts = np.array([1, 1, 2, 3, 4], np.int64)
    batch = S.market_batch(S.market_schema(inst), S.symbol_dictionary([name]), ts, ts, np.zeros(5, np.int32),
                           np.array([S.LEVEL, S.LEVEL, S.TRADE, S.LEVEL, S.TRADE], np.uint8), np.array([1, -1, 1, 1, -1], np.int8),
                           np.array([99.0, 101.0, 101.0, 100.0, 100.0]), np.array([5.0, 5.0, 5.0, 3.0, 3.0]),
                           np.arange(1, 6, dtype=np.int64))
    from sq.core.strategy import loader

    strategies = list(loader.EVENT_BUILTINS) if strategy is None else [strategy]
    for one in strategies:
        try:
            _warm_run(one, inst, name, batch, config)
        except StrategyError:  # a strategy that fails on this made-up market: the kernels with a built-in's handlers
            _warm_run("mm", inst, name, batch, config)
    if not calendar:
        return
    # a market calendar whose square-off is due at once: its kernel loaded too (a live run's cut-off)
    import datetime as dt

    from sq.core.sessions import MarketCalendar, TradingSession

    e = Engine(strategies[0], inst, {name: {}}, config=config, fill=FillModelConfig(order_latency_ns=0))
    e.set_calendar(name, MarketCalendar(TradingSession(dt.time(0), dt.time(23, 59)), square_off=dt.time(0)))
    e.process(batch, complete=True)
    e.finish()


def _warm_run(strategy, inst, name, batch, config) -> None:
    e = Engine(strategy, inst, {name: {}}, config=config, fill=FillModelConfig(order_latency_ns=0))
    e.process(batch)
    e.process(batch.slice(4), complete=True)
    e.finish()
    e.cancel_all(10, "warmup")
    from sq.core.analytics import warm_up as warm_metrics

    warm_metrics()  # the metrics' kernels too: a run's summary never compiles
