"""The pieces of `sq backtest --search/--objective/--wfo/--cv` (sq.runs.search, objectives, folds,
research), checked against hand-computed values; the CLI end to end is tests/e2e/test_research_cli.py."""

from __future__ import annotations

import math

import pytest

from sq.core.exits import DataError, UsageError
from sq.core.strategy.loader import load
from sq.runs import folds as FO
from sq.runs import objectives as OB
from sq.runs import research as R
from sq.runs import search as SE
from sq.runs.sweep import Axis, parse_axis, parse_sweeps
from tests.support.process import ROOT

S = 1_000_000_000


# -- the space


def test_sweep_kinds():
    mm = load("mm")
    assert parse_axis("clip=1:3:1", mm) == Axis("clip", (1.0, 2.0, 3.0), "discrete", 1.0, 3.0)
    assert parse_axis("threshold=0.3,0.6", mm).kind == "categorical"
    cont = parse_axis("threshold=0.1:0.9", mm)
    assert cont.continuous and cont.values == () and (cont.low, cont.high) == (0.1, 0.9)
    with pytest.raises(UsageError, match="a:b:step"):
        parse_sweeps(["threshold=0.1:0.9"], mm)  # a grid needs a step
    assert parse_sweeps(["threshold=0.1:0.9"], mm, grid=False)[0].continuous
    with pytest.raises(UsageError, match="> 0"):
        parse_axis("clip=0:2", mm)  # the bounds are range-checked like --param


@pytest.mark.parametrize("text,words", [("optuna:0", "≥ 1"), ("random:abc", "whole number"), ("random", "whole number"),
                                        ("bayes:5", "grid, random:N or optuna:N"), ("grid:5", "grid, random:N")])
def test_bad_search_specs(text, words):
    with pytest.raises(UsageError, match=words):
        SE.parse_search(text)


def test_search_specs():
    assert SE.parse_search(None) == SE.SearchSpec("grid")
    assert SE.parse_search("Random:20") == SE.SearchSpec("random", 20)
    assert SE.parse_search("optuna:7").text == "optuna:7"


def test_random_search_is_reproducible_by_seed():
    axes = [Axis("clip", (), "continuous", 1.0, 3.0), Axis("threshold", (0.2, 0.4, 0.8), "categorical", 0.2, 0.8),
            Axis("max_position", (5.0, 10.0, 15.0), "discrete", 5.0, 15.0)]
    a, b, c = SE.random_points(axes, 50, 7), SE.random_points(axes, 50, 7), SE.random_points(axes, 50, 8)
    assert a == b and a != c
    assert all(1.0 <= p["clip"] <= 3.0 and p["threshold"] in (0.2, 0.4, 0.8) and p["max_position"] in (5.0, 10.0, 15.0) for p in a)
    assert len({p["clip"] for p in a}) == 50  # continuous: a real number each time
    assert {p["threshold"] for p in a} == {0.2, 0.4, 0.8}  # every value of a list is reached in 50 draws


def test_study_file_is_checked(tmp_path):
    SE.check_study(None)
    SE.check_study(str(tmp_path / "new.jsonl"))  # a new file is fine
    (tmp_path / "empty.jsonl").write_text("")
    SE.check_study(str(tmp_path / "empty.jsonl"))
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(UsageError, match="not an Optuna journal"):
        SE.check_study(str(tmp_path / "bad.jsonl"))
    (tmp_path / "other.jsonl").write_text('{"a": 1}\n')
    with pytest.raises(UsageError, match="not an Optuna journal"):
        SE.check_study(str(tmp_path / "other.jsonl"))
    with pytest.raises(UsageError, match="does not exist"):
        SE.check_study(str(tmp_path / "nodir" / "s.jsonl"))


# -- objectives and constraints

RUN = {"pnl": {"total": 12.0, "realized": 10.0, "unrealized": 2.0, "fees": 3.0}, "fills": 4, "orders": 10, "cancels": 2, "events": 100,
       "max_drawdown": 5.0, "sharpe": None, "fill_ratio": 0.4, "turnover": 50.0, "rejections": {"max_position": 2},
       "metrics": {"sortino": 1.5, "max_drawdown": 6.0, "calmar": None}}


@pytest.mark.parametrize("text,value", [
    ("pnl", 12.0), ("pnl_total", 12.0), ("pnl_per_trade", 3.0), ("pnl_total / max(1, max_drawdown)", 2.0),  # metrics' max_drawdown first
    ("sortino * 2 - abs(-1)", 2.0), ("sqrt(fills) + log(1)", 2.0), ("fills >= 4 and not orders < 5", 1.0), ("fills > 4 or cancels == 3", 0.0),
    ("-fees", -3.0), ("rejections", 2.0), ("2 ** 3 % 5", 3.0), ("min(fills, orders, 3)", 3.0),
    ("sharpe", None), ("calmar + 1", None), ("sharpe > 0 or fills > 0", None), ("pnl / (fills - 4)", None), ("log(-fees)", None),
])
def test_expression_values(text, value):
    assert OB.parse(text).evaluate(RUN) == value


@pytest.mark.parametrize("text,words", [
    ("sharpee", "unknown name 'sharpee'"), ("__import__('os')", "not an allowed function"), ("pnl.real", "not allowed"),
    ("'a'", "not a number"), ("pnl[0]", "not allowed"), ("lambda: 1", "not allowed"), ("pnl +", "not a valid expression"),
    ("", "empty"), ("exp(pnl)", "not an allowed function"), ("max(fills, key=1)", "not an allowed function"), ("sqrt(1, 2)", "one argument"),
])
def test_bad_expressions_list_the_names(text, words):
    with pytest.raises(UsageError) as e:
        OB.parse(text)
    msg = e.value.message
    assert words in msg and "\n" not in msg
    assert "names: " in msg and "sortino" in msg and "pnl_per_trade" in msg and "functions: abs, min, max, log, sqrt" in msg


def test_constraints_are_comparisons():
    assert OB.parse_constraint("fills>=50").text == "fills>=50"
    assert OB.parse_constraint("fills > 1 and not sharpe < 0").names == ("fills", "sharpe")
    for bad in ("fills", "fills + 1", "max(fills, 2)"):
        with pytest.raises(UsageError, match="comparison"):
            OB.parse_constraint(bad)


def test_best_is_feasible_and_has_a_value():
    goal = OB.parse_goal("pnl", ["fills >= 4", "orders > 20 or fills > 1"])
    assert goal.score(RUN) == (12.0, True)
    assert goal.score(dict(RUN, fills=3)) == (12.0, False)
    assert OB.parse_goal("pnl", ["sharpe > 0"]).score(RUN) == (12.0, False)  # a constraint without a value is not met
    assert OB.best_index([(5.0, False), (None, True), (1.0, True), (3.0, True), (3.0, True)]) == 3
    assert OB.best_index([(5.0, False), (None, True)]) is None
    assert OB.parse_goal(None).objective.text == "pnl" and OB.parse_goal("pnl").additive and not OB.parse_goal("sharpe").additive


# -- windows


def spans(split):
    return [(lo / S, hi / S) for lo, hi in split.train], [(lo / S, hi / S) for lo, hi in split.test]


def test_rolling_and_anchored_walk_forward():
    t1 = int(11.5 * S)
    roll = FO.wfo_splits(FO.parse_wfo("train=4s,test=2s"), 0, t1)
    assert [spans(f) for f in roll] == [([(0, 4)], [(4, 6)]), ([(2, 6)], [(6, 8)]), ([(4, 8)], [(8, 10)]), ([(6, 10)], [(10, 11.5)])]
    anchored = FO.wfo_splits(FO.parse_wfo("train=4s,test=2s,anchored"), 0, t1)
    assert [spans(f) for f in anchored] == [([(0, 4)], [(4, 6)]), ([(0, 6)], [(6, 8)]), ([(0, 8)], [(8, 10)]), ([(0, 10)], [(10, 11.5)])]
    stepped = FO.wfo_splits(FO.parse_wfo("train=4s,test=2s,step=3s"), 0, t1)
    assert [spans(f) for f in stepped] == [([(0, 4)], [(4, 6)]), ([(3, 7)], [(7, 9)]), ([(6, 10)], [(10, 11.5)])]
    short = FO.wfo_splits(FO.parse_wfo("train=4s,test=2s"), 0, int(10.9 * S))  # a last test window under half of test= is dropped
    assert [spans(f)[1] for f in short] == [[(4, 6)], [(6, 8)], [(8, 10)]]
    offset = FO.wfo_splits(FO.parse_wfo("train=1d,test=12h"), 5 * S, 5 * S + 2 * 86_400 * S)
    assert [(f.test[0][0] - 5 * S) // 3_600_000_000_000 for f in offset] == [24, 36]


@pytest.mark.parametrize("text,t1,words", [
    ("train=4x,test=2s", 11, "cannot read '4x'"), ("train=4s", 11, "needs train= and test="), ("train=4s,test=2s,rolling", 11, "unknown item"),
    ("train=0s,test=2s", 11, "positive"), ("train=4s,test=20s", 11, "longer than the input's span"),
    ("train=10s,test=2s", 11, "1 fold(s) fit in the input's span"), ("train=4s,train=5s,test=1s", 11, "twice"),
])
def test_bad_walk_forwards(text, t1, words):
    with pytest.raises(UsageError) as e:
        FO.wfo_splits(FO.parse_wfo(text), 0, t1 * S)
    assert words in e.value.message
    if "span" in words:
        assert "1970-01-01T00:00:00.000000000Z" in e.value.message  # the input's span is named


def test_combinatorial_purged_cv_by_hand():
    cv = FO.parse_cv("cpcv:groups=4,test=2,embargo=500ms,purge=250ms")
    got = FO.cv_splits(cv, 0, 8 * S)
    assert [s.test_groups for s in got] == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert [spans(s) for s in got] == [
        ([(4.5, 8)], [(0, 4)]),
        ([(2.5, 3.75), (6.5, 8)], [(0, 2), (4, 6)]),
        ([(2.5, 5.75)], [(0, 2), (6, 8)]),
        ([(0, 1.75), (6.5, 8)], [(2, 6)]),
        ([(0, 1.75), (4.5, 5.75)], [(2, 4), (6, 8)]),
        ([(0, 3.75)], [(4, 8)]),
    ]


def test_purged_kfold_by_hand():
    got = FO.cv_splits(FO.parse_cv("kfold:k=3,embargo=1s"), 0, 9 * S)
    assert [spans(s) for s in got] == [([(4, 9)], [(0, 3)]), ([(0, 3), (7, 9)], [(3, 6)]), ([(0, 6)], [(6, 9)])]
    assert FO.groups(3, 0, 10) == [(0, 3), (3, 6), (6, 10)]


@pytest.mark.parametrize("text,words", [
    ("cpcv:groups=2,test=2", "must be more than test"), ("cpcv:groups=6,test=0", "≥ 1"), ("cpcv:groups=six,test=2", "whole number"),
    ("kfold:k=1", "≥ 2"), ("lopez:k=3", "expected cpcv"), ("cpcv:groups=6", "needs test=N"), ("kfold:k=3,embargo=1x", "cannot read"),
    ("cpcv:groups=30,test=10", "splits; at most"), ("kfold:k=3,test=1", "unknown item"),
])
def test_bad_cvs(text, words):
    with pytest.raises(UsageError, match=words):
        FO.parse_cv(text)


def test_a_split_with_nothing_left_to_train_on():
    with pytest.raises(UsageError, match="no training data left"):
        FO.cv_splits(FO.parse_cv("kfold:k=2,embargo=10s"), 0, 4 * S)


# -- summaries of the folds


def test_efficiency_stability_and_stitching():
    rows = [{"is_objective": 2.0, "oos_objective": 1.0, "train_ns": 4, "test_ns": 2},
            {"is_objective": 4.0, "oos_objective": 1.0, "train_ns": 4, "test_ns": 2},
            {"is_objective": None, "oos_objective": 9.0, "train_ns": 4, "test_ns": 2}]  # left out
    assert R.efficiency(rows, additive=True) == pytest.approx((2 / 4) / (6 / 8))
    assert R.efficiency(rows, additive=False) == pytest.approx(1 / 3)
    assert R.efficiency([dict(rows[0], is_objective=-1.0)], additive=False) is None
    axes = [Axis("clip", (1.0, 2.0, 3.0), "discrete"), Axis("threshold", (0.3, 0.6), "categorical"), Axis("k", (), "continuous", -1, 1)]
    winners = [{"params": {"clip": c, "threshold": t, "k": k}} for c, t, k in ((1.0, 0.3, 0.5), (1.0, 0.6, -0.5), (3.0, 0.6, 0.0))]
    st = R.stability(axes, winners)
    assert st["clip"] == pytest.approx(math.sqrt(24 / 27) / (5 / 3)) and st["threshold"] == pytest.approx(2 / 3) and st["k"] is None
    assert R.stitch([{"ts": [1, 2], "equity": [0.5, -1.0]}, {"ts": [5], "equity": [2.0]}, {"ts": [], "equity": []}, {"ts": [7], "equity": [1.0]}]) == \
        {"ts": [1, 2, 5, 7], "equity": [0.5, -1.0, 1.0, 2.0]}
    assert R.combine([1.0, 2.0], [1, 3], additive=True) == 3.0
    assert R.combine([1.0, 2.0], [1, 3], additive=False) == pytest.approx(1.75)
    assert R.combine([1.0, None], [1, 3], additive=True) is None


# -- research windows on a dataset


def test_open_input_keeps_only_rows_in_the_spans():
    import numpy as np

    from sq.core.schemas import int64_view
    from sq.core.streams import open_input
    from sq.runs.sweep import _Quiet

    data = [str(ROOT / "fixtures" / "sim-demo")]
    env = _Quiet(None)
    ts = np.sort(np.concatenate([int64_view(b.column("ts")) for b in open_input(env, data, "market").batches()]))
    t0 = int(ts[0])
    windows = ((t0 + S, t0 + 2 * S), (t0 + 5 * S, t0 + int(5.5 * S)))
    got = np.concatenate([int64_view(b.column("ts")) for b in open_input(env, data, "market", spans=windows).batches()])
    expected = ts[((ts >= windows[0][0]) & (ts < windows[0][1])) | ((ts >= windows[1][0]) & (ts < windows[1][1]))]
    assert len(expected) > 1000 and np.array_equal(np.sort(got), expected)
    with pytest.raises(DataError, match="no market events in"):
        list(open_input(env, data, "market", spans=((t0 + 100 * S, t0 + 101 * S),)).batches())
    with pytest.raises(DataError, match="no market events in"):  # a day no file lies in: nothing is opened
        open_input(env, data, "market", spans=((t0 + 3 * 86_400 * S, t0 + 3 * 86_400 * S + S),))
