"""`sq report RUN… [-o report.html]`: every kind of run (a paper journal, a backtest's --journal
DIR, a sweep's results file, a walk-forward's), two runs compared, the page's charts and tables,
mids derived from pnl rows, thinning, and bad input (one line, a documented exit status, an
existing -o file never damaged). The pages in a real browser: tests/e2e/test_report_browser.py."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from sq.runs import charts as C
from sq.runs.reportinputs import MARKS_FROM_COLUMN, MARKS_FROM_PNL, derived_marks
from tests.support.htmlreport import assert_self_contained, figures, parse, values
from tests.support.resultsfiles import report_inputs, write_sweep, write_wfo


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from tests.support.process import SqRunner

    return report_inputs(SqRunner(), tmp_path_factory.mktemp("report-inputs"))


def run(sq, *args):
    r = sq(["report", *map(str, args), "--json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def by_title(path) -> dict[str, dict]:
    return {f["layout"]["title"]["text"]: f for f in figures(path)}


# -- runs


def test_a_backtest_journal_reports_what_the_backtest_did(sq, inputs, tmp_path):
    out = tmp_path / "bt.html"
    doc = run(sq, inputs["bt"], "-o", out)
    (r,) = doc["runs"]
    s = inputs["bt_summary"]
    assert r["mode"] == "backtest" and r["fills"] == s["fills"] and r["orders"] == s["orders"]
    assert r["strategy"] == s["strategy"] == "mm"  # from the summary.json `sq backtest --journal` writes beside its files
    assert r["pnl"]["net"] == pytest.approx(s["pnl"]["total"], abs=1e-3)
    assert r["markouts"]["1s"]["bps"] is not None  # mids derived from the pnl rows
    assert_self_contained(out)
    _, text = parse(out)
    assert MARKS_FROM_COLUMN in text and "SIM:DEMO" in text  # the pnl rows' own mark column (docs/metrics.md)
    figs = by_title(out)
    price = {t["name"]: t for t in figs["SIM:DEMO: price, fills and quotes"]["data"]}
    fills = pq.read_table(inputs["bt"] / "fills.parquet")
    buys = int(np.sum(fills.column("side").to_numpy() == 1))
    assert len(values(price["buy fills"]["y"])) == buys and len(values(price["sell fills"]["y"])) == fills.num_rows - buys
    assert sorted(values(price["buy fills"]["y"]) + values(price["sell fills"]["y"])) == sorted(fills.column("price").to_pylist())
    equity = figs["Equity and drawdown"]["data"][0]
    assert values(equity["y"])[-1] == pytest.approx(s["pnl"]["total"], abs=1e-3)  # the curve ends at the run's PnL
    mk = figs["Markouts: mean move of the mid in the fill's favour"]["data"][0]
    assert values(mk["y"])[values(mk["x"]).index(1)] == pytest.approx(r["markouts"]["1s"]["bps"])


def test_a_paper_journal(sq, inputs, tmp_path):
    out = tmp_path / "paper.html"
    (r,) = run(sq, inputs["paper"], "-o", out)["runs"]
    assert r["mode"] == "paper" and r["sealed"] and r["orders"] > 0
    figs = by_title(out)
    names = {t["name"] for t in figs["SIM:DEMO: price, fills and quotes"]["data"]}
    assert {"bid quotes", "ask quotes"} <= names  # the paper journal's orders


def test_two_runs_side_by_side(sq, inputs, tmp_path):
    out = tmp_path / "cmp.html"
    doc = run(sq, inputs["bt"], inputs["bt2"], "-o", out)
    a, b = doc["runs"]
    assert doc["difference"]["fills"] == b["fills"] - a["fills"]
    _, text = parse(out)
    assert "B − A" in text and "Side by side" in text
    assert f"{b['pnl']['net'] - a['pnl']['net']:,.4f}" in text
    eq = by_title(out)["Equity and drawdown"]["data"]
    assert [t["name"] for t in eq] == ["backtest mm (bt) equity", "backtest mm (bt) drawdown", "backtest mm (bt2) equity", "backtest mm (bt2) drawdown"]


def test_the_summary_metrics_are_shown_key_by_key(sq, inputs, tmp_path):
    """A run summary's `metrics` dict (whatever keys it has) is a table with labels, and B − A."""
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(inputs["bt"], a)
    shutil.copytree(inputs["bt"], b)
    (a / "summary.json").write_text(json.dumps({"metrics": {"sharpe": 1.5, "max_drawdown_duration_s": 12.0, "markout_1s_bps": -0.5, "round_trips": 7}}))
    (b / "summary.json").write_text(json.dumps({"metrics": {"sharpe": 2.0, "max_drawdown_duration_s": 10.0, "new_thing": "x"}}))
    out = tmp_path / "m.html"
    doc = run(sq, a, b, "-o", out)
    assert doc["difference"]["metrics"] == {"sharpe": 0.5, "max_drawdown_duration_s": -2.0}
    _, text = parse(out)
    for label in ("Sharpe ratio", "max drawdown duration (s)", "markout 1s (bps)", "round trips", "new thing", "0.5000", "-2.0000"):
        assert label in text, label
    bare = tmp_path / "bare"  # a journal without a summary (every backtest summary has metrics: docs/metrics.md)
    shutil.copytree(inputs["bt"], bare)
    (bare / "summary.json").unlink(missing_ok=True)
    _, plain = parse(_write(sq, bare, tmp_path / "plain.html"))
    assert "Metrics" not in plain  # no metrics: no table


def _write(sq, what, out):
    assert sq(["report", str(what), "-o", str(out)]).exit_code == 0
    return out


# -- results files


def test_a_sweeps_results_file(sq, inputs, tmp_path):
    out = tmp_path / "sweep.html"
    doc = run(sq, inputs["sweep"], "-o", out)
    t = pq.read_table(inputs["sweep"])
    best = int(np.argmax(t.column("pnl_total").to_numpy()))
    assert doc["kind"] == "sweep" and doc["points"] == 6 and doc["swept"] == ["clip", "threshold"]
    assert doc["best"]["pnl_total"] == t.column("pnl_total")[best].as_py()
    (heat,) = [tr for f in figures(out) for tr in f["data"]]
    assert heat["type"] == "heatmap" and heat["x"] == ["1", "2"] and heat["y"] == ["0.2", "0.6", "1"]
    for row in t.to_pylist():
        assert heat["z"][heat["y"].index(f"{row['threshold']:g}")][heat["x"].index(f"{row['clip']:g}")] == pytest.approx(row["pnl_total"])


def test_one_swept_parameter_is_a_line_and_three_add_parallel_coordinates(sq, tmp_path):
    one = tmp_path / "one.html"
    run(sq, write_sweep(tmp_path / "one.parquet", {"clip": [3.0, 1.0, 2.0]}), "-o", one)
    (line,) = [tr for f in figures(one) for tr in f["data"]]
    assert line["type"] == "scatter" and values(line["x"]) == [1.0, 2.0, 3.0]
    three = tmp_path / "three.html"
    run(sq, write_sweep(tmp_path / "three.parquet", {"max_position": [5.0, 10.0], "clip": [1.0, 2.0, 3.0], "threshold": [0.2, 0.4]}), "-o", three)
    figs = figures(three)
    assert [f["data"][0]["type"] for f in figs] == ["heatmap", "parcoords"]
    # the made-up PnL moves with the first two keys: clip (×2) and max_position; threshold does not matter
    assert "clip" in figs[0]["layout"]["title"]["text"] and "threshold" not in figs[0]["layout"]["title"]["text"]


@pytest.mark.parametrize("kind,name", [("wfo", "wfo.parquet"), ("cv", "cv.arrow")])
def test_a_walk_forward_results_file(sq, tmp_path, kind, name):
    path = write_wfo(tmp_path / name, kind=kind, efficiency=None if kind == "cv" else 0.62)
    out = tmp_path / "wfo.html"
    doc = run(sq, path, "-o", out)
    t = pq.read_table(path) if name.endswith(".parquet") else pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    assert doc["kind"] == kind and doc["folds"] == 5 and doc["objective"] == "sharpe"
    assert doc["oos_pnl_total"] == pytest.approx(float(np.sum(t.column("oos_pnl_total").to_numpy())))
    figs = by_title(out)
    bars = figs["sharpe per fold: in-sample vs out-of-sample"]["data"]
    assert values(bars[1]["y"]) == pytest.approx(t.column("oos_objective").to_pylist())
    meta = json.loads(t.schema.metadata[b"sq.wfo"])
    eq = figs["Stitched out-of-sample equity"]["data"][0]
    assert values(eq["y"]) == pytest.approx(meta["oos_equity"]["equity"])
    assert {tr["name"] for tr in figs["Parameters chosen per fold"]["data"]} == {"clip", "threshold"}
    _, text = parse(out)
    assert "walk-forward efficiency" in text and ("0.6200" in text if kind == "wfo" else "—" in text)


# -- mids, markouts, thinning


def _pnl(rows, mark=None):
    t = pa.table({"ts": pa.array([r[0] for r in rows], pa.int64()).cast(pa.timestamp("ns", tz="UTC")), "symbol": [r[1] for r in rows],
                  "position": [r[2] for r in rows], "avg_price": [r[3] for r in rows], "realized": [0.0] * len(rows),
                  "unrealized": [r[4] for r in rows], "total": [r[4] for r in rows], "volume": [0.0] * len(rows)})
    return t.append_column("mark", pa.array(mark, pa.float64())) if mark is not None else t


def test_mids_from_pnl_rows():
    # long 2 at 100, unrealized +1 → mark 100.5; short 4 at 50, unrealized +2 → mark 49.5; flat: no mark
    marks, how = derived_marks(_pnl([(1, "X", 2.0, 100.0, 1.0), (2, "Y", -4.0, 50.0, 2.0), (3, "X", 0.0, 0.0, 0.0)]))
    assert how == MARKS_FROM_PNL and marks.column("mid").to_pylist() == [100.5, 49.5] and marks.column("symbol").to_pylist() == ["X", "Y"]
    marks, how = derived_marks(_pnl([(1, "X", 0.0, 0.0, 0.0)], mark=[101.0]))
    assert how == MARKS_FROM_COLUMN and marks.column("mid").to_pylist() == [101.0]  # a mark column is used as it is
    assert derived_marks(_pnl([(1, "X", 0.0, 0.0, 0.0)])) == (None, None)


def test_markouts_use_the_first_mid_after_the_horizon_and_not_a_stale_one():
    from sq.runs.compare import markouts

    ns = 1_000_000_000
    fills = pa.table({"ts": pa.array([0], pa.int64()), "symbol": ["X"], "side": pa.array([1], pa.int8()), "price": [100.0], "qty": [1.0]})
    marks = pa.table({"ts": pa.array([1 * ns, 2 * ns, 100 * ns], pa.int64()), "symbol": ["X"] * 3, "mid": [100.1, 100.2, 90.0]})
    m = markouts(fills, marks, (0.5, 1, 2, 10))
    assert m["0.5s"]["bps"] == pytest.approx(10.0) and m["1s"]["bps"] == pytest.approx(10.0) and m["2s"]["bps"] == pytest.approx(20.0)
    assert m["10s"] == {"per_unit": None, "bps": None, "fills": 0}  # the next mid is 90 s late: no markout at 10 s


def test_a_long_run_is_thinned(tmp_path, sq):
    """200,000 pnl rows and 50,000 fills: each line ≤ MAX_POINTS (+ bucket extremes), markers ≤ MAX_MARKERS."""
    d = tmp_path / "big"
    d.mkdir()
    n = 200_000
    rng = np.random.default_rng(1)
    ts = (np.arange(n, dtype=np.int64) + 1) * 1_000_000
    pos = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    price = 100 + np.cumsum(rng.normal(0, 0.01, n))
    unreal = rng.normal(0, 1, n)
    pnl = pa.table({"ts": pa.array(ts).cast(S.TS), "symbol": pa.array(["SIM:DEMO"] * n).dictionary_encode().cast(S.SYMBOL),
                    "position": pos, "avg_price": price, "realized": np.cumsum(rng.normal(0, 0.01, n)), "unrealized": unreal,
                    "total": np.cumsum(rng.normal(0, 0.1, n)), "volume": np.arange(n, dtype=np.float64), "mark": price + unreal / pos},
                   schema=S.pnl_schema())
    pq.write_table(pnl, d / "pnl.parquet")
    k = 50_000
    fills = pa.table({"ts": pa.array(ts[::4][:k]).cast(S.TS), "symbol": pa.array(["SIM:DEMO"] * k).dictionary_encode().cast(S.SYMBOL),
                      "client_order_id": ["c"] * k, "venue_order_id": ["v"] * k, "trade_id": ["t"] * k,
                      "side": pa.array(np.where(np.arange(k) % 3 == 0, 1, -1), pa.int8()), "price": price[::4][:k], "qty": np.ones(k),
                      "fee": np.zeros(k), "fee_ccy": ["USDT"] * k, "liquidity": ["maker"] * k}, schema=S.fills_schema())
    pq.write_table(fills, d / "fills.parquet")
    out = tmp_path / "big.html"
    assert sq(["report", str(d), "-o", str(out)]).exit_code == 0
    figs = by_title(out)
    for t in figs["Equity and drawdown"]["data"] + figs["Position per symbol"]["data"]:
        assert 1000 < len(values(t["x"])) <= 2 * C.MAX_POINTS + 2
    assert "SIM:DEMO: price, fills and quotes" not in figs  # no orders.parquet: no quotes
    for t in figs["SIM:DEMO: price, fills"]["data"]:
        assert len(values(t["x"])) <= (2 * C.MAX_POINTS + 2 if t["name"] == "mid" else C.MAX_MARKERS)
    assert out.stat().st_size < 6_000_000  # plotly.js (~4.8 MB) and the thinned series


# -- bad input


def test_bad_inputs_are_one_line_errors(sq, inputs, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello\n")
    cases = [([str(tmp_path / "nowhere")], 66, "no sq journal there"),
             ([str(tmp_path / "empty")], 65, "not an sq run"),
             ([str(tmp_path / "notes.txt")], 65, "not an sq results file"),
             ([str(inputs["data"])], 65, "no sq.results"),  # a market data file is not a results file
             ([str(inputs["bt"])] * 3, 2, "one run or two"),
             ([str(inputs["bt"]), str(inputs["sweep"])], 2, "reported alone"),
             ([str(inputs["bt"]), "-o", str(tmp_path)], 2, "is a directory"),
             ([str(inputs["bt"]), "-o", str(tmp_path / "no" / "r.html")], 66, "does not exist")]
    for args, status, words in cases:
        r = sq(["report", *args])
        assert r.exit_code == status and words in r.stderr and len(r.stderr_lines) == 1, (args, r.exit_code, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == b""


def test_an_unwritable_target(sq, inputs, tmp_path):
    if os.geteuid() == 0:  # root writes anywhere a mode allows nothing; sysfs refuses new files even to root
        target = "/sys/sq-report.html"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "r.html")
    r = sq(["report", str(inputs["bt"]), "-o", target])
    assert r.exit_code == 77 and "permission denied" in r.stderr and len(r.stderr_lines) == 1, r.stderr


def test_an_existing_target_is_replaced_whole_or_kept(sq, inputs, tmp_path, monkeypatch):
    target = tmp_path / "r.html"
    target.write_text("the previous report\n")
    assert sq(["report", str(tmp_path / "nowhere"), "-o", str(target)]).exit_code == 66
    assert target.read_text() == "the previous report\n"

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    r = sq(["report", str(inputs["bt"]), "-o", str(target)])
    assert r.exit_code == 74 and "no space left on device" in r.stderr and len(r.stderr_lines) == 1, r.stderr
    assert target.read_text() == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temp file left
    monkeypatch.undo()
    assert sq(["report", str(inputs["bt"]), "-o", str(target)]).exit_code == 0
    assert target.read_text().startswith("<!DOCTYPE html>")


def test_on_a_terminal_a_table(sq, inputs, tmp_path):
    import shutil

    a = tmp_path / "a"
    shutil.copytree(inputs["bt"], a)
    (a / "summary.json").write_text(json.dumps({"metrics": {"sortino": 1.25}}))
    r = sq(["report", str(a), str(inputs["bt2"])], stdout_isatty=True, width=140)
    assert r.exit_code == 0, r.stderr
    text = r.stdout.decode()
    assert "B − A" in text and "PnL net" in text and "sortino" in text and "1.2500" in text
    r = sq(["report", str(inputs["wfo"])], stdout_isatty=True, width=140)
    assert r.exit_code == 0 and "folds" in r.stdout.decode() and "sharpe" in r.stdout.decode(), r.stderr
