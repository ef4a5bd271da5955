"""The bad-tick filter (sq.core.clean): every rule on hand-built streams with exact counts, the
book it keeps for the crossed-quote rule (checked against sq book's own kernel), drop_crossed
restoring the book, and the same result however the input is cut into batches."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sq.core import book, schemas
from sq.core.bookstream import BookStream
from sq.core.clean import REASONS, Cleaner
from sq.core.config import CleanConfig, ConfigError, parse_config
from tests.support.marketdata import instruments, market_rows, pylist

A, B = "SIM:A", "SIM:B"
L, T, C, E, K = schemas.LEVEL, schemas.TRADE, schemas.CLEAR, schemas.SNAPSHOT_END, schemas.TICK
ON = CleanConfig(enabled=True)
NONE = dict.fromkeys(REASONS, 0)


def run(rows, cfg=ON, symbols=(A, B), cuts=()):
    """Clean `rows` cut into batches at `cuts`; returns (kept rows, cleaner)."""
    batch = market_rows(rows, list(symbols))
    cleaner = Cleaner(cfg, instruments(*symbols))
    edges = [0, *sorted(set(cuts)), batch.num_rows]
    out = []
    for a, b in zip(edges, edges[1:]):
        kept, _ = cleaner.clean(batch.slice(a, b - a))
        out += pylist(kept)
    tail, _ = cleaner.finish()
    out += pylist(tail)
    return out, cleaner


def dropped(**counts):
    return dict(NONE, **counts)


def prices(rows):
    return [r["price"] for r in rows]


def quotes(seq=1, ts=0, sym=A, bid=99.0, ask=101.0):
    return [(ts, sym, L, 1, bid, 5.0, seq), (ts, sym, L, -1, ask, 5.0, seq)]


# ----------------------------------------------------------------------------------------------
# per-row rules


def test_non_positive_prices_and_negative_quantities_are_dropped_and_counted():
    rows = quotes() + [
        (1, A, T, 1, 0.0, 1.0, 2),  # trade at 0
        (2, A, T, 1, -100.0, 1.0, 3),
        (3, A, T, 1, float("nan"), 1.0, 4),
        (4, A, L, 1, -98.0, 1.0, 5),  # level at a negative price
        (5, A, L, 1, 98.0, -1.0, 6),  # negative quantity
        (6, A, L, 1, 98.0, float("inf"), 7),
        (6, A, T, 1, 100.0, -2.0, 11),  # a trade of a negative quantity
        (7, A, K, 0, 0.0, 0.0, 8),  # a tick (LTP) at 0
        (8, A, L, 1, 98.0, 0.0, 9),  # a delete is fine
        (9, A, T, 1, 100.0, 1.0, 10),
    ]
    kept, c = run(rows)
    assert c.counts == dropped(price=5, qty=3)
    assert c.kept == 4 and len(kept) == 4 and c.rows_in == 12
    assert [r["seq"] for r in kept] == [1, 1, 9, 10]
    assert c.notice() == "clean: dropped 8 of 12 market rows (5 price, 3 qty)"


def test_timestamps_going_backwards_per_symbol_beyond_the_tolerance():
    rows = [
        (1_000, A, T, 1, 100.0, 1.0, 1),
        (2_000, A, T, 1, 100.0, 1.0, 2),
        (500, B, T, 1, 50.0, 1.0, 3),  # B's own clock: fine
        (1_999, A, T, 1, 100.0, 1.0, 4),  # 1 ns back
        (1_500, A, T, 1, 100.0, 1.0, 5),  # 500 ns back
        (2_500, A, T, 1, 100.0, 1.0, 6),
        (2_000, A, L, 1, 99.0, 1.0, 7),  # any kind
    ]
    kept, c = run(rows)
    assert c.counts == dropped(backwards=3)
    assert [r["seq"] for r in kept] == [1, 2, 3, 6]
    kept, c = run(rows, replace(ON, max_backward_ns=500))
    assert c.counts == dropped(backwards=0) and len(kept) == 7
    kept, c = run(rows, replace(ON, max_backward_ns=499))
    assert c.counts == dropped(backwards=2) and [r["seq"] for r in kept] == [1, 2, 3, 4, 6]


def test_a_dropped_row_does_not_move_the_clock():
    rows = [(1_000, A, T, 1, 100.0, 1.0, 1), (9_000, A, T, 1, 0.0, 1.0, 2), (2_000, A, T, 1, 100.0, 1.0, 3)]
    kept, c = run(rows)
    assert c.counts == dropped(price=1) and [r["seq"] for r in kept] == [1, 3]


# ----------------------------------------------------------------------------------------------
# trades: jumps, σ, confirmation


def trades(*pxs, sym=A, seq0=1):
    return [(i, sym, T, 1, px, 1.0, seq0 + i) for i, px in enumerate(pxs)]


def test_a_jump_beyond_max_jump_pct_from_the_last_accepted_trade():
    cfg = replace(ON, max_jump_pct=10.0, sigma_k=0.0)
    kept, c = run(trades(100.0, 111.0, 109.0, 89.0, 90.5, 1000.0, 99.0), cfg)
    # 111 is +11 % (dropped); 109 is +9 % (kept); 89 is −18.3 % from 109 (dropped);
    # 90.5 is −16.97 % from 109 (dropped, and agrees with 89: two in a row, three confirm);
    # 1000 (dropped, agrees with nothing); 99 is −9.2 % from 109 (kept)
    assert prices(kept) == [100.0, 109.0, 99.0]
    assert c.counts == dropped(jump=4)


def test_sigma_rule_hand_computed():
    # half-life 1 return (α = 0.5), warm-up 2 returns, k = 3, no percentage rule:
    # r1 = ln(101/100) = 0.0099503, σ² = r1²; r2 = ln(100/101) = −r1, σ² unchanged, σ = 0.0099503;
    # 104: ln(1.04) = 0.039221 > 3σ = 0.029851 → dropped; 102: ln(1.02) = 0.019803 < 3σ → kept
    cfg = replace(ON, max_jump_pct=0.0, sigma_k=3.0, sigma_halflife=1.0, warmup=2)
    kept, c = run(trades(100.0, 101.0, 100.0, 104.0, 102.0), cfg)
    assert prices(kept) == [100.0, 101.0, 100.0, 102.0]
    assert c.counts == dropped(sigma=1)
    assert math.isclose(math.log(1.04), 0.039221, rel_tol=1e-4) and math.isclose(3 * math.log(1.01), 0.029851, rel_tol=1e-4)


def test_sigma_rule_waits_for_the_warm_up():
    cfg = replace(ON, max_jump_pct=0.0, sigma_k=3.0, sigma_halflife=1.0, warmup=3)
    kept, c = run(trades(100.0, 101.0, 100.0, 104.0), cfg)  # only 2 returns in: no σ rule yet
    assert c.counts == NONE and len(kept) == 4


def test_sigma_is_never_below_one_tick():
    # a price that never moved has σ = 0; the floor is one tick (0.01 / 100 = 1e-4), k = 3
    cfg = replace(ON, max_jump_pct=0.0, sigma_k=3.0, sigma_halflife=1000.0, warmup=1)
    kept, c = run(trades(100.0, 100.0, 100.0, 100.0, 100.04, 100.02), cfg)
    # 100.04: |ln(1.0004)| = 4.0e-4 > 3 × 1e-4 → dropped; 100.02: 2.0e-4 < 3e-4 → kept
    assert prices(kept) == [100.0, 100.0, 100.0, 100.0, 100.02]
    assert c.counts == dropped(sigma=1)


def test_a_real_move_is_confirmed_by_trades_that_agree():
    cfg = replace(ON, max_jump_pct=10.0, sigma_k=0.0, confirm_trades=3)
    kept, c = run(trades(100.0, 120.0, 120.1, 120.05, 120.2, 100.0), cfg)
    # 120 and 120.1 are dropped (jumps that agree), 120.05 confirms: the reference is now 120.05;
    # 120.2 is a normal trade, and 100 is −16.8 % from it (a jump)
    assert prices(kept) == [100.0, 120.05, 120.2]
    assert c.counts == dropped(jump=3)


def test_isolated_bad_ticks_never_confirm_each_other():
    cfg = replace(ON, max_jump_pct=10.0, sigma_k=0.0, confirm_trades=2)
    kept, c = run(trades(100.0, 1000.0, 100.1, 10.0, 100.2, 1000.0, 10.0, 100.0), cfg)
    assert prices(kept) == [100.0, 100.1, 100.2, 100.0]
    assert c.counts == dropped(jump=4)


def test_trade_state_is_per_symbol():
    cfg = replace(ON, max_jump_pct=10.0, sigma_k=0.0)
    rows = [(0, A, T, 1, 100.0, 1.0, 1), (1, B, T, 1, 50.0, 1.0, 2), (2, A, T, 1, 51.0, 1.0, 3), (3, B, T, 1, 51.0, 1.0, 4)]
    kept, c = run(rows, cfg)
    assert [(r["symbol"], r["price"]) for r in kept] == [(A, 100.0), (B, 50.0), (B, 51.0)]
    assert c.counts == dropped(jump=1)


# ----------------------------------------------------------------------------------------------
# locked and crossed books


def test_a_crossed_message_is_counted_and_kept_by_default():
    rows = quotes(seq=1) + [
        (1, A, L, -1, 98.0, 1.0, 2),  # ask below the bid: crossed
        (2, A, L, -1, 98.0, 0.0, 3),  # removed again
        (3, A, L, 1, 101.0, 1.0, 4),  # bid at the ask: locked
        (4, A, T, 1, 101.0, 1.0, 5),  # a message on a book still locked
        (5, A, L, 1, 101.0, 0.0, 6),
    ]
    kept, c = run(rows)
    assert c.counts == NONE and len(kept) == len(rows)
    assert c.crossed_messages == 3
    assert c.summary() == {"dropped": NONE, "kept": len(rows), "crossed_messages": 3, "drop_crossed": False}
    assert c.notice() is None


def test_drop_crossed_drops_the_message_and_restores_the_book():
    cfg = replace(ON, drop_crossed=True)
    rows = quotes(seq=1) + [
        (1, A, L, -1, 102.0, 3.0, 2), (1, A, L, -1, 98.0, 1.0, 2),  # one message: a level, then a crossing ask
        (2, A, L, 1, 98.5, 1.0, 3),  # crosses only if the dropped ask were still there
        (3, A, L, -1, 101.0, 0.0, 4), (3, A, L, -1, 100.0, 2.0, 4),  # the ask moves down to 100
        (4, A, L, 1, 100.0, 1.0, 5),  # locked: dropped
        (5, A, L, 1, 99.5, 1.0, 6),
    ]
    kept, c = run(rows, cfg)
    assert [(r["seq"], r["side"], r["price"]) for r in kept] == [
        (1, 1, 99.0), (1, -1, 101.0), (3, 1, 98.5), (4, -1, 101.0), (4, -1, 100.0), (6, 1, 99.5)]
    assert c.counts == dropped(crossed=3) and c.crossed_messages == 2
    assert c.notice() == "clean: dropped 3 of 9 market rows (3 crossed)"
    bs = BookStream(instruments(A, B), depth=1)  # the kept stream, in sq book's own kernel
    bs.process(market_rows([(r["ts"], r["symbol"], r["kind"], r["side"], r["price"], r["qty"], r["seq"]) for r in kept], [A, B]))
    bs.finish()
    assert bs.counts["locked"] == 0 and bs.counts["crossed"] == 0


def test_drop_crossed_restores_the_book_a_snapshot_replaced():
    cfg = replace(ON, drop_crossed=True)
    rows = quotes(seq=1) + [
        (1, A, C, 0, 0.0, 0.0, 2), (1, A, L, 1, 100.0, 1.0, 2), (1, A, L, -1, 100.0, 1.0, 2), (1, A, E, 0, 0.0, 0.0, 2),  # locked snapshot
        (2, A, L, 1, 101.5, 1.0, 3),  # crosses the restored ask at 101 (an empty or snapshot book would not be)
        (3, A, L, 1, 100.5, 1.0, 4),
    ]
    kept, c = run(rows, cfg)
    assert [r["seq"] for r in kept] == [1, 1, 4]
    assert c.counts == dropped(crossed=5) and c.crossed_messages == 2


def test_inside_a_snapshot_nothing_is_checked():
    rows = quotes(seq=1) + [(1, A, C, 0, 0.0, 0.0, 2), (1, A, L, 1, 100.0, 1.0, 2), (1, A, L, -1, 100.0, 1.0, 2),
                          (2, A, L, -1, 101.0, 1.0, 3), (3, A, E, 0, 0.0, 0.0, 4)]
    _, c = run(rows, replace(ON, drop_crossed=True))
    assert c.crossed_messages == 1 and c.counts == dropped(crossed=1)  # only the message that ends the snapshot


def test_drop_crossed_with_a_deep_book_grows_the_window_and_the_undo_log():
    """3,000 levels a side: the book window (4,096 ticks) and the undo log (1,024 entries) grow."""
    cfg = replace(ON, drop_crossed=True)
    deep = [(0, A, L, 1, round(50.0 - 0.01 * i, 2), 1.0, 1) for i in range(3000)]
    deep += [(0, A, L, -1, round(50.01 + 0.01 * i, 2), 1.0, 1) for i in range(3000)]
    snap = [(1, A, C, 0, 0.0, 0.0, 2)] + [(1, A, L, 1, round(60.0 - 0.01 * i, 2), 1.0, 2) for i in range(2000)]
    snap += [(1, A, L, -1, 55.0, 1.0, 2), (1, A, E, 0, 0.0, 0.0, 2)]  # crossed: 60 ≥ 55
    probe = [(2, A, L, 1, 50.01, 1.0, 3), (3, A, L, 1, 50.0, 0.0, 4), (4, A, L, -1, 20.05, 1.0, 5)]
    kept, c = run(deep + snap + probe, cfg, cuts=(2500, 6500, 7000))
    # the restored book: best bid 50.00, best ask 50.01 → the probe's bid at 50.01 locks it
    # (dropped); deleting 50.00 leaves 49.99 the best bid; an ask at 20.05 crosses it
    assert c.counts == dropped(crossed=len(snap) + 2) and c.crossed_messages == 3
    assert [r["seq"] for r in kept[-1:]] == [4] and len(kept) == 6001


def test_rows_a_rule_drops_take_no_part_in_messages():
    # the bad row between two rows of seq 2 is dropped first; the two then form one message
    cfg = replace(ON, drop_crossed=True)
    rows = quotes(seq=1) + [(1, A, L, -1, 98.0, 1.0, 2), (1, A, T, 1, 0.0, 1.0, 9), (1, A, L, -1, 98.0, 0.0, 2)]
    kept, c = run(rows, cfg)
    assert c.counts == dropped(price=1) and c.crossed_messages == 0 and len(kept) == 4


# ----------------------------------------------------------------------------------------------
# the glue


def test_counts_per_call_and_cumulative():
    batch = market_rows(quotes() + trades(100.0, 0.0, 100.0, seq0=5), [A])
    c = Cleaner(ON, instruments(A))
    out1, n1 = c.clean(batch.slice(0, 3))
    out2, n2 = c.clean(batch.slice(3))
    assert (out1.num_rows, out2.num_rows) == (3, 1)
    assert n1 == NONE and n2 == dropped(price=1) and c.counts == dropped(price=1)
    assert out1.schema.metadata == batch.schema.metadata
    tail, n3 = c.finish()
    assert tail.num_rows == 0 and n3 == NONE


def test_finish_without_any_batch():
    tail, counts = Cleaner(ON).finish()
    assert tail is None and counts == NONE


def test_a_symbol_without_a_tick_size_gets_one_from_its_prices():
    batch = market_rows(quotes(bid=99.5, ask=100.5) + [(1, A, L, -1, 99.5, 1.0, 2)], [A])
    c = Cleaner(ON, {})  # no instruments: ticks inferred (0.1 here)
    kept, _ = c.clean(batch)
    c.finish()
    assert kept.num_rows == 3 and c.crossed_messages == 1


def test_null_in_a_key_column_is_a_data_error():
    from sq.core.exits import DataError

    batch = market_rows(trades(100.0, 101.0), [A])
    i = batch.schema.get_field_index("seq")
    schema = batch.schema.set(i, pa.field("seq", pa.int64(), nullable=True))
    bad = pa.RecordBatch.from_arrays([pa.array([1, None], pa.int64()) if j == i else c for j, c in enumerate(batch.columns)], schema=schema)
    with pytest.raises(DataError, match="'seq' has null values"):
        Cleaner(ON, instruments(A)).clean(bad)


def test_clean_config_table_defaults_bounds_and_unknown_keys():
    cfg = parse_config({})
    assert cfg.clean == CleanConfig() and cfg.clean.enabled is False and cfg.clean.drop_crossed is False
    cfg = parse_config({"clean": {"enabled": True, "max_jump_pct": 5, "sigma_k": 0, "warmup": 10, "max_backward_ns": 1000}})
    assert (cfg.clean.enabled, cfg.clean.max_jump_pct, cfg.clean.sigma_k, cfg.clean.warmup, cfg.clean.max_backward_ns) == (True, 5.0, 0.0, 10, 1000)
    for bad, needle in [({"max_jump": 5}, "unknown key 'clean.max_jump'"), ({"sigma_halflife": 0}, "'clean.sigma_halflife' must be > 0"),
                        ({"confirm_trades": 1}, "'clean.confirm_trades' must be ≥ 2"), ({"warmup": 2.5}, "must be an integer"),
                        ({"drop_crossed": "sometimes"}, "must be true or false"), ({"max_backward_ns": -1}, "must be ≥ 0")]:
        with pytest.raises(ConfigError) as e:
            parse_config({"clean": bad}, name="sq.toml")
        assert needle in e.value.message and e.value.status == 78


# ----------------------------------------------------------------------------------------------
# however the input is cut


def levels(state, s):
    """Every live level of symbol id `s` in a BookState, both sides, best first, and the snapshot flag."""
    out = []
    for side, count in ((1, book.I_NB), (-1, book.I_NA)):
        n = int(state.ist[s, count])
        ticks, qtys = np.zeros(n, np.int64), np.zeros(n)
        book.top_levels(state.qbuf, state.ist, s, side, n, ticks, qtys)
        out.append(list(zip(ticks.tolist(), qtys.tolist())))
    return out, int(state.ist[s, book.I_INSNAP])


@st.composite
def streams(draw):
    """Random two-symbol streams on a coarse grid (crossed books happen), with bad rows."""
    n = draw(st.integers(1, 120))
    rows, seq, ts = [], 1, {A: 0, B: 0}
    sym = A
    for _ in range(n):
        if draw(st.integers(0, 3)) == 0:  # a new message, maybe of the other symbol
            seq += 1
            sym = draw(st.sampled_from((A, B)))
        ts[sym] += draw(st.sampled_from((0, 0, 1, 5, -3)))
        kind = draw(st.sampled_from((L, L, L, L, T, T, C, E)))
        px = draw(st.sampled_from((95.0, 97.0, 98.0, 99.0, 100.0, 101.0, 102.0, 103.0, 105.0, 150.0, 0.0, -1.0)))
        qty = draw(st.sampled_from((0.0, 1.0, 2.0, 5.0, -1.0)))
        side = draw(st.sampled_from((1, -1)))
        rows.append((ts[sym], sym, kind, side, px if kind in (L, T) else 0.0, qty if kind in (L, T) else 0.0, seq))
    cuts = draw(st.lists(st.integers(1, max(1, n - 1)), max_size=6))
    return rows, cuts


CFG = replace(ON, max_jump_pct=3.0, sigma_k=2.0, warmup=2, sigma_halflife=3.0, confirm_trades=2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.booleans())
def test_the_result_does_not_depend_on_how_the_input_is_cut(stream, drop):
    rows, cuts = stream
    cfg = replace(CFG, drop_crossed=drop)
    whole, c1 = run(rows, cfg)
    cut, c2 = run(rows, cfg, cuts=cuts)
    assert cut == whole
    assert c2.counts == c1.counts and c2.kept == c1.kept == len(whole) and c2.crossed_messages == c1.crossed_messages
    assert c1.kept + sum(c1.counts.values()) == len(rows)
    # the cleaner's book agrees with sq book's kernel over the kept rows
    bs = BookStream(instruments(A, B), depth=1)
    if whole:
        bs.process(market_rows([(r["ts"], r["symbol"], r["kind"], r["side"], r["price"], r["qty"], r["seq"]) for r in whole], [A, B]))
    bs.finish()
    crossed = bs.counts["locked"] + bs.counts["crossed"]
    assert crossed == (0 if drop else c1.crossed_messages)
    for sym in bs.registry.symbols:
        assert levels(c2.book, c2.registry.id(sym)) == levels(bs.state, bs.registry.id(sym))
    assert bs.counts["backwards"] == 0 and c1.counts["price"] == sum(1 for r in rows if r[2] in (L, T) and r[4] <= 0)
