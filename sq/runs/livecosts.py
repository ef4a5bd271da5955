"""A live run's trading costs from the venue itself (docs/funding.md).

At the start the account's own commission rates per symbol (the gateway's `commission_bps`: a
Binance account's commission endpoint, BNB discount included) replace the configured fees in
the engine, journaled in an `audit` record. For perpetuals, off the tick path on the sweep
cadence, the venue's next funding time and rate (`funding_state`) are handed to the engine,
which books the modelled payment when its clock passes that time (a `funding` record). After
each funding time the venue's own booking (`funding_income`) is read and journaled as a
`funding` record with `"source": "venue"` (one the model did not expect too); the engine's funding is corrected to the venue's
figure, and a difference from the model beyond `TOLERANCE` is warned about.

Each perpetual funds on its own schedule: every `funding_interval_h` hours (Binance's
fundingInfo, in the instrument's metadata; 8 h unless the venue adjusted it), journaled at the
start (`audit` record `by: "sq live (funding)"`) and in the summary's `funding` (interval, next
funding time, its rate and the payment expected on the position then). When the venue cannot be
asked as a funding time passes, the next one is scheduled from the interval with the last known
rate (the venue's own booking corrects it afterwards).
"""

from __future__ import annotations

import time
from typing import Any

from sq.core.exits import SqError

TOLERANCE = 0.01  # relative difference between the venue's funding and the model that is warned about
GIVE_UP_NS = 600_000_000_000  # a funding payment the venue has not booked 10 minutes later is reported missing
MATCH_NS = 60_000_000_000  # a venue booking within a minute of the funding time is that time's
FLAT_ASKS = 3  # a funding time the model paid nothing at (flat): asked about this many times, then let go


class LiveCosts:
    """Commission rates and funding of one live run (`LiveRun.costs`)."""

    def __init__(self, run: Any, poll_s: float) -> None:
        from sq.venues.registry import funding_interval_h

        self.run = run
        self.poll_s = float(poll_s)
        self.last_poll = 0.0
        self.perpetuals = [s for s in run.plan.symbols if funding_interval_h(s) > 0]
        self.scheduled: dict[str, set[int]] = {s: set() for s in self.perpetuals}
        self.waiting: dict[tuple[str, int], float] = {}  # (symbol, funding time) → modelled amount, not yet booked by the venue
        self.booked: set[str] = set()  # venue transaction ids journaled
        self.done: set[int] = set()  # funding times settled (booked, or nothing to book)
        self.asked: dict[tuple[str, int], int] = {}  # how often the venue was asked about a funding time
        self.venue_paid = 0.0
        self.warned: set[str] = set()
        from sq.runs.funding import interval_h

        self.intervals = {s: interval_h(s, run.engine.instruments) for s in self.perpetuals}
        self.last_state: dict[str, tuple[int, float, float]] = {}  # the venue's last answer: (next time ns, rate, mark)

    def _warn(self, key: str, text: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.run.env.warn(text)

    def start(self) -> dict:
        """Take the account's commission rates into the engine; what was taken (journaled)."""
        run = self.run
        fees: dict[str, dict] = {}
        for sym in run.plan.symbols:
            try:
                got = run.gateway.commission_bps(sym)
            except SqError as e:
                self._warn("fees", f"live: {sym}: the account's commission rates are unavailable ({e.message}); "
                                   "the configured fees apply")
                continue
            if got is None:
                continue
            maker, taker, said = got
            run.engine.set_fees(sym, maker, taker)
            fees[sym] = {"maker_bps": maker, "taker_bps": taker, **{k: v for k, v in said.items() if v is not None}}
        if fees:
            run.write([("audit", {"ts": time.time_ns(), "by": "sq live (fees)", "fees": fees})])
        if self.intervals:
            run.write([("audit", {"ts": time.time_ns(), "by": "sq live (funding)", "funding_interval_h": dict(self.intervals)})])
        self.poll(force=True)
        return fees

    def poll(self, now: float | None = None, *, force: bool = False) -> None:
        """On the sweep cadence: the next funding times and rates; the venue's bookings of past ones."""
        if not self.perpetuals:
            return
        now = time.monotonic() if now is None else now
        if not force and now - self.last_poll < self.poll_s:
            return
        self.last_poll = now
        run = self.run
        for sym in self.perpetuals:
            try:
                st = run.gateway.funding_state(sym)
            except SqError as e:
                self._warn("funding-state", f"live: {sym}: the funding rate is unavailable ({e.message}); retrying")
                st = self._extrapolate(sym)
            if st is None:
                continue
            self.last_state[sym] = st
            when, rate, mark = st
            if when not in self.scheduled[sym] and when > run.engine.now_ns:
                self.scheduled[sym].add(when)
                run.engine.set_funding(sym, when, rate, mark)
        self.confirm()

    def _extrapolate(self, sym: str) -> tuple[int, float, float] | None:
        """The venue cannot be asked and its last announced funding time has passed: the next one
        on the symbol's schedule (last + interval), at the last known rate and mark."""
        last = self.last_state.get(sym)
        every = int(self.intervals.get(sym, 0.0) * 3_600_000_000_000)
        if last is None or every <= 0 or last[0] > self.run.engine.now_ns:
            return None
        return last[0] + every, last[1], last[2]

    def schedule(self) -> dict:
        """Each perpetual's funding schedule for the summary: its interval (hours), the next funding
        time (ns), its rate and the payment expected then on the engine's position (> 0: paid)."""
        from sq.core.engine.funding import payment

        out = {}
        for sym in self.perpetuals:
            doc: dict = {"interval_h": self.intervals.get(sym)}
            st = self.last_state.get(sym)
            if st is not None:
                pos = self._position(sym)
                doc.update(next_funding_ns=st[0], rate=st[1], expected_payment=payment(pos, st[2], st[1]))
            out[sym] = doc
        return out

    def _position(self, sym: str) -> float:
        from sq.core.engine import layout as L

        e = self.run.engine
        s = e.registry.find(sym)
        return float(e.sf[s, L.SF_POS]) if s is not None and s < e.n else 0.0

    def note(self, records: list[dict]) -> None:
        """The engine booked these modelled payments: the venue's own bookings are matched to them."""
        for r in records:
            if r.get("source") is None:
                self.waiting[(r["symbol"], int(r["ts"]))] = float(r["amount"])

    def confirm(self, *, final: bool = False) -> None:
        """Journal the venue's funding bookings of the funding times passed (also one the model
        did not expect: the venue's word is the account's truth); correct the engine to them."""
        run = self.run
        wall = time.time_ns()
        recs = []
        for sym in self.perpetuals:
            times = sorted(t for t in self.scheduled[sym] if t <= wall and t not in self.done)
            if not times:
                continue
            try:
                rows = run.gateway.funding_income(sym, times[0] - MATCH_NS, wall)
            except SqError as e:
                self._warn("funding-income", f"live: {sym}: the venue's funding bookings are unavailable ({e.message}); retrying")
                continue
            for row in sorted(rows, key=lambda r: r["ts"]):
                if row["tran_id"] in self.booked:
                    continue
                t = min(times, key=lambda x: abs(x - row["ts"])) if times else None
                if t is None or abs(t - row["ts"]) > MATCH_NS:
                    continue
                times.remove(t)
                self.done.add(t)
                model = self.waiting.pop((sym, t), 0.0)
                self.booked.add(row["tran_id"])
                paid = float(row["paid"])
                self.venue_paid += paid
                run.engine.adjust_funding(sym, paid - model)
                recs.append(("funding", {"ts": row["ts"], "symbol": sym, "amount": paid, "asset": row["asset"], "tran_id": row["tran_id"],
                                         "source": "venue", "model": model, "funding_time": t}))
                if abs(paid - model) > 1e-12 + TOLERANCE * max(abs(paid), abs(model)):
                    run.env.warn(f"live: {sym}: the venue booked funding {paid:.8g} at {t}, the model {model:.8g}")
            for t in times:  # not booked (yet): nothing held then, or the venue is late
                self.asked[(sym, t)] = self.asked.get((sym, t), 0) + 1
                expected = (sym, t) in self.waiting
                if final or wall - t > GIVE_UP_NS or (not expected and self.asked[(sym, t)] >= FLAT_ASKS):
                    self.done.add(t)
                    model = self.waiting.pop((sym, t), 0.0)
                    if expected:
                        self._warn(f"missing-{sym}-{t}", f"live: {sym}: the venue has booked no funding for {t} yet (the model: "
                                                         f"{model:.8g}); see sq reconcile")
        if recs:
            run.write(recs)
