"""`sq config check [FILE]`: the resolved config with every secret masked and each value's source
(file key, environment variable, .env, default); a table on a terminal, JSON on a pipe; a bad
config (unknown key, a plan value sq cannot honour, an instrument off the configured exchange)
exits 78 with one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sq.core import paths
from tests.support.plantrading import PLAN, PLAN_SECRETS, plan_text

ENV_SECRET = "env_secret_value_31337"
DOTENV_PASSWORD = "dotenv_password_4242"
SECRETS = (*PLAN_SECRETS, ENV_SECRET, DOTENV_PASSWORD)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def plan(tmp_path) -> Path:
    return write(tmp_path / "trading.json", plan_text("1", '"BOOK"'))


@pytest.fixture
def secret_env(tmp_path, monkeypatch):
    dot = write(tmp_path / "creds.env", f"ZKITE_PWD={DOTENV_PASSWORD}\n")
    monkeypatch.setenv("SQ_DOTENV", str(dot))
    monkeypatch.setenv("ZKITE_API_SECRET", ENV_SECRET)
    return dot


def no_secrets(r) -> None:
    out = r.stdout.decode()
    for secret in SECRETS:
        assert secret not in out and secret not in r.stderr, secret


def test_json_masks_every_secret_and_names_each_source(sq, plan, secret_env):
    r = sq(["config", "check", str(plan)])
    assert r.exit_code == 0, r.stderr
    no_secrets(r)
    doc = json.loads(r.stdout)
    v = doc["values"]
    assert doc["file"] == str(plan)
    assert v["trading_mode"] == {"value": "paper", "source": "file", "path": str(plan), "key": "trading_mode"}
    assert v["zerodha.totp_secret"] == {"value": "yo***", "source": "file", "path": str(plan), "key": "zerodha.api_credentials.totp_secret"}
    assert v["zerodha.api_secret"] == {"value": "en***", "source": "env", "path": None, "key": "ZKITE_API_SECRET"}
    assert v["zerodha.password"] == {"value": "do***", "source": ".env", "path": str(secret_env), "key": "ZKITE_PWD"}
    assert v["risk.max_position_value"]["value"] == 1_000_000 and v["risk.enforce_trading_hours"]["value"] is True
    assert v["paper_trading.latency_dist"]["value"] == "uniform"
    assert v["instruments[0].symbol"]["value"] == "NFO:NIFTY50-FUT" and v["instruments[0].ticker_id"]["value"] == 1001
    assert v["risk.max_notional"] == {"value": None, "source": "default", "path": None, "key": None}
    assert v["live.breaker_failures"] == {"value": 5, "source": "default", "path": None, "key": None}


def test_table_on_a_terminal(sq, plan, secret_env):
    r = sq(["config", "check", str(plan)], stdout_isatty=True, width=160)
    assert r.exit_code == 0, r.stderr
    no_secrets(r)
    text = r.stdout.decode()
    assert str(plan) in text and str(secret_env) in text
    for needle in ("zerodha.api_credentials.totp_secret", "$ZKITE_API_SECRET", ".env ZKITE_PWD", "default", "yo***", "position_value"):
        assert needle in text, needle
    assert not text.lstrip().startswith("{")


def test_without_file_it_resolves_what_sq_would_use(sq, plan, tmp_path, monkeypatch):
    r = sq(["config", "check", "--json"])  # no config anywhere: defaults
    assert r.exit_code == 0 and json.loads(r.stdout)["file"] is None
    assert json.loads(r.stdout)["values"]["trading_mode"]["source"] == "default"
    platform = paths.config_dir()
    platform.mkdir(parents=True)
    write(platform / "config.json", '{"trading_mode": "LIVE"}  // the plan spelling\n')
    doc = json.loads(sq(["config", "check"]).stdout)
    assert doc["file"] == str(platform / "config.json") and doc["values"]["trading_mode"]["value"] == "live"
    monkeypatch.setenv("SQ_CONFIG", str(plan))
    assert json.loads(sq(["config", "check"]).stdout)["file"] == str(plan)
    other = write(tmp_path / "other.toml", 'trading_mode = "paper"\n')
    assert json.loads(sq(["--config", str(other), "config", "check"]).stdout)["file"] == str(other)


def test_the_plan_example_verbatim_checks_clean(sq, tmp_path):
    p = write(tmp_path / "trading.json", PLAN.read_text())
    r = sq(["config", "check", str(p), "--json"])
    assert r.exit_code == 0, r.stderr
    values = json.loads(r.stdout)["values"]
    assert values["paper_trading.fill_probability"] | {"path": None} == {"value": 0.9, "source": "file", "path": None,
                                                                       "key": "zerodha.paper_trading.fill_probability"}
    assert values["paper_trading.slippage_model"]["value"] == "normal"
    no_secrets(r)
    bad = write(tmp_path / "bad.json", PLAN.read_text().replace('"fill_probability": 0.9', '"fill_probability": 1.9'))
    r = sq(["config", "check", str(bad)])
    assert r.exit_code == 78 and r.stdout == b""
    assert len(r.stderr_lines) == 1 and "'zerodha.paper_trading.fill_probability' must be ≤ 1" in r.stderr
    no_secrets(r)


@pytest.mark.parametrize(
    "old,new,needle",
    [
        ('"api_secret": "your_api_secret"', '"api_secrt": "your_api_secret"', "unknown key 'zerodha.api_credentials.api_secrt' (did you mean 'api_secret'"),
        ('"max_position_value"', '"max_position_valu"', "unknown key 'risk.max_position_valu' (did you mean 'max_position_value'"),
        ('"exchange": "NFO",\n      "clip": 50', '"exchange": "NFO",\n      "clipp": 50', "unknown key 'instruments[0].clipp' (did you mean 'clip'"),
        ('"exchange": "ZERODHA"', '"exchange": "BINANCE"', "'instruments[0]' NFO:NIFTY50-FUT is a zerodha symbol but 'exchange' is binance"),
    ],
)
def test_a_bad_config_is_78_with_the_one_line_error(sq, tmp_path, secret_env, old, new, needle):
    text = plan_text("1", '"BOOK"')
    assert old in text
    r = sq(["config", "check", str(write(tmp_path / "trading.json", text.replace(old, new, 1))), "--json"])
    assert r.exit_code == 78 and r.stdout == b"", r.stderr
    assert len(r.stderr_lines) == 1 and needle in r.stderr
    no_secrets(r)


def test_ticker_id_off_a_numeric_id_venue_is_78(sq, tmp_path):
    p = write(tmp_path / "c.json", json.dumps({"instruments": [{"symbol": "DEMO", "exchange": "SIM", "ticker_id": 7}]}))
    r = sq(["config", "check", str(p)])
    assert r.exit_code == 78 and "'instruments[0].ticker_id'" in r.stderr and "sim instruments have no numeric id" in r.stderr


def test_missing_file_and_unknown_action(sq, tmp_path):
    r = sq(["config", "check", str(tmp_path / "nope.json")])
    assert r.exit_code == 78 and "nope.json: config file not found" in r.stderr
    r = sq(["config", "show"])
    assert r.exit_code == 2 and "sq config takes check" in r.stderr
