"""The interfaces every venue shares: market source, order gateway, and the venue package itself.

Prices and quantities are floats on the venue's grid (tick_size, lot_size from the
instrument); sides are +1 buy / -1 sell; time is int64 nanoseconds since the epoch (UTC).

A venue package (`sq.venues.<name>`) offers, at module level (see `sq.venues.registry`):

    PREFIXES: tuple[str, ...]            symbol prefixes it serves (the registry's table holds them,
                                         so parsing a symbol imports no venue package)
    ORDER_RATE: float                    the venue's published order rate, orders per second
    holds_positions(symbol) -> bool      whether the account has a net position in this market
                                         (spot markets hold balances, not positions)
    trading_session(symbol) -> TradingSession
                                         the market's regular session (sq.core.sessions), the day
                                         of a `sq bars session` bar
    market_calendar(symbol, config) -> MarketCalendar | None
                                         the session, closed days (weekends, exchange holidays)
                                         and the broker's square-off (sq.core.sessions) the engine
                                         enforces; None for markets that trade around the clock
    charges(symbol, instrument, config) -> CostSchedule | None   (optional)
                                         the broker's and the state's charges on the symbol's fills
                                         by trade date (sq.core.costs, docs/costs.md: brokerage, STT,
                                         exchange, regulatory, stamp, GST); None or absent: the
                                         fill model's maker/taker fees
    secret_files(environ[, config]) -> [Path]
                                         the files where sq keeps this venue's credentials (and,
                                         given the config, those it moves elsewhere)
    open_market_source(symbols, options) -> MarketSource
    open_gateway(config, env, **kw) -> OrderGateway
    open_account(config, env, *, symbols, order_timeout_s, push) -> OrderGateway
                                         the gateway a live run or a reconcile uses
    instrument_info(symbols, config) -> {symbol: Instrument}
                                         tick and lot size as the venue publishes them
                                         (VenueUnavailable/AuthError when it cannot be asked)
    auth   (module, real venues)         login / status / require_credentials
    doctor (module, account venues, standard library only) checks(config, env) -> [Check]
                                         what `sq doctor` asks a venue before the open: endpoints
                                         reachable, clock offset against the venue's, credentials
                                         accepted, token expiry
    kill   (module, standard library only) account(config) and kill(account, ...) for `sq kill`
    history (module, venues with downloadable history) what `sq fetch` asks for:
        KINDS: dict[str, str]            fetch kind → the stream kind it produces ("market" | "bars" | "funding")
        INTERVALS: tuple[str, ...]       the --interval values the bar kinds accept
        calendar(start, end) -> [date]   the days in [start, end] that can have data (trading days)
        open_history(config, env, *, symbols, kind, interval) -> HistoryClient
                                         validates kind, interval and symbols for this venue before
                                         any request (UsageError naming the valid choices), then
                                         loads the instruments
    contracts(symbols, config, *, expiry, replay_path) -> [Contract]   (optional: venues with dated futures)
                                         the dated contract each continuous futures name among
                                         `symbols` (`NFO:NIFTY-FUT`) stands for now: `expiry` near
                                         (default), next or far; a replay's capture says what was
                                         listed when it was recorded
    A `HistoryClient` (below) has `instruments` (canonical symbol → Instrument), `fetch(symbol,
    days)` yielding one `DayResult` per day, in order (the client batches its requests as the
    venue allows), and `close()`.

Core never names a venue: everything venue-specific is one of these, or a method of the
gateway below.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

from sq.core.exits import SqError, VenueUnavailable

if TYPE_CHECKING:  # pragma: no cover
    import datetime as dt

    import pyarrow as pa

    from sq.core.schemas import Instrument


OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    """One `sq doctor` finding: what was checked, ok/warn/fail, what was seen, and the fix in one line."""

    check: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DayResult:
    """One day of history from a venue: the whole day's rows, or None when the day is missing or
    failed (`note` says why). `source` says where it came from (archive, rest, none …); `bytes`
    is what was downloaded for it. A table is always a complete day, never part of one."""

    day: "dt.date"
    table: "pa.Table | None"
    source: str
    note: str = ""
    bytes: int = 0


EXPIRY_RULES = ("near", "next", "far")  # a continuous futures name's 1st, 2nd or 3rd listed contract


@dataclass(frozen=True)
class Contract:
    """The dated futures contract a continuous name stood for when a run resolved it.

    `continuous` is the name as given (canonical, `NFO:NIFTY-FUT`), `symbol` the contract
    (`NFO:NIFTY26DECFUT`), `expiry` its expiry date (YYYY-MM-DD) and `rule` which of the listed
    contracts it is: near (the nearest not yet expired), next (the 2nd) or far (the 3rd).
    """

    continuous: str
    symbol: str
    expiry: str
    rule: str = "near"

    def describe(self) -> str:
        """`NFO:NIFTY-FUT → NFO:NIFTY26DECFUT (expiry 2026-12-29)`: the line a run prints."""
        rule = "" if self.rule == "near" else f", {self.rule} expiry"
        return f"{self.continuous} → {self.symbol} (expiry {self.expiry}{rule})"

    def annotate(self, instrument: "Instrument") -> "Instrument":
        """The contract's instrument with where it came from in its extras (`continuous`,
        `expiry_rule`, `expiry`): the stream metadata says which contract a recording holds."""
        from dataclasses import replace

        extra = {**instrument.extra, "continuous": self.continuous, "expiry_rule": self.rule, "expiry": self.expiry}
        return replace(instrument, extra=extra)

    def to_json(self) -> dict:
        return {"continuous": self.continuous, "symbol": self.symbol, "expiry": self.expiry, "rule": self.rule}

    @classmethod
    def from_json(cls, d: dict) -> "Contract":
        return cls(str(d["continuous"]), str(d["symbol"]), str(d.get("expiry", "")), str(d.get("rule", "near")))


class HistoryClient(Protocol):
    """What a venue's `history.open_history` returns (see the module docstring)."""

    instruments: dict[str, "Instrument"]

    def fetch(self, symbol: str, days: list["dt.date"]) -> Iterator[DayResult]: ...

    def close(self) -> None: ...


class MarketSource(Protocol):
    """Yields record batches in the market schema; all rows of one venue message share a seq.

    `schema` carries the `sq.instruments` metadata of every symbol the source serves. A batch
    never splits a message. Iteration ends at the source's limit/duration, or when `close()`
    is called from another thread or a signal handler.
    """

    schema: "pa.Schema"
    instruments: dict[str, "Instrument"]

    def batches(self) -> Iterator["pa.RecordBatch"]: ...

    def close(self) -> None: ...


ORDER_TYPES = ("limit", "market", "stop-limit", "stop-market", "take-profit-limit", "take-profit-market", "trailing-stop", "oco")
PROTECTIVE_TYPES = ORDER_TYPES[2:]  # resting until a trigger price is crossed (docs/orders.md)


@dataclass(frozen=True)
class OrderRequest:
    """One order to send. Protective types (`PROTECTIVE_TYPES`) rest at the venue until the
    market crosses `trigger_price` (a stop: against the position; a take-profit: in its favour),
    then act as a limit at `price` (…-limit) or a market order (…-market). `trailing-stop` (Binance
    futures) trails the best price by `trailing_pct` % from `activation_price` (NaN: at once).
    `oco` is a protective pair, one cancelling the other: a take-profit limit at `price` and a
    stop at `trigger_price` (Binance spot order list, Kite two-leg GTT).
    `reduce_only` may only shrink a position (futures); `working_price` says which price triggers:
    "contract" (the last trade) or "mark". Each venue maps what it offers and rejects the rest
    (docs/orders.md has the table)."""

    symbol: str
    side: int  # +1 buy, -1 sell
    qty: float
    price: float = float("nan")  # NaN for market orders
    order_type: str = "limit"  # one of ORDER_TYPES
    time_in_force: str = "gtc"  # gtc | ioc | fok | post_only
    client_order_id: str = ""
    trigger_price: float = float("nan")  # stop / take-profit trigger
    reduce_only: bool = False
    trailing_pct: float = float("nan")  # trailing-stop callback rate, % (Binance: 0.1–10)
    activation_price: float = float("nan")  # trailing-stop activation price (NaN: at once)
    working_price: str = "contract"  # contract (last trade) | mark: the price a trigger watches
    stop_limit_price: float = float("nan")  # an oco's stop leg as a limit at this price (NaN: Binance a STOP_LOSS market leg, Kite a LIMIT at the trigger)


@dataclass
class OrderState:
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: int
    price: float
    qty: float
    filled_qty: float = 0.0
    status: str = "accepted"  # accepted | partially_filled | filled | canceled | rejected | expired
    reason: str = ""
    ts: int = 0
    order_type: str = ""  # one of ORDER_TYPES when the venue says ("" : not known)
    trigger_price: float = float("nan")
    # a modify by cancel-and-replace whose replacement the venue refused: the original placed
    # again (a new client id), or None when that failed too (nothing of the order is working)
    restored: "OrderState | None" = None
    # the venue order ids a triggered instruction placed (a Kite GTT's LIMIT order, a Binance
    # algo order's actual order): their fills are this order's
    triggered_ids: tuple = ()

    @property
    def leaves_qty(self) -> float:
        return max(self.qty - self.filled_qty, 0.0) if self.status in ("accepted", "partially_filled") else 0.0


@dataclass(frozen=True)
class Fill:
    ts: int
    symbol: str
    client_order_id: str
    venue_order_id: str
    trade_id: str
    side: int
    price: float
    qty: float
    fee: float
    fee_ccy: str
    liquidity: str  # maker | taker


@dataclass
class Position:
    symbol: str
    qty: float = 0.0
    avg_price: float = 0.0
    realized: float = 0.0
    extra: dict = field(default_factory=dict)


PushCallback = Callable[[str, "OrderState", list], None]  # (client order id, state copy, new fills)


class OrderGateway(Protocol):
    """Place and cancel orders and query their state at one venue account.

    Besides the basic requests, every gateway answers what a live run and a reconcile need
    (`GatewayBase` gives the generic answers; a venue overrides what it knows better):
    `place_idempotent` (a send whose outcome is never doubled), `lookup` (an order by client
    id, None when the venue never saw it), `is_unknown_order`, and the venue's pushed order
    updates (`follow`, `pushing`).
    """

    def place(self, request: OrderRequest) -> OrderState: ...

    def cancel(self, symbol: str, client_order_id: str) -> OrderState: ...

    def cancel_all(self, symbol: str | None = None) -> list[OrderState]: ...

    def modify(self, symbol: str, client_order_id: str, *, price: float | None = None, qty: float | None = None,
               trigger: float | None = None, new_client_order_id: str = "") -> OrderState: ...

    def open_orders(self, symbol: str | None = None) -> list[OrderState]: ...

    def positions(self) -> list[Position]: ...

    def fills(self, symbol: str | None = None) -> list[Fill]: ...

    def lookup(self, symbol: str, client_order_id: str, tries: int = 3) -> OrderState | None: ...

    def place_idempotent(self, request: OrderRequest) -> tuple[OrderState, list[Fill]]: ...

    def is_unknown_order(self, error: BaseException) -> bool: ...

    def follow(self, source: object, push: PushCallback) -> bool: ...

    def pushing(self) -> bool: ...

    def close(self) -> None: ...


UNKNOWN_ORDER_WORDS = ("does not exist", "not found", "unknown order")


class GatewayBase:
    """The generic half of `OrderGateway`: what a gateway does when its venue has no better way.

    Subclasses implement the basic requests (`place`, `cancel`, `open_orders`, ...) and may
    override `find_order` (one query for an order by client id), `place_idempotent`,
    `is_unknown_order`, `follow`, `pushing` and `contract_notes`.
    """

    def contract_notes(self, orders: list[dict]) -> list[dict | None] | None:
        """What the venue charged each filled order (`orders`: [{client_order_id, venue_order_id,
        symbol, side, qty, avg_price}]) as {brokerage, tax, txn, regulatory, stamp, gst, total}
        (`sq.core.costs`), per order (None where it did not say); None: the venue has no such
        report (here), so a live run has nothing to compare its cost model with."""
        return None

    def find_order(self, symbol: str, client_order_id: str) -> OrderState | None:
        """One question to the venue: the order with this client id, or None (here: among the
        open orders only — venues that can query closed orders override this)."""
        for st in self.open_orders(symbol):  # type: ignore[attr-defined]
            if st.client_order_id == client_order_id:
                return st
        return None

    def lookup(self, symbol: str, client_order_id: str, tries: int = 3) -> OrderState | None:
        """The venue's state of a client order id, or None when the venue never saw it. An
        unreachable venue is asked `tries` times before VenueUnavailable is raised: the outcome
        of an uncertain send is never guessed."""
        for i in range(tries):
            try:
                return self.find_order(symbol, client_order_id)
            except VenueUnavailable:
                if i == tries - 1:
                    raise
                time.sleep(0.2 * (i + 1))
            except SqError as e:
                if self.is_unknown_order(e):
                    return None
                raise
        return None

    def is_unknown_order(self, error: BaseException) -> bool:
        """Does this error say the venue has no such order?"""
        msg = str(getattr(error, "message", error)).lower()
        return any(w in msg for w in UNKNOWN_ORDER_WORDS)

    def place_idempotent(self, request: OrderRequest) -> tuple[OrderState, list[Fill]]:
        """(state, fills in the answer). Send once; when the answer is lost, ask the venue for
        the client id — only an order the venue never saw makes this raise VenueUnavailable,
        so a retry with the same client id can never double it. Rejections come back as a
        'rejected' state."""
        try:
            return self.place(request), []  # type: ignore[attr-defined]
        except VenueUnavailable:
            st = self.lookup(request.symbol, request.client_order_id)
            if st is None:
                raise
            return st, []

    def follow(self, source: object, push: PushCallback) -> bool:
        """Have the venue's own order-update stream call `push` from its thread. False: this
        venue pushes nothing here, and only asking (`open_orders`, `lookup`) learns of fills."""
        return False

    def pushing(self) -> bool:
        """Is the order-update stream up right now?"""
        return False

    def protective_orders(self, symbol: str, side: int, qty: float, stop: float, take: float, *, slippage_pct: float,
                          working_price: str) -> list[OrderRequest] | None:
        """The orders that protect a position at the venue (a live bar strategy's stop-loss and
        take-profit, docs/orders.md): `side` closes the position (−1 a long), `stop`/`take` its
        prices (NaN: none), `slippage_pct` how far beyond its trigger a protective limit order is
        priced, `working_price` which price triggers ("mark" or "contract", where the venue
        offers both). One request whose legs cancel each other at the venue (an `oco`), or one
        per price (sq cancels the other when one fills); client ids left blank. None here: the
        venue offers none, and the run watches the price itself."""
        return None

    def standing_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Instructions the venue keeps outside its order book that place an order when triggered
        (Kite GTTs), as order states; none here."""
        return []

    def commission_bps(self, symbol: str) -> tuple[float, float, dict] | None:
        """(maker, taker) bps the account pays on `symbol` and what the venue said; None: the
        venue does not say (the run's configured fees apply)."""
        return None

    def funding_state(self, symbol: str) -> tuple[int, float, float] | None:
        """(next funding time ns, rate, mark price) of a perpetual; None: never funded."""
        return None

    def funding_income(self, symbol: str, start_ns: int, end_ns: int) -> list[dict]:
        """Funding the account paid between two times: {ts, paid (> 0 paid), asset, tran_id} rows."""
        return []

    def rate_usage(self) -> dict[str, float]:
        """Share (0–1) of each venue rate limit the last answers said is used (`sq_venue_rate_limit_used`);
        empty when the venue does not say."""
        return {}

    def close(self) -> None:
        """Release connections and threads (nothing to release here)."""
