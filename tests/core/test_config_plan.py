"""The original plan's `trading.json` (SiriQuantum development plan §7.2, kept verbatim in
tests/support/plan_trading.json): `//` comments, capital `PAPER`, the top-level `exchange`,
`zerodha.api_credentials` / `cache` / `paper_trading`, instruments as `symbol` + `exchange` +
`ticker_id`, `risk.max_position_value` and the `enforce_*` switches — each read into the one
config model with its meaning, unknown keys refused with suggestions (78), values sq cannot honour
refused (78), never ignored; the paper fill model's `fill_probability` and `slippage_model` are
honoured by the simulated venue; and where each value came from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sq.core.config import (
    ConfigError,
    Origin,
    Secret,
    config_values,
    load_config,
    load_config_with_origins,
    parse_config,
    strip_json_comments,
)
from sq.core.engine import FillModelConfig
from sq.core.environment import Environment
from tests.support.plantrading import PLAN, PLAN_SECRETS, plan_text


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def load(path: Path, environ=None, cwd=None):
    e = Environment()
    e.config_path = str(path)
    return load_config(e, environ=environ or {}, cwd=cwd or path.parent)


@pytest.fixture
def honourable(tmp_path) -> Path:
    """The plan's example, verbatim."""
    return write(tmp_path / "trading.json", PLAN.read_text())


def test_the_plan_example_verbatim_sets_the_paper_fill_model(honourable):
    f = FillModelConfig.from_config(load(honourable))
    assert (f.fill_probability, f.slippage_model, f.slippage_ticks) == (0.9, "normal", 1.0)
    f.validate()


def test_the_plan_example_loads_with_every_key_meaning_what_it_says(honourable):
    cfg = load(honourable)
    assert cfg.trading_mode == "paper" and cfg.exchange == "zerodha"
    assert cfg.symbols == ["NFO:NIFTY50-FUT", "NFO:BANKNIFTY-FUT"]
    nifty, bank = cfg.instruments
    assert (nifty.ticker_id, nifty.clip, nifty.threshold, nifty.max_position, nifty.max_loss) == (1001, 50, 0.7, 100, 10000)
    assert (bank.ticker_id, bank.clip, bank.threshold, bank.max_position, bank.max_loss) == (1002, 25, 0.75, 50, 15000)
    z = cfg.zerodha
    assert (z.api_key, z.user_id) == ("your_api_key", "your_user_id")
    assert isinstance(z.api_secret, Secret) and z.api_secret.reveal() == "your_api_secret"
    assert isinstance(z.totp_secret, Secret) and z.totp_secret.reveal() == "your_totp_secret"
    assert z.access_token_path == "/home/praveen/om/siriquantum/ida/.cache/zerodha/tokens/token.json"
    assert z.instruments_cache_dir == "/home/praveen/om/siriquantum/ida/.cache/zerodha/tokens"
    pt = cfg.paper_trading
    assert (pt.order_latency_ms, pt.latency_dist, pt.latency_jitter_ms) == (0.5, "uniform", 4.5)
    assert (pt.fill_probability, pt.slippage_model) == (0.9, "normal")
    r = cfg.risk
    assert (r.max_daily_loss, r.max_position_value, r.enforce_circuit_limits, r.enforce_trading_hours) == (25000, 1_000_000, True, True)
    for secret in PLAN_SECRETS:
        assert secret not in repr(cfg)


def test_latency_range_is_the_paper_fill_models_uniform_latency(honourable):
    f = FillModelConfig.from_config(load(honourable))
    assert (f.order_latency_ns, f.latency_dist, f.latency_jitter_ns) == (500_000, "uniform", 4_500_000)
    f.validate()
    assert FillModelConfig.from_config(load(honourable), latency_dist="constant", latency_jitter_ns=0).latency_dist == "constant"


@pytest.mark.parametrize("mode,want", [('"LIVE"', "live"), ('"PAPER"', "paper"), ('"paper"', "paper"), ('"Live"', "live")])
def test_trading_mode_in_capitals(tmp_path, mode, want):
    text = plan_text("1", '"BOOK"').replace('"trading_mode": "PAPER"', f'"trading_mode": {mode}')
    assert load(write(tmp_path / "t.json", text)).trading_mode == want


def test_switches_turn_their_checks_off(tmp_path):
    text = plan_text("1", '"BOOK"').replace('"enforce_circuit_limits": true', '"enforce_circuit_limits": false')
    text = text.replace('"enforce_trading_hours": true', '"enforce_trading_hours": false')
    r = load(write(tmp_path / "t.json", text)).risk
    assert r.enforce_trading_hours is False and r.enforce_circuit_limits is False
    assert parse_config({}).risk.enforce_trading_hours is True and parse_config({}).risk.enforce_circuit_limits is True
    toml = write(tmp_path / "sq.toml", "[risk]\nenforce_trading_hours = false\nmax_position_value = 5000\n")
    cfg = load(toml)
    assert cfg.risk.enforce_trading_hours is False and cfg.risk.enforce_circuit_limits is True and cfg.risk.max_position_value == 5000


def test_instrument_symbol_exchange_and_ticker_id():
    cfg = parse_config({"instruments": [{"symbol": "RELIANCE", "exchange": "NSE", "ticker_id": 738561, "clip": 1},
                                        {"symbol": "nse:infy", "exchange": "nse"},
                                        {"tradingsymbol": "TCS", "exchange": "NSE"},
                                        {"symbol": "BTCUSDT", "exchange": "BINANCE"}]})
    assert cfg.symbols == ["NSE:RELIANCE", "NSE:INFY", "NSE:TCS", "BINANCE:BTCUSDT"]
    assert cfg.instrument("NSE:RELIANCE").ticker_id == 738561 and cfg.instrument("NSE:INFY").ticker_id is None
    for bad, needle in [({"symbol": "BSE:RELIANCE", "exchange": "NSE"}, "disagree"),
                        ({"symbol": "RELIANCE", "exchange": "NSX"}, "'instruments[0].{exchange,symbol}'"),
                        ({"exchange": "NSE"}, "lacks required key 'symbol'"),
                        ({"symbol": "RELIANCE", "exchange": "NSE", "ticker_id": -1}, "'instruments[0].ticker_id' must be ≥ 0"),
                        ({"symbol": "RELIANCE", "exchange": "NSE", "ticker_id": "738561"}, "'instruments[0].ticker_id' must be an integer")]:
        with pytest.raises(ConfigError) as e:
            parse_config({"instruments": [bad]}, name="t.json")
        assert needle in e.value.message and e.value.status == 78


def test_json_comments_whole_line_and_trailing_but_not_inside_strings(tmp_path):
    text = """// the plan's trading.json
{
  "trading_mode": "LIVE",  // "PAPER" or "LIVE"
  // a whole-line comment
  "zerodha": {"root_url": "http://127.0.0.1:9//x", "user_id": "a\\"//b"}  // trailing
}
"""
    cfg = load(write(tmp_path / "c.json", text))
    assert cfg.trading_mode == "live"
    assert cfg.zerodha.root_url == "http://127.0.0.1:9//x" and cfg.zerodha.user_id == 'a"//b'
    assert load(write(tmp_path / "sniffed", text)).trading_mode == "live"  # no suffix, starts with //
    assert strip_json_comments('{"a": 1} // x\n// y\n').count("\n") == 2  # lines kept: error positions stay right
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path / "bad.json", '// one\n// two\n{"trading_mode": }\n'))
    assert "line 3" in e.value.message


@pytest.mark.parametrize(
    "old,new,needle,hint",
    [
        ('"api_secret": "your_api_secret"', '"api_secrett": "your_api_secret"', "'zerodha.api_credentials.api_secrett'", "'api_secret'"),
        ('"access_token_path"', '"access_token_pth"', "'zerodha.cache.access_token_pth'", "'access_token_path'"),
        ('"fill_probability"', '"fill_probabilty"', "'zerodha.paper_trading.fill_probabilty'", "'fill_probability'"),
        ('"max_position_value"', '"max_positon_value"', "'risk.max_positon_value'", "'max_position_value'"),
        ('"enforce_trading_hours"', '"enforce_trading_hour"', "'risk.enforce_trading_hour'", "'enforce_trading_hours'"),
        ('"exchange": "ZERODHA"', '"exchnage": "ZERODHA"', "'exchnage'", "'exchange'"),
        ('"ticker_id": 1001', '"ticker_idd": 1001', "'instruments[0].ticker_idd'", "'ticker_id'"),
        ('"cache": {', '"cach": {', "'zerodha.cach'", "'cache'"),
    ],
)
def test_unknown_keys_are_78_with_suggestions(tmp_path, old, new, needle, hint):
    text = plan_text("1", '"BOOK"')
    assert old in text
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path / "trading.json", text.replace(old, new, 1)))
    assert e.value.status == 78
    assert f"unknown key {needle}" in e.value.message and f"did you mean {hint}" in e.value.message
    for secret in PLAN_SECRETS:
        assert secret not in e.value.message


@pytest.mark.parametrize(
    "data,needle",
    [
        ({"zerodha": {"api_key": "a", "api_credentials": {"api_key": "b"}}}, "given twice"),
        ({"zerodha": {"api_credentials": {"ZKITE_API_KEY": "a", "api_key": "b"}}}, "given twice"),
        ({"zerodha": {"api_credentials": "x"}}, "'zerodha.api_credentials' must be a table"),
        ({"paper_trading": {"order_latency_ms": 3}, "zerodha": {"paper_trading": {"min_latency_ms": 1, "max_latency_ms": 2}}},
         "'paper_trading.order_latency_ms' and 'zerodha.paper_trading.min_latency_ms' both set"),
        ({"paper_trading": {"min_latency_ms": 1}}, "needs both 'min_latency_ms' and 'max_latency_ms'"),
        ({"paper_trading": {"min_latency_ms": 5, "max_latency_ms": 1}}, "'paper_trading.max_latency_ms' must be ≥"),
        ({"paper_trading": {"min_latency_ms": 1, "max_latency_ms": 2, "latency_dist": "constant"}}, "both set the order latency"),
        ({"paper_trading": {"latency_dist": "normal"}}, "'paper_trading.latency_dist' must be one of"),
        ({"paper_trading": {"fill_probability": 1.5}}, "'paper_trading.fill_probability' must be ≤ 1"),
        ({"paper_trading": {"fill_probability": 0}}, "'paper_trading.fill_probability' must be > 0"),
        ({"binance": {"paper_trading": {"slippage_model": "GAUSSIAN"}}}, "'binance.paper_trading.slippage_model' must be one of"),
        ({"paper_trading": {"slippage_ticks": -1}}, "'paper_trading.slippage_ticks' must be ≥ 0"),
        ({"risk": {"max_position_value": 0}}, "'risk.max_position_value' must be > 0"),
        ({"exchange": "NSE"}, "'exchange' must be one of"),
    ],
)
def test_plan_keys_that_cannot_be_honoured_or_conflict_are_78(data, needle):
    with pytest.raises(ConfigError) as e:
        parse_config(data, name="t.json")
    assert e.value.status == 78 and needle in e.value.message, e.value.message


def test_venue_paper_trading_is_the_one_paper_trading_table():
    cfg = parse_config({"paper_trading": {"maker_fee_bps": 1}, "zerodha": {"paper_trading": {"taker_fee_bps": 3, "fill_probability": 1}}})
    assert (cfg.paper_trading.maker_fee_bps, cfg.paper_trading.taker_fee_bps, cfg.paper_trading.fill_probability) == (1, 3, 1)
    assert cfg.paper_trading.order_latency_ms == 20.0 and cfg.paper_trading.latency_dist == "constant"  # untouched defaults


def test_environment_overrides_credentials_written_in_api_credentials(honourable):
    cfg = load(honourable, environ={"ZKITE_API_SECRET": "from_env_secret_42", "ZKITE_USER_ID": "ZZ9999"})
    assert cfg.zerodha.api_secret.reveal() == "from_env_secret_42" and cfg.zerodha.user_id == "ZZ9999"
    assert cfg.zerodha.totp_secret.reveal() == "your_totp_secret"


def test_relative_cache_paths_are_taken_from_the_config_files_directory(tmp_path):
    d = tmp_path / "conf"
    d.mkdir()
    p = write(d / "trading.json", json.dumps({"zerodha": {"cache": {"access_token_path": "tok/session.json", "instruments_cache_dir": "~/instr"}}}))
    z = load(p, cwd=tmp_path).zerodha
    assert z.access_token_path == str(d / "tok" / "session.json")
    assert z.instruments_cache_dir == str(Path("~/instr").expanduser())


def test_origins_name_the_file_key_env_var_dotenv_and_default(honourable, tmp_path):
    dot = tmp_path / "creds.env"
    dot.write_text("ZKITE_PWD=dotenv_password_77\nZKITE_API_SECRET=shadowed_by_real_env\n")
    e = Environment()
    e.config_path = str(honourable)
    cfg, origins = load_config_with_origins(e, environ={"ZKITE_API_SECRET": "real_env_secret_99", "SQ_DOTENV": str(dot)}, cwd=tmp_path)
    rows = {k: (v, o) for k, v, o in config_values(cfg, origins)}
    assert rows["trading_mode"] == ("paper", Origin("file", str(honourable), "trading_mode"))
    assert rows["zerodha.totp_secret"] == ("yo***", Origin("file", str(honourable), "zerodha.api_credentials.totp_secret"))
    assert rows["zerodha.api_secret"] == ("re***", Origin("env", None, "ZKITE_API_SECRET"))
    assert rows["zerodha.password"] == ("do***", Origin(".env", str(dot), "ZKITE_PWD"))
    assert rows["paper_trading.order_latency_ms"][1].key == "zerodha.paper_trading.min_latency_ms"
    assert rows["instruments[1].symbol"] == ("NFO:BANKNIFTY-FUT", Origin("file", str(honourable), "instruments[1].{exchange,symbol}"))
    assert rows["risk.max_notional"] == (None, Origin("default"))
    assert rows["zerodha.root_url"] == ("https://api.kite.trade", Origin("default"))
    shown = repr(rows)
    for secret in (*PLAN_SECRETS, "dotenv_password_77", "real_env_secret_99", "shadowed_by_real_env"):
        assert secret not in shown
