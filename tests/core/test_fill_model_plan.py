"""The paper fill model's `fill_probability` and `slippage_model` (the plan's trading.json sets them):
seeded, reproducible, never past an order's limit, and off by default."""

from __future__ import annotations

import polars as pl
import pytest

from sq.core import schemas as S
from sq.core.config import Config
from sq.core.engine import Engine, FillModelConfig
from sq.core.exits import UsageError
from sq.strategy import BUY, IOC, Strategy
from tests.support.marketdata import market_rows

SYM = "SIM:T"
INST = {SYM: S.Instrument(SYM, "sim", 1.0, 1.0)}
N = 300  # book updates after the snapshot: N + 1 book messages, one IOC each
ORDERS = N + 1

taker = Strategy("taker5", "buy one IOC 5 ticks through the ask on every book message")


@taker.on_book
def on_book(ctx, s):
    if ctx.has_ask(s):
        ctx.order(s, BUY, ctx.ask(s) + 5, 1.0, IOC)


def rows():
    out = [(1_000, SYM, S.CLEAR, 0, 0.0, 0.0, 1), (1_000, SYM, S.LEVEL, 1, 100.0, 1e6, 1),
           (1_000, SYM, S.LEVEL, -1, 101.0, 1e6, 1), (1_000, SYM, S.SNAPSHOT_END, 0, 0.0, 0.0, 1)]
    out += [(2_000 + i, SYM, S.LEVEL, 1, 100.0, 1e6 - i, 2 + i) for i in range(N)]
    return out


def fills(seed=0, **fill) -> pl.DataFrame:
    f = FillModelConfig(**{"order_latency_ns": 0, "feed_latency_ns": 0, "maker_fee_bps": 0.0, "taker_fee_bps": 0.0, **fill})
    e = Engine(taker, INST, {SYM: {"max_order_size": 10.0, "max_position": 1e9, "max_loss": 1e12}}, config=Config(), fill=f, seed=seed)
    outs = [e.process(market_rows(rows(), [SYM], tick=1.0), complete=True), e.finish()]
    return pl.concat([pl.from_arrow(o.fills) for o in outs])


def test_defaults_fill_every_order_at_the_touch():
    f = fills()
    assert f.height == ORDERS and set(f["price"].to_list()) == {101.0}


def test_fill_probability_misses_fills_reproducibly():
    f = fills(seed=3, fill_probability=0.3)
    assert 0.15 * ORDERS < f.height < 0.45 * ORDERS
    assert f.equals(fills(seed=3, fill_probability=0.3))  # the same seed, the same fills
    assert not f.equals(fills(seed=4, fill_probability=0.3))


@pytest.mark.parametrize("ticks, want", [(2.0, 103.0), (9.0, 106.0)])  # the limit (ask + 5) caps it
def test_fixed_slippage_moves_taker_fills_against_the_order_but_never_past_its_limit(ticks, want):
    f = fills(slippage_model="fixed", slippage_ticks=ticks)
    assert f.height == ORDERS and set(f["price"].to_list()) == {want}


def test_normal_and_pareto_slippage_are_seeded_spreads_of_whole_ticks():
    for model in ("normal", "pareto"):
        f = fills(seed=1, slippage_model=model, slippage_ticks=1.0)
        slips = (f["price"] - 101.0).to_list()
        assert f.height == ORDERS and min(slips) == 0.0 and max(slips) >= 1.0 and max(slips) <= 5.0
        assert all(float(x).is_integer() for x in slips)
        assert f.equals(fills(seed=1, slippage_model=model, slippage_ticks=1.0))
    normal = (fills(seed=1, slippage_model="normal", slippage_ticks=1.0)["price"] - 101.0).mean()
    assert 0.5 < normal < 1.2  # E|N(0,1)| ≈ 0.80 before rounding


@pytest.mark.parametrize("bad", [{"fill_probability": 0.0}, {"fill_probability": 1.5}, {"slippage_model": "gaussian"},
                                 {"slippage_ticks": -1.0}])
def test_bad_fill_model_values_are_usage_errors(bad):
    with pytest.raises(UsageError):
        FillModelConfig(**bad).validate()


def test_the_simulated_venues_random_stream_is_uniform():
    """The seeded draws behind latency jitter, fill probability and slippage: uniform on (0, 1)
    (an earlier signed-integer version clustered near 0 and filled 62% of orders at p = 0.3)."""
    import numpy as np

    from sq.core.engine import fills as X
    from sq.core.engine import layout as L

    g = np.zeros(L.NG, np.int64)
    g[L.G_RNG] = 12345
    u = np.array([X._next_u01(g) for _ in range(50_000)])
    assert 0.0 < u.min() and u.max() < 1.0
    counts = np.histogram(u, 10, (0.0, 1.0))[0]
    assert counts.min() > 4_500 and counts.max() < 5_500
    assert abs(u.mean() - 0.5) < 0.01


def test_feed_latency_comes_from_the_config_and_the_flag_overrides_it(tmp_path):
    """`[paper_trading] feed_latency_ms` sets a fixed market-data delay (unset: each event's own
    recv_ts − ts); `--feed-latency` (an override) wins, and its `data` means the data's delays."""
    from sq.core.config import load_config
    from sq.core.environment import Environment

    cfg = tmp_path / "sq.toml"
    cfg.write_text("[paper_trading]\nfeed_latency_ms = 50\n")
    with_key = load_config(Environment(), environ={"SQ_CONFIG": str(cfg)})
    assert FillModelConfig.from_config(with_key).feed_latency_ns == 50_000_000
    assert FillModelConfig.from_config(with_key, feed_latency_ns="data").feed_latency_ns is None
    assert FillModelConfig.from_config(with_key, feed_latency_ns=1_000_000).feed_latency_ns == 1_000_000
    assert FillModelConfig.from_config(Config()).feed_latency_ns is None
    # and it changes what the engine does: the taker's fills arrive later against a moving book
    late = fills(feed_latency_ns=FillModelConfig.from_config(with_key).feed_latency_ns)
    assert late["ts"].to_list() != fills()["ts"].to_list()
