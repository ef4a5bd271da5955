"""Column layouts and codes shared by the engine kernels (struct-of-arrays state).

All engine state lives in a handful of preallocated NumPy arrays so numba kernels can carry it
across calls (a batch boundary is invisible to the simulation) and the runner can snapshot it
for a resume. This module only names the columns; each kernel module owns the logic.

* order pool   `oi` int64[P, NOI], `of` float64[P, NOF]: one row per order; rows are recycled
  when an order is dead and no venue message about it is in flight.
* per symbol   `si` int64[S, NSI], `sf` float64[S, NSF]: order slots, risk limits, the
  position keeper, the resting-order list of the simulated venue, risk hooks.
* strategy     `pf` float64[S, P]: the strategy's declared parameters per symbol (column k is
  the k-th declared parameter); `us` float64[S, U]: the strategy's own per-symbol state.
* global       `g` int64[NG], `gf` float64[NGF]: ids, counters, the pending market message,
  the halt flag, token bucket, equity curve bookkeeping; `rej` int64[NR] rejections by reason.
* schedule     `hq` int64[H, NH], `hf` float64[H]: a binary heap of timed items (requests
  arriving at the venue, responses arriving back) ordered by (time, insertion sequence).
* outbox       `ob` int64[B, NOB], `obf` float64[B]: requests that left the engine for a gateway.
* journal rows `oo_i/oo_f` (orders), `fo_i/fo_f` (fills), `po_i/po_f` (pnl) output buffers.
"""

from __future__ import annotations

# strategy handlers (`G_HANDLER`: which one is running, for error reports)
HANDLER_NONE, HANDLER_BOOK, HANDLER_TRADE, HANDLER_FILL, HANDLER_TIMER = 0, 1, 2, 3, 4
HANDLER_NAMES = ("", "on_book", "on_trade", "on_fill", "on_timer")
HAS_BOOK, HAS_TRADE, HAS_FILL, HAS_TIMER = 1, 2, 4, 8
# a strategy's bad action (`G_BAD`): the first one stops the run
BAD_NONE, BAD_QTY, BAD_PRICE, BAD_SIDE, BAD_RAISED, BAD_TRIGGER = 0, 1, 2, 3, 4, 5
BAD_NAMES = ("", "a size that is NaN, infinite or negative", "a price that is NaN or not a positive number of ticks",
             "a side that is neither +1 (buy) nor -1 (sell)", "an exception raised",
             "a trigger source other than TRIGGER_LAST (0) or TRIGGER_MARK (1)")

# order-manager states and the venue-side view of an order
FREE, PENDING_NEW, LIVE, PENDING_CANCEL, DEAD = 0, 1, 2, 3, 4
STATE_NAMES = {FREE: "free", PENDING_NEW: "pending_new", LIVE: "live", PENDING_CANCEL: "pending_cancel", DEAD: "dead"}
X_NONE, X_RESTING, X_DONE = 0, 1, 2
X_ARMED, X_TRIGGERED = 3, 4  # a stop / take-profit held untriggered at the venue; triggered, not yet executed

TIF_GTC, TIF_IOC = 0, 1

# order types (`OI_OTYPE`): a plain limit order, or a protective order held untriggered at the venue
# until its trigger price is crossed, then a market (IOC through the book) or a limit order
OT_LIMIT, OT_STOP_MARKET, OT_STOP_LIMIT, OT_TP_MARKET, OT_TP_LIMIT = 0, 1, 2, 3, 4
# what a protective order's trigger watches (`OI_TSRC`): the last trade price, or the mark price
# (in the simulated venue: the mid of the book at the end of each venue message)
TRIGGER_LAST, TRIGGER_MARK = 0, 1
P_STOP, P_TAKE_PROFIT = 0, 1  # a symbol's protective slots (`SI_PSLOT + P_*`)

# order pool int columns
OI_COID = 0  # client order id (run-wide counter from 1)
OI_SYM = 1
OI_SIDE = 2  # +1 buy, -1 sell
OI_PX = 3  # limit price in ticks
OI_STATE = 4  # order-manager state
OI_XSTATE = 5  # simulated-venue state
OI_INFLIGHT = 6  # requests/responses about this order still scheduled
OI_TIF = 7
OI_VOID = 8  # venue order id (0 until accepted)
OI_LAT = 9  # latency of this order's request and responses (ns)
OI_RIDX = 10  # index in its symbol's resting list (-1 when not resting; armed: its index from the list's end)
OI_OTYPE = 11  # OT_*: limit, or a stop / take-profit (market or limit once triggered)
OI_TRIG = 12  # a protective order's trigger price in ticks (OI_PX: its limit, or the trigger for a market one)
OI_TSRC = 13  # TRIGGER_LAST | TRIGGER_MARK
OI_RO = 14  # 1: reduce-only (cut to the position when triggered; cancelled when the position is flat)
NOI = 15

# order pool float columns
OF_QTY = 0
OF_LEAVES = 1  # what the order manager believes is still working
OF_FILLED = 2
OF_XLEAVES = 3  # what is still working at the venue
OF_FRONT = 4  # estimated quantity ahead of us in the queue at our price
OF_CUMTRADE = 5  # traded at our price since the last level update there (not a cancel)
OF_BROK = 6  # brokerage this order has paid (a per-order cap or flat fee is paid once; sq.core.engine.costs)
NOF = 7

# per-symbol int columns
SI_SLOT = 0  # 0 buy slot, 1 sell slot: pool row of the side's order, -1 none
SI_CONF = 2  # 1 when the symbol has parameters (unconfigured symbols are rejected)
SI_NREST = 3  # orders resting at the simulated venue
SI_LASTREJ = 4  # 4 buy, 5 sell: last rejection reason journaled for that side (dedupe)
SI_PNL_TS = 6  # data time of the last pnl row
SI_HAS_PNL = 7
SI_HOURS_OPEN = 8  # trading-hours hook: ns since UTC midnight (HOURS_NONE, HOURS_HOLIDAY below)
SI_HOURS_CLOSE = 9
SI_CIRC_LO = 10  # circuit-limit hook: lowest / highest allowed price in ticks
SI_CIRC_HI = 11
SI_HAS_CIRC = 12
SI_PNL_DIRTY = 13  # position/PnL changed since the last pnl row
SI_SQ = 14  # 1 from the broker's intraday square-off until the symbol's local day ends (see `runner`'s calendars)
SI_PSLOT = 15  # 15 stop slot, 16 take-profit slot: pool row of the symbol's protective order, -1 none
SI_NARMED = 17  # protective orders held untriggered at the simulated venue (kept at the end of `rest`)
SI_FILL_TS = 18  # local time of the symbol's last fill (pnl rows keep marking it for MARKOUT_WINDOW_NS after)
SI_RB_LO = 19  # 19..22: lowest / highest price of the symbol's resting buy orders, then of its resting sells
SI_RB_HI = 20  #   (ticks; lo > hi when none): a level update outside them touches no resting order
SI_RA_LO = 21
SI_RA_HI = 22
NSI = 23
HOURS_NONE = -1  # SI_HOURS_OPEN: no trading-hours window (every time of day is open)
HOURS_HOLIDAY = -2  # SI_HOURS_OPEN: an exchange holiday (every order is rejected `holiday`)

# per-symbol float columns: risk limits (the strategy's own parameters live in `pf`)
SF_MAXORD = 0
SF_MAXPOS = 1
SF_MAXLOSS = 2  # a positive amount: the loss limit is total < -max_loss
SF_LOT = 3
SF_TICK = 4
SF_INV = 5
# the position keeper plus fees
SF_POS = 6
SF_REAL = 7  # realized PnL before fees
SF_UNREAL = 8
SF_VOL = 9
SF_OV_BUY = 10  # open notional of a long position
SF_OV_SELL = 11  # open notional of a short position
SF_FEES = 12
SF_TURNOVER = 13
SF_MARK = 14  # last mark price (mid), NaN before the first
SF_MAKER_BPS = 15  # the symbol's maker fee (bps of notional): the global rate unless the venue's account says otherwise
SF_TAKER_BPS = 16
SF_FUNDING = 17  # funding paid on a perpetual's position (negative: received); net PnL subtracts it
# the symbol's cost model (sq.core.costs.CostRates, in field order after the on-flag; written by the
# engine's calendars on each trade date) and what each cost component has cost so far (sq.core.engine.costs)
SF_C_ON = 18  # 1: the symbol's own cost model; 0: its maker/taker bps above
SF_C_MAKER_BPS, SF_C_TAKER_BPS, SF_C_BROK_PCT, SF_C_BROK_CAP, SF_C_BROK_FLAT = 19, 20, 21, 22, 23
SF_C_TAX_BUY, SF_C_TAX_SELL, SF_C_TXN, SF_C_REG, SF_C_STAMP_BUY, SF_C_GST = 24, 25, 26, 27, 28, 29
SF_K_BROK, SF_K_TAX, SF_K_TXN, SF_K_REG, SF_K_STAMP, SF_K_GST = 30, 31, 32, 33, 34, 35  # sq.core.costs.COMPONENTS order
NSF = 36

# global ints
G_HANDLER = 0  # the strategy handler running (HANDLER_*), for error reports
G_NEXT_COID = 1
G_NEXT_VOID = 2
G_NEXT_TRADE = 3
G_HALTED = 4
G_HALT_REASON = 5
G_PEND = 6  # a market message is open
G_PSYM = 7
G_PSEQ = 8
G_PTS = 9
G_PLOC = 10
G_PBOOK = 11  # the open message changed the book
G_HN = 12  # heap size
G_HSEQ = 13
G_NO = 14  # rows in the orders buffer
G_NF = 15
G_NP = 16
G_RNG = 17  # splitmix64 state of the latency distribution
G_EVENTS = 18
G_ORDERS = 19  # new orders sent
G_FILLS = 20
G_CANCELS = 21
G_MESSAGES = 22
G_DAY = 23  # UTC day of the daily-loss window (-1: none yet)
G_NEXT_MIN = 24  # data time of the next equity sample
G_NEQ = 25  # equity samples taken
G_LASTLOC = 26  # local time of the last event (monotone)
G_NOB = 27  # outbox rows
G_QMODEL = 28
G_LATDIST = 29
G_LAT = 30  # order latency (ns, base)
G_LATJIT = 31  # jitter scale (ns)
G_PNL_INT = 32  # data-time interval between pnl rows of a symbol
G_TOKEN_TS = 33
G_MAX_OPEN = 34  # -1: no limit
G_OPEN = 35  # working orders (pending new, live, pending cancel)
G_SIMVENUE = 36  # 1: the outbox is consumed by the simulated venue
G_NOW = 37  # local time of the last action
G_BADRESP = 38  # responses for unknown / recycled client order ids
G_POOLFULL = 39
G_LASTTS = 40
G_HALT_ON_LOSS = 41  # 1: a max-loss breach halts the strategy (RiskConfig.halt_on_max_loss)
G_POOLPTR = 42  # where the next free pool row search starts
G_BAD = 43  # a strategy action's bad value (BAD_*; the run stops)
G_BAD_SYM = 44  # … for this symbol
G_BAD_HANDLER = 45  # … in this handler
G_TIMER_NS = 46  # the strategy's timer interval (data time; 0: no timer)
G_NEXT_TIMER = 47  # data time the timer fires next (0: not started)
G_BAD_COUNT = 48  # bad actions rejected
G_HNOW = 49  # local time of the event the running handler handles (ctx.now())
G_HSYM = 50  # the symbol the running handler handles (for error reports)
G_HMASK = 51  # which handlers the strategy has (HAS_*): the others are not called at all
G_SLIP_MODEL = 52  # SLIP_*: extra ticks against each simulated taker fill
NG = 53

# global floats
GF_PEAK = 0
GF_MAXDD = 1
GF_DAY_START = 2  # account total at the start of the day
GF_TOKENS = 3
GF_RATE = 4  # orders per second (0: no limit)
GF_BURST = 5
GF_DAILY = 6  # max daily loss (0: none)
GF_BAND = 7  # price band in % of the fair price (0: none)
GF_NOTIONAL = 8  # max notional per order (0: none)
GF_SHARE = 9  # risk-averse model: share of cancels assumed ahead of us
GF_POWER = 10  # probabilistic model: exponent of the power queue function
GF_MAKER_BPS = 11
GF_TAKER_BPS = 12
GF_SENT_QTY = 13
GF_FILLED_QTY = 14
GF_POS_VALUE = 15  # max value of a symbol's position after an order, quote currency (0: none)
GF_FILL_PROB = 16  # probability that a simulated fill happens (1: always)
GF_SLIP_TICKS = 17  # the slippage model's scale, ticks
NGF = 18

# queue models and latency distributions
Q_RISK_AVERSE, Q_PROB = 0, 1
QUEUE_MODELS = {"risk-averse": Q_RISK_AVERSE, "prob": Q_PROB}
SLIP_BOOK, SLIP_FIXED, SLIP_NORMAL, SLIP_PARETO = 0, 1, 2, 3
SLIPPAGE_MODELS = {"book": SLIP_BOOK, "fixed": SLIP_FIXED, "normal": SLIP_NORMAL, "pareto": SLIP_PARETO}
LAT_CONSTANT, LAT_EXP, LAT_UNIFORM = 0, 1, 2
LATENCY_DISTS = {"constant": LAT_CONSTANT, "exponential": LAT_EXP, "uniform": LAT_UNIFORM}

# scheduled item kinds: requests at the venue, responses back at the engine
H_T, H_SEQ, H_KIND, H_ORD, H_PX = 0, 1, 2, 3, 4
NH = 5
K_NEW = 1  # a new order reaches the venue
K_CANCEL = 2  # a cancel reaches the venue
K_TRIGGER = 3  # a protective order's trigger was crossed: the venue executes it
K_ACK = 10
K_FILL_MAKER = 11
K_FILL_TAKER = 12
K_CANCELED = 13
K_CANCEL_REJ = 14
K_EXPIRED = 15
K_VENUE_REJ = 16
K_TRIGGERED = 17
LOCAL_KINDS_FROM = 10  # kinds ≥ this happen at the engine (local time), below at the venue

# outbox columns (a live gateway consumes the same rows)
OB_TS, OB_KIND, OB_ORD, OB_COID, OB_SYM, OB_SIDE, OB_PX, OB_TIF = 0, 1, 2, 3, 4, 5, 6, 7
OB_OTYPE, OB_TRIG, OB_TSRC, OB_RO = 8, 9, 10, 11
NOB = 12
OUT_NEW, OUT_CANCEL = 1, 2

# orders journal events (schemas.ORDER_EVENTS order) and columns
(EV_NEW, EV_ACCEPTED, EV_REJECTED, EV_MODIFIED, EV_CANCEL_SENT, EV_CANCELED, EV_CANCEL_REJECTED, EV_FILLED, EV_PARTIAL, EV_EXPIRED,
 EV_TRIGGERED) = range(11)
OO_TS, OO_SYM, OO_COID, OO_VOID, OO_EVENT, OO_SIDE, OO_REASON = 0, 1, 2, 3, 4, 5, 6
NOO_I = 7
OOF_PX, OOF_QTY, OOF_FILLED, OOF_LEAVES = 0, 1, 2, 3
NOO_F = 4
FO_TS, FO_SYM, FO_COID, FO_VOID, FO_TRADE, FO_SIDE, FO_LIQ = 0, 1, 2, 3, 4, 5, 6
NFO_I = 7
FOF_PX, FOF_QTY, FOF_FEE = 0, 1, 2
NFO_F = 3
PO_TS, PO_SYM = 0, 1
NPO_I = 2
POF_POS, POF_AVG, POF_REAL, POF_UNREAL, POF_TOTAL, POF_VOL, POF_MARK = 0, 1, 2, 3, 4, 5, 6
NPO_F = 7
MARKOUT_WINDOW_NS = 62_000_000_000  # a flat symbol's pnl rows go on this long after a fill: mids for 60 s markouts

# risk rejection reasons (index into `rej`; 0 = allowed)
R_OK = 0
REASONS = (
    "ok", "halted", "unconfigured_symbol", "qty_not_positive", "order_too_large", "position_too_large",
    "loss_too_large", "daily_loss", "notional_too_large", "too_many_open_orders", "price_band",
    "trading_hours", "circuit_limit", "order_rate", "order_pool_full",
    # venue-side reasons (the simulated venue's answers)
    "venue_unknown_order", "venue_too_many_resting",
    # why a bar strategy's protective order was sent (the orders journal's `reason`; never a rejection)
    "stop_loss", "take_profit",
    # later risk reasons go last, so earlier codes (in checkpoints) keep their meaning
    "position_value_too_large",
    # an exchange holiday (a rejection); the broker's intraday square-off (the reason of its cancels
    # and of the order that flattens the position; never a rejection). New reasons go at the end.
    "holiday", "square_off",
    # a protective order's type (the reason of its `new` and `triggered` rows; never a rejection), and
    # why a reduce-only one ended (the position it protected is flat)
    "stop-market", "stop-limit", "take-profit-market", "take-profit-limit", "reduce_only",
)
(R_HALTED, R_UNCONF, R_QTY, R_ORDER_SIZE, R_POSITION, R_LOSS, R_DAILY, R_NOTIONAL, R_OPEN, R_BAND, R_HOURS,
 R_CIRCUIT, R_RATE, R_POOL, R_V_UNKNOWN, R_V_RESTING, R_STOP_LOSS, R_TAKE_PROFIT, R_POS_VALUE, R_HOLIDAY,
 R_SQUARE_OFF, R_STOP_MARKET, R_STOP_LIMIT, R_TP_MARKET, R_TP_LIMIT, R_REDUCE_ONLY) = range(1, len(REASONS))
R_TYPE0 = R_STOP_MARKET - 1  # the reason naming protective order type `ot` is R_TYPE0 + ot
NR = len(REASONS)
HALT_NONE, HALT_MAX_LOSS, HALT_DAILY, HALT_MANUAL = 0, 1, 2, 3
HALT_NAMES = {HALT_NONE: "", HALT_MAX_LOSS: "max_loss", HALT_DAILY: "daily_loss", HALT_MANUAL: "manual"}

REST_CAP = 32  # orders resting at the simulated venue per symbol
POOL_PER_SYMBOL = 64
NS_PER_DAY = 86_400_000_000_000
NS_PER_MIN = 60_000_000_000
SQUARE_OFF_REACH = 0.02  # the square-off's marketable limit: this share of the price through the touch


def kernel(fn):
    """Compile an engine kernel: numba nopython, cached on disk, without NRT reference counting.

    The engine's kernels never allocate; they pass many state arrays to each other once per event,
    and with NRT every array argument of every call costs an atomic incref/decref pair (measured
    here: ~90 ns for a call with six arrays, ~3 ns without). Kernels that must allocate use plain
    `njit`.
    """
    from numba import njit

    return _unliteral_calls(njit(cache=True, _nrt=False)(fn))


def batch_kernel(fn):
    """`kernel` for an entry point Python calls once per market batch (the event loop, the input
    pass): it runs without the GIL, so a reader thread decodes the next batch of the input
    (`sq.core.prefetch`) while this one runs. Nothing else touches the engine's arrays meanwhile:
    the engine is driven by one thread."""
    from numba import njit

    return _unliteral_calls(njit(cache=True, _nrt=False, nogil=True)(fn))


def _unliteral_calls(dispatcher):
    """Type a call from another kernel by its arguments' plain types: numba otherwise compiles
    one specialisation per combination of constant arguments at the call sites (`order_row(...,
    EV_ACCEPTED, 0, ...)` and `order_row(..., EV_FILLED, 0, ...)` each compile the whole function
    again), which multiplied the engine's cold compile time. LLVM still sees the constants once
    the callee is inlined, so the hot path loses nothing."""
    from numba.core import types

    resolve = dispatcher.get_call_template

    def get_call_template(args, kws):
        return resolve(tuple(types.unliteral(a) for a in args), {k: types.unliteral(v) for k, v in kws.items()})

    dispatcher.get_call_template = get_call_template
    return dispatcher


def inline_kernel(fn):
    """`kernel`, inlined into its callers at numba IR level: for the small helpers of the
    per-event path, where a call that passes several state arrays costs more than the work (each
    array travels as seven scalars)."""
    from numba import njit

    return njit(cache=True, _nrt=False, inline="always")(fn)
