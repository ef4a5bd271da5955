"""The small interfaces every venue shares (ARCHITECTURE §1): market source and order gateway.

Prices and quantities are floats on the venue's grid (tick_size, lot_size from the
instrument); sides are +1 buy / -1 sell; time is int64 nanoseconds since the epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from sq.core.schemas import Instrument


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


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: int  # +1 buy, -1 sell
    qty: float
    price: float = float("nan")  # NaN for market orders
    order_type: str = "limit"  # limit | market
    time_in_force: str = "gtc"  # gtc | ioc | fok | post_only
    client_order_id: str = ""


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


class OrderGateway(Protocol):
    """Place and cancel orders and query their state at one venue account."""

    def place(self, request: OrderRequest) -> OrderState: ...

    def cancel(self, symbol: str, client_order_id: str) -> OrderState: ...

    def cancel_all(self, symbol: str | None = None) -> list[OrderState]: ...

    def modify(self, symbol: str, client_order_id: str, *, price: float | None = None, qty: float | None = None) -> OrderState: ...

    def open_orders(self, symbol: str | None = None) -> list[OrderState]: ...

    def positions(self) -> list[Position]: ...

    def fills(self, symbol: str | None = None) -> list[Fill]: ...
