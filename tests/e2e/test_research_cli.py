"""`sq backtest --search/--objective/--require/--study/--wfo/--cv` end to end (issue #17): the
chosen points checked against single `sq backtest --param` runs, the walk-forward's stitched
equity against single runs of the winners on the test windows, Optuna studies resumed, and every
bad input a one-line usage error before anything runs or is written."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from tests.support.process import ROOT

DATA = str(ROOT / "fixtures" / "sim-demo")  # 40,000 events of SIM:DEMO and SIM:ALT over 11.5 s
GRID = ["--sweep", "clip=1:3:1", "--sweep", "threshold=0.3,0.6"]
SEC = 1_000_000_000


def doc(r):
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def single(sq, *params):
    args = ["backtest", "-s", "mm", DATA, "--json"]
    for p in params:
        args += ["--param", p]
    return doc(sq(args))


def test_objective_and_constraints_choose_the_point_single_runs_choose(sq, tmp_path):
    objective, need = "pnl_total / max(1, max_drawdown)", 50
    out = tmp_path / "grid.parquet"
    args = ["backtest", "-s", "mm", DATA, *GRID, "--objective", objective, "--require", f"fills>={need}", "-j", "1"]
    d = doc(sq(args + ["--json"]))
    by_hand = []
    for clip in (1, 2, 3):
        for th in (0.3, 0.6):
            one = single(sq, f"clip={clip}", f"threshold={th}")
            value = one["pnl"]["total"] / max(1, one["max_drawdown"])
            by_hand.append(({"clip": float(clip), "threshold": th}, value, one["fills"] >= need))
    assert any(not ok for _, _, ok in by_hand) and any(ok for _, _, ok in by_hand)  # the constraint bites
    best = max((h for h in by_hand if h[2]), key=lambda h: h[1])
    assert d["best"]["params"] == best[0] and d["best"]["objective"] == pytest.approx(best[1], abs=1e-9)
    assert [(r["params"], r["feasible"]) for r in d["runs"]] == [(p, ok) for p, _, ok in by_hand]
    assert [r["objective"] for r in d["runs"]] == pytest.approx([v for _, v, _ in by_hand], abs=1e-9)
    unconstrained = max(by_hand, key=lambda h: h[1])
    assert unconstrained[0] != best[0]  # without --require another point would win
    assert doc(sq(args[:-4] + ["--objective", objective, "-j", "1", "--json"]))["best"]["params"] == unconstrained[0]
    assert sq(args + ["-o", str(out)]).exit_code == 0
    t = pq.read_table(out)
    assert t.column("feasible").to_pylist() == [ok for _, _, ok in by_hand]
    assert t.column("objective").to_pylist() == pytest.approx([v for _, v, _ in by_hand], abs=1e-9)


def test_no_feasible_point_is_exit_1_and_the_table_is_still_written(sq, tmp_path):
    out = tmp_path / "grid.parquet"
    r = sq(["backtest", "-s", "mm", DATA, "--sweep", "clip=1,2", "--require", "fills >= 100000", "-j", "1", "-o", str(out)])
    assert r.exit_code == 1 and "no feasible point" in r.stderr and "fills >= 100000" in r.stderr and "Traceback" not in r.stderr
    assert pq.read_table(out).column("feasible").to_pylist() == [False, False]


def test_random_search_is_reproducible_by_seed(sq):
    args = ["backtest", "-s", "mm", DATA, "--sweep", "clip=1:3", "--sweep", "threshold=0.3,0.6,0.9", "--search", "random:3", "-j", "1", "--json"]
    a, b, c = doc(sq(args + ["--seed", "4"])), doc(sq(args + ["--seed", "4"])), doc(sq(args + ["--seed", "5"]))
    points = [r["params"] for r in a["runs"]]
    assert points == [r["params"] for r in b["runs"]] != [r["params"] for r in c["runs"]]
    assert [r["pnl"] for r in a["runs"]] == [r["pnl"] for r in b["runs"]]
    assert a["search"] == "random:3" and all(1 <= p["clip"] <= 3 and p["threshold"] in (0.3, 0.6, 0.9) for p in points)


def test_optuna_study_is_resumed_from_its_file(sq, tmp_path):
    study = str(tmp_path / "study.jsonl")
    args = ["backtest", "-s", "mm", DATA, "--sweep", "clip=1:3:1", "--sweep", "threshold=0.2:1.0", "--search", "optuna:3", "--study", study,
            "-j", "1", "--json"]
    first = sq(args)
    d1 = doc(first)
    assert d1["study"]["trials_before"] == 0 and d1["study"]["trials"] == 3 and "0 earlier trials" in first.stderr
    second = sq(args[:9] + ["optuna:2"] + args[10:])
    d2 = doc(second)
    assert d2["study"]["trials_before"] == 3 and d2["study"]["trials"] == 5 and "3 earlier trials found, 5 now" in second.stderr
    assert len(d2["runs"]) == 2 and all(r["params"]["clip"] in (1.0, 2.0, 3.0) and 0.2 <= r["params"]["threshold"] <= 1.0 for r in d2["runs"])
    new_best = max((r["objective"] for r in d2["runs"] if r["feasible"] and r["objective"] is not None), default=None)
    if new_best is None or new_best <= d1["best"]["objective"]:  # nothing new is better: the best is the first run's
        assert d2["best"]["params"] == d1["best"]["params"] and d2["best"]["objective"] == d1["best"]["objective"]
    else:
        assert d2["best"]["objective"] == new_best


def _winner_curve(fold: dict, test: tuple[int, int]) -> dict:
    """One single run of a fold's winner on its test window (the same Worker `sq backtest` uses)."""
    import os

    from sq.commands._options import FEED_LATENCY_DEFAULT, QUEUE_MODEL_DEFAULT, SEED_DEFAULT, fill_overrides
    from sq.runs.sweep import Job, Worker, point_params

    fill = fill_overrides(None, None, None, FEED_LATENCY_DEFAULT, QUEUE_MODEL_DEFAULT)  # `sq backtest`'s defaults
    job = Job((DATA,), "mm", fill, SEED_DEFAULT, None, dict(os.environ), os.getcwd(), True, spans=(test,))
    return Worker(job).run(0, point_params([], fold["params"]))["summary"]


def test_walk_forward_folds_and_stitched_equity(sq, tmp_path):
    d = doc(sq(["backtest", "-s", "mm", DATA, *GRID, "--wfo", "train=4s,test=2s", "-j", "2", "--json"]))
    t0, t1 = d["span"]["start_ns"], d["span"]["end_ns"]
    assert (t1 - t0) / SEC == pytest.approx(11.53, abs=0.01)
    folds = d["folds"]
    assert [((f["train_start"] - t0) / SEC, (f["train_end"] - t0) / SEC, (f["test_start"] - t0) / SEC) for f in folds] == \
        [(0, 4, 4), (2, 6, 6), (4, 8, 8), (6, 10, 10)]
    assert [f["test_end"] for f in folds] == [t0 + 6 * SEC, t0 + 8 * SEC, t0 + 10 * SEC, t1]
    ts, equity, offset, pnl = [], [], 0.0, []
    for f in folds:
        one = _winner_curve(f, (f["test_start"], f["test_end"]))
        assert f["oos_pnl_total"] == one["pnl"]["total"] and f["oos_fills"] == one["fills"] and f["oos_objective"] == one["pnl"]["total"]
        ts += one["curve"]["ts"]
        equity += [e + offset for e in one["curve"]["equity"]]
        offset = equity[-1] if equity else offset
        pnl.append(one["pnl"]["total"])
    assert d["oos_equity"]["ts"] == ts and len(ts) > 10
    assert d["oos_equity"]["equity"] == pytest.approx(equity, abs=1e-9)
    assert d["oos_equity"]["equity"][-1] == pytest.approx(sum(pnl), abs=2e-3)  # each test run ends at its total PnL (rounded in the summary)
    for f in folds:  # the IS objective is the best train point's
        assert f["params"]["clip"] in (1.0, 2.0, 3.0) and f["is_objective"] is not None
    assert set(d["stability"]) == {"clip", "threshold"}


def test_walk_forward_table_contract(sq, tmp_path):
    out = tmp_path / "wfo.parquet"
    r = sq(["backtest", "-s", "mm", DATA, *GRID, "--wfo", "train=4s,test=2s,step=3s,anchored", "-j", "1", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    t = pq.read_table(out)
    md = t.schema.metadata
    assert md[b"sq.results"] == b"wfo"
    meta = json.loads(md[b"sq.wfo"])
    assert set(meta) == {"objective", "spec", "efficiency", "stability", "oos_equity"}
    assert meta["spec"] == "train=4s,test=2s,step=3s,anchored" and meta["objective"] == "pnl"
    assert len(meta["oos_equity"]["ts"]) == len(meta["oos_equity"]["equity"]) > 0
    types = {f.name: f.type for f in t.schema}
    tsns = pa.timestamp("ns", tz="UTC")
    assert types["fold"] == pa.int64() and types["oos_fills"] == pa.int64()
    assert all(types[c] == tsns for c in ("train_start", "train_end", "test_start", "test_end"))
    assert all(types[c] == pa.float64() for c in ("param.clip", "param.threshold", "is_objective", "oos_objective", "oos_pnl_total"))
    assert t.num_rows == 3
    starts = t.column("train_start").cast(pa.int64()).to_pylist()
    assert len(set(starts)) == 1  # anchored: every fold trains from the start
    tests = t.column("test_start").cast(pa.int64()).to_numpy()
    assert list((tests - starts[0]) / SEC) == [4, 7, 10]


def test_a_fold_without_test_data_is_skipped(sq, tmp_path):
    src = next((ROOT / "fixtures" / "sim-demo").rglob("*DEMO*/**/*.parquet"))
    table = pq.read_table(src)
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    t0 = int(ts.min())
    gap = pa.array(~((ts >= t0 + 6 * SEC) & (ts < t0 + 8 * SEC)))
    md = dict(table.schema.metadata or {})
    md[S.META_END] = b"ok"
    path = tmp_path / "gap.parquet"
    pq.write_table(table.filter(gap).replace_schema_metadata(md), path)
    r = sq(["backtest", "-s", "mm", str(path), *GRID, "--wfo", "train=4s,test=2s", "-j", "1", "--json"])
    d = doc(r)
    assert "fold 1 skipped: its test window" in r.stderr and "holds no events" in r.stderr
    assert [f["fold"] for f in d["folds"]] == [0, 2, 3] and d["skipped"] == [{"fold": 1, "reason": "no events in its test window"}]


def test_combinatorial_purged_cv(sq, tmp_path):
    out = tmp_path / "cv.parquet"
    args = ["backtest", "-s", "mm", DATA, *GRID, "--cv", "cpcv:groups=4,test=2,embargo=500ms", "-j", "2"]
    d = doc(sq(args + ["--json"]))
    assert [f["test_groups"] for f in d["folds"]] == ["0,1", "0,2", "0,3", "1,2", "1,3", "2,3"]
    g = d["groups"]
    assert len(g) == 4 and g[0][0] == d["span"]["start_ns"] and g[-1][1] == d["span"]["end_ns"]
    split = d["folds"][1]  # test groups 0 and 2: trains on 1 and 3, each minus the 500 ms embargo after a test group
    assert split["train_windows"] == 2 and split["test_windows"] == 2
    assert split["train_start"] == g[1][0] + SEC // 2 and split["train_end"] == g[3][1]
    assert 0.0 <= d["pbo"] <= 1.0 and d["oos_distribution"]["count"] == 6
    one = d["folds"][5]  # test groups 2,3: one block, the winner's single run on it
    assert one["test_windows"] == 1 and one["oos_pnl_total"] == _winner_curve(one, (g[2][0], g[3][1]))["pnl"]["total"]
    assert sq(args + ["-o", str(out)]).exit_code == 0
    t = pq.read_table(out)
    assert t.schema.metadata[b"sq.results"] == b"cv" and t.num_rows == 6 and "pbo" in json.loads(t.schema.metadata[b"sq.cv"])


def test_purged_kfold_stitches_its_test_folds(sq):
    d = doc(sq(["backtest", "-s", "mm", DATA, "--sweep", "clip=1,2", "--cv", "kfold:k=3,embargo=1s", "-j", "1", "--json"]))
    assert len(d["folds"]) == 3 and [f["test_groups"] for f in d["folds"]] == ["0", "1", "2"]
    assert d["oos_equity"]["equity"][-1] == pytest.approx(sum(f["oos_pnl_total"] for f in d["folds"]), abs=2e-3)


def test_terminal_table(sq):
    r = sq(["backtest", "-s", "mm", DATA, *GRID, "--wfo", "train=4s,test=2s", "-j", "1"], stdout_isatty=True, width=160)
    assert r.exit_code == 0, r.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout.decode())
    assert "walk-forward efficiency" in text and "parameter stability" in text and "08:00:04 → 2024-01-08 08:00:06" in text


@pytest.mark.parametrize("extra,words", [
    (["--wfo", "train=4x,test=2s"], "cannot read '4x'"),
    (["--wfo", "train=4s,test=20s"], "longer than the input's span"),
    (["--wfo", "train=11s,test=1s"], "fold(s) fit in the input's span [2024-01-08T08:00:00"),
    (["--cv", "cpcv:groups=2,test=2"], "must be more than test"),
    (["--search", "optuna:0"], "N must be ≥ 1"),
    (["--search", "random:abc"], "whole number"),
    (["--sweep", "threshold=0.2:0.8"], "a grid search needs a step"),
    (["--wfo", "train=4s,test=2s", "--sweep", "threshold=0.2:0.8"], "a grid search needs a step"),
    (["--objective", "sharpee"], "unknown name 'sharpee'; names: "),
    (["--objective", "open('x')"], "not an allowed function"),
    (["--require", "fills"], "a constraint is a comparison"),
    (["--search", "optuna:2", "--study", "BAD"], "not an Optuna journal"),
    (["--wfo", "train=4s,test=2s", "--cv", "kfold:k=3"], "give one"),
    (["--study", "x.jsonl"], "needs --search optuna:N"),
])
def test_bad_research_input_is_a_one_line_usage_error(sq, tmp_path, extra, words):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not a journal\n")
    out = tmp_path / "out.parquet"
    r = sq(["backtest", "-s", "mm", DATA, "--sweep", "clip=1:3:1", *[str(bad) if e == "BAD" else e for e in extra], "-o", str(out)])
    assert r.exit_code == 2, r.stderr
    assert len(r.stderr_lines) == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == b"" and not out.exists()


def test_wfo_needs_a_sweep_and_search_options_need_one_too(sq):
    r = sq(["backtest", "-s", "mm", DATA, "--wfo", "train=4s,test=2s"])
    assert r.exit_code == 2 and "--sweep" in r.stderr and len(r.stderr_lines) == 1
    r = sq(["backtest", "-s", "mm", DATA, "--objective", "sharpe"])
    assert r.exit_code == 2 and "--sweep" in r.stderr and len(r.stderr_lines) == 1


def test_stdin_walk_forward_on_the_pool_equals_files_in_process(sq, tmp_path):
    """A pipe is spooled once for the pool; each fold's workers read their window of the spool."""
    from tests.support.process import ipc_bytes

    src = next((ROOT / "fixtures" / "sim-demo").rglob("*DEMO*/**/*.parquet"))
    t = pq.read_table(src)
    md = dict(t.schema.metadata or {})
    md[S.META_END] = b"ok"
    t = t.replace_schema_metadata(md)
    path = tmp_path / "demo.parquet"
    pq.write_table(t, path)
    args = ["backtest", "-s", "mm", "--sweep", "clip=1,2", "--sweep", "threshold=0.3,0.6", "--wfo", "train=4s,test=3s,step=2s", "--json"]
    pool = doc(sq(args + ["-j", "2"], stdin=ipc_bytes(t.to_batches(max_chunksize=4096), t.schema)))
    local = doc(sq(args + [str(path), "-j", "1"]))
    assert pool["jobs"] == 2 and local["jobs"] == 1 and len(pool["folds"]) == 4
    keep = ("fold", "train_start", "train_end", "test_start", "test_end", "params", "is_objective", "oos_objective", "oos_pnl_total", "oos_fills")
    assert [{k: f[k] for k in keep} for f in pool["folds"]] == [{k: f[k] for k in keep} for f in local["folds"]]
    assert pool["oos_equity"] == local["oos_equity"] and any(f["oos_fills"] for f in pool["folds"])
