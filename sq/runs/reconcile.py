"""`sq reconcile`: does the journal agree with the venue? (README: Exit codes)

A journal (one run) is read into a `JournalView`: per client order id the order as the journal
last saw it (side, price, quantity, status, filled quantity, venue id) and every fill by
(symbol, trade id). It is then compared with the truth:

* **real venues** (`binance`, `zerodha`) — the venue's answers through its order gateway: the
  open orders of each journal symbol, the state of every order the journal does not consider
  closed (queried by client order id where the gateway can), and the account's own trades. An
  order or trade is *ours* when its client order id carries the run's prefix or its venue order
  id is one the journal recorded; everything else on the account is ignored.
* **the simulated exchange** (`SIM:`, paper runs) — its state lived inside the paper process and
  died with it; all that survives is what the process journaled. So a paper journal is checked
  for internal consistency, the way an auditor checks books without the bank: every fill belongs
  to an order the journal placed, each order's filled quantity equals the sum of its fills, the
  last PnL mark's position equals the net of the fills, and a sealed run has no order left open.

Differences (`Diff`): `missing_at_venue`, `missing_in_journal`, `status`, `filled_qty`,
`missing_fill`, `phantom_fill`, `fill_qty`, `fill_price`, `fill_side`, `order_side`, `order_qty`,
`order_price`, `position`,
`fill_without_order`, `open_after_end`. Quantities and prices are equal within `tolerance`
(absolute, default 1e-9 — venue decimals survive a float round trip exactly).

`--fix` adopts the venue's truth: order rows (status, filled quantity), the missing fills, and one
`audit` record saying what was changed, why and from which reconcile — appended to the run's
hash-chained journal (so the fix is itself tamper-evident); a sealed run's Parquet files are
rewritten. `sq live --resume` runs the same adoption before it trades again.

Standard library only at import time; a gateway is opened only for a real venue.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sq.core import journal as J
from sq.core.exits import NoInputError, SqError, UsageError

OPEN_EVENTS = {"new", "accepted", "modified", "cancel_sent", "cancel_rejected", "partially_filled"}
CLOSED = {"canceled", "filled", "rejected", "expired"}
DEFAULT_TOLERANCE = 1e-9
DEFAULT_SINCE_S = 24 * 3600.0


@dataclass
class JOrder:
    """One order as the journal last saw it."""

    client_order_id: str
    symbol: str
    side: int
    price: float
    qty: float
    status: str = "new"  # the last event
    filled_qty: float = 0.0
    venue_order_id: str = ""
    reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_EVENTS

    @property
    def acknowledged(self) -> bool:
        return self.status != "new" or bool(self.venue_order_id)


@dataclass
class JournalView:
    """What one run's journal says: orders by client id, fills by (symbol, trade id), positions."""

    path: Path
    run_id: str
    mode: str
    venue: str
    symbols: list[str]
    prefix: str  # client order ids of this run start with it ("" for paper runs)
    sealed: bool
    orders: dict[str, JOrder] = field(default_factory=dict)
    fills: dict[tuple[str, str], dict] = field(default_factory=dict)
    last_pnl: dict[str, dict] = field(default_factory=dict)
    records: int = 0
    start_positions: dict[str, float] = field(default_factory=dict)  # the account's, seen before the first order
    started_ns: int = 0

    def positions(self) -> dict[str, float]:
        pos: dict[str, float] = {}
        for f in self.fills.values():
            pos[f["symbol"]] = pos.get(f["symbol"], 0.0) + int(f["side"]) * float(f["qty"])
        return pos

    def account_positions(self) -> dict[str, float]:
        """What the account should hold per symbol after this run: its start plus its fills."""
        pos = dict(self.start_positions)
        for sym, q in self.positions().items():
            pos[sym] = pos.get(sym, 0.0) + q
        return pos

    def fills_of(self, cid: str) -> list[dict]:
        return [f for f in self.fills.values() if f.get("client_order_id") == cid]


@dataclass
class Diff:
    """One difference between the journal and the truth."""

    run: str
    kind: str
    symbol: str
    client_order_id: str = ""
    trade_id: str = ""
    journal: Any = None
    venue: Any = None
    detail: str = ""
    fix: dict | None = None  # the venue's truth to adopt (order row / fill row), when there is one


@dataclass
class RunReport:
    run: str
    path: str
    venue: str
    mode: str
    orders: int
    fills: int
    checked: str  # "venue" or "journal" (self-consistency of a paper run)
    differences: list[Diff] = field(default_factory=list)
    fixed: int = 0
    error: str = ""


@dataclass
class Report:
    runs: list[RunReport] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def differences(self) -> list[Diff]:
        return [d for r in self.runs for d in r.differences]

    @property
    def ok(self) -> bool:
        return not self.differences and not any(r.error for r in self.runs)

    def to_json(self) -> dict:
        def diff(d: Diff) -> dict:
            out = asdict(d)
            out.pop("fix", None)
            return out

        return {
            "ok": self.ok,
            "runs": [{k: v for k, v in asdict(r).items() if k != "differences"} | {"differences": [diff(d) for d in r.differences]}
                     for r in self.runs],
            "differences": len(self.differences),
            "elapsed_s": round(self.elapsed_s, 4),
        }


# ----------------------------------------------------------------------------------------------
# reading journals


def view_of(loaded: "J.Loaded") -> JournalView:
    """Fold a verified journal into a `JournalView` (later rows of an order win)."""
    start = loaded.start
    symbols = [str(s) for s in start.get("symbols", [])]
    mode = str(start.get("mode", "paper"))
    venue = str(start.get("venue") or _venue_of(symbols))
    v = JournalView(loaded.path.parent, str(start.get("run_id", loaded.path.parent.name)), mode, venue, symbols,
                    str(start.get("client_prefix", "")), loaded.sealed, records=len(loaded.records))
    for r in loaded.records:
        d = r.data
        if r.kind in ("order", "reject"):
            cid = str(d.get("client_order_id") or "")
            if not cid:
                continue
            o = v.orders.get(cid)
            if o is None:
                o = v.orders[cid] = JOrder(cid, str(d.get("symbol", "")), int(d.get("side") or 0), _f(d.get("price")), _f(d.get("qty")))
            else:  # a later row (a modify, or a reconcile adopting the venue's fields) updates them
                if int(d.get("side") or 0):
                    o.side = int(d["side"])
                px, q = _f(d.get("price")), _f(d.get("qty"))
                if math.isfinite(px) and px > 0:
                    o.price = px
                if math.isfinite(q) and q > 0:
                    o.qty = q
            event = str(d.get("event") or o.status)
            if not (o.status in CLOSED and event == "cancel_rejected"):  # a late cancel of a done order changes nothing
                o.status = event
            o.filled_qty = _f(d.get("filled_qty"), o.filled_qty)
            if d.get("venue_order_id"):
                o.venue_order_id = str(d["venue_order_id"])
            o.reason = str(d.get("reason") or "")
            if r.kind == "reject":
                o.status = "rejected"
        elif r.kind == "fill":
            v.fills[(str(d.get("symbol", "")), str(d.get("trade_id", "")))] = d
        elif r.kind == "pnl":
            v.last_pnl[str(d.get("symbol", ""))] = d
        elif r.kind == "audit" and isinstance(d.get("venue_before_first_order"), dict) and not v.start_positions:
            v.start_positions = {str(k): float(q) for k, q in (d["venue_before_first_order"].get("positions") or {}).items()}
    try:
        v.started_ns = int(start.get("ts") or 0)
    except (TypeError, ValueError):
        v.started_ns = 0
    return v


def latest_runs(starts: Iterable[dict]) -> dict[tuple[str, str], str]:
    """(venue, symbol) → run id of the live run that started last on it, from start records.
    Only that run's position can be checked against the account: the fills of earlier runs are
    inside the account position it saw before its first order."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for s in starts:
        if s.get("mode") != "live":
            continue
        ts = int(s.get("ts") or 0)
        for sym in s.get("symbols") or []:
            key = (str(s.get("venue")), str(sym))
            if key not in out or ts >= out[key][0]:
                out[key] = (ts, str(s.get("run_id")))
    return {k: rid for k, (_, rid) in out.items()}


def position_symbols(v: JournalView, latest: dict[tuple[str, str], str]) -> set:
    """The symbols whose account position this run answers for (it is the latest run on them)."""
    return {sym for sym in v.symbols if latest.get((v.venue, sym), v.run_id) == v.run_id}


def run_starts(extra: Iterable[Path] = ()) -> list[tuple[Path, dict]]:
    """(run dir, start record) of every run under the data dir's runs/ (and of `extra` run dirs)."""
    from sq.core import paths

    dirs = set(extra)
    base = paths.data_dir() / "runs"
    if base.is_dir():
        dirs.update(p for p in base.iterdir() if p.is_dir())
    return [(d, s) for d, s in ((d, J.read_start(d)) for d in sorted(dirs)) if s is not None]


def all_starts(extra: Iterable[Path] = ()) -> list[dict]:
    """Start records of every run under the data dir's runs/ (and of `extra` run dirs)."""
    return [s for _, s in run_starts(extra)]


def _venue_of(symbols: list[str]) -> str:
    """The venue of a journal without one in its start record (paper runs): its first symbol's."""
    from sq.venues import registry

    try:
        return registry.venue_of(symbols[0]) if symbols else "replay"
    except SqError:
        return "replay"


def _f(x: Any, default: float = math.nan) -> float:
    try:
        return default if x is None else float(x)
    except (TypeError, ValueError):
        return default


def find_runs(journal: str | None, *, since_s: float = DEFAULT_SINCE_S, now: float | None = None) -> list[Path]:
    """Run directories to reconcile: `journal` itself when it holds a journal, else the run
    directories under it (default `<data dir>/runs`) whose journal changed within `since_s`."""
    from sq.core import paths

    if journal:
        p = Path(journal).expanduser()
        if J.log_path(p).is_file():
            return [p]
        if not p.is_dir():
            raise NoInputError(f"--journal {journal}: no such directory")
        base, explicit = p, True
    else:
        base, explicit = paths.data_dir() / "runs", False
        if not base.is_dir():
            return []
    now = time.time() if now is None else now
    out = []
    for child in sorted(base.iterdir()):
        log = J.log_path(child)
        try:
            mtime = log.stat().st_mtime
        except OSError:
            continue
        if explicit or now - mtime <= since_s:
            out.append(child)
    if journal and not out:
        raise NoInputError(f"--journal {journal}: no run journal ({J.LOG_NAME}) there or in its subdirectories")
    return out


# ----------------------------------------------------------------------------------------------
# the simulated venue: self-consistency


def check_paper(v: JournalView, tol: float) -> list[Diff]:
    """A paper run's journal against itself (its simulated venue died with its process)."""
    diffs: list[Diff] = []
    per_order: dict[str, float] = {}
    for (sym, tid), f in v.fills.items():
        cid = str(f.get("client_order_id") or "")
        if cid not in v.orders:
            diffs.append(Diff(v.run_id, "fill_without_order", sym, cid, tid, detail="a fill of an order the journal never placed"))
        per_order[cid] = per_order.get(cid, 0.0) + float(f["qty"])
    for cid, o in v.orders.items():
        got = per_order.get(cid, 0.0)
        if o.status != "rejected" and not _close(got, o.filled_qty if not math.isnan(o.filled_qty) else 0.0, tol):
            diffs.append(Diff(v.run_id, "filled_qty", o.symbol, cid, journal=o.filled_qty, venue=got,
                              detail="the order's filled quantity differs from the sum of its fills",
                              fix=order_row(o, o.status, got, "reconcile: filled quantity from the fills")))
        if v.sealed and o.is_open:
            diffs.append(Diff(v.run_id, "open_after_end", o.symbol, cid, journal=o.status, venue="gone",
                              detail="the run ended with this order still working",
                              fix=order_row(o, "canceled", got, "reconcile: the simulated venue ended with the run")))
        elif not v.sealed and o.is_open and _pid_gone(v):
            diffs.append(Diff(v.run_id, "status", o.symbol, cid, journal=o.status, venue="gone",
                              detail="the run died with this order working; its simulated venue died with it",
                              fix=order_row(o, "canceled", got, "reconcile: the simulated venue died with the run")))
    pos = v.positions()
    for sym, p in v.last_pnl.items():
        want = pos.get(sym, 0.0)
        if not _close(float(p.get("position") or 0.0), want, max(tol, 1e-9)):
            diffs.append(Diff(v.run_id, "position", sym, journal=p.get("position"), venue=want,
                              detail="the last PnL mark's position differs from the net of the fills"))
    return diffs


def _pid_gone(v: JournalView) -> bool:
    """Whether no live process holds this journal (its lock is free)."""
    import fcntl

    try:
        fd = os.open(J.log_path(v.path), os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------------------
# real venues


@dataclass
class VenueTruth:
    """What the venue says about one run's orders: states by client id, fills by trade id,
    positions by symbol (only where the venue has positions: futures, Zerodha)."""

    orders: dict[str, Any] = field(default_factory=dict)  # client id → OrderState
    unknown: set[str] = field(default_factory=set)  # client ids the venue says it never saw
    fills: dict[tuple[str, str], Any] = field(default_factory=dict)
    positions: dict[str, float] = field(default_factory=dict)
    open_ids: set[str] = field(default_factory=set)


def venue_truth(gateway: Any, v: JournalView) -> VenueTruth:
    """Ask the venue about a run: open orders per symbol, the state of every order the journal
    does not hold closed (by client id), and the account's trades of our orders."""
    from sq.venues import registry

    t = VenueTruth()
    ours_by_void = {o.venue_order_id: cid for cid, o in v.orders.items() if o.venue_order_id}
    for sym in sorted(set(v.symbols) | {o.symbol for o in v.orders.values()}):
        for st in gateway.open_orders(sym):
            cid = st.client_order_id
            if cid in v.orders or (v.prefix and cid.startswith(v.prefix)) or st.venue_order_id in ours_by_void:
                cid = cid or ours_by_void.get(st.venue_order_id, "")
                t.orders[cid] = st
                t.open_ids.add(cid)
    for cid, o in v.orders.items():
        if cid in t.orders or o.status == "rejected":  # rejected: refused by risk or by the venue; nothing there
            continue
        if o.status in CLOSED and not _fills_disagree(v, o):
            continue  # closed and consistent: the trades below still catch a fill the journal lacks
        st = gateway.lookup(o.symbol, cid, tries=1)
        if st is None and o.venue_order_id and o.venue_order_id != cid:  # kept without sq's id (a Kite GTT): by the venue's
            st = gateway.lookup(o.symbol, o.venue_order_id, tries=1)
        if st is None:  # the venue never saw this client id
            t.unknown.add(cid)
        else:
            t.orders[cid] = st
    for st in t.orders.values():
        if st.venue_order_id:
            ours_by_void.setdefault(st.venue_order_id, st.client_order_id)
    for sym in sorted({o.symbol for o in v.orders.values()}):
        for f in gateway.fills(sym):
            cid = f.client_order_id if f.client_order_id in v.orders else ours_by_void.get(f.venue_order_id, "")
            if not cid and not (v.prefix and f.client_order_id.startswith(v.prefix)):
                continue
            t.fills[(f.symbol, str(f.trade_id))] = _with_cid(f, cid or f.client_order_id)
    if any(registry.holds_positions(s) for s in v.symbols):  # spot balances are not positions
        try:
            for p in gateway.positions():
                if p.symbol in v.symbols:
                    t.positions[p.symbol] = float(p.qty)
        except SqError:
            pass
    return t


def _with_cid(f: Any, cid: str) -> Any:
    import dataclasses

    return dataclasses.replace(f, client_order_id=cid) if f.client_order_id != cid else f


def _fills_disagree(v: JournalView, o: JOrder) -> bool:
    got = sum(float(f["qty"]) for f in v.fills_of(o.client_order_id))
    return not _close(got, o.filled_qty if not math.isnan(o.filled_qty) else 0.0, 1e-9)


def compare(v: JournalView, t: VenueTruth, tol: float, *, positions: bool | set = True) -> list[Diff]:
    """The differences between a run's journal and what its venue says. `positions`: check the
    account's net position (True), not at all (False), or only for the symbols in the set — a
    later run on a symbol owns that check (see `latest_runs`)."""
    diffs: list[Diff] = []
    now = time.time_ns()
    venue_filled: dict[str, float] = {}
    for key, f in t.fills.items():
        venue_filled[f.client_order_id] = venue_filled.get(f.client_order_id, 0.0) + float(f.qty)
        j = v.fills.get(key)
        row = fill_row(f)
        if j is None:
            diffs.append(Diff(v.run_id, "missing_fill", f.symbol, f.client_order_id, key[1], None, f.qty,
                              "the venue has a fill the journal lacks", fix=row))
            continue
        if int(j.get("side") or 0) != int(f.side):
            diffs.append(Diff(v.run_id, "fill_side", f.symbol, f.client_order_id, key[1], j.get("side"), f.side, "side differs", fix=row))
        if not _close(float(j.get("qty") or 0), float(f.qty), tol):
            diffs.append(Diff(v.run_id, "fill_qty", f.symbol, f.client_order_id, key[1], j.get("qty"), f.qty, "quantity differs", fix=row))
        if not _close(float(j.get("price") or 0), float(f.price), tol * max(1.0, abs(float(f.price)))):
            diffs.append(Diff(v.run_id, "fill_price", f.symbol, f.client_order_id, key[1], j.get("price"), f.price, "price differs", fix=row))
    for key, j in v.fills.items():
        if key not in t.fills and (j.get("client_order_id") in v.orders):
            diffs.append(Diff(v.run_id, "phantom_fill", key[0], str(j.get("client_order_id")), key[1], j.get("qty"), None,
                              "the journal has a fill the venue does not"))
    for cid, o in v.orders.items():
        st = t.orders.get(cid)
        if cid in t.unknown:
            if o.status != "rejected":
                diffs.append(Diff(v.run_id, "missing_at_venue", o.symbol, cid, journal=o.status, venue="unknown",
                                  detail="journaled as sent; the venue never received it",
                                  fix=order_row(o, "rejected", 0.0, "reconcile: the venue never received this order", ts=now)))
            continue
        if st is None:
            continue
        vstatus = _event_of(st.status)
        vfilled = max(float(st.filled_qty or 0.0), venue_filled.get(cid, 0.0))
        jfilled = 0.0 if math.isnan(o.filled_qty) else o.filled_qty
        jopen, vopen = o.is_open, vstatus in OPEN_EVENTS
        if jopen != vopen or (not jopen and vstatus != o.status and not (o.status == "rejected" and vstatus == "rejected")):
            diffs.append(Diff(v.run_id, "status", o.symbol, cid, journal=o.status, venue=vstatus,
                              detail="the order's state differs",
                              fix=order_row(o, vstatus, vfilled, "reconcile: state adopted from the venue", st.venue_order_id, now)))
        elif not _close(jfilled, vfilled, tol):
            diffs.append(Diff(v.run_id, "filled_qty", o.symbol, cid, journal=jfilled, venue=vfilled, detail="filled quantity differs",
                              fix=order_row(o, vstatus, vfilled, "reconcile: filled quantity adopted from the venue", st.venue_order_id, now)))
        diffs.extend(_field_diffs(v.run_id, o, st, vstatus, vfilled, tol, now))
    for cid in t.open_ids - set(v.orders):
        st = t.orders[cid]
        diffs.append(Diff(v.run_id, "missing_in_journal", st.symbol, cid, journal=None, venue=_event_of(st.status),
                          detail="an open order of this run the journal never recorded",
                          fix={"ts": now, "symbol": st.symbol, "client_order_id": cid, "venue_order_id": st.venue_order_id,
                               "event": _event_of(st.status), "side": st.side, "price": st.price, "qty": st.qty,
                               "filled_qty": st.filled_qty, "leaves_qty": max(st.qty - st.filled_qty, 0.0),
                               "reason": "reconcile: adopted from the venue"}))
    if t.positions and positions is not False:
        mine = v.account_positions()
        for sym, q in t.positions.items():
            if positions is not True and sym not in positions:
                continue
            if not _close(mine.get(sym, 0.0), q, max(tol, 1e-9)):
                diffs.append(Diff(v.run_id, "position", sym, journal=mine.get(sym, 0.0), venue=q,
                                  detail="net position differs (the account is assumed to trade only through sq)"))
    return diffs


def _field_diffs(run: str, o: JOrder, st: Any, vstatus: str, vfilled: float, tol: float, now: int) -> list[Diff]:
    """Side, quantity and limit price of an order as the venue has it vs the journal (a venue
    without the field — a market order's price, a missing quantity — is not compared)."""
    out = []
    vside, vqty, vpx = int(getattr(st, "side", 0) or 0), _f(getattr(st, "qty", None)), _f(getattr(st, "price", None))
    checks = [("order_side", o.side, vside, bool(vside) and bool(o.side) and vside != o.side),
              ("order_qty", o.qty, vqty, math.isfinite(vqty) and vqty > 0 and math.isfinite(o.qty) and not _close(o.qty, vqty, tol)),
              ("order_price", o.price, vpx, math.isfinite(vpx) and vpx > 0 and math.isfinite(o.price)
               and not _close(o.price, vpx, tol * max(1.0, abs(vpx))))]
    for kind, mine, theirs, differs in checks:
        if not differs:
            continue
        fixed = JOrder(o.client_order_id, o.symbol, vside or o.side, vpx if math.isfinite(vpx) and vpx > 0 else o.price,
                       vqty if math.isfinite(vqty) and vqty > 0 else o.qty, o.status, o.filled_qty, o.venue_order_id)
        out.append(Diff(run, kind, o.symbol, o.client_order_id, journal=mine, venue=theirs, detail=kind.split("_")[1] + " differs",
                        fix=order_row(fixed, vstatus, vfilled, "reconcile: order fields adopted from the venue", st.venue_order_id, now)))
    return out


def _event_of(status: str) -> str:
    return {"accepted": "accepted", "partially_filled": "partially_filled", "filled": "filled", "canceled": "canceled",
            "rejected": "rejected", "expired": "expired"}.get(status, "accepted")


def _close(a: float, b: float, tol: float) -> bool:
    return abs(float(a) - float(b)) <= tol


def order_row(o: JOrder, event: str, filled: float, reason: str, void: str = "", ts: int | None = None) -> dict:
    leaves = max(o.qty - filled, 0.0) if event in OPEN_EVENTS else 0.0
    return {"ts": int(ts or time.time_ns()), "symbol": o.symbol, "client_order_id": o.client_order_id,
            "venue_order_id": void or o.venue_order_id or None, "event": event, "side": o.side, "price": o.price, "qty": o.qty,
            "filled_qty": filled, "leaves_qty": leaves, "reason": reason}


def fill_row(f: Any) -> dict:
    """A venue `Fill` as a journal fill record (the fills schema)."""
    return {"ts": int(f.ts), "symbol": f.symbol, "client_order_id": f.client_order_id, "venue_order_id": f.venue_order_id,
            "trade_id": str(f.trade_id), "side": int(f.side), "price": float(f.price), "qty": float(f.qty), "fee": float(f.fee),
            "fee_ccy": f.fee_ccy, "liquidity": f.liquidity}


# ----------------------------------------------------------------------------------------------
# adopting the truth


def fix_records(diffs: Iterable[Diff], source: str) -> list[tuple[str, dict]]:
    """Journal records that adopt the truth of `diffs`: the fills first, then order rows, then one
    `audit` record listing every change."""
    diffs = [d for d in diffs if d.fix is not None]
    if not diffs:
        return []
    fill_kinds = ("missing_fill", "fill_side", "fill_qty", "fill_price")  # the venue's fill row replaces the journal's
    fills = [("fill", d.fix) for d in diffs if d.kind in fill_kinds]
    orders = [("order", d.fix) for d in diffs if d.kind not in fill_kinds]
    audit = {"ts": time.time_ns(), "by": source, "pid": os.getpid(),
             "changes": [{"kind": d.kind, "symbol": d.symbol, "client_order_id": d.client_order_id, "trade_id": d.trade_id,
                          "journal": d.journal, "venue": d.venue} for d in diffs]}
    return fills + orders + [("audit", audit)]


def append_fix(path: Path, records: list[tuple[str, dict]]) -> int:
    """Append records to a run's journal under its lock (exit 75 while a process has it open);
    a sealed run's Parquet files are rewritten from the amended log."""
    if not records:
        return 0
    j, loaded = J.Journal.open_existing(path, what="--journal")  # a crashed live run's zeroed room is cut off first
    try:
        n = j.write_step(records)
    finally:
        j.close()
    if loaded.sealed:
        J.compact(path)
    return n


# ----------------------------------------------------------------------------------------------
# the command body


@dataclass
class ReconcileOptions:
    venue: str | None = None
    journal: str | None = None
    fix: bool = False
    tolerance: float = DEFAULT_TOLERANCE
    since_s: float = DEFAULT_SINCE_S


def run_reconcile(env: Any, opts: ReconcileOptions, *, gateway_factory: Any = None) -> Report:
    """Reconcile every selected run; with `fix`, adopt the venue's truth into each journal.
    Paper runs (their orders lived and died inside their process) are checked against their own
    journal; live runs against their venue, through `gateway_factory(venue)` when given."""
    from sq.venues import registry

    if opts.tolerance < 0 or not math.isfinite(opts.tolerance):
        raise UsageError(f"--tolerance must be a non-negative number, got {opts.tolerance}")
    venue = opts.venue.strip().lower() if opts.venue else None
    t0 = time.perf_counter()
    report = Report()
    gateways: dict[str, Any] = {}
    config = None
    try:
        runs = find_runs(opts.journal, since_s=opts.since_s)
        latest = latest_runs(all_starts(runs))
        for path in runs:
            v = view_of(J.load(path))
            if venue and v.venue != venue:
                continue
            at_venue = v.mode == "live"
            rr = RunReport(v.run_id, str(path), v.venue, v.mode, len(v.orders), len(v.fills), "venue" if at_venue else "journal")
            report.runs.append(rr)
            if not at_venue:
                rr.differences = check_paper(v, opts.tolerance)
            else:
                if v.venue not in gateways:
                    if gateway_factory is not None:
                        gateways[v.venue] = gateway_factory(v.venue)
                    else:
                        if config is None:
                            from sq.core.config import load_config

                            config = load_config(env)
                        gateways[v.venue] = registry.open_account(v.venue, config, env)
                try:
                    rr.differences = compare(v, venue_truth(gateways[v.venue], v), opts.tolerance,
                                             positions=position_symbols(v, latest))
                except SqError as e:
                    rr.error = e.message
                    continue
            if opts.fix:
                recs = fix_records(rr.differences, "sq reconcile --fix")
                if recs:
                    append_fix(path, recs)
                    rr.fixed = sum(1 for d in rr.differences if d.fix is not None)
    finally:
        if gateway_factory is None:
            for gw in gateways.values():
                gw.close()
    report.elapsed_s = time.perf_counter() - t0
    notify_differences(env, config, report)
    return report


def notify_differences(env: Any, config: Any, report: "Report", *, timeout: float = 5.0) -> None:
    """Tell the config's alert URLs (`[monitoring] alerts`) about runs whose journal and venue
    differ (a cron `sq reconcile`); nothing when all agree or no alerts are configured."""
    bad = [r for r in report.runs if r.differences or r.error]
    if not bad:
        return
    if config is None:
        from sq.core.config import load_config

        try:
            config = load_config(env)
        except SqError:
            return
    from sq.runs.alerts import config_alerts

    alerts = config_alerts(env, config, "sq reconcile")
    if alerts is None:
        return
    lines = [f"run {r.run_id} ({r.venue}, {r.mode}): " + (f"error: {r.error}" if r.error else f"{len(r.differences)} difference(s)")
             + (f", {r.fixed} adopted" if r.fixed else "") for r in bad]
    alerts.send("reconcile", "\n".join(lines[:20]) + (f"\n… and {len(lines) - 20} more" if len(lines) > 20 else ""))
    alerts.close(timeout)
