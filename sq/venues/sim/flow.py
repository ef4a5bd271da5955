"""The background order-flow generator of the simulated exchange (numba).

A latent fair value random-walks (weakly pulled back to the starting price); liquidity
providers add limit orders around it at heavy-tailed distances and sizes, cancel uniformly at
random (so the resting order count hovers around a target), and liquidity takers send market
orders leaning toward the fair value, with heavy-tailed sizes and occasional sweeps that clear
several levels at once. A two-state Markov regime (quiet / busy) changes the event rate, the
volatility, the taker share and the spread. Actions arrive as a Poisson process in exchange
time. Every random number comes from the state's own xorshift64* generator, so each symbol's
stream depends only on its own seed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sq.venues.sim import matching as M
from sq.venues.sim.state import (
    F_AGGR, F_DIST, F_FAIR, F_HS_B, F_HS_Q, F_KAPPA, F_LIM_SIZE, F_MKT_B, F_MKT_Q, F_MKT_SIZE, F_NTARGET, F_P0,
    F_P_BQ, F_P_QB, F_RATE_B, F_RATE_Q, F_SIG_B, F_SIG_Q, F_SWEEP_B, F_SWEEP_Q, N_FLTS,
    R_ACTIONS, R_BEST_ASK, R_BEST_BID, R_HI, R_LO, R_NEXT_T, R_NFILL, R_NLIVE, R_NORD_BID, R_NOUT, R_NOW, R_REGIME, R_W,
)

DEFAULT_PARAMS = {
    F_RATE_Q: 1_500.0,
    F_RATE_B: 8_000.0,
    F_SIG_Q: 0.06,
    F_SIG_B: 0.18,
    F_MKT_Q: 0.07,
    F_MKT_B: 0.16,
    F_SWEEP_Q: 0.004,
    F_SWEEP_B: 0.02,
    F_HS_Q: 0.6,
    F_HS_B: 1.8,
    F_P_QB: 1.0 / 30_000.0,
    F_P_BQ: 1.0 / 12_000.0,
    F_NTARGET: 700.0,
    F_KAPPA: 2e-6,
    F_LIM_SIZE: 3.0,
    F_MKT_SIZE: 2.0,
    F_AGGR: 0.03,
    F_DIST: 3.0,
}


def default_params() -> np.ndarray:
    p = np.zeros(N_FLTS, dtype=np.float64)
    for k, v in DEFAULT_PARAMS.items():
        p[k] = v
    return p


@njit(cache=True, inline="always", _nrt=False)
def next_u64(rng):
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return x * np.uint64(0x2545F4914F6CDD1D)


@njit(cache=True, inline="always", _nrt=False)
def uniform(rng):
    """Uniform in [0, 1)."""
    return np.float64(next_u64(rng) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always", _nrt=False)
def pareto(rng, alpha):
    """Pareto(alpha) with minimum 1: heavy-tailed sizes and distances."""
    return (1.0 - uniform(rng)) ** (-1.0 / alpha)


@njit(cache=True, inline="always", _nrt=False)
def _clamp(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


@njit(cache=True, inline="always", _nrt=False)
def _limit_size(st):
    q = int(st.flts[F_LIM_SIZE] * pareto(st.rng, 1.6))
    return _clamp(q, 1, int(st.flts[F_LIM_SIZE] * 300.0))


@njit(cache=True, inline="always", _nrt=False)
def _distance(st):
    """Levels behind the quote: mostly close (exponential), sometimes far (power law)."""
    if uniform(st.rng) < 0.75:
        d = int(-math.log(1.0 - uniform(st.rng)) * st.flts[F_DIST])
    else:
        d = int(st.flts[F_DIST] * (pareto(st.rng, 1.1) - 1.0)) + 2
    return d if d < 120 else 120


@njit(cache=True, inline="always", _nrt=False)
def flow_add(st, reg):
    """A liquidity provider's limit order around the fair value (a few cross the spread)."""
    w = st.ints[R_W]
    fair = st.flts[F_FAIR]
    hs = (st.flts[F_HS_B] if reg else st.flts[F_HS_Q]) * (0.5 + uniform(st.rng))
    nb = st.ints[R_NORD_BID]
    na = st.ints[R_NORD_BID + 1]
    if nb == 0:
        si = 0
    elif na == 0:
        si = 1
    else:
        # lean toward the thinner side so neither side runs dry
        si = 0 if uniform(st.rng) * (nb + na) < na else 1
    qty = _limit_size(st)
    bb = st.ints[R_BEST_BID]
    ba = st.ints[R_BEST_ASK]
    if uniform(st.rng) < st.flts[F_AGGR] and ((si == 0 and ba < w) or (si == 1 and bb >= 0)):
        k = int(uniform(st.rng) * 3.0)
        lvl = ba + k if si == 0 else bb - k
    else:
        d = _distance(st)
        if si == 0:
            lvl = int(math.floor(fair - hs)) - d
            if ba < w and lvl >= ba:
                lvl = ba - 1
        else:
            lvl = int(math.ceil(fair + hs)) + d
            if bb >= 0 and lvl <= bb:
                lvl = bb + 1
    lvl = _clamp(lvl, 1, w - 2)
    rem = qty
    if M.crosses(st, si, lvl):
        rem = M.match(st, si, lvl, qty, -1, False)
    if rem > 0:
        M.add_resting(st, si, lvl, rem, 0, -1)


@njit(cache=True, inline="always", _nrt=False)
def flow_market(st, reg):
    """A liquidity taker: heavy-tailed size, leaning toward fair value; sometimes a sweep."""
    w = st.ints[R_W]
    bb = st.ints[R_BEST_BID]
    ba = st.ints[R_BEST_ASK]
    if bb >= 0 and ba < w:
        mid = 0.5 * (bb + ba)
    elif bb >= 0:
        mid = bb + 1.0
    else:
        mid = ba - 1.0
    p_buy = 0.5 + 0.35 * math.tanh((st.flts[F_FAIR] - mid) / 3.0)
    si = 0 if uniform(st.rng) < p_buy else 1
    sweep = st.flts[F_SWEEP_B] if reg else st.flts[F_SWEEP_Q]
    if uniform(st.rng) < sweep:
        # take everything on the first k levels, and a bit of the next
        k = 2 + int(uniform(st.rng) * 7.0)
        qty = 1
        if si == 0:
            lvl = ba
            j = 0
            while lvl < w and j < k:
                if st.lcnt[1, lvl] > 0:
                    qty += st.lqty[1, lvl]
                    j += 1
                lvl += 1
        else:
            lvl = bb
            j = 0
            while lvl >= 0 and j < k:
                if st.lcnt[0, lvl] > 0:
                    qty += st.lqty[0, lvl]
                    j += 1
                lvl -= 1
    else:
        qty = int(st.flts[F_MKT_SIZE] * pareto(st.rng, 1.25))
        qty = _clamp(qty, 1, int(st.flts[F_MKT_SIZE] * 2000.0))
    M.match(st, si, w - 1 if si == 0 else 0, qty, -1, False)


@njit(cache=True, inline="always", _nrt=False)
def flow_cancel(st):
    """Cancel a uniformly random background order."""
    n = st.ints[R_NLIVE]
    if n == 0:
        return
    slot = st.live[int(uniform(st.rng) * n)]
    M.cancel_slot(st, slot)


@njit(cache=True, _nrt=False)
def run(st, t_end, out_room, fill_room, max_actions):
    """Run the flow until its next action would be after t_end, the output buffers have less
    than `out_room` / `fill_room` free rows, or `max_actions` actions ran. Returns actions run.
    """
    n_act = 0
    cap_out = len(st.out_ts) - out_room
    cap_fill = len(st.f_oid) - fill_room
    reg = st.ints[R_REGIME]
    while n_act < max_actions:
        t = st.ints[R_NEXT_T]
        if t < st.ints[R_NOW]:
            t = st.ints[R_NOW]
        if t > t_end or st.ints[R_NOUT] > cap_out or st.ints[R_NFILL] > cap_fill:
            break
        n0 = M.begin_action(st, t)
        # regime switch
        u = uniform(st.rng)
        if reg == 0 and u < st.flts[F_P_QB]:
            reg = 1
        elif reg == 1 and u < st.flts[F_P_BQ]:
            reg = 0
        # fair value: random walk, weak pull to the start, kept inside the ladder
        sig = st.flts[F_SIG_B] if reg else st.flts[F_SIG_Q]
        fair = st.flts[F_FAIR]
        # uniform steps of the same variance as N(0, sig²): cheaper, and Gaussian in aggregate
        fair += sig * 3.4641016151377544 * (uniform(st.rng) - 0.5) - st.flts[F_KAPPA] * (fair - st.flts[F_P0])
        st.flts[F_FAIR] = _clamp(fair, np.float64(st.ints[R_LO]), np.float64(st.ints[R_HI]))
        # pick an action: add (weight 1), market, cancel (grows with the resting count)
        w_mkt = st.flts[F_MKT_B] if reg else st.flts[F_MKT_Q]
        w_can = st.ints[R_NLIVE] / st.flts[F_NTARGET]
        r = uniform(st.rng) * (1.0 + w_mkt + w_can)
        if r < 1.0:
            flow_add(st, reg)
        elif r < 1.0 + w_mkt:
            flow_market(st, reg)
        else:
            flow_cancel(st)
        M.end_action(st, n0)
        rate = st.flts[F_RATE_B] if reg else st.flts[F_RATE_Q]
        dt = int(-math.log(1.0 - uniform(st.rng)) * 1e9 / rate) + 1
        st.ints[R_NEXT_T] = st.ints[R_NOW] + dt
        n_act += 1
    st.ints[R_REGIME] = reg
    st.ints[R_ACTIONS] += n_act
    return n_act


@njit(cache=True, _nrt=False)
def seed_book(st, levels, t):
    """Lay a starting book around the fair value: `levels` levels a side, 1-5 orders each."""
    fair = st.flts[F_FAIR]
    top_b = int(math.floor(fair)) - 1
    top_a = int(math.ceil(fair)) + 1
    w = st.ints[R_W]
    for i in range(levels):
        for si in range(2):
            lvl = top_b - i if si == 0 else top_a + i
            if lvl < 1 or lvl > w - 2:
                continue
            k = 1 + int(uniform(st.rng) * 5.0)
            for _ in range(k):
                slot = M.alloc(st)
                if slot == -1:
                    return
                st.o_side[slot] = si
                st.o_lvl[slot] = lvl
                st.o_qty[slot] = _limit_size(st)
                st.o_owner[slot] = 0
                st.o_oid[slot] = -1
                M.link(st, slot)
                M.live_add(st, slot)
    st.ints[R_NOW] = t
    st.ints[R_NEXT_T] = t + 1
