"""A live bar strategy's stop-loss and take-profit as protective orders at the venue (docs/orders.md).

In backtest and paper the bar executor simulates a position's stop-loss and take-profit; live,
`sq live` puts them at the venue, so they protect the position on the venue's own clock (and
while sq's connection is down). `Protection` keeps, per symbol, a *cover*: the protective orders
(`legs`) of the position the engine holds, as the venue's gateway builds them
(`OrderGateway.protective_orders`: Binance spot an OCO, USD-M reduce-only STOP_MARKET /
TAKE_PROFIT_MARKET algo orders, Kite an SL-M plus a LIMIT target or a two-leg GTT). While a venue
protects a symbol, the executor's `W_VENUE` slot is set and it never watches the prices itself.

* `before_send(intents)` — before the engine's orders go out: a cover whose position the strategy
  is about to reduce, close or flip (its wanted position, or an order on the cover's side) is
  canceled first (an OCO at Binance spot locks the balance the exit sells; a Kite MIS stop could
  fill beside the exit). A cover that the venue says filled meanwhile has its fills booked, and
  the symbols whose position it changed are returned: their new orders are not sent.
* `after_send()` — once the answers are in: each symbol's cover made to match the engine's
  position and its `W_STOP` / `W_TAKE` — placed for a new position, modified in place when only
  the prices moved on a later bar (Kite modifies, Binance cancels and replaces), canceled and
  placed again when the position's size or side changed.
* `on_update(cid, state, fills)` — an order update the venue pushed for a leg (Binance execution
  reports, Kite postbacks); `sweep()` asks the venue about every leg at the run's sweep pace (a
  Kite GTT's triggered order carries no tag and is only found so). A leg's fills are journaled
  (under the leg's client id) and booked into the engine's position (`LiveBridge.seed_fill`);
  once a leg has filled the position it covered, its siblings are canceled (an OCO's by the
  venue), and the strategy's wanted position follows the venue: flat, prices cleared.
* `close()` — the run's end (and `sq kill`, which stops it): every leg canceled.

Client ids are the run's prefix + `p<n>` (`sq1a2b3c4d-p7`; an OCO's legs `…-tp`/`…-sl`), so `sq
kill`, the run's close-out and a `--resume` treat them as the run's. Every step is journaled as
`order` rows (new → accepted/rejected, modified, cancel_sent → canceled, filled) with the reason
`protect: …`. A venue that refuses a cover (or offers none) turns the symbol back to watching
(`W_VENUE` 0), with a warning and an audit record: a position is never left unwatched.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sq.core.exits import SqError

TAG = "p"  # protective client ids: <run prefix>p<n>
LEG_SUFFIXES = ("-tp", "-sl")  # a Binance OCO's legs: <list client id>-tp / -sl
OPEN = ("accepted", "partially_filled")


@dataclass
class Leg:
    """One protective order at the venue (an OCO counts as one: the venue links its two halves)."""

    cid: str
    request: Any  # sq.venues.base.OrderRequest as sent
    void: str = ""
    filled: float = 0.0
    ids: set = field(default_factory=set)  # venue order ids whose fills are this leg's
    shown: tuple = (float("nan"), float("nan"))  # (price, trigger) as the venue rounded them
    fill_void: str = ""  # the order the venue filled when it is not the leg itself (an algo order's, a GTT's)
    trades: set = field(default_factory=set)  # trade ids booked


@dataclass
class Cover:
    """The protective orders of one symbol's position: closing `side`, `qty`, `stop`, `take`."""

    side: int
    qty: float
    stop: float
    take: float
    legs: list[Leg]


def _same(a: float, b: float) -> bool:
    return (a != a and b != b) or (a == a and b == b and abs(a - b) <= 1e-9 * max(1.0, abs(a)))


class Protection:
    """The protective orders of one live bar strategy run (see the module docstring)."""

    def __init__(self, run: Any, *, slippage_pct: float, working_price: str):
        from sq.core.strategy import executor as E

        self.run = run
        self.E = E
        self.slippage_pct = float(slippage_pct)
        self.working_price = working_price
        self.covers: dict[str, Cover] = {}
        self.retired: dict[str, tuple[str, Leg]] = {}  # legs canceled by the run: a late fill is still booked
        self.venue_symbols: set[str] = set()  # symbols the venue protects (W_VENUE set)
        self.n = 0
        self.closed = False
        self.placed = self.modified = self.canceled = self.filled = self.refused = 0

    # -- set-up
    @classmethod
    def attach(cls, run: Any, config: Any) -> "Protection | None":
        """For a bar strategy's run with `[live] protective_orders`: the symbols whose venue offers
        protective orders are marked (`W_VENUE`); None when there is nothing to protect."""
        from sq.core.engine.livebarengine import LiveBarEngine

        lc = config.live
        if not isinstance(run.engine, LiveBarEngine) or not lc.protective_orders:
            return None
        p = cls(run, slippage_pct=lc.protective_slippage_pct, working_price=lc.protective_trigger)
        for sym in run.plan.symbols:
            try:
                offered = run.gateway.protective_orders(sym, -1, 1.0, 100.0, 110.0, slippage_pct=p.slippage_pct,
                                                        working_price=p.working_price)
            except SqError:
                offered = None
            if offered:
                s = run.bridge.ensure_symbol(sym)
                run.engine.us[s, p.E.W_VENUE] = 1.0
                p.venue_symbols.add(sym)
        return p if p.venue_symbols else None

    def continue_ids(self, cids: Any) -> None:
        """A resumed run: its protective ids continue after the journal's highest."""
        head = self.run.plan.prefix + TAG
        for c in cids:
            tail = str(c)[len(head):] if str(c).startswith(head) else ""
            if tail.isdigit():
                self.n = max(self.n, int(tail))

    # -- ids
    def owns(self, cid: str) -> bool:
        return bool(cid) and cid.startswith(self.run.plan.prefix + TAG)

    def _next(self) -> str:
        self.n += 1
        return f"{self.run.plan.prefix}{TAG}{self.n}"

    def _leg_of(self, cid: str) -> tuple[str, Cover | None, Leg] | None:
        """(symbol, cover — None for a leg the run canceled —, leg) of a client id (an OCO's half too)."""
        base = cid
        for suffix in LEG_SUFFIXES:
            if cid.endswith(suffix):
                base = cid[: -len(suffix)]
        for sym, cover in self.covers.items():
            for leg in cover.legs:
                if leg.cid in (cid, base):
                    return sym, cover, leg
        old = self.retired.get(base) or self.retired.get(cid)
        return (old[0], None, old[1]) if old is not None else None

    # -- the engine's side
    def _slot(self, sym: str) -> tuple[int, Any]:
        e = self.run.engine
        s = e.registry.id(sym)
        return s, e.us[s]

    def _position(self, sym: str) -> tuple[float, float]:
        from sq.core.engine import layout as L

        e = self.run.engine
        s = e.registry.id(sym)
        lot = float(e.sf[s, L.SF_LOT])
        return float(e.sf[s, L.SF_POS]), (lot * 1e-6 if lot > 0 else 1e-9)

    def _wanted(self, sym: str) -> Cover | None:
        """The cover the engine's position and prices ask for now (None: no protection wanted)."""
        E = self.E
        if sym not in self.venue_symbols:
            return None
        s, st = self._slot(sym)
        if s >= self.run.engine.n:
            return None
        pos, eps = self._position(sym)
        stop, take, want = float(st[E.W_STOP]), float(st[E.W_TAKE]), float(st[E.W_WANT])
        if abs(pos) <= eps or (stop != stop and take != take):
            return None
        if want == want and (want * pos <= 0.0 or abs(want) < abs(pos) - eps):
            return None  # the strategy is reducing, closing or flipping it
        return Cover(-1 if pos > 0 else 1, abs(pos), stop, take, [])

    # -- the run's hooks
    def before_send(self, intents: list) -> set[str]:
        """Cancel the covers the coming orders would cross (see the module docstring); the symbols
        whose position a protective fill changed meanwhile."""
        from sq.core.engine import venue_bridge as LB

        if self.closed or not self.covers:
            return set()
        crossing = {it.symbol for it in intents if it.kind == LB.NEW and it.symbol in self.covers
                    and int(it.side) == self.covers[it.symbol].side}
        changed: set[str] = set()
        for sym in list(self.covers):
            if sym in crossing or self._wanted(sym) is None:
                pos0 = self._position(sym)[0]
                self._drop(sym, "protect: the strategy exits")
                if self._position(sym)[0] != pos0:
                    changed.add(sym)
        return changed

    def after_send(self) -> None:
        """Each symbol's cover made to match the engine's position and prices."""
        if self.closed:
            return
        for sym in sorted(self.venue_symbols):
            want = self._wanted(sym)
            have = self.covers.get(sym)
            if want is None:
                if have is not None:
                    self._drop(sym, "protect: no position to protect")
                continue
            if have is None:
                self._place(sym, want)
                continue
            pos_eps = self._position(sym)[1]
            same_shape = (have.side == want.side and abs(have.qty - want.qty) <= pos_eps
                          and (have.stop == have.stop) == (want.stop == want.stop) and (have.take == have.take) == (want.take == want.take))
            if not same_shape:
                self._drop(sym, "protect: the position changed")
                if sym in self.venue_symbols:
                    self._place(sym, self._wanted(sym) or want)
            elif not (_same(have.stop, want.stop) and _same(have.take, want.take)):
                self._modify(sym, have, want)

    def on_update(self, cid: str, st: Any, fills: list) -> None:
        """An order update the venue pushed for one of the legs."""
        found = self._leg_of(cid)
        if found is None:
            return
        sym, cover, leg = found
        if st.venue_order_id and cid == leg.cid:
            leg.void = leg.void or str(st.venue_order_id)
        if st.venue_order_id:
            leg.ids.add(str(st.venue_order_id))
        leg.ids.update(getattr(st, "triggered_ids", ()) or ())
        self._book(sym, cover, leg, fills)
        if float(st.filled_qty or 0.0) > leg.filled + 1e-12 or getattr(st, "triggered_ids", ()):
            self._catch_up(sym, cover, leg)
        if (cover is not None and cid == leg.cid and st.status in ("canceled", "expired", "rejected") and self.covers.get(sym) is cover
                and leg in cover.legs):
            self._lost(sym, cover, leg, st)

    def sweep(self) -> None:
        """Ask the venue about every leg: fills and ends its pushes did not bring."""
        if self.closed:
            return
        for sym in list(self.covers):
            cover = self.covers.get(sym)
            for leg in list(cover.legs if cover else []):
                try:
                    st = self.run.gateway.lookup(sym, leg.cid, tries=1)
                except SqError as e:
                    self.run.env.warn(f"live: protective order {leg.cid}: {e.message}")
                    continue
                if st is not None and sym in self.covers:
                    self.on_update(leg.cid, st, [])

    def close(self, reason: str = "protect: the run ends") -> None:
        """Cancel every leg (the run's end, `sq kill`, an error)."""
        for sym in list(self.covers):
            try:
                self._drop(sym, reason)
            except SqError as e:
                self.run.env.warn(f"live: canceling the protective orders of {sym}: {e.message}")
        self.closed = True

    def summary(self) -> dict:
        return {"placed": self.placed, "modified": self.modified, "canceled": self.canceled, "filled": self.filled,
                "refused": self.refused, "working": sorted(leg.cid for c in self.covers.values() for leg in c.legs)}

    # -- the venue's side
    def _row(self, leg: Leg, event: str, *, sym: str, price: float | None = None, qty: float | None = None, filled: float | None = None,
             void: str | None = None, reason: str = "") -> tuple[str, dict]:
        r = leg.request
        q = float(r.qty if qty is None else qty)
        f = float(leg.filled if filled is None else filled)
        px = float((self._shown_price(leg)) if price is None else price)
        return ("order", {"ts": self.run.clock(), "symbol": sym, "client_order_id": leg.cid, "venue_order_id": (void or leg.void) or None,
                          "event": event, "side": int(r.side), "price": px if px == px else float(r.trigger_price), "qty": q,
                          "filled_qty": f, "leaves_qty": max(q - f, 0.0) if event in ("new", "accepted", "modified") else 0.0,
                          "reason": reason})

    @staticmethod
    def _shown_price(leg: Leg) -> float:
        px = leg.shown[0]
        return px if px == px and px > 0 else float(leg.request.price)

    def _write(self, recs: list) -> None:
        self.run.write(recs)
        self.run.flush()  # write-ahead: on disk before the request leaves

    def _place(self, sym: str, want: Cover) -> None:
        try:
            reqs = self.run.gateway.protective_orders(sym, want.side, want.qty, want.stop, want.take, slippage_pct=self.slippage_pct,
                                                      working_price=self.working_price)
        except SqError as e:
            return self._fallback(sym, e.message)
        if not reqs:
            return self._fallback(sym, "the venue offers no protective order for it")
        cover = Cover(want.side, want.qty, want.stop, want.take, [])
        self.covers[sym] = cover
        for req in reqs:
            leg = Leg(self._next(), None)
            leg.request = replace(req, client_order_id=leg.cid)
            what = _what(req)
            self._write([self._row(leg, "new", sym=sym, reason=f"protect: {what}")])
            try:
                st, fills = self.run.gateway.place_idempotent(leg.request)
            except SqError as e:
                st, fills = None, []
                why = e.message
            else:
                why = st.reason or "refused by the venue"
            if st is None or st.status == "rejected":
                self._write([self._row(leg, "rejected", sym=sym, reason=f"protect: {why}")])
                self.refused += 1
                self._drop(sym, "protect: a sibling was refused")
                return self._fallback(sym, why)
            leg.void = str(st.venue_order_id or "")
            leg.ids.add(leg.void)
            leg.shown = (float(st.price), float(st.trigger_price))
            cover.legs.append(leg)
            self.placed += 1
            self._write([self._row(leg, "accepted", sym=sym, reason=f"protect: {what}")])
            if fills or float(st.filled_qty or 0) > 0:
                self.on_update(leg.cid, st, fills)
                if sym not in self.covers:
                    return

    def _modify(self, sym: str, cover: Cover, want: Cover) -> None:
        """New prices on a later bar: each leg whose request changed is modified (Kite in place,
        Binance cancel-and-replace under a new id); a leg that cannot be: the cover is placed again."""
        try:
            reqs = self.run.gateway.protective_orders(sym, want.side, want.qty, want.stop, want.take, slippage_pct=self.slippage_pct,
                                                      working_price=self.working_price) or []
        except SqError as e:
            reqs = []
            self.run.env.warn(f"live: protective orders of {sym}: {e.message}")
        if len(reqs) != len(cover.legs) or any(r.order_type != leg.request.order_type for r, leg in zip(reqs, cover.legs)):
            self._drop(sym, "protect: new prices")
            return self._place(sym, want)
        for req, leg in zip(reqs, cover.legs):
            old = leg.request
            if _same(req.price, old.price) and _same(req.trigger_price, old.trigger_price):
                continue
            new_cid = self._next()
            price = None if req.price != req.price else req.price
            trigger = None if req.trigger_price != req.trigger_price else req.trigger_price
            self._write([self._row(leg, "modified", sym=sym, price=req.price, reason=f"protect: new prices ({_what(req)})")])
            try:
                st = self.run.gateway.modify(sym, leg.cid, price=price, trigger=trigger, new_client_order_id=new_cid)
            except SqError as e:
                self.run.env.warn(f"live: modifying protective order {leg.cid}: {e.message}; placing the cover again")
                self._drop(sym, "protect: a modify failed")
                return self._place(sym, want)
            if st.client_order_id != leg.cid:  # canceled and replaced (Binance): the replacement is the leg now
                self._write([self._row(leg, "canceled", sym=sym, reason=f"protect: replaced by {st.client_order_id}")])
                restored = getattr(st, "restored", None)
                if st.status == "rejected":
                    self.run.env.warn(f"live: protective order {leg.cid} modify refused ({st.reason}); "
                                      + (f"the original is working again as {restored.client_order_id}" if restored else "placing the cover again"))
                    cover.legs.remove(leg)
                    self._drop(sym, "protect: a modify was refused")
                    return self._place(sym, want)
                leg.cid, leg.request = st.client_order_id, replace(req, client_order_id=st.client_order_id)
                leg.void = str(st.venue_order_id or "")
                leg.ids = {leg.void}
                leg.shown = (float(st.price), float(st.trigger_price))
                self._write([self._row(leg, "accepted", sym=sym, reason=f"protect: {_what(req)} (replacement)")])
            elif st.reason or st.status not in OPEN:
                self.run.env.warn(f"live: protective order {leg.cid} not modified ({st.reason or st.status}); placing the cover again")
                self._drop(sym, "protect: a modify failed")
                return self._place(sym, want)
            else:
                leg.request = replace(req, client_order_id=leg.cid)
                leg.shown = (float(st.price), float(st.trigger_price))
                self._write([self._row(leg, "accepted", sym=sym, reason=f"protect: {_what(req)} (modified)")])
            self.modified += 1
        cover.stop, cover.take = want.stop, want.take

    def _drop(self, sym: str, reason: str) -> None:
        """Cancel a symbol's legs; what filled meanwhile is booked."""
        cover = self.covers.pop(sym, None)
        if cover is None:
            return
        for leg in cover.legs:
            self.retired[leg.cid] = (sym, leg)
            self._write([self._row(leg, "cancel_sent", sym=sym, reason=reason)])
            try:
                st = self.run.gateway.cancel(sym, leg.cid)
            except SqError as e:
                self.run.env.warn(f"live: cancel protective order {leg.cid}: {e.message}")
                continue
            leg.ids.update(getattr(st, "triggered_ids", ()) or ())
            if float(st.filled_qty or 0.0) > leg.filled + 1e-12 or st.status == "filled" or st.triggered_ids:
                self._catch_up(sym, cover, leg, dropping=True)
            if st.status == "canceled":
                self.canceled += 1
                self._write([self._row(leg, "canceled", sym=sym, reason=reason)])
            else:
                self._write([self._row(leg, "filled" if leg.filled > 0 else st.status or "canceled", sym=sym, void=leg.fill_void or None,
                                       reason=f"{reason} (the venue: {st.reason or st.status})")])

    def _fallback(self, sym: str, why: str) -> None:
        """The venue will not protect this symbol's position: the run watches its prices again."""
        s, st = self._slot(sym)
        st[self.E.W_VENUE] = 0.0
        self.venue_symbols.discard(sym)
        self.run.env.warn(f"live: {sym}: no protective orders at the venue ({why}); the run watches the stop-loss and take-profit itself")
        self._write([("audit", {"ts": self.run.clock(), "by": "sq live (protective orders)", "symbol": sym,
                                "event": f"refused: {why}; the run watches the stop-loss and take-profit"})])

    # -- fills
    def _catch_up(self, sym: str, cover: Cover | None, leg: Leg, *, dropping: bool = False) -> None:
        """The leg's fills the venue has and the run has not booked (asked for)."""
        try:
            fills = [f for f in self.run.gateway.fills(sym) if f.venue_order_id in leg.ids or
                     (f.client_order_id and (f.client_order_id == leg.cid or f.client_order_id.startswith(leg.cid + "-")))]
        except SqError as e:
            self.run.env.warn(f"live: fills of protective order {leg.cid}: {e.message}")
            return
        self._book(sym, cover, leg, fills, dropping=dropping)

    def _book(self, sym: str, cover: Cover | None, leg: Leg, fills: list, *, dropping: bool = False) -> None:
        """Journal and book a leg's new fills; once the leg filled its cover, finish the cover."""
        from sq.runs.reconcile import fill_row

        recs = []
        for f in fills:
            key = (f.symbol, str(f.trade_id))
            if key in self.run.trades or str(f.trade_id) in leg.trades:
                continue
            self.run.trades.add(key)
            leg.trades.add(str(f.trade_id))
            if f.venue_order_id:
                leg.ids.add(str(f.venue_order_id))
                if str(f.venue_order_id) != leg.void:
                    leg.fill_void = str(f.venue_order_id)
            leg.filled += float(f.qty)
            recs.append(("fill", fill_row(replace(f, client_order_id=leg.cid))))
            self.run.bridge.seed_fill(f.symbol, int(f.side), float(f.price), float(f.qty), f.liquidity == "maker")
            self.run.fills += 1
        if not recs:
            return
        self._follow_position(sym)
        recs.extend(self.run.rows_of(self.run.bridge.output()))
        self.run.write(recs)
        if cover is None:  # a leg the run had canceled filled first: booked, nothing left to finish
            return
        eps = self._position(sym)[1]
        if leg.filled >= cover.qty - eps:
            self.filled += 1
            self.run.write([self._row(leg, "filled", sym=sym, filled=leg.filled, void=leg.fill_void or None,
                                      reason=f"protect: {_what(leg.request)} filled")])
            if not dropping and self.covers.get(sym) is cover:
                cover.legs.remove(leg)
                self._drop(sym, f"protect: {leg.cid} filled")  # the siblings (an OCO's other half is the venue's)
        else:
            cover.qty = max(cover.qty - float(sum(float(f.qty) for f in fills)), 0.0)

    def _follow_position(self, sym: str) -> None:
        """A protective fill moved the position at the venue: the strategy's wanted position
        follows it (flat: its prices cleared), so the executor does not trade it back."""
        import math as _m

        E = self.E
        s, st = self._slot(sym)
        pos, eps = self._position(sym)
        if abs(pos) <= eps:
            st[E.W_WANT] = 0.0
            for k in (E.W_STOP, E.W_TAKE, E.W_WSTOP, E.W_WTAKE):
                st[k] = _m.nan
            st[E.W_EXIT] = 0.0
        else:
            st[E.W_WANT] = pos

    def _lost(self, sym: str, cover: Cover, leg: Leg, st: Any) -> None:
        """A leg ended at the venue without filling (canceled there, expired): the cover is
        placed again at the next step."""
        self.run.write([self._row(leg, st.status if st.status in ("canceled", "expired", "rejected") else "canceled", sym=sym,
                                  reason=f"protect: ended at the venue ({st.reason or st.status})")])
        cover.legs.remove(leg)
        self._drop(sym, "protect: a leg ended at the venue")


def _what(req: Any) -> str:
    """A leg in words, for the journal: `stop-market 61200` / `oco 64000/61200`."""
    t, px, trig = req.order_type, req.price, req.trigger_price
    if t == "oco":
        return f"oco take-profit {px:g} / stop {trig:g}"
    if t == "limit":
        return f"take-profit limit {px:g}"
    return f"{t} {trig:g}" if trig == trig else f"{t} {px:g}"


__all__ = ["Protection", "TAG"]
