"""`sq backtest`: the command contract (README: Exit codes) on SIM data and hand-made streams."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from tests.support.marketdata import market_rows

KEYS = {"strategy", "symbols", "events", "orders", "fills", "position", "pnl", "max_drawdown", "sharpe", "fill_ratio",
        "rejections", "elapsed_s", "events_per_s"}


def _write(table: pa.Table, path) -> str:
    md = dict(table.schema.metadata or {})
    md[S.META_END] = b"ok"
    pq.write_table(table.replace_schema_metadata(md), path)
    return str(path)


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    from sq.venues.sim.venue import SimVenue

    v = SimVenue(["SIM:DEMO"], seed=11)
    table = pa.Table.from_batches(list(v.market_source(limit=30_000).batches()))
    return _write(table, tmp_path_factory.mktemp("bt") / "demo.parquet")


@pytest.fixture
def levels_only(tmp_path):
    rows = [(1_000 + i, "SIM:Q", S.LEVEL, 1 if i % 2 else -1, 100.0 if i % 2 else 100.5, 5.0 + i, i + 1) for i in range(50)]
    return _write(pa.Table.from_batches([market_rows(rows, ["SIM:Q"], tick=0.5)]), tmp_path / "levels.parquet")


def doc(r):
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("strategy", ["mm", "lt"])
def test_json_document(sq, sim_file, strategy):
    d = doc(sq(["backtest", "--strategy", strategy, sim_file, "--param", "clip=2", "--json"]))
    assert KEYS <= set(d)
    assert d["strategy"] == strategy and d["symbols"] == ["SIM:DEMO"] and d["events"] == 30_000
    assert set(d["pnl"]) >= {"realized", "unrealized", "total", "fees"}
    # each amount is rounded on its own to the money grid (SIM:DEMO: cents), so the sum may be a cent off
    assert d["pnl"]["total"] == pytest.approx(d["pnl"]["realized"] + d["pnl"]["unrealized"], abs=0.0101)
    assert d["orders"] > 0 and d["fills"] > 0 and 0 < d["fill_ratio"] <= 1
    assert d["events_per_s"] > 0 and d["elapsed_s"] > 0
    assert all(isinstance(v, int) for v in d["rejections"].values())


def test_json_has_the_parameters_used_iso_times_and_rounded_money(sq, sim_file, tmp_path):
    import re

    from sq.core.streams import open_input
    from sq.core.environment import Environment
    from sq.core.summary import decimals

    cfg = tmp_path / "sq.toml"
    cfg.write_text('[[instruments]]\nsymbol = "SIM:DEMO"\nthreshold = 0.4\n')
    d = doc(sq(["--config", str(cfg), "backtest", "-s", "lt", sim_file, "--param", "clip=2", "--json"]))
    used = d["params"]["SIM:DEMO"]
    assert used["clip"] == 2 and used["threshold"] == 0.4 and used["max_position"] > 0  # --param, config, default
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    assert iso.match(d["started"]) and iso.match(d["ended"])
    inst = open_input(Environment(), [sim_file], "market").instruments["SIM:DEMO"]
    money = max(2, min(8, decimals(inst.tick_size * inst.lot_size)))
    amounts = list(d["pnl"].values()) + [d["max_drawdown"], d["turnover"]] + list(d["per_symbol"]["SIM:DEMO"].values())
    assert any(v != int(v) for v in amounts)  # not all whole numbers: the check below means something
    for v in amounts:
        assert v is None or round(v, money + 2) == v, v  # avg_price keeps two more decimals than the tick
    for k in ("realized", "unrealized", "total", "fees", "turnover"):
        assert round(d["per_symbol"]["SIM:DEMO"][k], money) == d["per_symbol"]["SIM:DEMO"][k]


def test_journal_files_in_canonical_schemas(sq, sim_file, tmp_path):
    out = tmp_path / "j"
    d = doc(sq(["backtest", "-s", "mm", sim_file, "--journal", str(out), "--json", "--latency", "5ms", "--queue-model", "prob"]))
    orders = pl.read_parquet(out / "orders.parquet")
    fills = pl.read_parquet(out / "fills.parquet")
    pnl = pl.read_parquet(out / "pnl.parquet")
    assert orders.columns == [f.name for f in S.ORDERS_FIELDS]
    assert fills.columns == [f.name for f in S.FILLS_FIELDS]
    assert pnl.columns == [f.name for f in S.PNL_FIELDS]
    assert orders.filter(pl.col("event") == "new").height == d["orders"]
    assert fills.height == d["fills"]
    assert set(orders["event"]) <= set(S.ORDER_EVENTS)
    assert pq.read_schema(out / "orders.parquet").metadata[S.META_STREAM] == b"orders"
    assert pnl["position"][-1] == d["position"]["SIM:DEMO"]
    assert not list(out.glob(".*.tmp"))


def test_param_for_one_symbol_and_config_instruments(sq, sim_file, tmp_path):
    cfg = tmp_path / "sq.toml"
    cfg.write_text('[[instruments]]\nsymbol = "SIM:DEMO"\nclip = 3\nmax_position = 50\n')
    out = tmp_path / "j"
    doc(sq(["--config", str(cfg), "backtest", "-s", "mm", sim_file, "--journal", str(out), "--json"]))
    assert set(pl.read_parquet(out / "orders.parquet").filter(pl.col("event") == "new")["qty"]) == {3.0}
    doc(sq(["--config", str(cfg), "backtest", "-s", "mm", sim_file, "--journal", str(out), "--json", "--param", "SIM:DEMO.clip=4"]))
    assert set(pl.read_parquet(out / "orders.parquet").filter(pl.col("event") == "new")["qty"]) == {4.0}


def test_terminal_summary_table(sq, sim_file):
    r = sq(["backtest", "-s", "mm", sim_file], stdout_isatty=True, width=120)
    assert r.exit_code == 0, r.stderr
    text = r.stdout.decode()
    for label in ("PnL total", "position", "fills", "fill ratio", "max drawdown", "Sharpe", "turnover", "fees",
                  "risk rejections", "events/s"):
        assert label in text


def test_unknown_strategy_is_usage_error(sq, sim_file):
    r = sq(["backtest", "--strategy", "arb", sim_file])
    assert r.exit_code == 2 and "mm" in r.stderr and "lt" in r.stderr


def test_unknown_parameter_lists_valid_ones(sq, sim_file):
    r = sq(["backtest", "-s", "mm", sim_file, "--param", "clp=2"])
    assert r.exit_code == 2
    assert "clp" in r.stderr and "clip" in r.stderr and "max_position" in r.stderr


@pytest.mark.parametrize("param,name,allowed", [("clip=0", "clip", "> 0"), ("threshold=-1", "threshold", "≥ 0"),
                                               ("SIM:DEMO.ioc=3", "SIM:DEMO.ioc", "one of 0, 1")])
def test_parameter_out_of_its_declared_range_is_a_usage_error(sq, sim_file, param, name, allowed):
    r = sq(["backtest", "-s", "mm", sim_file, "--param", param])
    assert r.exit_code == 2 and name in r.stderr and allowed in r.stderr


def test_config_value_out_of_range_is_a_config_error(sq, sim_file, tmp_path, monkeypatch):
    cfg = tmp_path / "sq.toml"
    cfg.write_text('[[instruments]]\nsymbol = "SIM:DEMO"\nclip = 0\n')
    monkeypatch.setenv("SQ_CONFIG", str(cfg))
    r = sq(["backtest", "-s", "mm", sim_file])
    assert r.exit_code == 78 and "instruments[SIM:DEMO].clip" in r.stderr


def test_lt_without_trades_warns(sq, levels_only):
    r = sq(["backtest", "-s", "lt", levels_only, "--json"])
    assert r.exit_code == 0, r.stderr
    assert "no trades" in r.stderr
    assert json.loads(r.stdout)["orders"] == 0


def test_not_a_market_stream_is_data_error(sq, sim_file, tmp_path):
    out = tmp_path / "j"
    doc(sq(["backtest", "-s", "mm", sim_file, "--journal", str(out), "--json"]))
    r = sq(["backtest", "-s", "mm", str(out / "fills.parquet")])
    assert r.exit_code == 65 and "market" in r.stderr
    junk = tmp_path / "junk.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), junk)
    assert sq(["backtest", "-s", "mm", str(junk)]).exit_code == 65


def test_missing_input(sq, tmp_path):
    assert sq(["backtest", "-s", "mm", str(tmp_path / "nope.parquet")]).exit_code == 66


def test_help_has_examples(sq):
    r = sq(["backtest", "--help"])
    assert r.exit_code == 0 and b"sq backtest --strategy" in r.stdout


def test_progress_on_a_terminal_stderr_keeps_stdout_clean(sq, sim_file):
    r = sq(["backtest", "-s", "mm", sim_file, "--json"], stderr_isatty=True)
    assert r.exit_code == 0
    assert KEYS <= set(json.loads(r.stdout))


def test_seeded_latency_distribution_is_reproducible(sq, sim_file, tmp_path):
    args = ["backtest", "-s", "mm", sim_file, "--json", "--latency", "2ms", "--latency-dist", "exponential", "--latency-jitter", "3ms"]
    runs = [doc(sq(args + ["--seed", str(s), "--journal", str(tmp_path / f"j{k}")])) for k, s in enumerate((1, 1, 2))]
    a, b, c = (pl.read_parquet(tmp_path / f"j{k}" / "orders.parquet") for k in range(3))
    assert a.equals(b) and runs[0]["pnl"] == runs[1]["pnl"]
    assert not a.equals(c)


def test_bad_fill_options_are_usage_errors(sq, sim_file):
    assert sq(["backtest", "-s", "mm", sim_file, "--queue-model", "fifo"]).exit_code == 2
    assert sq(["backtest", "-s", "mm", sim_file, "--latency", "soon"]).exit_code == 2


@pytest.mark.parametrize("queue_model", ["risk-averse", "prob"])
def test_fills_are_whole_lots_under_fractional_queue_estimates(sq, sim_file, tmp_path, queue_model):
    import polars as pl

    journal = tmp_path / f"j-{queue_model}"
    r = sq(["backtest", "--strategy", "mm", sim_file, "--queue-model", queue_model, "--param", "clip=3", "--journal", str(journal)])
    assert r.exit_code == 0, r.stderr
    fills = pl.read_parquet(journal / "fills.parquet")
    assert fills.height > 0
    assert ((fills["qty"] - fills["qty"].round(0)).abs() < 1e-9).all(), fills["qty"].to_list()


def test_inputs_that_would_do_nothing_say_so(sq, sim_file, tmp_path):
    """#14: a --param for a symbol the input lacks is exit 2; a clip below the lot, an order-book
    strategy over trades only, and config instruments the input lacks are warnings."""
    r = sq(["backtest", "-s", "mm", sim_file, "--param", "SIM:NOPE.clip=2"])
    assert r.exit_code == 2 and "--param SIM:NOPE.clip: SIM:NOPE is not in the input" in r.stderr
    r = sq(["backtest", "-s", "mm", sim_file, "--param", "clip=0.4", "--json"])
    assert r.exit_code == 0 and "clip 0.4 is below the lot size 1; its orders round down to nothing" in r.stderr
    assert json.loads(r.stdout)["orders"] == 0
    import polars as pl

    trades = tmp_path / "trades.parquet"
    pl.read_parquet(sim_file).filter(pl.col("kind") == 2).write_parquet(trades)
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(trades).replace_schema_metadata(pq.read_schema(sim_file).metadata), trades)
    r = sq(["backtest", "-s", "mm", str(trades), "--json"])
    assert r.exit_code == 0 and "the input has no order book (trades or ticks only): strategy mm acts only on book updates" in r.stderr
    cfg = tmp_path / "sq.toml"
    cfg.write_text('[[instruments]]\nsymbol = "SIM:ELSEWHERE"\nclip = 1\n')
    r = sq(["--config", str(cfg), "backtest", "-s", "mm", sim_file, "--json"])
    assert r.exit_code == 0 and "config instruments not in the input (their settings do nothing in this run): SIM:ELSEWHERE" in r.stderr


def test_json_carries_the_trader_metrics(sq, sim_file):
    """docs/metrics.md: every key, `sharpe` the annualised one, the basis stated; a SIM run (24/7)
    annualises over 365 days, and `--returns-basis` picks the period."""
    from sq.core.analytics import KEYS as METRICS

    d = doc(sq(["backtest", "--strategy", "mm", sim_file, "--json"]))
    m = d["metrics"]
    assert tuple(m) == METRICS
    assert m["basis"] == "annualised from daily returns, 365/yr" and m["periods_per_year"] == 365
    assert m["sharpe"] is None and d["sharpe"] is None  # 30,000 SIM events span far less than two days
    assert m["capital"] == 1_000_000 and m["return_on_capital"] == pytest.approx(d["pnl"]["net"] / 1e6, abs=1e-6)
    assert m["round_trips"] > 0 and 0 <= m["win_rate"] <= 1 and m["fill_ratio"] == d["fill_ratio"]
    assert m["markout_1s_bps"] is not None and m["spread_capture_bps"] is not None and 0 < m["exposure"] <= 1
    d = doc(sq(["backtest", "--strategy", "mm", sim_file, "--json", "--returns-basis", "1s"]))
    assert d["metrics"]["periods_per_year"] == 365 * 86400 and d["sharpe"] == d["metrics"]["sharpe"] is not None


def test_a_bad_returns_basis_is_a_usage_error(sq, sim_file):
    r = sq(["backtest", "--strategy", "mm", sim_file, "--returns-basis", "2d"])
    assert r.exit_code == 2 and "--returns-basis" in r.stderr
    r = sq(["backtest", "--strategy", "mm", sim_file, "--returns-basis", "1h", "--sweep", "clip=1,2"])
    assert r.exit_code == 2 and "[research] returns_basis" in r.stderr


def test_the_table_prints_the_metrics_with_their_basis(sq, sim_file):
    r = sq(["backtest", "--strategy", "mm", sim_file], stdout_isatty=True, width=200)
    assert r.exit_code == 0, r.stderr
    text = r.stdout.decode()
    assert "Sharpe" in text and "shorter than two basis periods" in text and "365/yr" in text
    assert "round trips" in text and "markouts 1s / 10s / 60s" in text
