"""`sq backtest` under a config in the original plan's `trading.json` layout: `risk.max_position_value`
refuses orders over it (`position_value_too_large`), and the plan's latency range is the fill
model's uniform latency (a different latency, different fills)."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    from sq.venues.sim.venue import SimVenue

    v = SimVenue(["SIM:DEMO"], seed=11)
    table = pa.Table.from_batches(list(v.market_source(limit=20_000).batches()))
    md = dict(table.schema.metadata or {})
    md[S.META_END] = b"ok"
    path = tmp_path_factory.mktemp("plan") / "demo.parquet"
    pq.write_table(table.replace_schema_metadata(md), path)
    return str(path)


def plan_config(tmp_path, monkeypatch, *, risk=None, paper=None) -> None:
    text = "// the plan's layout, on the simulated exchange\n" + json.dumps({
        "trading_mode": "PAPER",
        "exchange": "SIM",
        "zerodha": {"paper_trading": paper or {"fill_probability": 1, "slippage_model": "BOOK"}},
        "instruments": [{"symbol": "DEMO", "exchange": "SIM", "clip": 2, "threshold": 0.6, "max_position": 100, "max_loss": 1e9}],
        "risk": {"max_daily_loss": 1e9, **(risk or {})},
    }, indent=2)
    p = tmp_path / "trading.json"
    p.write_text(text)
    os.chmod(p, 0o600)
    monkeypatch.setenv("SQ_CONFIG", str(p))


def run(sq, sim_file) -> dict:
    r = sq(["backtest", "--strategy", "mm", sim_file, "--json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_max_position_value_refuses_orders_over_it(sq, sim_file, tmp_path, monkeypatch):
    plan_config(tmp_path, monkeypatch, risk={"max_position_value": 1e12})
    free = run(sq, sim_file)
    assert free["orders"] > 0 and free["fills"] > 0 and "position_value_too_large" not in free["rejections"]
    plan_config(tmp_path, monkeypatch, risk={"max_position_value": 1.0})  # below any order's value
    capped = run(sq, sim_file)
    assert capped["rejections"]["position_value_too_large"] > 0 and capped["fills"] == 0


def test_the_plans_latency_range_reaches_the_fill_model(sq, sim_file, tmp_path, monkeypatch):
    plan_config(tmp_path, monkeypatch, paper={"min_latency_ms": 20, "max_latency_ms": 20})
    constant = run(sq, sim_file)
    plan_config(tmp_path, monkeypatch, paper={"min_latency_ms": 1, "max_latency_ms": 400})
    ranged = run(sq, sim_file)
    assert constant["orders"] > 0 and ranged["orders"] > 0
    assert (ranged["fills"], ranged["pnl"]) != (constant["fills"], constant["pnl"])
    r = sq(["backtest", "--strategy", "mm", sim_file, "--json", "--latency", "20ms", "--latency-dist", "constant", "--latency-jitter", "0"])
    assert json.loads(r.stdout)["fills"] == constant["fills"]  # the flags override the config
