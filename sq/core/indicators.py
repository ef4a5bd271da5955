"""Technical-indicator kernels over float64 arrays, aligned exactly with TA-Lib / pandas-ta-classic.

Each indicator is a numba kernel (`*_kernel`, one pass, NumPy arrays in and out, callable from
other `@njit` code such as a strategy's precompute step) and a thin Python wrapper of the same
name without the suffix that checks its arguments and calls it. Every output is a float64 array
of the input's length, NaN on the warm-up rows, and equal (to 1e-9) to its reference from the
first valid row on, with the NaN rows in the same places (docs/indicators.md lists each one):

    sma, ema, wma, rsi, macd, atr, bbands   TA-Lib (SMA, EMA, WMA, RSI, MACD, ATR, BBANDS matype 0)
    supertrend, donchian, vwap              pandas-ta-classic (supertrend, donchian, vwap anchor "D")
    opening_range                           sq's own definition (a polars group_by in the tests)

The kernels repeat their reference's arithmetic in the same order (running sums added then
trailed, TA-Lib's `TA_IS_ZERO` thresholds), so results agree to rounding, not just in spirit.

Inputs are assumed finite: a NaN or infinity in an input makes every later value of a running
indicator unspecified (it is not skipped the way TA-Lib skips a leading NaN run). A period below
1 or arrays of unequal length raise `IndicatorArgumentError`, a `ValueError` that the CLI also
reports as a one-line usage error.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sq.core.exits import UsageError

NAN = np.nan
NS_PER_MINUTE = 60_000_000_000
# rows between fresh sums of a running window total (see sma_kernel, wma_kernel)
SMA_REBUILD = 1024
WMA_REBUILD = 128


class IndicatorArgumentError(UsageError, ValueError):
    """A bad indicator argument (a period below 1, arrays of unequal length): a ValueError for
    library callers, a one-line usage error (exit 2) when it reaches the CLI."""


# ---------------------------------------------------------------------------------------------
# kernels: each writes its outputs into arrays the caller allocates (np.empty: numba's own
# allocator does not ask the kernel for huge pages, and faulting in 80 MB of small pages costs as
# much as the whole computation). error_model="numpy": a division is IEEE, not a checked call.

_kernel = njit(cache=True, error_model="numpy")
# a·b + c may become one fused multiply-add (one rounding instead of two; nothing else changes)
_fused = njit(cache=True, error_model="numpy", fastmath={"contract"})


@_kernel
def _nan_head(out, k):
    """NaN in out[:k] (k clipped to the array's length)."""
    for i in range(min(k, out.shape[0])):
        out[i] = NAN


@_kernel
def _window_sum(x, end, n):
    """x[end-n+1] + … + x[end], added in order."""
    total = 0.0
    for j in range(end - n + 1, end + 1):
        total += x[j]
    return total


@_kernel
def sma_kernel(x, n, out):
    """Simple moving average; valid from row n-1.

    The window total moves by (new − old) each row, one addition on the loop's critical path,
    and is summed afresh every max(n, SMA_REBUILD) rows so its rounding never drifts."""
    m = x.shape[0]
    _nan_head(out, n - 1)
    inv = 1.0 / n
    every = max(n, SMA_REBUILD)
    i = n - 1
    while i < m:
        total = _window_sum(x, i, n)
        out[i] = total * inv
        stop = min(i + every, m)
        for j in range(i + 1, stop):
            total += x[j] - x[j - n]
            out[j] = total * inv
        i = stop


@_fused
def ema_kernel(x, n, out):
    """Exponential moving average, k = 2/(n+1), seeded at row n-1 by the mean of the first n."""
    m = x.shape[0]
    _nan_head(out, n - 1)
    if m < n:
        return
    k = 2.0 / (n + 1)
    a = 1.0 - k
    total = 0.0
    for i in range(n):
        total += x[i]
    prev = total / n
    out[n - 1] = prev
    for i in range(n, m):
        prev = prev * a + x[i] * k
        out[i] = prev


@_kernel
def wma_kernel(x, n, out):
    """Linearly weighted moving average (weights 1..n, newest heaviest); valid from row n-1.

    O(1) a row: the weighted sum loses the previous window's plain sum and gains n·new. Both
    sums are rebuilt every max(n, WMA_REBUILD) rows: an error in the plain sum is folded into the
    weighted one on every row, so without the rebuild it would grow without bound."""
    m = x.shape[0]
    _nan_head(out, n - 1)
    inv = 1.0 / ((n * (n + 1)) >> 1)
    nf = float(n)
    every = max(n, WMA_REBUILD)
    i = n - 1
    while i < m:
        plain = 0.0
        weighted = 0.0
        for j in range(n):
            v = x[i - n + 1 + j]
            plain += v
            weighted += v * (j + 1)
        out[i] = weighted * inv
        stop = min(i + every, m)
        for j in range(i + 1, stop):
            v = x[j]
            weighted += v * nf - plain
            plain += v - x[j - n]
            out[j] = weighted * inv
        i = stop


@_kernel
def _rsi_value(gain, loss):
    total = gain + loss
    return 100.0 * (gain / total) if total > 0.0 else 0.0


@_fused
def rsi_kernel(x, n, out):
    """Wilder's RSI; valid from row n (the mean gain and loss of the first n changes seed it,
    then each is (prev·(n-1) + new)/n); 0 when there was neither gain nor loss, as TA-Lib."""
    m = x.shape[0]
    _nan_head(out, n)
    if m <= n:
        return
    gain = 0.0
    loss = 0.0
    for i in range(1, n + 1):
        d = x[i] - x[i - 1]
        gain += max(d, 0.0)
        loss += max(-d, 0.0)
    gain /= n
    loss /= n
    out[n] = _rsi_value(gain, loss)
    a = (n - 1) / n
    b = 1.0 / n
    prev = x[n]
    for i in range(n + 1, m):
        v = x[i]
        d = v - prev
        prev = v
        gain = gain * a + max(d, 0.0) * b
        loss = loss * a + max(-d, 0.0) * b
        out[i] = _rsi_value(gain, loss)


@_fused
def macd_kernel(x, fast, slow, signal, line, sig, hist):
    """MACD line, signal line and histogram; all three valid from row slow+signal-2.

    As in TA-Lib, both EMAs start at row slow-1: the fast one is seeded there by the mean of the
    `fast` values ending at that row, not at row fast-1. The signal EMA is seeded by the mean of
    the first `signal` MACD values."""
    m = x.shape[0]
    start = slow + signal - 2
    _nan_head(line, start)
    _nan_head(sig, start)
    _nan_head(hist, start)
    if m <= start:
        return
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    kg = 2.0 / (signal + 1)
    af = 1.0 - kf
    as_ = 1.0 - ks
    ag = 1.0 - kg
    fsum = 0.0
    ssum = 0.0
    for i in range(slow):
        ssum += x[i]
        if i >= slow - fast:
            fsum += x[i]
    fe = fsum / fast
    se = ssum / slow
    d = fe - se
    gsum = 0.0
    for i in range(slow, start + 1):  # the first signal-1 MACD values, summed for the seed
        gsum += d
        fe = fe * af + x[i] * kf
        se = se * as_ + x[i] * ks
        d = fe - se
    g = (gsum + d) / signal
    line[start] = d
    sig[start] = g
    hist[start] = d - g
    for i in range(start + 1, m):
        v = x[i]
        fe = fe * af + v * kf
        se = se * as_ + v * ks
        d = fe - se
        g = g * ag + d * kg
        line[i] = d
        sig[i] = g
        hist[i] = d - g


@_kernel
def _true_range(high, low, prev_close):
    """max(high, previous close) − min(low, previous close)."""
    return max(high, prev_close) - min(low, prev_close)


@_kernel
def _atr_seed(high, low, close, n):
    """The mean true range of rows 1..n (the first ATR, at row n)."""
    total = 0.0
    for i in range(1, n + 1):
        total += _true_range(high[i], low[i], close[i - 1])
    return total / n


@_fused
def atr_kernel(high, low, close, n, out):
    """Wilder's average true range; valid from row n (the mean true range of rows 1..n, then
    (prev·(n-1) + tr)/n)."""
    m = close.shape[0]
    _nan_head(out, n)
    if m <= n:
        return
    prev = _atr_seed(high, low, close, n)
    out[n] = prev
    a = (n - 1) / n
    b = 1.0 / n
    pc = close[n]
    for i in range(n + 1, m):
        prev = prev * a + _true_range(high[i], low[i], pc) * b
        pc = close[i]
        out[i] = prev


@_kernel
def bbands_kernel(x, n, k, upper, middle, lower):
    """Bollinger bands: SMA ± k population standard deviations; valid from row n-1.

    The middle band is `sma_kernel`'s. The variance avoids the cancellation of E[x²] − mean²
    (which loses every digit when the spread is tiny against the price): the window's
    deviations from a pivot, a recent value, are summed, and every n rows the pivot moves to the
    current value and both sums are rebuilt from the window, so rounding never accumulates and
    a flat window has a deviation of exactly 0."""
    m = x.shape[0]
    _nan_head(upper, n - 1)
    _nan_head(middle, n - 1)
    _nan_head(lower, n - 1)
    if m < n:
        return
    inv = 1.0 / n
    total = 0.0
    for i in range(n - 1):
        total += x[i]
    pivot = 0.0
    s1 = 0.0
    s2 = 0.0
    rebuild_in = 0
    for i in range(n - 1, m):
        v = x[i]
        if i == n - 1:
            total += v
        else:
            total += v - x[i - n]
        if rebuild_in == 0:
            pivot = v
            s1 = 0.0
            s2 = 0.0
            for j in range(i - n + 1, i + 1):
                dj = x[j] - pivot
                s1 += dj
                s2 += dj * dj
            rebuild_in = n
        else:
            dn = v - pivot
            do = x[i - n] - pivot
            s1 += dn - do
            s2 += dn * dn - do * do
        rebuild_in -= 1
        mean = total * inv
        var = (s2 - s1 * s1 * inv) * inv
        w = math.sqrt(var) * k if var > 0.0 else 0.0
        upper[i] = mean + w
        middle[i] = mean
        lower[i] = mean - w


@_fused
def supertrend_kernel(high, low, close, n, mult, line, direction):
    """Supertrend line and direction (+1 long, −1 short); both valid from row n (the first ATR).

    Bands are hl2 ± mult·ATR (Wilder's ATR, as `atr_kernel`). Direction turns +1 when the close
    rises above the previous final upper band, −1 when it falls below the previous final lower
    band; otherwise it holds, and the band on its side may only tighten (the lower band never
    falls while long, the upper never rises while short). The line is the lower band while long,
    the upper while short. Row n starts long (+1, line = its lower band), as pandas-ta-classic's
    does."""
    m = close.shape[0]
    _nan_head(line, n)
    _nan_head(direction, n)
    if m <= n:
        return
    atr = _atr_seed(high, low, close, n)
    a = (n - 1) / n
    b = 1.0 / n
    hl2 = 0.5 * (high[n] + low[n])
    ub = hl2 + mult * atr
    lb = hl2 - mult * atr
    d = 1.0
    line[n] = lb
    direction[n] = d
    for i in range(n + 1, m):
        c = close[i]
        atr = atr * a + _true_range(high[i], low[i], close[i - 1]) * b
        hl2 = 0.5 * (high[i] + low[i])
        nub = hl2 + mult * atr
        nlb = hl2 - mult * atr
        if c > ub:
            d = 1.0
        elif c < lb:
            d = -1.0
        elif d > 0:
            nlb = max(nlb, lb)
        else:
            nub = min(nub, ub)
        ub = nub
        lb = nlb
        line[i] = lb if d > 0 else ub
        direction[i] = d


@_kernel
def _rolling_max(x, n, sign, out):
    """out[i] = sign·max(sign·x[i-n+1..i]) from row n-1 (sign −1: the minimum; rows before n-1
    are left as they are).

    A monotone queue of (value, row) in a ring: each row is pushed and popped at most once."""
    m = x.shape[0]
    cap = 1
    while cap < n + 1:
        cap *= 2
    mask = cap - 1
    qv = np.empty(cap)
    qi = np.empty(cap, np.int64)
    head = 0
    tail = 0
    for i in range(m):
        v = sign * x[i]
        while tail > head and qv[(tail - 1) & mask] <= v:
            tail -= 1
        qv[tail & mask] = v
        qi[tail & mask] = i
        tail += 1
        if qi[head & mask] <= i - n:
            head += 1
        if i >= n - 1:
            out[i] = sign * qv[head & mask]


@_kernel
def donchian_kernel(high, low, n, upper, middle, lower):
    """Donchian channel: highest high and lowest low of the last n rows, and their midpoint
    0.5·(lower + upper); valid from row n-1."""
    m = high.shape[0]
    _nan_head(upper, n - 1)
    _nan_head(middle, n - 1)
    _nan_head(lower, n - 1)
    if m < n:
        return
    _rolling_max(high, n, 1.0, upper)
    _rolling_max(low, n, -1.0, lower)
    for i in range(n - 1, m):
        middle[i] = 0.5 * (lower[i] + upper[i])


@_kernel
def vwap_kernel(high, low, close, volume, session, out):
    """Cumulative VWAP of the typical price (h+l+c)/3, restarted whenever `session` changes.

    Valid from each session's first row (NaN while the session's volume so far is 0)."""
    m = close.shape[0]
    pv = 0.0
    vol = 0.0
    for i in range(m):
        if i == 0 or session[i] != session[i - 1]:
            pv = 0.0
            vol = 0.0
        v = volume[i]
        pv += (high[i] + low[i] + close[i]) * v
        vol += v
        out[i] = pv / (3.0 * vol) if vol != 0.0 else NAN


@_kernel
def opening_range_kernel(high, low, ts_ns, session, span_ns, or_high, or_low):
    """Per session (a run of equal `session` ids), the high and low of the bars whose ts is
    before the session's first ts + span_ns; NaN on those bars, then constant from the first bar
    at or after that time to the session's end. A session that never reaches it stays NaN."""
    m = high.shape[0]
    end = 0
    hi = NAN
    lo = NAN
    done = False
    for i in range(m):
        if i == 0 or session[i] != session[i - 1]:
            end = ts_ns[i] + span_ns
            hi = high[i]
            lo = low[i]
            done = False
        elif not done:
            if ts_ns[i] >= end:
                done = True
            else:
                hi = max(hi, high[i])
                lo = min(lo, low[i])
        or_high[i] = hi if done else NAN
        or_low[i] = lo if done else NAN


# ---------------------------------------------------------------------------------------------
# checked wrappers


def _period(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise IndicatorArgumentError(f"{name} must be an integer period, got {value!r}")
    if value < 1:
        raise IndicatorArgumentError(f"{name} must be at least 1, got {value}")
    return int(value)


def _positive(name: str, value) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise IndicatorArgumentError(f"{name} must be a positive number, got {value!r}")
    return v


def _floats(*arrays) -> list[np.ndarray]:
    """Each argument as a contiguous 1-D float64 array, all of one length."""
    out = [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]
    return _same_length(out)


def _ints(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind == "M":
        a = a.astype("datetime64[ns]").view(np.int64)
    elif a.dtype.kind not in "iu":
        raise IndicatorArgumentError(f"expected integer ids or timestamps, got an array of {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _same_length(arrays: list[np.ndarray]) -> list[np.ndarray]:
    for a in arrays:
        if a.ndim != 1:
            raise IndicatorArgumentError(f"indicator inputs must be one-dimensional, got shape {a.shape}")
    lengths = {a.shape[0] for a in arrays}
    if len(lengths) > 1:
        raise IndicatorArgumentError(f"indicator inputs must have the same length, got lengths {[a.shape[0] for a in arrays]}")
    return arrays


def _empty(like: np.ndarray, k: int = 1):
    if k == 1:
        return np.empty(like.shape[0])
    return tuple(np.empty(like.shape[0]) for _ in range(k))


def sma(x, n: int) -> np.ndarray:
    (x,) = _floats(x)
    out = _empty(x)
    sma_kernel(x, _period("n", n), out)
    return out


def ema(x, n: int) -> np.ndarray:
    (x,) = _floats(x)
    out = _empty(x)
    ema_kernel(x, _period("n", n), out)
    return out


def wma(x, n: int) -> np.ndarray:
    (x,) = _floats(x)
    out = _empty(x)
    wma_kernel(x, _period("n", n), out)
    return out


def rsi(x, n: int = 14) -> np.ndarray:
    (x,) = _floats(x)
    out = _empty(x)
    rsi_kernel(x, _period("n", n), out)
    return out


def macd(x, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (x,) = _floats(x)
    fast, slow, signal = _period("fast", fast), _period("slow", slow), _period("signal", signal)
    if fast > slow:
        raise IndicatorArgumentError(f"macd's fast period must not exceed its slow period, got fast={fast} slow={slow}")
    outs = _empty(x, 3)
    macd_kernel(x, fast, slow, signal, *outs)
    return outs


def atr(high, low, close, n: int = 14) -> np.ndarray:
    high, low, close = _floats(high, low, close)
    out = _empty(close)
    atr_kernel(high, low, close, _period("n", n), out)
    return out


def bbands(x, n: int = 20, k: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (x,) = _floats(x)
    k = float(k)
    if not (math.isfinite(k) and k >= 0):
        raise IndicatorArgumentError(f"bbands' k must be a number ≥ 0, got {k!r}")
    outs = _empty(x, 3)
    bbands_kernel(x, _period("n", n), k, *outs)
    return outs


def supertrend(high, low, close, n: int = 10, mult: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    high, low, close = _floats(high, low, close)
    outs = _empty(close, 2)
    supertrend_kernel(high, low, close, _period("n", n), _positive("mult", mult), *outs)
    return outs


def donchian(high, low, n: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    high, low = _floats(high, low)
    outs = _empty(high, 3)
    donchian_kernel(high, low, _period("n", n), *outs)
    return outs


def vwap(high, low, close, volume, session) -> np.ndarray:
    high, low, close, volume = _floats(high, low, close, volume)
    (session,) = _same_length([high, _ints(session)])[1:]
    out = _empty(close)
    vwap_kernel(high, low, close, volume, session, out)
    return out


def opening_range(high, low, ts_ns, session, minutes: float) -> tuple[np.ndarray, np.ndarray]:
    high, low = _floats(high, low)
    ts_ns, session = _same_length([high, _ints(ts_ns), _ints(session)])[1:]
    span = round(_positive("minutes", minutes) * NS_PER_MINUTE)
    outs = _empty(high, 2)
    opening_range_kernel(high, low, ts_ns, session, span, *outs)
    return outs
