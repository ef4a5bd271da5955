"""The engine's clock: a binary heap of timed items, ordered by (time, insertion sequence).

Requests reach the simulated venue `latency` after they leave the engine, and its answers reach
the engine `latency` later; both are items here. The kernel pops every item due before a market
event is applied, so the result never depends on where the input was cut into batches. Ties
keep insertion order (a stable sequence).
"""

from __future__ import annotations

from sq.core.engine.layout import G_HN, G_HSEQ, H_KIND, H_ORD, H_PX, H_SEQ, H_T, kernel


@kernel
def _less(hq, a, b):
    return hq[a, H_T] < hq[b, H_T] or (hq[a, H_T] == hq[b, H_T] and hq[a, H_SEQ] < hq[b, H_SEQ])


@kernel
def _swap(hq, hf, a, b):
    for c in range(hq.shape[1]):
        x = hq[a, c]
        hq[a, c] = hq[b, c]
        hq[b, c] = x
    y = hf[a]
    hf[a] = hf[b]
    hf[b] = y


@kernel
def push(hq, hf, g, t, kind, order, px, qty):
    """Schedule an item at time `t` (the caller guarantees room)."""
    n = g[G_HN]
    hq[n, H_T] = t
    hq[n, H_SEQ] = g[G_HSEQ]
    hq[n, H_KIND] = kind
    hq[n, H_ORD] = order
    hq[n, H_PX] = px
    hf[n] = qty
    g[G_HSEQ] += 1
    g[G_HN] = n + 1
    j = n
    while j > 0:
        p = (j - 1) >> 1
        if _less(hq, j, p):
            _swap(hq, hf, j, p)
            j = p
        else:
            break


@kernel
def pop(hq, hf, g):
    """Remove the earliest item; returns (t, kind, order, px, qty). The heap must be non-empty."""
    t = hq[0, H_T]
    kind = hq[0, H_KIND]
    order = hq[0, H_ORD]
    px = hq[0, H_PX]
    qty = hf[0]
    n = g[G_HN] - 1
    g[G_HN] = n
    if n > 0:
        for c in range(hq.shape[1]):
            hq[0, c] = hq[n, c]
        hf[0] = hf[n]
        j = 0
        while True:
            a = 2 * j + 1
            if a >= n:
                break
            b = a + 1
            m = a
            if b < n and _less(hq, b, a):
                m = b
            if _less(hq, m, j):
                _swap(hq, hf, m, j)
                j = m
            else:
                break
    return t, kind, order, px, qty
