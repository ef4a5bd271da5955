"""The resting-price range the event loop reads to skip a level update that touches no resting
order: whenever `on_level` would act on some resting order, `level_touches_rest` says so."""

import numpy as np

from sq.core.engine import fills as X
from sq.core.engine import layout as L


def _touched(orders, side, tick, new):
    """`on_level`'s own cases over the resting orders (price, side): the brute-force answer."""
    for px, oside in orders:
        if oside == side and px == tick:
            return True
        if oside != side and new > 0.0 and ((oside > 0 and tick < px) or (oside < 0 and tick > px)):
            return True
    return False


def test_the_range_never_skips_an_update_that_touches_a_resting_order():
    rng = np.random.default_rng(7)
    checked = skipped = 0
    for _ in range(300):
        n = int(rng.integers(0, 6))
        oi = np.zeros((max(n, 1), L.NOI), np.int64)
        rest = np.zeros((1, L.REST_CAP), np.int64)
        si = np.zeros((1, L.NSI), np.int64)
        orders = []
        for k in range(n):
            side = 1 if rng.random() < 0.5 else -1
            px = int(rng.integers(95, 106))
            oi[k, L.OI_PX], oi[k, L.OI_SIDE] = px, side
            rest[0, k] = k
            orders.append((px, side))
        si[0, L.SI_NREST] = n
        X._rest_range(oi, rest, si, 0)
        for side in (1, -1):
            for tick in range(90, 111):
                for new in (0.0, 5.0):
                    want = _touched(orders, side, tick, new)
                    got = bool(X.level_touches_rest(si, 0, side, tick, new))
                    assert got or not want, (orders, side, tick, new)
                    checked += 1
                    skipped += not got
    assert skipped > checked // 4  # and it does skip most updates away from the orders


def test_an_empty_side_has_an_empty_range():
    oi = np.zeros((1, L.NOI), np.int64)
    oi[0, L.OI_PX], oi[0, L.OI_SIDE] = 100, 1
    rest = np.zeros((1, L.REST_CAP), np.int64)
    si = np.zeros((1, L.NSI), np.int64)
    si[0, L.SI_NREST] = 1
    X._rest_range(oi, rest, si, 0)
    assert (si[0, L.SI_RB_LO], si[0, L.SI_RB_HI]) == (100, 100)
    assert si[0, L.SI_RA_LO] > si[0, L.SI_RA_HI]
    assert not X.level_touches_rest(si, 0, -1, 101, 5.0)  # an ask above our only bid crosses nothing
    assert X.level_touches_rest(si, 0, -1, 99, 5.0)  # an ask below it does


def test_a_checkpoint_without_the_range_columns_resumes_with_them_worked_out():
    from sq.core import schemas as S
    from sq.core.config import Config
    from sq.core.engine import Engine, FillModelConfig

    name = "SIM:RANGE"
    inst = {name: S.Instrument(name, "sim", 1.0, 1.0)}
    n = 6
    ts = np.arange(1, n + 1, dtype=np.int64) * 1_000
    batch = S.market_batch(S.market_schema(inst), S.symbol_dictionary([name]), ts, ts, np.zeros(n, np.int32),
                           np.full(n, S.LEVEL, np.uint8), np.array([1, -1, 1, -1, 1, -1], np.int8),
                           np.array([99.0, 102.0, 98.0, 103.0, 97.0, 104.0]), np.full(n, 50.0), np.arange(1, n + 1, dtype=np.int64))
    params = {name: {"clip": 1.0, "max_order_size": 10.0, "max_position": 20.0, "max_loss": 1e12}}
    fill = FillModelConfig(order_latency_ns=10, feed_latency_ns=0)
    e = Engine("mm", inst, params, config=Config(), fill=fill)
    e.process(batch, complete=True)
    assert e.si[0, L.SI_NREST] == 2  # mm's bid and ask rest at the venue
    state = e.snapshot_state()
    other = Engine("mm", inst, params, config=Config(), fill=fill)
    other.restore_state(dict(state, si=state["si"][:, :L.SI_RB_LO].copy()))
    assert other.si.shape[1] == L.NSI
    assert (other.si[0, L.SI_RB_LO:L.SI_RA_HI + 1] == e.si[0, L.SI_RB_LO:L.SI_RA_HI + 1]).all()
    assert other.si[0, L.SI_RB_LO] == other.si[0, L.SI_RB_HI] < other.si[0, L.SI_RA_LO] == other.si[0, L.SI_RA_HI]
