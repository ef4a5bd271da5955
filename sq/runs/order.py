"""`sq order`, `sq orders`, `sq positions`: one order by hand, and what the venue holds (docs/orders.md).

For the trader who must flatten one position by hand while the engines run. A manual order goes
the same way as an engine order:

* live mode and an explicit confirmation (`sq live`'s `require_live`), secret files 0600;
* sq's pre-trade risk check — the engine's own kernel (`sq.core.engine.pretrade`), fed with the
  account's position and working orders and the market's calendar and circuit limits (the price
  band is measured against the order's own price: no fair price is read); a rejected
  order (`OrderRejected`, exit 1) is journaled and never reaches the venue;
* a hash-chained journal per manual session under `<data dir>/runs/manual-<id>` (`sq.core.journal`),
  written ahead of every request and sealed at the end;
* client order ids `sq<8 hex>-<n>` like every sq run's, so `sq kill` (which cancels every open
  order at the venue) and `sq reconcile` treat them as sq's.

The venue is reached only through `sq.venues.registry.open_account` and the `OrderGateway`
protocol; nothing here names a venue.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sq.core import journal as J
from sq.core.exits import ExitStatus, SqError, UsageError

MANUAL_PREFIX = "manual-"  # journal directory names of manual sessions
MODE = "manual"


class OrderRejected(SqError):
    """The order was refused, by sq's risk check (never sent) or by the venue (exit 1)."""

    status = ExitStatus.DIFFERENCES


@dataclass
class OrderSpec:
    """`sq order place`'s order, as typed options."""

    symbol: str
    side: int
    qty: float
    price: float = math.nan
    order_type: str = "limit"
    trigger_price: float = math.nan
    reduce_only: bool = False
    tif: str = "gtc"
    trailing_pct: float = math.nan
    activation_price: float = math.nan
    working_price: str = "contract"


@dataclass
class Session:
    """One manual session: its venue gateway and journal; `close()` seals the journal."""

    env: Any
    config: Any
    venue: str
    gateway: Any
    journal: J.Journal
    run_id: str
    prefix: str
    counter: int = 0
    clock: Callable[[], int] = time.time_ns
    closed: bool = False
    sent: int = 0

    def next_cid(self) -> str:
        self.counter += 1
        return f"{self.prefix}{self.counter}"

    def write(self, kind: str, row: dict) -> None:
        self.journal.write_step([(kind, row)])

    def close(self, reason: str = "end") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.gateway.close()
        finally:
            self.journal.seal({"ts": self.clock(), "reason": reason, "orders_sent": self.sent}, compact_to_parquet=False)


def parse_side(text: str) -> int:
    t = (text or "").strip().lower()
    if t in ("buy", "b", "long"):
        return 1
    if t in ("sell", "s", "short"):
        return -1
    raise UsageError(f"side must be buy or sell; got {text!r}")


def _guard(config: Any, confirm: bool) -> None:
    """What `sq live` asks before trading real money: live mode (78), confirmation (2), 0600 secrets (77)."""
    from sq.runs.live import check_secret_files, require_live

    try:
        require_live(config, confirm)
    except UsageError as e:
        raise UsageError(e.message.replace("sq live trades", "sq order trades")) from None
    except SqError as e:
        raise type(e)(e.message.replace("sq live needs", "sq order needs")) from None
    check_secret_files(config)


def open_session(env: Any, config: Any, symbol: str, action: str, *, clock: Callable[[], int] = time.time_ns,
                 journal_dir: str | None = None) -> Session:
    """The venue's gateway for `symbol` and a new manual journal (its `start` record)."""
    from sq.core import paths
    from sq.core.redact import mask_argv
    from sq.runs.live import client_prefix
    from sq.venues import registry

    venue = registry.venue_of(symbol)
    if not registry.trades_live(venue):
        raise UsageError(f"{symbol}: no real venue; sq order trades real accounts (use sq paper for simulated ones)")
    registry.require_credentials(venue, config)
    gateway = registry.open_account(venue, config, env, symbols=[symbol])  # the venue client's own timeouts and retries
    run_id = MANUAL_PREFIX + J.new_run_id()
    directory = Path(journal_dir) if journal_dir else paths.data_dir() / "runs" / run_id
    prefix = client_prefix(run_id)
    try:
        journal = J.Journal.create(directory, {
            "ts": clock(), "run_id": run_id, "mode": MODE, "strategy": "manual", "action": action, "venue": venue,
            "symbols": [symbol], "client_prefix": prefix, "pid": os.getpid(), "argv": mask_argv(sys.argv[1:]),
            "config": J.config_summary(config)})
    except BaseException:
        gateway.close()
        raise
    return Session(env, config, venue, gateway, journal, run_id, prefix, clock=clock)


# ----------------------------------------------------------------------------------------------
# the risk check


def market_state(session: Session, symbol: str, *, exclude: str = "") -> Any:
    """What the risk check needs from the account and the market: the position (venues that hold
    positions), the working orders on each side (without `exclude`, an order being modified),
    the tick size, the market calendar and the circuit limits."""
    from sq.core.engine.pretrade import MarketState
    from sq.core.symbols import parse_symbol
    from sq.runs.marketrules import circuit_limits
    from sq.venues import registry

    gw = session.gateway
    inst = registry.instrument_info([parse_symbol(symbol)], session.config).get(symbol)
    pos = avg = 0.0
    if registry.holds_positions(symbol):
        for p in gw.positions():
            if p.symbol == symbol:
                pos, avg = float(p.qty), float(p.avg_price or 0.0)
    buy = sell = 0.0
    everything = gw.open_orders(None)
    for o in everything:
        if o.symbol == symbol and o.client_order_id != exclude:
            if o.side > 0:
                buy += o.leaves_qty
            else:
                sell += o.leaves_qty
    n_open = sum(1 for o in everything if o.client_order_id != exclude)
    calendar = registry.market_calendar(symbol, session.config)
    return MarketState(tick_size=float(getattr(inst, "tick_size", 0.0) or 0.0), position=pos, avg_price=avg,
                       working_buy=buy, working_sell=sell, open_orders=n_open, calendar=calendar,
                       circuit=circuit_limits(inst) if inst is not None else None)


def risk_reason(session: Session, symbol: str, side: int, qty: float, ref_price: float, *, exclude: str = "") -> str:
    """The engine's verdict on this order ("ok" or a reason of `layout.REASONS`)."""
    from sq.core.engine.pretrade import check_order

    return check_order(session.config, symbol, side, qty, ref_price, market_state(session, symbol, exclude=exclude), market_time_ns())


def market_time_ns() -> int:
    """The time the pre-trade check judges a manual order's trading hours at: now (looked up at
    each call, so a test can pin it inside a session)."""
    return time.time_ns()


def reference_price(spec: OrderSpec) -> float:
    """The price the risk check values an order at: its limit price, else its trigger."""
    for px in (spec.price, spec.trigger_price, spec.activation_price):
        if px == px and px > 0:
            return float(px)
    raise UsageError("a market order needs --price P as its reference price for the risk check "
                     "(notional, position value, price band, circuit limits); the order is still sent at market")


# ----------------------------------------------------------------------------------------------
# journal rows


def _row(session: Session, event: str, *, symbol: str, cid: str, void: str | None, side: int, price: float, qty: float,
         filled: float = 0.0, leaves: float | None = None, reason: str = "") -> dict:
    return {"ts": session.clock(), "symbol": symbol, "client_order_id": cid, "venue_order_id": void or None, "event": event,
            "side": int(side), "price": float(price), "qty": float(qty), "filled_qty": float(filled),
            "leaves_qty": float(qty - filled if leaves is None else leaves), "reason": reason}


EVENT_OF = {"accepted": "accepted", "partially_filled": "partially_filled", "filled": "filled", "canceled": "canceled",
            "rejected": "rejected", "expired": "expired"}


def _state_row(session: Session, st: Any, reason: str = "") -> dict:
    event = EVENT_OF.get(st.status, "accepted")
    return _row(session, event, symbol=st.symbol, cid=st.client_order_id, void=st.venue_order_id, side=st.side, price=st.price,
                qty=st.qty, filled=st.filled_qty, leaves=st.leaves_qty, reason=reason or st.reason)


def state_json(st: Any) -> dict:
    return {"client_order_id": st.client_order_id, "venue_order_id": st.venue_order_id, "symbol": st.symbol,
            "side": "buy" if st.side > 0 else "sell", "type": getattr(st, "order_type", "") or "", "price": st.price,
            "trigger_price": getattr(st, "trigger_price", math.nan), "qty": st.qty, "filled_qty": st.filled_qty,
            "leaves_qty": st.leaves_qty, "status": st.status, "reason": st.reason, "ts": st.ts}


# ----------------------------------------------------------------------------------------------
# the actions


def place(env: Any, config: Any, spec: OrderSpec, *, confirm: bool, clock: Callable[[], int] = time.time_ns,
          journal_dir: str | None = None) -> dict:
    """Risk-check, journal and send one order; its state (and the journal) as a dict. A risk
    rejection is journaled and raised (`OrderRejected`) before anything is sent."""
    from sq.core.symbols import parse_symbol
    from sq.venues.base import ORDER_TYPES, OrderRequest

    _guard(config, confirm)
    symbol = parse_symbol(spec.symbol).canonical
    if spec.order_type not in ORDER_TYPES:
        raise UsageError(f"--type must be one of {', '.join(ORDER_TYPES)}; got {spec.order_type!r}")
    if not spec.qty > 0:
        raise UsageError(f"quantity must be > 0; got {spec.qty:g}")
    priced = spec.order_type.endswith("limit") or spec.order_type == "oco"
    if priced and not (spec.price == spec.price and spec.price > 0):
        raise UsageError(f"a {spec.order_type} order needs --price P" + (" (its take-profit)" if spec.order_type == "oco" else ""))
    if spec.order_type.startswith(("stop", "take-profit", "oco")) and not (spec.trigger_price == spec.trigger_price and spec.trigger_price > 0):
        raise UsageError(f"a {spec.order_type} order needs --trigger P" + (" (its stop)" if spec.order_type == "oco" else ""))
    if spec.order_type == "trailing-stop" and not (spec.trailing_pct == spec.trailing_pct and spec.trailing_pct > 0):
        raise UsageError("a trailing-stop order needs --trail PCT")
    ref = reference_price(spec)
    session = open_session(env, config, symbol, "place", clock=clock, journal_dir=journal_dir)
    try:
        cid = session.next_cid()
        price = spec.price if priced else math.nan
        reason = risk_reason(session, symbol, spec.side, spec.qty, ref)
        if reason != "ok":
            session.write("reject", _row(session, "rejected", symbol=symbol, cid=cid, void=None, side=spec.side, price=ref,
                                         qty=spec.qty, leaves=0.0, reason=reason))
            session.close("rejected")
            raise OrderRejected(f"order rejected by sq's risk check: {reason} ({_explain(reason, config, symbol)}); nothing was sent")
        request = OrderRequest(symbol, spec.side, spec.qty, price, spec.order_type, spec.tif, cid, spec.trigger_price,
                               spec.reduce_only, spec.trailing_pct, spec.activation_price, spec.working_price)
        session.write("order", _row(session, "new", symbol=symbol, cid=cid, void=None, side=spec.side, price=price, qty=spec.qty,
                                    reason="manual"))
        session.sent += 1
        st, fills = session.gateway.place_idempotent(request)
        session.write("order", _state_row(session, st))
        from sq.runs.reconcile import fill_row

        for f in fills:
            session.write("fill", fill_row(f))
        doc = {"action": "place", **state_json(st), "journal": str(session.journal.dir), "run_id": session.run_id}
        session.close()
    except BaseException:
        session.close("error")
        raise
    if st.status == "rejected":
        raise OrderRejected(f"order rejected by the venue: {st.reason or 'no reason given'}")
    return doc


def _explain(reason: str, config: Any, symbol: str) -> str:
    from sq.core.engine.pretrade import SymbolLimits

    lim = SymbolLimits.of(config, symbol)
    r = config.risk
    return {
        "order_too_large": f"max_order_size {lim.max_order_size:g}",
        "position_too_large": f"max_position {lim.max_position:g}, working orders included",
        "notional_too_large": f"risk.max_notional {r.max_notional}",
        "position_value_too_large": f"risk.max_position_value {r.max_position_value}",
        "too_many_open_orders": f"risk.max_open_orders {r.max_open_orders}",
        "price_band": f"risk.price_band_pct {r.price_band_pct}",
        "trading_hours": "outside the market's trading hours",
        "holiday": "an exchange holiday",
        "circuit_limit": "outside the instrument's circuit limits",
        "loss_too_large": f"max_loss {lim.max_loss:g}",
    }.get(reason, "see docs/orders.md")


def find_manual(cid: str) -> dict | None:
    """The last journaled row of a manual order (by client or venue order id), with its venue."""
    found = None
    for row, start in manual_rows():
        if cid in (row.get("client_order_id"), row.get("venue_order_id")):
            found = dict(row, venue=start.get("venue"))
    return found


def manual_rows() -> list[tuple[dict, dict]]:
    """Every order row of every manual journal, oldest journal first: (row, start record)."""
    from sq.core import paths

    root = paths.data_dir() / "runs"
    if not root.is_dir():
        return []
    journals = []
    for d in root.glob(MANUAL_PREFIX + "*"):
        try:
            journals.append(J.load(d))
        except SqError:
            continue
    out = []
    for loaded in sorted(journals, key=lambda j: (int(j.start.get("ts") or 0), str(j.start.get("run_id")))):
        for r in loaded.records:
            if r.kind in ("order", "reject"):
                out.append((r.data, loaded.start))
    return out


def _target(order_id: str, symbol: str | None) -> tuple[str, str, str]:
    """(symbol, client order id, venue order id or "") of an order named on the command line."""
    from sq.core.symbols import parse_symbol

    row = find_manual(order_id)
    if row is not None:
        return str(row["symbol"]), str(row["client_order_id"]), str(row.get("venue_order_id") or "")
    if not symbol:
        raise UsageError(f"order {order_id!r} is not in any sq order journal; give --symbol to reach it at its venue")
    return parse_symbol(symbol).canonical, order_id, ""


def _find(gateway: Any, symbol: str, cid: str, void: str) -> tuple[Any, str]:
    """The venue's state of an order and the id the venue knows it by: the client id, else (an
    order the venue keeps without it, e.g. a Kite GTT) the venue id."""
    st = gateway.lookup(symbol, cid)
    if st is None and void:
        st = gateway.lookup(symbol, void)
        if st is not None:
            return st, void
    return st, cid


def modify(env: Any, config: Any, order_id: str, *, price: float | None, qty: float | None, trigger: float | None = None,
           symbol: str | None = None, confirm: bool, clock: Callable[[], int] = time.time_ns) -> dict:
    """Change an open order's price, quantity and/or trigger, through the same risk check as a new
    order. A venue that modifies in place (Kite orders and GTTs) keeps the id; a cancel-and-replace
    (Binance, an OCO as a whole list) journals the cancel and the replacement (a new client id).
    When the replacement is refused, the gateway has placed the original again (journaled too) —
    or could not: the error says which, and what is working at the venue."""
    if price is None and qty is None and trigger is None:
        raise UsageError("sq order modify needs --price, --qty and/or --trigger")
    _guard(config, confirm)
    sym, cid, void = _target(order_id, symbol)
    session = open_session(env, config, sym, "modify", clock=clock)
    try:
        st, key = _find(session.gateway, sym, cid, void)
        if st is None or st.status not in ("accepted", "partially_filled"):
            session.close("not open")
            raise UsageError(f"order {cid} is not open at the venue ({st.status if st else 'unknown there'})")
        new_qty = float(qty) if qty is not None else st.qty
        new_px = float(price) if price is not None else st.price
        ref = new_px if new_px == new_px and new_px > 0 else st.price
        reason = risk_reason(session, sym, st.side, max(new_qty - st.filled_qty, 0.0), ref, exclude=cid)
        if reason != "ok":
            session.write("reject", _row(session, "rejected", symbol=sym, cid=cid, void=st.venue_order_id, side=st.side, price=ref,
                                         qty=new_qty, filled=st.filled_qty, leaves=0.0, reason=f"modify: {reason}"))
            session.close("rejected")
            raise OrderRejected(f"modify rejected by sq's risk check: {reason} ({_explain(reason, config, sym)}); nothing was sent")
        session.write("order", _row(session, "modified", symbol=sym, cid=cid, void=st.venue_order_id, side=st.side, price=new_px,
                                    qty=new_qty, filled=st.filled_qty, reason="manual modify"
                                    + (f" (trigger {trigger:g})" if trigger is not None else "")))
        session.sent += 1
        replacement = session.next_cid()
        new = session.gateway.modify(sym, key, price=price, qty=qty, trigger=trigger, new_client_order_id=replacement)
        replaced = new.client_order_id not in (cid, key)
        if replaced:  # cancel-and-replace: the original's end, then the replacement
            old = session.gateway.lookup(sym, key) or st
            old.client_order_id = cid
            session.write("order", _state_row(session, old, "manual modify: canceled, replaced by " + new.client_order_id))
        session.write("order", _state_row(session, new))
        restored = getattr(new, "restored", None)
        if restored is not None:
            session.write("order", _state_row(session, restored, f"manual modify refused: the original placed again ({cid})"))
        doc = {"action": "modify", "replaced": cid, **state_json(new), "journal": str(session.journal.dir)}
        session.close()
    except BaseException:
        session.close("error")
        raise
    if new.status == "rejected" or (not replaced and new.reason):
        why = new.reason or "no reason given"
        if not replaced:
            raise OrderRejected(f"modify rejected by the venue: {why}; {cid} is unchanged at the venue")
        if restored is not None:
            raise OrderRejected(f"modify rejected by the venue: {why}; {cid} was canceled and placed again unchanged as "
                                f"{restored.client_order_id} ({restored.venue_order_id}), which is working at the venue")
        raise OrderRejected(f"modify rejected by the venue: {why}; {cid} was canceled and placing it again failed too: "
                            "nothing of this order is working at the venue")
    return doc


def cancel(env: Any, config: Any, order_id: str | None, *, all_: bool = False, symbol: str | None = None, confirm: bool,
           clock: Callable[[], int] = time.time_ns) -> dict:
    """Cancel one order, or with `all_` every open order sq order placed (on `symbol` only, if given)."""
    from sq.core.symbols import parse_symbol

    _guard(config, confirm)
    if all_ == bool(order_id):
        raise UsageError("sq order cancel takes an order id or --all")
    if order_id:
        targets = [_target(order_id, symbol)]
    else:
        want = parse_symbol(symbol).canonical if symbol else None
        last: dict[str, dict] = {}
        for row, _ in manual_rows():
            last[str(row["client_order_id"])] = row
        targets = [(str(r["symbol"]), c, str(r.get("venue_order_id") or "")) for c, r in last.items()
                   if r.get("event") in ("new", "accepted", "partially_filled", "modified") and (want is None or r["symbol"] == want)]
    results = []
    by_symbol: dict[str, list[tuple[str, str]]] = {}
    for sym, cid, void in targets:
        by_symbol.setdefault(sym, []).append((cid, void))
    for sym, cids in sorted(by_symbol.items()):
        session = open_session(env, config, sym, "cancel", clock=clock)
        try:
            for cid, void in cids:
                st, key = _find(session.gateway, sym, cid, void)
                if st is None or st.status not in ("accepted", "partially_filled"):
                    results.append({"client_order_id": cid, "symbol": sym, "status": st.status if st else "unknown", "canceled": False})
                    if st is not None:
                        st.client_order_id = cid
                        session.write("order", _state_row(session, st))
                    continue
                session.write("order", _row(session, "cancel_sent", symbol=sym, cid=cid, void=st.venue_order_id, side=st.side,
                                            price=st.price, qty=st.qty, filled=st.filled_qty, reason="manual cancel"))
                session.sent += 1
                done = session.gateway.cancel(sym, key)
                done.client_order_id = cid
                session.write("order", _state_row(session, done))
                results.append({**state_json(done), "canceled": done.status == "canceled"})
            session.close()
        except BaseException:
            session.close("error")
            raise
    return {"action": "cancel", "orders": results, "canceled": sum(1 for r in results if r["canceled"])}


def list_manual() -> list[dict]:
    """Every order `sq order` placed, as its journals last saw it (newest last); no venue is asked."""
    last: dict[str, dict] = {}
    for row, start in manual_rows():
        cid = str(row["client_order_id"])
        prev = last.get(cid, {})
        last[cid] = {**prev, **{k: v for k, v in row.items() if v is not None}, "venue": start.get("venue"),
                     "journal": prev.get("journal") or start.get("run_id")}
    return list(last.values())


# ----------------------------------------------------------------------------------------------
# the venue views


@dataclass
class VenueView:
    """What `sq orders` / `sq positions` read: rows per venue, and the venues that failed."""

    rows: list[dict] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _accounts(config: Any, symbols: list[str], venue: str | None) -> dict[str, list[str]]:
    """venue → the symbols to ask about (none: the venue's default markets)."""
    from sq.core.symbols import parse_symbols
    from sq.venues import registry

    texts = symbols or list(config.symbols)
    groups: dict[str, list[str]] = {}
    for s in parse_symbols(texts) if texts else []:
        v = registry.venue_of(s)
        if registry.trades_live(v) and venue in (None, v):
            groups.setdefault(v, []).append(s.canonical)
    if venue and venue not in groups:
        groups[venue] = []
    if not groups:
        raise UsageError("name the venue (--venue binance|zerodha) or symbols, or list instruments in the config")
    return groups


def view(env: Any, config: Any, what: str, *, symbols: list[str] = (), venue: str | None = None) -> VenueView:
    """Open orders (`what` = "orders") or positions ("positions") at each venue account."""
    from sq.venues import registry

    out = VenueView()
    for v, syms in sorted(_accounts(config, list(symbols), venue).items()):
        try:
            registry.require_credentials(v, config)
            gw = registry.open_account(v, config, env, symbols=syms)
            try:
                if what == "orders":
                    states = gw.open_orders(None) if not syms else [o for s in syms for o in gw.open_orders(s)]
                    standing = getattr(gw, "standing_orders", None)  # Kite GTTs: orders once triggered
                    if standing is not None:
                        states += standing(None) if not syms else [o for s in syms for o in standing(s)]
                    out.rows += [{"venue": v, **state_json(o)} for o in states]
                else:
                    for p in gw.positions():
                        if syms and p.symbol not in syms and not registry.holds_positions(p.symbol):
                            pass
                        out.rows.append({"venue": v, "symbol": p.symbol, "qty": p.qty, "avg_price": p.avg_price,
                                         "realized": p.realized, **{k: val for k, val in (p.extra or {}).items() if k not in ("symbol", "qty")}})
            finally:
                gw.close()
        except SqError as e:
            out.errors[v] = e.message
    return out


def orders_table(rows: list[dict]) -> Any:
    """Open-order rows as a table in the canonical orders schema (`sq.core.schemas`)."""
    import pyarrow as pa

    from sq.core import schemas as S

    schema = S.orders_schema()
    cols: dict[str, list] = {f.name: [] for f in schema}
    for r in rows:
        cols["ts"].append(int(r.get("ts") or 0))
        cols["symbol"].append(r["symbol"])
        cols["client_order_id"].append(r.get("client_order_id") or None)
        cols["venue_order_id"].append(r.get("venue_order_id") or None)
        cols["event"].append(EVENT_OF.get(str(r.get("status")), "accepted"))
        cols["side"].append(1 if r.get("side") in ("buy", 1) else -1)
        cols["price"].append(float(r.get("price") if r.get("price") is not None else math.nan))
        cols["qty"].append(float(r.get("qty") or 0.0))
        cols["filled_qty"].append(float(r.get("filled_qty") or 0.0))
        cols["leaves_qty"].append(float(r.get("leaves_qty") or 0.0))
        cols["reason"].append(r.get("type") or None)
    arrays = []
    for f in schema:
        if pa.types.is_dictionary(f.type):
            arrays.append(pa.array(cols[f.name], pa.string()).dictionary_encode().cast(f.type))
        else:
            arrays.append(pa.array(cols[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def positions_table(rows: list[dict]) -> Any:
    import pyarrow as pa

    return pa.Table.from_pylist([{"venue": r["venue"], "symbol": r["symbol"], "qty": float(r["qty"]), "avg_price": float(r["avg_price"] or 0.0),
                                  "realized": float(r.get("realized") or 0.0)} for r in rows],
                                schema=pa.schema([("venue", pa.string()), ("symbol", pa.string()), ("qty", pa.float64()),
                                                  ("avg_price", pa.float64()), ("realized", pa.float64())]))
