"""`sq live`: the paper engine trading real money through a venue gateway (docs/architecture.md).

Start-up, in this order, each refusal with its own exit status and nothing sent before all pass:

  1. the config says `trading_mode = "live"` (else 78) and the user confirmed (`--confirm-live`
     or `SQ_CONFIRM_LIVE=1`; else 2) — live never starts by accident;
  2. no secret file is readable by group or others (the config file when it holds secrets, the
     `.env`, stored Binance keys, the Zerodha session; else 77);
  3. a non-blocking flock per symbol in the state dir: a second live process on any of the same
     symbols exits 75;
  4. the gateway opens and the run *reconciles before its first order*: a new run records what
     the venue shows open on its symbols, seeds the engine with positions the account holds,
     and reconciles the journals of earlier live runs on its symbols, cancelling what a crashed
     one left working and adopting the venue's truth into that journal (with an audit record);
     a resumed run (`--resume DIR`) replays its journal, adopts the venue's truth, cancels the
     orders the dead process left working and rebuilds its positions from the journal.

The loop: market batches (read by a thread of their own) and the order updates the venue pushes
(Binance execution reports, Kite postbacks) arrive through one queue, in arrival order; a
backlog is worked off at once (consecutive market batches merged into one engine step). Each
market step goes through `Engine.process` (the same kernels as backtest and paper); the engine's
order intents (`LiveBridge.take_outbox`) and the rows they produced are journaled with one write
+ fsync *before* anything is sent; then each intent goes to the venue and the venue's answers are
fed back to the engine's order manager, journaled again. Client order ids are `<prefix><counter>`,
the prefix derived from the run id (`sq` + 8 hex), the counter the engine's own — so a retried
send reuses its id and can never double an order, and a resumed run continues the counter. A
send that timed out or lost its connection is resolved by asking the venue for that client id;
only a venue that never saw it gets the same id once more. A circuit breaker stops new orders
after repeated venue failures. Working orders are also checked at the venue periodically — often
while the venue's order stream is down, rarely while it is up. When the market-data connection
is down past a grace period the run cancels its working orders and sends nothing until it is
back. Settings: the config's `[live]` table (`LiveConfig`), overridden by flags.

A bar strategy takes the same path: `make_engine(..., sim_venue=False)` gives it a
`LiveBarEngine`, the event engine running the strategy's executor, which builds bars from the
market batches, computes the signals as each bar closes and works toward the position they
want with orders in the same outbox.

SIGINT/SIGTERM/`sq kill`: cancel every order, a last reconcile (its differences adopted with an
audit record), seal, exit 0. Any other error: cancel every order of the run at the venue, then
exit non-zero (the journal stays unsealed, so `--resume` continues it).
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sq.core import journal as J
from sq.core import summary as RS
from sq.core.exits import AuthError, ConfigError, IOFailure, SqError, UsageError
from sq.core.redact import mask_argv

CONFIRM_ENV = "SQ_CONFIRM_LIVE"
MAX_DRAIN = 4096  # queue items handled per loop turn at most
IDLE_WAKE_S = 0.25  # the loop wakes at least this often with no market data (signals, sweeps, --for)
JOURNAL_ROOM = 1 << 20  # zeroed room kept ahead of the journal's records: a step's sync flushes data alone (sq.core.journal)
MAX_RATE_SHARE = 0.8  # never above this share of the venue's published order rate
DEFAULT_RATE_SHARE = 0.5  # without risk.max_order_rate: this share of the venue's published order rate


@dataclass
class LiveOptions:
    strategy: str | None = None
    symbols: list[str] = field(default_factory=list)
    confirm: bool = False
    journal: str | None = None
    resume: str | None = None
    params: list[str] = field(default_factory=list)
    duration: str | None = None
    order_timeout_s: float | None = None  # None: the config's [live] value
    breaker_failures: int | None = None
    breaker_cooldown_s: float | None = None
    json: bool = False
    expiry: str | None = None  # --expiry: which contract a continuous futures name stands for (near, next, far)
    shadow: str | None = None  # --shadow STRATEGY[:k=v,…]: a paper twin on the same feed (sq.runs.shadow)
    monitor: Any = None  # --metrics, --metrics-file, --alert (sq.runs.monitor.MonitorOptions); None: the config's


@dataclass(frozen=True)
class Safety:
    """The live settings of one run: the config's `[live]` table, overridden by the command's flags."""

    order_timeout_s: float
    breaker_failures: int
    breaker_cooldown_s: float
    sweep_interval_s: float
    sweep_fallback_s: float
    previous_runs_hours: float
    cancel_previous_orders: bool
    feed_grace_s: float


def safety_of(opts: LiveOptions, config: Any) -> Safety:
    """Flags win over `[live]`; a flag out of range is a usage error (2), naming the flag."""
    lc = config.live
    pick = lambda flag, key: getattr(lc, key) if flag is None else flag  # noqa: E731
    s = Safety(pick(opts.order_timeout_s, "order_timeout_s"), pick(opts.breaker_failures, "breaker_failures"),
               pick(opts.breaker_cooldown_s, "breaker_cooldown_s"), lc.sweep_interval_s, lc.sweep_fallback_s,
               lc.previous_runs_hours, lc.cancel_previous_orders, lc.feed_grace_s)
    if s.breaker_failures < 1:
        raise UsageError(f"--breaker-failures must be ≥ 1, got {s.breaker_failures}")
    if not s.breaker_cooldown_s >= 0:
        raise UsageError(f"--breaker-cooldown must be ≥ 0 seconds, got {s.breaker_cooldown_s:g}")
    if not s.order_timeout_s > 0:
        raise UsageError(f"--order-timeout must be > 0 seconds, got {s.order_timeout_s:g}")
    return s


# ----------------------------------------------------------------------------------------------
# start-up guards


def require_live(config: Any, confirm: bool, environ: dict | None = None) -> None:
    """Live mode in the config (78) and an explicit confirmation (2), or refuse."""
    environ = os.environ if environ is None else environ
    if getattr(config, "trading_mode", "paper") != "live":
        where = config.source or "the config (none found)"
        raise ConfigError(f'sq live needs trading_mode = "live" in {where}; it is "{config.trading_mode}" — '
                          "paper-trade with sq paper, or set live mode deliberately")
    if not (confirm or environ.get(CONFIRM_ENV) == "1"):
        raise UsageError(f"sq live trades real money: add --confirm-live (or set {CONFIRM_ENV}=1 for cron) to confirm")


def secret_files(config: Any, environ: dict | None = None) -> list[Path]:
    """Files that hold (or may hold) credentials sq reads: the config when it holds secrets, the
    `.env`, and every venue's stored credentials."""
    from sq.venues import registry

    environ = os.environ if environ is None else environ
    out = []
    if config.source:
        p = Path(config.source)
        try:
            text = p.read_text(errors="replace").lower()
        except OSError:
            text = ""
        if any(k in text for k in ("secret", "password", "pwd", "access_token", "totp")):
            out.append(p)
    dotenv = environ.get("SQ_DOTENV") or ".env"
    if Path(dotenv).is_file():
        out.append(Path(dotenv))
    out.extend(p for p in registry.secret_files(environ, config) if p.is_file())
    return out


def check_secret_files(config: Any, environ: dict | None = None) -> None:
    """Refuse (77) when any secret file is readable or writable by group or others."""
    for p in secret_files(config, environ):
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            raise AuthError(f"{p} holds secrets but has mode {mode:04o} (group/others can read it); run: chmod 600 {p}")


def client_prefix(run_id: str) -> str:
    """`sq` + 8 hex of the run id + `-`: client ids stay ≤ 20 characters (Kite tags) and valid
    Binance client ids, and tell this run's orders from anyone else's."""
    return "sq" + hashlib.sha256(run_id.encode()).hexdigest()[:8] + "-"


# ----------------------------------------------------------------------------------------------
# the run


def _rows(out: Any, k: int, name: str) -> list[dict]:
    """An engine output's orders (k 0) or pnl (k 2) rows as journal payloads: from the kernel's
    arrays when the output offers it (no Arrow between a tick and its order), else its batch."""
    dicts = getattr(out, "dicts", None)
    rows = dicts(k) if dicts is not None else None
    return J.rows_from_batch(getattr(out, name, None)) if rows is None else rows


class LiveRun:
    """One live run: engine + bridge + venue orders + journal; `stop()` ends it cleanly."""

    def __init__(self, env: Any, plan: "Plan", engine: Any, gateway: Any, journal: "J.Journal", breaker: Any, *,
                 clock: Callable[[], int] = time.time_ns, sweep_interval_s: float = 5.0, sweep_fallback_s: float = 0.5,
                 feed_grace_s: float = 2.0):
        from sq.core.engine import venue_bridge as LB
        from sq.core.engine.venue_bridge import LiveBridge
        from sq.venues.base import OrderRequest

        # bound once: an import statement in `execute` or `_new` would run on every order
        self._LB, self._OrderRequest = LB, OrderRequest
        self.env = env
        self.plan = plan
        self.engine = engine
        self.bridge = LiveBridge(engine)
        self.gateway = gateway  # the venue's OrderGateway (sq.venues.base)
        self.journal = journal
        self.breaker = breaker
        self.clock = clock
        self.source: Any = None
        self.view: Any = None
        self.stop_reason: str | None = None
        self.voids: dict[int, str] = {}  # coid → venue order id
        self.reasons: dict[int, str] = {}  # coid → venue's rejection text
        self.trades: set[tuple[str, str]] = set()  # (symbol, trade id) already journaled
        self.latencies_ns: list[int] = []  # market batch at the engine → order handed to the venue client
        self.wire_ns: list[int] = []  # the batch's last frame received → order handed to the venue client
        self.handed_ns: list[int] = []  # wall clock of this step's orders handed over (wire_ns once they are out)
        self.work_ns: list[int] = []  # latencies_ns without the journal's write + fdatasync that made the order durable
        self.step_syncs = 0  # the journal's fsync count when the step began
        self.held: list | None = None  # journal records waiting for one write (see `write`)
        self.conflated = 0  # market batches merged with the next one because the loop was behind
        self.sent = self.failures = self.fills = self.rows = 0
        self.last_sweep = 0.0
        self.halted_reason = ""
        self.sweep_interval_s, self.sweep_fallback_s = sweep_interval_s, sweep_fallback_s
        self.inbox: Any = None  # queue of market batches and pushed order updates (set by `run`)
        self.started_ns = time.time_ns()  # wall clock, for the summary's `started`
        self.followed = False  # the venue pushes order updates
        self.was_pushing = False
        self.updates = self.sweeps = 0
        self.feed_grace_s = feed_grace_s
        self.feed_down_since: float | None = None
        self.feed_paused = False
        self.feed_pauses = 0
        self.feed_seen = False
        self.canceled_on_error = 0  # orders canceled at the venue when an error ended the run
        # the venue's charges of finished orders against the cost model (sq.runs.chargeaudit)
        self.order_fills: dict[int, Any] = {}  # coid → OrderFills, until audited
        self.charges_audited = self.charges_flagged = 0
        self.charges_every_s = sweep_interval_s
        self.last_charges = time.monotonic()
        self.charges_reported = True  # False once the venue says it keeps no contract notes
        from sq.runs.heartbeat import Heartbeat
        from sq.runs.monitor import OFF

        self.monitor: Any = OFF  # metrics and alerts (sq.runs.monitor), set by run_live

        self.heartbeat = Heartbeat("live")
        self.shadow: Any = None  # the paper twin (`--shadow`, sq.runs.shadow), fed after each step's orders are out
        self.costs: Any = None  # commission rates and perpetuals' funding from the venue (sq.runs.livecosts), set by run_live
        self.protection: Any = None  # a bar strategy's stop-loss/take-profit as orders at the venue (sq.runs.liveprotect), set by run_live

    # -- ids
    def cid(self, coid: int) -> str:
        return f"{self.plan.prefix}{coid}"

    def coid_of(self, cid: str) -> int | None:
        if cid.startswith(self.plan.prefix):
            tail = cid[len(self.plan.prefix):]
            if tail.isdigit():
                return int(tail)
        return None

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.source is not None:
            try:
                self.source.close()
            except Exception:
                pass

    # -- journal rows
    def rows_of(self, out: Any) -> list[tuple[str, dict]]:
        """Engine output → journal records: orders rows with the real client/venue ids, pnl rows.
        (The engine's own fill rows are not journaled: the venue's fills are, with its trade ids.)"""
        recs = []
        for row in _rows(out, 0, "orders"):
            coid = int(row["client_order_id"])
            row["client_order_id"] = self.cid(coid)
            row["venue_order_id"] = self.voids.get(coid)
            if row.get("event") == "rejected" and coid in self.reasons:
                row["reason"] = self.reasons[coid]
            recs.append(("reject" if row.get("event") == "rejected" and coid not in self.reasons and coid not in self.voids else "order", row))
        recs.extend(("pnl", row) for row in _rows(out, 2, "pnl"))
        funding = getattr(out, "funding", None)
        if funding:
            recs.extend(("funding", r) for r in funding)
            if self.costs is not None:
                self.costs.note(funding)
        return recs

    def write(self, recs: list[tuple[str, dict]]) -> None:
        """Journal records: at once (one write + fsync), or — while the loop works through a
        backlog — held until `flush()`, which runs before anything is sent (still write-ahead)."""
        if not recs:
            return
        if self.held is not None:
            self.held.extend(recs)
        else:
            self.journal.write_step(recs)

    def flush(self) -> None:
        if self.held:
            recs, self.held = self.held, []
            self.journal.write_step(recs)

    # -- one market batch
    def step(self, batch: Any) -> Any:
        t0 = time.perf_counter_ns()
        self.step_syncs = self.journal.fsyncs
        out = self.engine.process(batch, complete=True)  # venue sources never split a message
        self.rows += batch.num_rows
        intents = self.bridge.take_outbox()
        recs = self.rows_of(out)
        if self.engine.halted and not self.halted_reason and not self.feed_paused:
            self.halted_reason = self.engine.halted
            recs.append(("halt", {"ts": self.clock(), "reason": self.halted_reason, "by": "risk"}))
        self.write(recs)  # write-ahead: the intents' `new`/`cancel_sent` rows are on disk first
        self.execute(intents, t0)
        if self.handed_ns:
            self._note_wire(batch)
        self.heartbeat.market(self.engine.now_ns)  # the rest once the orders are out
        self.monitor.market(batch)
        if self.shadow is not None:  # the twin sees the batch once the live orders are out
            self.shadow.step(batch)
        return out

    def _note_wire(self, batch: Any) -> None:
        """The batch's last frame received (`recv_ts`, wall clock) → each of its orders handed
        over: read once the orders are out, off the path it measures."""
        handed, self.handed_ns = self.handed_ns, []
        try:
            recv = int(batch.column("recv_ts")[batch.num_rows - 1].value)
        except (KeyError, AttributeError, TypeError):
            return
        if recv:
            self.wire_ns.extend(h - recv for h in handed)

    def execute(self, intents: list, t0: int | None = None) -> None:
        """Send intents, feed the answers back, journal them; repeat while answers make new
        intents (an ack that arrives after a halt turns into a cancel)."""
        LB = self._LB
        protection = self.protection
        moved = protection.before_send(intents) if protection is not None and intents else set()
        while intents:
            self.flush()  # write-ahead: the intents' rows are on disk before the first send
            for it in intents:
                if it.kind == LB.NEW and it.symbol in moved:  # a protective order filled first: the position is not what it was
                    self.reasons[it.coid] = "not sent: a protective order at the venue filled first"
                    self.bridge.answer(it.coid, LB.REJECTED, now=self.clock(), first=True)
                elif it.kind == LB.NEW:
                    self._new(it, t0)
                else:
                    self._cancel(it)
            intents = self.bridge.take_outbox()
            self.write(self.rows_of(self.bridge.output()))
            t0 = None
        if protection is not None:
            protection.after_send()  # the position's protective orders follow what the answers did

    def _new(self, it: Any, t0: int | None) -> None:
        LB, OrderRequest = self._LB, self._OrderRequest
        cid = self.cid(it.coid)
        if not self.breaker.allow():
            self.reasons[it.coid] = f"circuit breaker open after {self.breaker.consecutive} venue failures"
            self.bridge.answer(it.coid, LB.REJECTED, now=self.clock(), first=True)
            return
        if it.order_type != "limit":  # a triggered venue order fills under an id of its own: not routed back yet
            self.reasons[it.coid] = f"a strategy's {it.order_type} order is simulated in backtest and paper only; not sent live"
            self.bridge.answer(it.coid, LB.REJECTED, now=self.clock(), first=True)
            return
        req = OrderRequest(it.symbol, it.side, it.qty, it.price, "limit", "ioc" if it.ioc else "gtc", cid)
        if t0 is not None:
            took = time.perf_counter_ns() - t0
            self.latencies_ns.append(took)
            self.handed_ns.append(time.time_ns())
            journal = self.journal
            self.work_ns.append(took - (journal.last_sync_ns if journal.fsyncs > self.step_syncs else 0))
        try:
            st, fills = self.gateway.place_idempotent(req)
        except SqError as e:  # unknown outcome after asking the venue, or the venue refuses to talk
            self.breaker.failure()
            self.failures += 1
            self.reasons[it.coid] = _clip(f"not sent: {e.message}")
            self.env.warn(f"live: order {cid}: {e.message}")
            self.bridge.answer(it.coid, LB.REJECTED, now=self.clock(), first=True)
            return
        self.sent += 1
        if st.status == "rejected":
            self.breaker.success()  # the venue answered: it is up
            self.reasons[it.coid] = _clip(st.reason or "rejected by the venue")
            self.bridge.answer(it.coid, LB.REJECTED, now=self.clock(), first=True)
            return
        self.breaker.success()
        self.apply_state(it.coid, st, fills, first=True)

    def _cancel(self, it: Any) -> None:
        from sq.core.engine import venue_bridge as LB

        cid = self.cid(it.coid)
        try:
            st = self.gateway.cancel(it.symbol, cid)
        except SqError as e:
            self.breaker.failure()
            self.failures += 1
            self.env.warn(f"live: cancel {cid}: {e.message}")
            self.bridge.answer(it.coid, LB.CANCEL_REJ, now=self.clock(), first=True)
            return
        self.breaker.success()
        if st.status == "canceled":
            self._catch_up_fills(it.coid, it.symbol, st)
            self.bridge.answer(it.coid, LB.CANCELED, now=self.clock(), first=True)
        else:  # already filled or gone: the sweep brings its fills
            self.bridge.answer(it.coid, LB.CANCEL_REJ, now=self.clock(), first=True)
            self.sweep(force=True)

    def apply_state(self, coid: int, st: Any, fills: list, *, first: bool) -> None:
        """Feed a venue order state (+ fills) to the engine: ack, fills, then a terminal state."""
        from sq.core.engine import venue_bridge as LB

        now = self.clock()
        if st.venue_order_id:
            self.voids[coid] = str(st.venue_order_id)
        void = int(st.venue_order_id) if str(st.venue_order_id).isdigit() and len(str(st.venue_order_id)) < 19 else coid
        self.bridge.answer(coid, LB.ACK, px=void, now=now, first=first)
        self.take_fills(fills)
        if float(st.filled_qty or 0) > (self.bridge.filled_of(coid) or 0.0) + 1e-12:
            self._catch_up_fills(coid, st.symbol, st)
        if st.status in ("canceled", "expired"):
            self.bridge.answer(coid, LB.CANCELED if st.status == "canceled" else LB.EXPIRED, now=now)

    def take_fills(self, fills: list) -> None:
        """Journal venue fills not seen before and book them in the engine (its order's fill)."""
        from sq.core.engine import venue_bridge as LB
        from sq.runs.reconcile import fill_row

        recs = []
        for f in fills:
            key = (f.symbol, str(f.trade_id))
            if key in self.trades:
                continue
            coid = self.coid_of(f.client_order_id)
            if coid is None:
                coid = next((c for c, v in self.voids.items() if v == f.venue_order_id), None)
            if coid is None:
                continue
            self.trades.add(key)
            f = f if f.client_order_id else _replace(f, client_order_id=self.cid(coid))
            recs.append(("fill", fill_row(f)))
            self._note_fill(coid, f)
            self.fills += 1
            kind = LB.FILL_MAKER if f.liquidity == "maker" else LB.FILL_TAKER
            if not self.bridge.answer(coid, kind, px=self.bridge.ticks_of(f.symbol, f.price), qty=float(f.qty), now=self.clock()):
                self.bridge.seed_fill(f.symbol, f.side, f.price, f.qty, f.liquidity == "maker")
        if recs:
            self.write(recs + self.rows_of(self.bridge.output()))

    def _note_fill(self, coid: int, f: Any) -> None:
        """Keep the order's fills for the charges audit (venues that report charges only)."""
        if not self.charges_reported:
            return
        from sq.runs.chargeaudit import OrderFills

        of = self.order_fills.setdefault(coid, OrderFills(f.symbol, int(f.side)))
        of.fills.append((int(f.ts or self.clock()), float(f.price), float(f.qty)))

    def audit_charges(self, *, force: bool = False) -> None:
        """Every finished order's charges as the venue reports them, against the cost model:
        `audit` records, a warning for each difference (sq.runs.chargeaudit). At the sweep pace
        (or `force`), one request for every order finished since the last look."""
        from sq.runs import chargeaudit

        now = time.monotonic()
        if not self.order_fills or not (force or now - self.last_charges >= self.charges_every_s):
            return
        self.last_charges = now
        working = self.bridge.working()
        done = {coid: o for coid, o in self.order_fills.items() if coid not in working}
        if not done:
            return
        orders = {self.cid(c): o for c, o in done.items()}
        ids = {self.cid(c): self.voids[c] for c in done if c in self.voids}
        schedules = {o.symbol: self.engine.cost_schedule(o.symbol) for o in done.values()}
        try:
            got = chargeaudit.audit_orders(self.gateway, orders, schedules, ids, self.clock())
        except SqError as e:
            self.env.warn(f"live: asking the venue for its charges: {e.message} (asked again later)")
            return
        for c in done:
            self.order_fills.pop(c, None)
        if got is None:
            self.charges_reported = False
            self.order_fills.clear()
            return
        recs, warnings = got
        self.charges_audited += len(recs)
        self.charges_flagged += len(warnings)
        for w in warnings:
            self.env.warn(w)
        if recs:
            self.write(recs)

    def _catch_up_fills(self, coid: int, symbol: str, st: Any) -> None:
        want = float(st.filled_qty or 0)
        have = self.bridge.filled_of(coid)
        if have is not None and want > have + 1e-12:
            self.take_fills([f for f in self.gateway.fills(symbol) if f.venue_order_id == str(st.venue_order_id)])

    def sweep(self, *, force: bool = False) -> bool:
        """Ask the venue about every working order: fills and cancels that happened there (the
        safety net under the pushed updates, and the only source when the venue pushes none)."""
        self.last_sweep = time.monotonic()
        if self.protection is not None and self.protection.covers:
            self.protection.sweep()
            self.execute(self.bridge.take_outbox())  # a protective fill: the covers follow
        working = self.bridge.working()
        if not working:
            return False
        try:
            by_symbol: dict[str, dict[str, Any]] = {}
            for sym in sorted({w[0] for w in working.values()}):
                by_symbol[sym] = {st.client_order_id: st for st in self.gateway.open_orders(sym)}
            for coid, (sym, _state, _leaves, _filled) in working.items():
                cid = self.cid(coid)
                st = by_symbol[sym].get(cid)
                if st is None:
                    st = self.gateway.lookup(sym, cid)
                    if st is None:
                        continue
                self._settle(coid, sym, st)
            self.breaker.success()
        except SqError as e:
            self.breaker.failure()
            self.env.warn(f"live: checking working orders: {e.message}")
        self._journal_and_send()
        return True

    # -- the market-data connection
    def check_feed(self, up: bool, now: float) -> None:
        """Market data down for `feed_grace_s`: cancel every working order (it would rest on a
        book the run cannot see) and send nothing new; feed back: trade again. Both journaled.
        A risk halt is final and is never lifted here."""
        if up:
            self.feed_seen = True
            self.feed_down_since = None
            if self.feed_paused:
                self.feed_paused = False
                self.engine.resume_trading()
                self.write([("audit", {"ts": self.clock(), "by": "sq live (market data)", "event": "feed back: trading again"})])
                self.env.info("live: market data is back; trading again")
            return
        if not self.feed_seen:  # still connecting at start: the source gives up on its own if it cannot
            return
        if self.feed_down_since is None:
            self.feed_down_since = now
        if self.feed_paused or self.engine.halted or now - self.feed_down_since < self.feed_grace_s:
            return
        self.feed_paused = True
        self.feed_pauses += 1
        self.env.warn(f"live: market data down for {now - self.feed_down_since:.1f}s; canceling working orders until it is back")
        out = self.engine.cancel_all(self.clock(), "market data down")
        intents = self.bridge.take_outbox()
        self.write(self.rows_of(out) + [("audit", {"ts": self.clock(), "by": "sq live (market data)",
                                                   "event": "feed down: working orders canceled, no new orders"})])
        self.execute(intents)

    def beat_state(self) -> dict:
        """The heartbeat of a live run: the engine's state, the breaker and the feed."""
        from sq.runs.heartbeat import engine_state

        doc = engine_state(self.engine)
        doc["halted"] = self.halted_reason or doc["halted"]
        doc["breaker"] = {"state": self.breaker.state, "trips": self.breaker.trips}
        doc["feed"] = "paused" if self.feed_paused else "down" if self.feed_down_since is not None else "up" if self.feed_seen else "connecting"
        return doc

    def advance(self) -> None:
        """No market data for a while: the engine's market calendars still move with the clock
        (a square-off cancels on time on a quiet market); what it did is journaled, then sent."""
        out = self.engine.advance(self.clock())
        intents = self.bridge.take_outbox()
        if intents or any(out.rows) or out.funding:
            self.write(self.rows_of(out))
            self.execute(intents)

    # -- pushed order updates
    def push(self, cid: str, st: Any, fills: list) -> None:
        """Called by the venue's stream thread: hand the update to the loop (never touches the engine)."""
        inbox = self.inbox
        if inbox is not None and (self.coid_of(cid) is not None or (self.protection is not None and self.protection.owns(cid))):
            inbox.put((UPDATE, cid, st, fills))

    def on_update(self, cid: str, st: Any, fills: list) -> None:
        """An order update the venue pushed: its fills (journaled with their trade ids), any fill
        it reports that we have not seen (asked for), a terminal state — then whatever the
        strategy wants next."""
        coid = self.coid_of(cid)
        if coid is None:
            if self.protection is not None and self.protection.owns(cid):
                self.updates += 1
                try:
                    self.protection.on_update(cid, st, fills)
                    self.breaker.success()
                except SqError as e:
                    self.breaker.failure()
                    self.env.warn(f"live: order update {cid}: {e.message}")
                self._journal_and_send()
            return
        self.updates += 1
        if st.venue_order_id:
            self.voids.setdefault(coid, str(st.venue_order_id))
        try:
            self.take_fills(fills)
            self._settle(coid, st.symbol, st)
            self.breaker.success()
        except SqError as e:
            self.breaker.failure()
            self.env.warn(f"live: order update {cid}: {e.message}")
        self._journal_and_send()

    def _journal_and_send(self) -> None:
        """After the bridge took the venue's answers: journal the rows they made, then send what
        the strategy wants next."""
        self.write(self.rows_of(self.bridge.output()))
        self.execute(self.bridge.take_outbox())

    def _settle(self, coid: int, sym: str, st: Any) -> None:
        """Bring the engine's view of one working order up to the venue's state `st`."""
        from sq.core.engine import venue_bridge as LB

        working = self.bridge.working().get(coid)
        if working is None:
            return
        if float(st.filled_qty or 0) > working[3] + 1e-12:
            self._catch_up_fills(coid, sym, st)
        if st.status in ("canceled", "expired", "rejected"):
            self.bridge.answer(coid, LB.CANCELED if st.status != "expired" else LB.EXPIRED, now=self.clock())

    def work(self, items: list) -> bool:
        """Handle what the queue held, in arrival order: consecutive market batches are merged
        into one engine step (when the loop is behind it trades on the newest book, not on a
        stale one), order updates are applied one by one, and the journal gets one write for
        the lot. False when the market source has ended."""
        import pyarrow as pa

        self.held = []
        try:
            i = 0
            while i < len(items):
                kind = items[i][0]
                if kind == MARKET:
                    j = i
                    while j < len(items) and items[j][0] == MARKET:
                        j += 1
                    batches = [it[1] for it in items[i:j] if it[1].num_rows]
                    if batches:
                        self.conflated += len(batches) - 1
                        batch = batches[0] if len(batches) == 1 else pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
                        out = self.step(batch)
                        if self.view is not None:
                            self.view.update(batch, out, self)
                    i = j
                    continue
                if kind == UPDATE:
                    self.on_update(items[i][1], items[i][2], items[i][3])
                elif kind == FAILED:
                    raise items[i][1]
                else:  # the source ended
                    return False
                i += 1
            return True
        finally:
            self.flush()
            self.held = None

    # -- the loop
    def run(self, source: Any) -> None:
        """Market batches and pushed order updates, in arrival order, through one queue: the
        market source is read by a thread of its own, so an order update (or a signal, a due
        sweep, the end of --for) never waits for the next tick."""
        import queue

        self.source = source
        self.inbox = inbox = queue.SimpleQueue()
        self.followed = self.gateway.follow(source, self.push)
        deadline = time.monotonic() + self.plan.duration_ns / 1e9 if self.plan.duration_ns else None
        reader = threading.Thread(target=_read_source, args=(source, inbox), name="sq-live-market", daemon=True)
        reader.start()
        try:
            while self.stop_reason is None:
                now = time.monotonic()
                self.heartbeat.beat(self.beat_state)  # about once a second, between batches
                self.monitor.step(self)  # alerts on transitions (halt, breaker, feed); a metrics snapshot when due
                pushing = self.followed and self.gateway.pushing()
                if pushing and not self.was_pushing:
                    self.last_sweep = 0.0  # the stream (re)connected: updates may have been missed
                self.was_pushing = pushing
                self.check_feed(bool(getattr(source, "connected", True)), now)
                every = self.sweep_interval_s if pushing else self.sweep_fallback_s
                if now - self.last_sweep >= every:
                    self.sweeps += self.sweep()  # periodic checks that asked (cancel and close-out ask on their own)
                self.audit_charges()
                if self.costs is not None:
                    self.costs.poll(now)  # perpetuals: the next funding time and rate, the venue's bookings
                if deadline is not None and now >= deadline:
                    self.stop("for")
                    break
                wait = min(IDLE_WAKE_S, max(0.0, self.last_sweep + every - now))
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - now))
                self.journal.reserve()  # the journal's zeroed room topped up between steps, not inside one
                try:
                    items = [inbox.get(timeout=wait)]
                except queue.Empty:
                    self.advance()
                    continue
                while len(items) < MAX_DRAIN:  # whatever else is waiting: a backlog is worked off at once
                    try:
                        items.append(inbox.get_nowait())
                    except queue.Empty:
                        break
                if not self.work(items):
                    break
        finally:
            self.inbox = None
            try:
                source.close()
            except Exception:
                pass
            reader.join(5)
        while True:  # updates that arrived before the stop still count
            try:
                item = inbox.get_nowait()
            except queue.Empty:
                break
            if item[0] == UPDATE:
                self.on_update(item[1], item[2], item[3])

    def close_out(self, reason: str) -> None:
        """Halt: cancel every working order through the engine, then sweep the venue for
        anything of this run still open (cancel it directly), journaled with a `halt` record."""
        now = self.clock()
        if self.protection is not None:
            self.protection.close(f"protect: the run ends ({reason})")
        out = self.engine.cancel_all(now, reason)
        intents = self.bridge.take_outbox()
        self.write(self.rows_of(out) + [("halt", {"ts": now, "reason": reason, "by": "signal" if reason.startswith("SIG") else "run"})])
        self.execute(intents)
        self.sweep(force=True)
        cancel_run_orders(self.gateway, self.plan.symbols, self.plan.prefix, self.env)


MARKET, UPDATE, FAILED, ENDED = "market", "update", "failed", "ended"


def _read_source(source: Any, inbox: Any) -> None:
    """The market reader thread: every batch into the live loop's queue, then how it ended."""
    try:
        for batch in source.batches():
            inbox.put((MARKET, batch))
    except BaseException as e:  # noqa: BLE001 - handed to the loop, which raises it in the main thread
        inbox.put((FAILED, e))
        return
    inbox.put((ENDED, None))


def cancel_run_orders(gateway: Any, symbols: list[str], prefix: str, env: Any) -> int:
    """Cancel, directly at the venue, every open order of this run on its symbols."""
    n = 0
    for sym in symbols:
        try:
            for st in gateway.open_orders(sym):
                if st.client_order_id.startswith(prefix):
                    try:
                        gateway.cancel(sym, st.client_order_id)
                        n += 1
                    except SqError as e:
                        env.warn(f"live: cancel {st.client_order_id}: {e.message}")
        except SqError as e:
            env.warn(f"live: listing open orders of {sym}: {e.message}")
    return n


def _replace(f: Any, **kw) -> Any:
    import dataclasses

    return dataclasses.replace(f, **kw)


def _clip(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ----------------------------------------------------------------------------------------------
# planning and resuming


@dataclass
class Plan:
    run_id: str
    strategy: str
    symbols: list[str]
    venue: str
    params: list[str]
    journal_dir: Path
    prefix: str
    duration_ns: int | None
    resume: Any = None  # J.Loaded
    contracts: dict = field(default_factory=dict)  # contract symbol → Contract: the continuous names traded (sq.runs.contracts)


def make_plan(opts: LiveOptions, config: Any, env: Any = None) -> Plan:
    """The run to make: a new one from the options (continuous futures names resolved to their
    contracts, said on `env`'s stderr), or the crashed run of `--resume` as its journal has it."""
    from sq.core import paths
    from sq.core.durations import parse_duration_ns
    from sq.core.environment import Environment
    from sq.core.strategy import loader
    from sq.runs import contracts
    from sq.venues import registry

    duration_ns = parse_duration_ns(opts.duration, option="--for") if opts.duration else None
    if opts.resume:
        loaded = J.load(opts.resume)
        s = loaded.start
        if s.get("mode") != "live":
            raise UsageError(f"--resume {opts.resume}: that is a {s.get('mode', 'paper')} run; continue it with sq {s.get('mode', 'paper')} --resume")
        if opts.symbols or opts.params or opts.journal or opts.expiry or opts.shadow or (opts.strategy and loader.load(opts.strategy).spec != s.get("strategy")):
            raise UsageError("--resume takes the strategy, symbols, --expiry, --param and --journal of the original run; give only --for (a shadow is not continued: its journal ends with the run it shadowed)")
        return Plan(str(s["run_id"]), str(s["strategy"]), list(s["symbols"]), str(s["venue"]), list(s.get("params", [])),
                    Path(opts.resume), str(s["client_prefix"]), duration_ns, loaded, contracts.from_json(s.get("contracts")))
    if not opts.strategy:
        raise UsageError(f"--strategy is required: one of {', '.join(loader.BUILTINS)}, a file (./mine.py) "
                         "or package.module:NAME (or --resume DIR)")
    strategy = loader.load(opts.strategy).spec
    texts = opts.symbols or list(config.symbols)
    if not texts:
        raise UsageError("sq live needs symbols: give them on the command line or list instruments in the config")
    syms = registry.parse_symbols(texts)
    venue = registry.one_venue(syms, "run one sq live per venue account")
    if not registry.trades_live(venue):
        raise UsageError(f"{syms[0].exchange}: symbols have no real venue; trade them with sq paper")
    resolved = contracts.resolve(env or Environment(), config, syms, expiry=opts.expiry)
    run_id = J.new_run_id()
    journal_dir = Path(opts.journal) if opts.journal else paths.data_dir() / "runs" / run_id
    return Plan(run_id, strategy, resolved.names, venue, contracts.params_for(opts.params, resolved.contracts), journal_dir,
                client_prefix(run_id), duration_ns, contracts=resolved.contracts)


def live_config(config: Any, venue: str, env: Any = None) -> Any:
    """The config with an order-rate limit below the venue's published one: half of it when
    none is set, and at most `MAX_RATE_SHARE` of it when the config asks for more (the venue
    client would otherwise hold the loop while its order window frees up)."""
    import dataclasses

    from sq.venues import registry

    venue_rate = registry.order_rate(venue)
    rate = config.risk.max_order_rate
    if not rate:
        rate = venue_rate * DEFAULT_RATE_SHARE
    elif rate > venue_rate * MAX_RATE_SHARE:
        if env is not None:
            env.warn(f"live: risk.max_order_rate {rate:g}/s is above {MAX_RATE_SHARE:.0%} of {venue}'s published "
                     f"{venue_rate:g} orders/s; using {venue_rate * MAX_RATE_SHARE:g}/s")
        rate = venue_rate * MAX_RATE_SHARE
    else:
        return config
    return dataclasses.replace(config, risk=dataclasses.replace(config.risk, max_order_rate=rate))


def resume_journal(run: LiveRun, loaded: Any) -> dict:
    """Take a crashed run over: adopt the venue's truth, cancel what the dead process left
    working, rebuild positions from the journal's fills and continue the id counter."""
    from sq.runs import reconcile
    plan = run.plan
    view = reconcile.view_of(loaded)
    diffs = reconcile.compare(view, reconcile.venue_truth(run.gateway, view), 1e-9)
    run.write(reconcile.fix_records(diffs, "sq live --resume"))
    view = reconcile.view_of(J.load(plan.journal_dir))
    canceled = 0
    for cid, o in view.orders.items():
        if not o.is_open:
            continue
        run.write([("order", reconcile.order_row(o, "cancel_sent", o.filled_qty if not math.isnan(o.filled_qty) else 0.0,
                                          "resume: canceling the dead process's order"))])
        try:
            run.gateway.cancel(o.symbol, cid)
            canceled += 1
        except SqError as e:
            if not (o.venue_order_id and o.venue_order_id != cid):
                run.env.warn(f"live --resume: cancel {cid}: {e.message}")
                continue
            try:  # an order the venue keeps without sq's id (a Kite GTT): by its venue id
                run.gateway.cancel(o.symbol, o.venue_order_id)
                canceled += 1
            except SqError as e2:
                run.env.warn(f"live --resume: cancel {cid} ({o.venue_order_id}): {e2.message}")
    cancel_run_orders(run.gateway, plan.symbols, plan.prefix, run.env)
    view = reconcile.view_of(J.load(plan.journal_dir))
    diffs = reconcile.compare(view, reconcile.venue_truth(run.gateway, view), 1e-9)
    run.write(reconcile.fix_records(diffs, "sq live --resume (after canceling)"))
    view = reconcile.view_of(J.load(plan.journal_dir))
    start = next((r.data["venue_before_first_order"] for r in loaded.records
                  if r.kind == "audit" and isinstance(r.data.get("venue_before_first_order"), dict)), {})
    for sym, q in view.start_positions.items():  # what the account held before the run's first order
        if q and sym in plan.symbols:
            px = float((start.get("avg_prices") or {}).get(sym) or 0.0)
            run.bridge.seed_fill(sym, 1 if q > 0 else -1, px, abs(float(q)))
    for f in sorted(view.fills.values(), key=lambda d: int(d.get("ts") or 0)):
        run.bridge.seed_fill(f["symbol"], int(f["side"]), float(f["price"]), float(f["qty"]), f.get("liquidity") == "maker")
        run.trades.add((str(f["symbol"]), str(f["trade_id"])))
    done = J.load(plan.journal_dir)
    run.engine.seed_metrics(J.table_of(done, "fills"), J.table_of(done, "pnl"))  # the whole run's metrics (docs/metrics.md)
    top = max([run.coid_of(c) or 0 for c in view.orders] + [0])
    run.bridge.set_next_coid(top + 1)
    for cid, o in view.orders.items():
        c = run.coid_of(cid)
        if c is not None and o.venue_order_id:
            run.voids[c] = o.venue_order_id
    return {"adopted": len(diffs), "canceled": canceled, "fills": len(view.fills), "next_order": top + 1}


def reconcile_previous(run: LiveRun, hours: float, cancel: bool) -> list[dict]:
    """Before a new run's first order: every earlier live run on the same venue that traded any
    of these symbols (journals under the data dir changed within `hours`) is reconciled with the
    venue. With `cancel`, the orders it left open on these symbols are canceled first — its
    process is gone, since this run holds the symbols' locks. The venue's truth (cancels
    included) is adopted into the earlier run's own journal with an audit record, so a later
    `sq reconcile` finds it clean. Returns one entry per earlier run, for the start audit."""
    from sq.runs import reconcile
    if hours <= 0:
        return []
    mine = set(run.plan.symbols)
    here = run.plan.journal_dir.resolve()
    out: list[dict] = []
    open_now: dict[str, list] | None = None
    for path in reconcile.find_runs(None, since_s=hours * 3600.0):
        if path.resolve() == here:
            continue
        try:
            loaded = J.load(path)
        except SqError as e:
            run.env.warn(f"live: earlier run {path}: {e.message}; not reconciled")
            continue
        s = loaded.start
        shared = mine & set(s.get("symbols") or [])
        if s.get("mode") != "live" or s.get("venue") != run.plan.venue or not shared:
            continue
        view = reconcile.view_of(loaded)
        entry = {"run_id": view.run_id, "journal": str(path), "sealed": view.sealed, "canceled": 0, "differences": 0}
        try:
            if cancel and view.prefix:
                if open_now is None:
                    open_now = {sym: run.gateway.open_orders(sym) for sym in sorted(mine)}
                for sym in sorted(shared):
                    for st in open_now[sym]:
                        if st.client_order_id.startswith(view.prefix):
                            run.gateway.cancel(sym, st.client_order_id)
                            entry["canceled"] += 1
                listed = {st.client_order_id for sym in shared for st in open_now[sym]}
                for cid, o in view.orders.items():  # kept at the venue without sq's id (a Kite GTT): by its venue id
                    if o.is_open and o.symbol in shared and cid not in listed and o.venue_order_id and o.venue_order_id != cid \
                            and not o.venue_order_id.isdigit():
                        st = run.gateway.lookup(o.symbol, o.venue_order_id, tries=1)
                        if st is not None and st.status in ("accepted", "partially_filled"):
                            run.gateway.cancel(o.symbol, o.venue_order_id)
                            entry["canceled"] += 1
            diffs = reconcile.compare(view, reconcile.venue_truth(run.gateway, view), 1e-9, positions=False)  # this run owns the position now
            entry["differences"] = len(diffs)
            reconcile.append_fix(path, reconcile.fix_records(diffs, f"sq live (start of run {run.plan.run_id})"))
        except SqError as e:
            entry["error"] = e.message
            run.env.warn(f"live: earlier run {view.run_id} ({path}): {e.message}")
        out.append(entry)
    return out


def carry_daily_loss(run: LiveRun, config: Any, now_ns: int | None = None) -> dict | None:
    """With `risk.max_daily_loss`, what the other live runs on this venue made today (UTC day; their
    last PnL marks, account-wide) starts this run's daily-loss window, so stopping and restarting
    (or crashing and resuming) never resets the allowance. Returns what was carried, for the audit."""
    from sq.runs import reconcile
    if not config.risk.max_daily_loss:
        return None
    now_ns = time.time_ns() if now_ns is None else now_ns
    day = now_ns // 86_400_000_000_000
    total, runs = 0.0, []
    for path, start in reconcile.run_starts():
        if (start.get("mode") != "live" or start.get("venue") != run.plan.venue or start.get("run_id") == run.plan.run_id
                or int(start.get("ts") or 0) // 86_400_000_000_000 != day):
            continue
        try:
            view = reconcile.view_of(J.load(path))
        except SqError as e:
            run.env.warn(f"live: earlier run {start.get('run_id')}: {e.message}; its PnL is not counted in today's loss")
            continue
        pnl = sum(float(p.get("total") or 0.0) for p in view.last_pnl.values())
        total += pnl
        runs.append({"run_id": view.run_id, "pnl": pnl})
    run.engine.carry_daily_loss(now_ns, total)
    return {"pnl_today_of_other_runs": total, "runs": runs, "max_daily_loss": config.risk.max_daily_loss}


def start_state(run: LiveRun) -> dict:
    """A new run's look at the venue before its first order: what is open on its symbols, and
    the positions the account holds (seeded into the engine so risk limits count them)."""
    from sq.venues import registry

    out = {"open_orders": {}, "positions": {}}
    for sym in run.plan.symbols:
        out["open_orders"][sym] = len(run.gateway.open_orders(sym))
    if any(registry.holds_positions(s) for s in run.plan.symbols):
        try:
            for p in run.gateway.positions():
                if p.symbol in run.plan.symbols and p.qty:
                    out["positions"][p.symbol] = p.qty
                    out.setdefault("avg_prices", {})[p.symbol] = float(p.avg_price or 0.0)
                    run.bridge.seed_fill(p.symbol, 1 if p.qty > 0 else -1, float(p.avg_price or 0.0), abs(float(p.qty)))
        except SqError as e:
            run.env.warn(f"live: positions: {e.message}")
    return out


# ----------------------------------------------------------------------------------------------
# the command body


def run_live(env: Any, opts: LiveOptions, *, view_factory: Callable[..., Any] | None = None) -> dict:
    """Guards, lock, gateway, reconcile, run, seal; return the run's summary (`make_summary`)."""
    from sq.core import runtime
    from sq.core.circuit import CircuitBreaker
    from sq.core.config import load_config
    from sq.core.engine import make_engine
    from sq.core.engine import params as engine_params
    from sq.core.strategy import loader
    from sq.runs import contracts, lifecycle, marketrules
    from sq.venues import registry

    config = load_config(env)
    require_live(config, opts.confirm)
    check_secret_files(config)
    safety = safety_of(opts, config)
    plan = make_plan(opts, config, env)
    config = live_config(contracts.config_for(config, plan.contracts), plan.venue, env)
    strategy = loader.load(plan.strategy)
    params = engine_params.resolve(strategy, plan.symbols, config, plan.params)
    loader.compiled(strategy)  # a handler that does not compile: exit 2 before anything is opened
    engine_strategy = strategy
    if strategy.kind == "bar":  # a bar strategy trades through its executor's handlers: compiled now too
        from sq.core.strategy.executor import executor

        engine_strategy = executor(strategy)
        loader.compiled(engine_strategy)
    with ExitStack() as stack:
        for sym in sorted(plan.symbols):
            stack.enter_context(runtime.try_lock("live-" + sym.replace(":", "_").replace(" ", "_"), what=f"sq live on {sym}"))
        registry.require_credentials(plan.venue, config)
        from sq.runs import warmup

        # the event engine's kernels compiled (or loaded) before the market source opens: announced
        warmup.warm_up(env, config, engine_strategy, calendar=warmup.calendars_needed(plan.symbols, config), venues=(plan.venue,),
                       live=True)
        source = registry.open_market_source(registry.parse_symbols(plan.symbols),
                                             registry.SourceOptions(config=config, env=env, clock="real", contracts=plan.contracts))
        stack.callback(source.close)
        gateway = registry.open_account(plan.venue, config, env, symbols=plan.symbols, order_timeout_s=safety.order_timeout_s, push=True)
        stack.callback(gateway.close)
        engine = make_engine(strategy, dict(source.instruments), params, config=config, sim_venue=False,
                             session_of=registry.trading_session)
        marketrules.apply(engine, source.instruments, config, live=True)
        if plan.resume is None:
            journal = J.Journal.create(plan.journal_dir, _start_record(plan, config), preallocate=JOURNAL_ROOM)
        else:
            journal, _ = J.Journal.reopen(plan.journal_dir, {"pid": os.getpid(), "ts": time.time_ns(), "argv": mask_argv(sys.argv[1:])},
                                          preallocate=JOURNAL_ROOM)
        breaker = CircuitBreaker(failures=safety.breaker_failures, cooldown_s=safety.breaker_cooldown_s)
        run = LiveRun(env, plan, engine, gateway, journal, breaker, sweep_interval_s=safety.sweep_interval_s,
                      sweep_fallback_s=safety.sweep_fallback_s, feed_grace_s=safety.feed_grace_s)
        if opts.shadow:
            from sq.runs.shadow import ShadowRun

            run.shadow = ShadowRun(env, opts.shadow, plan, dict(source.instruments), config)
        for sym in plan.symbols:
            run.bridge.ensure_symbol(sym)
        from sq.runs.livecosts import LiveCosts

        run.costs = LiveCosts(run, safety.sweep_interval_s)
        from sq.runs.liveprotect import Protection

        run.protection = Protection.attach(run, config)
        if run.protection is not None and plan.resume is not None:
            run.protection.continue_ids(r.data.get("client_order_id") for r in plan.resume.records if r.kind == "order")
        from sq.runs.monitor import open_monitor

        run.monitor = monitor = open_monitor(env, config, opts.monitor, mode="live", run=plan.run_id, strategy=strategy.name, venue=plan.venue)
        monitor.attach(run)
        monitor.check_credentials(env, config, plan.venue)
        stack.enter_context(lifecycle.StopOnSignals(run.stop))
        stack.enter_context(lifecycle.registered(strategy.name, plan.venue, plan.symbols, mode="live", journal=str(plan.journal_dir)))
        try:
            try:
                with lifecycle.resumable_on_error(journal, lambda error: _halt_on_error(run, error)):
                    summary = _trade(run, config, safety, source, view_factory)
            except BaseException as e:
                monitor.close(error=None if isinstance(e, (KeyboardInterrupt, SystemExit)) else e, run=run)
                raise
            monitor.close(summary, run=run)
        except IOFailure as e:  # a full disk: the orders were canceled at the venue before the exit (74)
            raise IOFailure(f"{e.message}; its {run.canceled_on_error} open order(s) were canceled at the venue") from e
        except (SqError, KeyboardInterrupt):
            raise
        except BaseException as e:
            stopped = (f"its {run.canceled_on_error} open order(s) were canceled; continue with sq live --resume {plan.journal_dir}")
            broken = registry.missing_package(e) if isinstance(e, ImportError) else None  # a broken install (exit 78)
            if broken is not None:
                raise type(broken)(f"{broken.message}; sq live stopped: {stopped}") from e
            raise SqError(f"sq live stopped on an unexpected error ({type(e).__name__}); {stopped}") from e
    return summary


def _trade(run: LiveRun, config: Any, safety: Safety, source: Any, view_factory: Callable[..., Any] | None) -> dict:
    """Reconcile before the first order (or take a crashed run over), trade until stopped,
    close out, reconcile a last time and seal the journal; the run's summary."""
    plan, env = run.plan, run.env
    if plan.resume is not None:
        info = resume_journal(run, J.load(plan.journal_dir))
        carried = carry_daily_loss(run, config)
        if carried is not None:
            run.write([("audit", {"ts": time.time_ns(), "by": "sq live --resume", "daily_loss": carried})])
        env.info(f"live --resume: adopted {info['adopted']} difference(s), canceled {info['canceled']} order(s) "
                 f"left working, {info['fills']} fill(s) replayed; orders continue at {plan.prefix}{info['next_order']}")
    else:
        info = start_state(run)
        info["earlier_runs"] = reconcile_previous(run, safety.previous_runs_hours, safety.cancel_previous_orders)
        info["daily_loss"] = carry_daily_loss(run, config)
        for e in info["earlier_runs"]:
            if e["differences"] or e["canceled"]:
                env.info(f"live: earlier run {e['run_id']}: {e['differences']} difference(s) adopted into its journal, "
                         f"{e['canceled']} order(s) it left open canceled")
                run.monitor.alert("reconcile", f"sq live: earlier run {e['run_id']}: {e['differences']} difference(s) with the venue "
                                  f"adopted into its journal, {e['canceled']} order(s) it left open canceled", subject=str(e["run_id"]))
        run.write([("audit", {"ts": time.time_ns(), "by": "sq live (start)", "venue_before_first_order": info})])
    if run.costs is not None:
        run.costs.start()  # the account's commission rates; the perpetuals' next funding
    from sq.core import heap

    run.view = view_factory(plan, source, run) if view_factory is not None else None
    with heap.frozen():  # no collection mid-run walks the start-up's objects (sq.core.heap)
        if run.view is not None:
            with run.view:
                run.run(source)
        else:
            run.run(source)
    reason = run.stop_reason or "end"
    run.close_out(reason)
    if run.costs is not None:
        run.costs.confirm()  # the venue's bookings of the last funding times
    final = _final_reconcile(run)
    run.audit_charges(force=True)
    if final:
        run.monitor.alert("reconcile", f"sq live {plan.strategy}: the final reconcile found {final} difference(s) between the journal "
                          "and the venue (adopted into the journal)", subject=plan.run_id)
    summary = make_summary(run, final)
    if run.shadow is not None:
        twin = run.shadow.close(reason)
        summary["shadow"] = None if twin is None else {
            "strategy": twin["strategy"], "journal": str(run.shadow.journal_dir), "orders": twin["orders"], "fills": twin["fills"],
            "position": twin["position"], "pnl": twin["pnl"], "rejections": twin["rejections"]}
    run.journal.seal({"ts": time.time_ns(), "reason": reason, "summary": summary})
    return summary


def _halt_on_error(run: LiveRun, error: BaseException) -> bool:
    """An error mid-run: cancel every order of the run at the venue and journal the halt. A
    failed strategy (it raised, or sent a bad value) is closed out and its journal sealed (True):
    resuming it would fail again. Anything else leaves the journal unsealed (False), so
    `--resume` continues it."""
    from sq.core.exits import StrategyError

    if isinstance(error, StrategyError):
        run.close_out("strategy_error")
        run.journal.seal({"ts": time.time_ns(), "reason": "strategy_error", "error": error.message})
        return True
    if run.protection is not None:
        try:
            run.protection.close("protect: the run stops on an error")
        except Exception:  # noqa: BLE001 - cancel_run_orders below still cancels what it finds open
            pass
    run.canceled_on_error = cancel_run_orders(run.gateway, run.plan.symbols, run.plan.prefix, run.env)
    if run.shadow is not None:
        try:
            run.shadow.close("error")
        except Exception:  # noqa: BLE001 - the twin's journal stays as it is (unsealed)
            pass
    try:
        run.write([("halt", {"ts": time.time_ns(), "reason": f"error: {type(error).__name__}", "by": "error",
                             "canceled_at_venue": run.canceled_on_error})])
    except Exception:  # noqa: BLE001 - the journal itself may be what failed
        pass
    return False


def _final_reconcile(run: LiveRun) -> int:
    from sq.runs import reconcile

    view = reconcile.view_of(J.load(run.plan.journal_dir))
    diffs = reconcile.compare(view, reconcile.venue_truth(run.gateway, view), 1e-9)
    run.write(reconcile.fix_records(diffs, "sq live (final reconcile)"))
    return len(diffs)


def _start_record(plan: Plan, config: Any) -> dict:
    from sq import __version__
    from sq.runs import contracts

    return {"run_id": plan.run_id, "mode": "live", "venue": plan.venue, "strategy": plan.strategy, "symbols": plan.symbols,
            "contracts": contracts.to_json(plan.contracts), "params": plan.params, "client_prefix": plan.prefix,
            "config": J.config_summary(config), "pid": os.getpid(), "argv": mask_argv(sys.argv[1:]), "ts": time.time_ns(), "version": __version__}


def percentile(values: list[int], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return float(v[min(len(v) - 1, int(round(q * (len(v) - 1))))])


def _spread_us(values_ns: list[int]) -> dict:
    """p50, p99 (µs; None without values) and the count of a list of nanosecond latencies."""
    p50, p99 = percentile(values_ns, 0.5), percentile(values_ns, 0.99)
    return {"p50": None if p50 is None else p50 / 1e3, "p99": None if p99 is None else p99 / 1e3, "n": len(values_ns)}


def make_summary(run: LiveRun, adopted_at_end: int) -> dict:
    """The `--json` document: the engine's summary plus the venue's side. `rejections` counts the
    risk layer's reasons and, under `venue`, orders the venue refused or that could not be sent;
    `params` each symbol's parameters as run; `started`/`ended` ISO-8601 UTC; numbers at the
    instruments' precision (`sq.core.summary.present`)."""
    s = dict(run.engine.summary())
    rejections = dict(s.get("rejections") or {})
    if run.reasons:
        rejections["venue"] = rejections.get("venue", 0) + len(run.reasons)
    s["rejections"] = rejections
    if run.costs is not None and run.costs.perpetuals:
        s["venue_funding"] = run.costs.venue_paid
        s["funding_schedule"] = run.costs.schedule()  # each perpetual's interval, next funding time and expected payment
    if run.protection is not None:
        s["protective_orders"] = run.protection.summary()  # funding as the venue booked it (the engine's `pnl.funding` follows it)
    s.update(mode="live", venue=run.plan.venue, run_id=run.plan.run_id, journal=str(run.plan.journal_dir),
             symbols=run.plan.symbols, stopped_by=run.stop_reason or "end", orders_sent=run.sent, venue_failures=run.failures,
             venue_fills=run.fills, order_updates_pushed=run.updates, sweeps=run.sweeps, feed_pauses=run.feed_pauses,
             breaker=run.breaker.state, breaker_trips=run.breaker.trips, adopted_at_end=adopted_at_end,
             charges_checked=run.charges_audited, charges_differing=run.charges_flagged,
             tick_to_order_us=_spread_us(run.latencies_ns),
             # the same less the write + fdatasync of the journal step that made the order durable: the step's own work
             tick_to_order_work_us=_spread_us(run.work_ns),
             receipt_to_order_us=_spread_us(run.wire_ns),
             params=RS.params_used(run.engine.params, list(run.plan.symbols)),
             started=RS.now_iso(run.started_ns), ended=RS.now_iso(time.time_ns()))
    return RS.present(s, run.engine.instruments)
