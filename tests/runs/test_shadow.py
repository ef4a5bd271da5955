"""`sq live --shadow`: a paper twin on the same feed in the same process (own journal, no order
sent), and `sq report` comparing the live run with it (fills, PnL, markouts)."""

from __future__ import annotations

import json
import os
import subprocess
import types

import pytest

from sq.core import journal as J
from sq.runs.shadow import SHADOW_DIR, parse_spec
from tests.support.htmlreport import assert_self_contained, figures, parse
from tests.support.process import SQ_BIN, subprocess_env

LIVE = ["live", "--strategy", "mm", "BINANCE:BTCUSDT", "--param", "clip=0.01", "--param", "threshold=0.1"]


def config(tmp_path):
    cfg = tmp_path / "live.toml"
    cfg.write_text('trading_mode = "live"\n[risk]\nmax_order_rate = 20\n')
    os.chmod(cfg, 0o600)
    return cfg


@pytest.mark.parametrize("spec,want", [
    ("mm", ("mm", [])),
    ("mm:clip=2,threshold=0.5", ("mm", ["clip=2", "threshold=0.5"])),
    ("./mine.py:Mine", ("./mine.py:Mine", [])),
    ("./mine.py:Mine:clip=2", ("./mine.py:Mine", ["clip=2"])),
    ("pkg.mod:NAME:BINANCE:BTCUSDT.clip=2", ("pkg.mod:NAME:BINANCE", ["BTCUSDT.clip=2"])),
])
def test_shadow_specs(spec, want):
    assert parse_spec(spec) == want


@pytest.mark.parametrize("spec", ["", "mm:clip=2,oops", ":clip=2"])
def test_bad_shadow_specs_are_usage_errors(spec):
    from sq.core.exits import UsageError

    with pytest.raises(UsageError, match="--shadow"):
        parse_spec(spec)


def test_live_with_a_shadow_and_the_report_comparing_them(binance_fake, tmp_path, sq):
    fake = binance_fake()
    jdir = tmp_path / "live"
    r = subprocess.run([SQ_BIN, *LIVE, "--config", str(config(tmp_path)), "--confirm-live", "--journal", str(jdir), "--json",
                        "--for", "8s", "--shadow", "mm:clip=0.02"], capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    twin = summary["shadow"]
    assert twin["journal"] == str(jdir / SHADOW_DIR) and twin["orders"] > 0, twin
    shadow = J.load(jdir / SHADOW_DIR)
    assert shadow.sealed and shadow.start["mode"] == "shadow" and shadow.start["shadow_of"] == summary["run_id"]
    assert shadow.start["params"] == ["clip=0.01", "threshold=0.1", "clip=0.02"]  # the live run's, then its own
    # no shadow order reached the venue: every order there is one the live run sent
    prefix = J.load(jdir).start["client_prefix"]
    assert fake.exchange.orders and all(o.client_id.startswith(prefix) for o in fake.exchange.orders.values())
    assert len({o.client_id for o in fake.exchange.orders.values()}) == summary["orders_sent"]
    assert (jdir / SHADOW_DIR / "marks.parquet").is_file()

    rep = sq(["report", str(jdir), "--json", "-o", str(tmp_path / "cmp.html")])
    assert rep.exit_code == 0, rep.stderr
    doc = json.loads(rep.stdout)
    live, paper = doc["runs"]
    assert (live["mode"], paper["mode"]) == ("live", "shadow")
    assert live["orders"] == summary["orders_sent"] and paper["orders"] == twin["orders"]
    assert paper["pnl"]["net"] == pytest.approx(twin["pnl"]["total"], abs=1e-4)  # the summary rounds money to the tick × lot
    assert doc["difference"]["orders"] == paper["orders"] - live["orders"]
    for run in (live, paper):
        if run["fills"]:  # a fill's markout is measured when the shadow saw a mid 1 s after it
            assert run["markouts"]["1s"]["fills"] >= 1 and run["markouts"]["1s"]["bps"] is not None
    _, text = parse(tmp_path / "cmp.html")
    assert "B − A" in text and "markout 1s (bps)" in text
    assert_self_contained(tmp_path / "cmp.html")
    figs = {f["layout"]["title"]["text"]: f for f in figures(tmp_path / "cmp.html")}
    assert len(figs["Equity and drawdown"]["data"]) == 4  # equity and drawdown of each run, overlaid
    if live["fills"] or paper["fills"]:
        assert {t["name"] for t in figs["Markouts: mean move of the mid in the fill's favour"]["data"]} <= {"live mm (live)", "shadow mm (shadow)"}


def test_report_bad_input(sq, tmp_path):
    r = sq(["report", str(tmp_path / "nowhere")])
    assert r.exit_code == 66 and "no sq journal there" in r.stderr and len(r.stderr_lines) == 1
    r = sq(["report", "a", "b", "c"])
    assert r.exit_code == 2 and "one run or two" in r.stderr


def test_resume_refuses_a_new_shadow(sq, tmp_path):
    j = J.Journal.create(tmp_path / "crashed", {"run_id": "r", "mode": "live", "strategy": "mm", "symbols": ["BINANCE:BTCUSDT"],
                                                "venue": "binance", "client_prefix": "sqr-"})
    j.close()
    r = sq(["live", "--resume", str(tmp_path / "crashed"), "--shadow", "mm", "--config", str(config(tmp_path)), "--confirm-live"])
    assert r.exit_code == 2 and "a shadow is not continued" in r.stderr, r.stderr


def test_a_failing_shadow_warns_once_and_never_stops_the_live_run(tmp_path):
    from sq.core.config import load_config
    from sq.core.environment import Environment
    from sq.runs.shadow import ShadowRun
    from tests.support.marketdata import instruments

    warnings = []
    env = Environment()
    env.warn = warnings.append
    plan = types.SimpleNamespace(run_id="r1", strategy="mm", params=[], symbols=["SIM:A"], journal_dir=tmp_path / "live")
    twin = ShadowRun(env, "mm", plan, instruments("SIM:A"), load_config(env))
    twin.step(object())  # not a batch: the twin fails inside
    twin.step(object())
    assert twin.failed and len(warnings) == 1 and "live trading goes on" in warnings[0]
    assert twin.close("end") is None
