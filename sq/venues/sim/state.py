"""The struct-of-arrays state of one simulated symbol (the matching book plus its flow generator).

Everything the numba kernels touch lives in one `SimState` namedtuple of preallocated NumPy
arrays so a kernel call passes the whole exchange in one argument and never allocates:

* scalar registers in `ints` (best bid/ask, clock, seq, counters) and `flts` (fair value, flow
  parameters), indexed by the `R_*` / `F_*` constants below;
* the order pool (`o_*`), a free-slot stack and the list of live background orders (so the flow
  can cancel a uniformly random one in O(1));
* the price ladder: per side (0 bid, 1 ask) and level (ticks above `base`) the FIFO head/tail
  order slot, total quantity and order count;
* the output buffers: market rows (`out_*`, prices as ladder levels, quantities in lots) and
  fills of gateway-owned orders (`f_*`), drained by the Python side after each kernel call.

Prices are int64 ladder levels (absolute tick = base + level); quantities are int64 lots.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

# ints registers
R_BEST_BID = 0  # best bid level, -1 when the bid side is empty
R_BEST_ASK = 1  # best ask level, W when the ask side is empty
R_NOW = 2  # exchange clock: time of the last action (ns)
R_NEXT_T = 3  # time of the flow's next action (ns)
R_SEQ = 4  # last seq used (one per exchange action that changed something)
R_NLIVE = 5  # live background orders
R_NFREE = 6  # free order slots on the stack
R_NOUT = 7  # market rows in the output buffer
R_NFILL = 8  # fill records in the fill buffer
R_REGIME = 9  # 0 quiet, 1 busy
R_W = 10  # ladder width (levels)
R_TRADE = 11  # last trade number
R_ACTIONS = 12  # flow actions processed
R_NORD_BID = 13  # resting orders on the bid side (all owners)
R_NORD_ASK = 14  # resting orders on the ask side
R_LO = 15  # lowest level the flow's fair value may reach
R_HI = 16  # highest level the flow's fair value may reach
N_REGS = 17

# float registers: state, then flow parameters (see flow.DEFAULT_PARAMS)
F_FAIR = 0  # latent fair value, in levels
F_P0 = 1  # starting price, in levels (anchor of the weak mean reversion)
F_RATE_Q = 2  # flow actions per second, quiet regime
F_RATE_B = 3  # flow actions per second, busy regime
F_SIG_Q = 4  # fair-value step stdev per action (ticks), quiet
F_SIG_B = 5  # ... busy
F_MKT_Q = 6  # weight of market orders vs 1.0 for limit adds, quiet
F_MKT_B = 7  # ... busy
F_SWEEP_Q = 8  # probability that a market order is a sweep, quiet
F_SWEEP_B = 9  # ... busy
F_HS_Q = 10  # typical half spread (ticks) around fair value, quiet
F_HS_B = 11  # ... busy
F_P_QB = 12  # per-action probability quiet -> busy
F_P_BQ = 13  # per-action probability busy -> quiet
F_NTARGET = 14  # equilibrium number of background resting orders
F_KAPPA = 15  # mean reversion of the fair value to the start, per action
F_LIM_SIZE = 16  # scale of limit-order sizes (lots)
F_MKT_SIZE = 17  # scale of market-order sizes (lots)
F_AGGR = 18  # share of limit adds that are marketable
F_DIST = 19  # mean distance (ticks) of passive limit adds behind the quote
N_FLTS = 20

SimState = namedtuple(
    "SimState",
    [
        "ints", "flts", "rng",
        "o_lvl", "o_qty", "o_side", "o_next", "o_prev", "o_oid", "o_owner", "o_livepos",
        "free", "live",
        "head", "tail", "lqty", "lcnt",
        "out_ts", "out_kind", "out_side", "out_px", "out_qty", "out_ord", "out_seq",
        "f_oid", "f_px", "f_qty", "f_ts", "f_liq", "f_side", "f_seq", "f_trade",
    ],
)

LADDER_WIDTH = 1 << 16


def new_state(width: int = LADDER_WIDTH, orders: int = 16_384, out_rows: int = 1 << 18, fill_rows: int = 1 << 15) -> SimState:
    """Allocate an empty book: all slots free, no levels, empty buffers."""
    ints = np.zeros(N_REGS, dtype=np.int64)
    ints[R_BEST_BID] = -1
    ints[R_BEST_ASK] = width
    ints[R_W] = width
    ints[R_NFREE] = orders
    st = SimState(
        ints=ints,
        flts=np.zeros(N_FLTS, dtype=np.float64),
        rng=np.ones(1, dtype=np.uint64),
        o_lvl=np.zeros(orders, dtype=np.int64),
        o_qty=np.zeros(orders, dtype=np.int64),
        o_side=np.zeros(orders, dtype=np.int64),
        o_next=np.full(orders, -1, dtype=np.int64),
        o_prev=np.full(orders, -1, dtype=np.int64),
        o_oid=np.full(orders, -1, dtype=np.int64),
        o_owner=np.zeros(orders, dtype=np.int64),
        o_livepos=np.full(orders, -1, dtype=np.int64),
        free=np.arange(orders - 1, -1, -1, dtype=np.int64),
        live=np.zeros(orders, dtype=np.int64),
        head=np.full((2, width), -1, dtype=np.int64),
        tail=np.full((2, width), -1, dtype=np.int64),
        lqty=np.zeros((2, width), dtype=np.int64),
        lcnt=np.zeros((2, width), dtype=np.int64),
        **_out_arrays(out_rows),
        **_fill_arrays(fill_rows),
    )
    return st


def _out_arrays(n: int) -> dict:
    return dict(
        out_ts=np.zeros(n, dtype=np.int64),
        out_kind=np.zeros(n, dtype=np.uint8),
        out_side=np.zeros(n, dtype=np.int8),
        out_px=np.zeros(n, dtype=np.int64),
        out_qty=np.zeros(n, dtype=np.int64),
        out_ord=np.zeros(n, dtype=np.int32),
        out_seq=np.zeros(n, dtype=np.int64),
    )


def _fill_arrays(n: int) -> dict:
    return dict(
        f_oid=np.zeros(n, dtype=np.int64),
        f_px=np.zeros(n, dtype=np.int64),
        f_qty=np.zeros(n, dtype=np.int64),
        f_ts=np.zeros(n, dtype=np.int64),
        f_liq=np.zeros(n, dtype=np.int8),
        f_side=np.zeros(n, dtype=np.int8),
        f_seq=np.zeros(n, dtype=np.int64),
        f_trade=np.zeros(n, dtype=np.int64),
    )


def _grow(arr: np.ndarray, n: int, fill) -> np.ndarray:
    out = np.full(n, fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


def grow_out(st: SimState, need: int) -> SimState:
    """Return a state whose market-row buffer has room for `need` more rows."""
    n = int(st.ints[R_NOUT])
    cap = len(st.out_ts)
    if n + need <= cap:
        return st
    new = max(cap * 2, n + need)
    return st._replace(**{k: _grow(getattr(st, k), new, 0) for k in _out_arrays(0)})


def grow_fills(st: SimState, need: int) -> SimState:
    """Return a state whose fill buffer has room for `need` more records."""
    n = int(st.ints[R_NFILL])
    cap = len(st.f_oid)
    if n + need <= cap:
        return st
    new = max(cap * 2, n + need)
    return st._replace(**{k: _grow(getattr(st, k), new, 0) for k in _fill_arrays(0)})


def grow_orders(st: SimState, need: int) -> SimState:
    """Return a state with at least `need` free order slots (the pool doubles)."""
    if st.ints[R_NFREE] >= need:
        return st
    cap = len(st.o_lvl)
    new = max(cap * 2, cap + need)
    nfree = int(st.ints[R_NFREE])
    free = np.zeros(new, dtype=np.int64)
    free[:nfree] = st.free[:nfree]
    added = np.arange(new - 1, cap - 1, -1, dtype=np.int64)
    free[nfree : nfree + len(added)] = added
    st.ints[R_NFREE] = nfree + len(added)
    return st._replace(
        o_lvl=_grow(st.o_lvl, new, 0),
        o_qty=_grow(st.o_qty, new, 0),
        o_side=_grow(st.o_side, new, 0),
        o_next=_grow(st.o_next, new, -1),
        o_prev=_grow(st.o_prev, new, -1),
        o_oid=_grow(st.o_oid, new, -1),
        o_owner=_grow(st.o_owner, new, 0),
        o_livepos=_grow(st.o_livepos, new, -1),
        free=free,
        live=_grow(st.live, new, 0),
    )
