"""`sq backtest --sweep` (a grid of backtests on a process pool) and `--report FILE.html`."""

from __future__ import annotations

import io
import json
import re

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from sq.runs.report import count, money
from sq.core.strategy.loader import load
from sq.runs.sweep import MAX_POINTS, parse_axis
from tests.support.htmlreport import assert_self_contained, figures, parse, values
from tests.support.process import ROOT, ipc_bytes

SAME = ("events", "orders", "cancels", "fills", "position", "pnl", "per_symbol", "max_drawdown", "sharpe", "fill_ratio",
        "turnover", "rejections", "halted")


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    from sq.venues.sim.venue import SimVenue

    v = SimVenue(["SIM:DEMO"], seed=5)
    table = pa.Table.from_batches(list(v.market_source(limit=20_000).batches()))
    md = dict(table.schema.metadata or {})
    md[S.META_END] = b"ok"
    path = tmp_path_factory.mktemp("sweep") / "demo.parquet"
    pq.write_table(table.replace_schema_metadata(md), path)
    return str(path)


def doc(r):
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def single(sq, data, *params, strategy="mm"):
    args = ["backtest", "-s", strategy, data, "--json"]
    for p in params:
        args += ["--param", p]
    return doc(sq(args))


# -- grid syntax


@pytest.mark.parametrize("spec,values", [
    ("clip=1:5:2", (1.0, 3.0, 5.0)), ("clip=1:6:2", (1.0, 3.0, 5.0)), ("threshold=0.1:0.3:0.1", (0.1, 0.2, 0.3)),
    ("max_position=5,10,20", (5.0, 10.0, 20.0)), ("sim:demo.CLIP=2,3", (2.0, 3.0)), ("threshold=0.7", (0.7,)),
])
def test_axis_values(spec, values):
    axis = parse_axis(spec, load("mm"))
    assert axis.values == values
    assert axis.key == ("SIM:DEMO.clip" if spec.startswith("sim:") else spec.split("=")[0])


@pytest.mark.parametrize("sweep,words", [
    (["clip=1:2"], "a:b:step"), (["clip=1:x:1"], "not a number"), (["clip=1:3:0"], "step"), (["clip=1:3:-1"], "step"),
    (["clip=2:2:1"], "k=v"), (["clip=3:1:1"], "a < b"), (["clp=1:3:1"], "clip"), (["clip"], "k=a:b:step"),
    ([f"clip=1:{MAX_POINTS + 1}:1"], f"{MAX_POINTS:,}"), (["clip=1:200:1", "threshold=0:99:1"], "grid points"),
    (["clip=1,2", "clip=3,4"], "twice"), (["clip=1,,2"], "empty"), (["clip=1,1"], "twice"),
])
def test_bad_sweeps_are_one_line_usage_errors(sq, sim_file, sweep, words):
    args = ["backtest", "-s", "mm", sim_file]
    for s in sweep:
        args += ["--sweep", s]
    r = sq(args)
    assert r.exit_code == 2, r.stderr
    assert len(r.stderr_lines) == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == b""


def test_sweep_conflicts(sq, sim_file, tmp_path):
    r = sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2", "--param", "clip=3"])
    assert r.exit_code == 2 and "both swept" in r.stderr
    r = sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2", "--journal", str(tmp_path / "j")])
    assert r.exit_code == 2 and "--journal" in r.stderr
    assert sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2", "--jobs", "0"]).exit_code == 2
    r = sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=0,1"])  # out of its declared range, as with --param
    assert r.exit_code == 2 and "clip" in r.stderr and "> 0" in r.stderr


# -- results


def test_points_equal_single_runs_in_process(sq, sim_file):
    d = doc(sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,3", "--sweep", "threshold=0.3:0.9:0.6",
                "--param", "max_position=6", "--jobs", "1", "--json"]))
    assert d["points"] == 4 and d["jobs"] == 1 and len(d["runs"]) == 4
    assert [r["params"] for r in d["runs"]] == [{"clip": c, "threshold": t} for c in (1.0, 3.0) for t in (0.3, 0.9)]
    assert len({r["pnl"]["total"] for r in d["runs"]}) > 1  # the parameters matter
    for r in (d["runs"][0], d["runs"][3]):
        one = single(sq, sim_file, "max_position=6", f"clip={r['params']['clip']}", f"threshold={r['params']['threshold']}")
        assert r["orders"] > 0
        assert {k: r[k] for k in SAME} == {k: one[k] for k in SAME}  # rounded alike: the same numbers
        assert {k: one["params"]["SIM:DEMO"][k] for k in ("clip", "threshold", "max_position")} == dict(r["params"], max_position=6)
    assert d["started"].endswith("Z") and d["started"] <= d["ended"]
    best = max(d["runs"], key=lambda r: r["pnl"]["total"])
    assert d["best"]["params"] == best["params"] and d["best"]["pnl_total"] == best["pnl"]["total"]


def test_pool_equals_in_process_and_loads_once_per_worker(sq, sim_file):
    args = ["backtest", "-s", "mm", sim_file, "--sweep", "SIM:DEMO.clip=1:3:1", "--sweep", "max_position=4,8", "--json"]
    pool = doc(sq(args + ["--jobs", "2"]))
    local = doc(sq(args + ["--jobs", "1"]))
    assert pool["jobs"] == 2 and pool["points"] == 6
    for a, b in zip(pool["runs"], local["runs"]):
        assert a["params"] == b["params"]
        assert {k: a[k] for k in SAME} == {k: b[k] for k in SAME}
    assert 1 <= len(pool["workers"]) <= 2 and sum(w["points"] for w in pool["workers"]) == 6
    assert pool["events_per_s"] > 0 and pool["points_per_s"] > 0
    one = single(sq, sim_file, "SIM:DEMO.clip=3", "max_position=8")
    assert {k: pool["runs"][-1][k] for k in SAME} == {k: one[k] for k in SAME}


def test_lt_sweep_on_the_recorded_fixture(sq):
    data = str(ROOT / "fixtures" / "sim-demo")
    d = doc(sq(["backtest", "-s", "lt", data, "--sweep", "threshold=0.4,1.2", "-j", "1", "--json"]))
    assert d["symbols"] == ["SIM:ALT", "SIM:DEMO"] and d["events"] == 40_000
    one = single(sq, data, "threshold=1.2", strategy="lt")
    assert {k: d["runs"][1][k] for k in SAME} == {k: one[k] for k in SAME}


def test_rows_on_a_pipe_and_to_files(sq, sim_file, tmp_path):
    args = ["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2,4", "-j", "1"]
    d = doc(sq(args + ["--json"]))
    r = sq(args)
    assert r.exit_code == 0, r.stderr
    t = ipc.open_stream(io.BytesIO(r.stdout)).read_all()
    assert t.num_rows == 3 and t.column("clip").to_pylist() == [1.0, 2.0, 4.0]
    assert t.column("pnl_total").to_pylist() == [x["pnl"]["total"] for x in d["runs"]]
    assert t.column("fills").to_pylist() == [x["fills"] for x in d["runs"]]
    assert t.column("position.SIM:DEMO").to_pylist() == [x["position"]["SIM:DEMO"] for x in d["runs"]]
    for k in ("sortino", "calmar", "round_trips", "win_rate", "profit_factor", "markout_1s_bps"):  # docs/metrics.md
        assert t.column(k).to_pylist() == [x["metrics"][k] for x in d["runs"]], k
    assert t.schema.field("round_trips").type == pa.int64() and all(x["metrics"]["round_trips"] > 0 for x in d["runs"])
    out = tmp_path / "grid.parquet"
    assert sq(args + ["-o", str(out)]).exit_code == 0
    assert pq.read_table(out).column("orders").to_pylist() == [x["orders"] for x in d["runs"]]
    lines = sq(args + ["--format", "jsonl"]).stdout.decode().splitlines()
    assert [json.loads(x)["max_drawdown"] for x in lines] == [x["max_drawdown"] for x in d["runs"]]


def test_terminal_table_sorted_by_pnl(sq, sim_file):
    d = doc(sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2,4", "-j", "1", "--json"]))
    r = sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2,4", "-j", "1"], stdout_isatty=True, width=200)
    assert r.exit_code == 0, r.stderr
    text = r.stdout.decode()
    ranked = sorted(d["runs"], key=lambda x: -x["pnl"]["total"])
    where = [text.index(f"{x['pnl']['total']:,.4f}") for x in ranked]
    assert where == sorted(where) and "PnL total" in text


# -- reports


def test_report_of_one_run(sq, sim_file, tmp_path):
    out = tmp_path / "run.html"
    r = sq(["backtest", "-s", "mm", sim_file, "--param", "clip=2", "--report", str(out), "--json", "--journal", str(tmp_path / "j")])
    d = doc(r)
    assert "report written" in r.stderr
    _, text = parse(out)
    assert_self_contained(out)
    for number in (money(d["pnl"]["total"]), money(d["pnl"]["realized"]), money(d["pnl"]["fees"]), money(d["max_drawdown"]),
                   count(d["orders"]), count(d["fills"]), count(d["events"]), money(d["fill_ratio"])):
        assert number in text, number
    for reason, n in d["rejections"].items():
        assert reason in text and count(n) in text
    assert "SIM:DEMO" in text and "Equity curve" in text and "drawdown" in text and "Position" in text
    figs = figures(out)
    assert [f["layout"]["title"]["text"] for f in figs] == ["Equity and drawdown", "Position per symbol", "SIM:DEMO: price, fills and quotes",
                                                          "Markouts: mean move of the mid in the fill's favour"]
    price = {t["name"]: t for t in figs[2]["data"]}
    assert len(values(price["buy fills"]["x"])) + len(values(price["sell fills"]["x"])) == d["fills"]  # every fill drawn (few enough: no thinning)
    fills = pq.read_table(tmp_path / "j" / "fills.parquet").drop_columns(["ts"]).to_pylist()
    assert fills and len(fills) == d["fills"]
    for f in fills[:3]:
        assert f"{f['trade_id']}" in text and f"{f['price']:g}" in text
    assert sorted(x.name for x in tmp_path.iterdir()) == ["j", "run.html"]  # no temp file left


def test_report_of_a_two_parameter_sweep(sq, sim_file, tmp_path):
    out = tmp_path / "sweep.html"
    d = doc(sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2", "--sweep", "threshold=0.2,0.6,1",
                "-j", "1", "--report", str(out), "--json"]))
    _, text = parse(out)
    assert_self_contained(out)
    assert "Total PnL over the grid" in text and "best point" in text
    heat = [t for f in figures(out) for t in f["data"] if t["type"] == "heatmap"]
    assert len(heat) == 1 and len(heat[0]["z"]) == 3 and all(len(r) == 2 for r in heat[0]["z"])  # threshold rows × clip columns
    z = {(x, y): heat[0]["z"][j][i] for j, y in enumerate(heat[0]["y"]) for i, x in enumerate(heat[0]["x"])}
    for run in d["runs"]:
        assert z[(f"{run['params']['clip']:g}", f"{run['params']['threshold']:g}")] == pytest.approx(run["pnl"]["total"])
    for run in d["runs"]:
        assert money(run["pnl"]["total"]) in text
    best = d["best"]["params"]
    assert f"clip={best['clip']:g} threshold={best['threshold']:g}" in text


def test_report_target_checked_before_the_run(sq, sim_file, tmp_path):
    r = sq(["backtest", "-s", "mm", sim_file, "--report", str(tmp_path / "nope" / "r.html")])
    assert r.exit_code == 66 and "nope" in r.stderr and r.stdout == b""
    assert sq(["backtest", "-s", "mm", sim_file, "--report", str(tmp_path)]).exit_code == 2


def test_one_run_as_a_results_row(sq, sim_file, tmp_path):
    d = single(sq, sim_file, "clip=2")
    out = tmp_path / "one.parquet"
    assert sq(["backtest", "-s", "mm", sim_file, "--param", "clip=2", "-o", str(out)]).exit_code == 0
    t = pq.read_table(out)
    assert t.num_rows == 1 and t.column("pnl_total")[0].as_py() == d["pnl"]["total"]
    assert re.fullmatch(r"[\w.:]+", ",".join(t.column_names).replace(",", ""))


def test_stdin_is_spooled_for_the_pool(sq, sim_file):
    """Workers cannot re-read a pipe: the parent spools it to an Arrow file they each map."""
    t = pq.read_table(sim_file)
    data = ipc_bytes(t.to_batches(max_chunksize=4096), t.schema)
    args = ["backtest", "-s", "mm", "--sweep", "clip=1,2", "--json"]
    pool = doc(sq(args + ["--jobs", "2"], stdin=data))
    local = doc(sq(args + [sim_file, "--jobs", "1"]))
    assert pool["jobs"] == 2 and pool["events"] == t.num_rows
    for a, b in zip(pool["runs"], local["runs"]):
        assert a["fills"] > 0 and {k: a[k] for k in SAME} == {k: b[k] for k in SAME}
