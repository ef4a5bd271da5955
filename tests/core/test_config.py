"""Configuration: TOML and JSON layouts, where the file is found, environment and .env overrides,
strict frozen objects (unknown key / wrong type → exit 78 naming file and key), masked secrets,
0600 secret files, SQ_HOME-isolated paths."""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import pytest

from sq.core import paths
from sq.core.config import Config, ConfigError, Secret, find_config, load_config, parse_config
from sq.core.dotenv import parse_dotenv
from sq.core.environment import Environment
from sq.core.exits import ExitStatus

TOML = """
trading_mode = "live"

[[instruments]]
symbol = "nse:reliance"
clip = 1
threshold = 0.6
max_order_size = 10
max_position = 50
max_loss = 5000

[[instruments]]
symbol = "BINANCE:BTCUSDT"
clip = 0.001

[risk]
max_daily_loss = 20000
max_order_rate = 5
price_band_pct = 2.5

[paper_trading]
starting_capital = 250000
taker_fee_bps = 3
order_latency_ms = 50

[zerodha]
api_key = "kite_key"
api_secret = "kite_secret_value_123"
totp_secret = "JBSWY3DPEHPK3PXP"
root_url = "http://127.0.0.1:9000"

[binance]
api_key = "bkey"
api_secret = "binance_secret_value_456"
testnet = true

[sim.DEMO]
tick_size = 0.05
price = 2500
lot_size = 1
"""

PLAN_JSON = {
    "trading_mode": "paper",
    "instruments": [
        {"exchange": "NSE", "tradingsymbol": "INFY", "clip": 5, "threshold": 0.6, "max_order_size": 10, "max_position": 40, "max_loss": 1000},
        {"symbol": "SIM:DEMO", "clip": 1},
    ],
    "risk": {"max_daily_loss": 5000, "max_order_rate": 10, "price_band_pct": 1.0},
    "paper_trading": {"starting_capital": 100000, "maker_fee_bps": 0, "feed_latency_ms": 1},
}


def env_with(path=None) -> Environment:
    e = Environment()
    e.config_path = str(path) if path else None
    return e


def write(path, text):
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def test_toml_layout(tmp_path):
    cfg = load_config(env_with(write(tmp_path / "sq.toml", TOML)), environ={}, cwd=tmp_path)
    assert cfg.trading_mode == "live"
    assert [i.symbol for i in cfg.instruments] == ["NSE:RELIANCE", "BINANCE:BTCUSDT"]
    rel = cfg.instrument("nse:reliance")
    assert (rel.clip, rel.threshold, rel.max_order_size, rel.max_position, rel.max_loss) == (1.0, 0.6, 10.0, 50.0, 5000.0)
    assert cfg.risk.max_daily_loss == 20000 and cfg.risk.max_order_rate == 5 and cfg.risk.price_band_pct == 2.5
    assert cfg.paper_trading.starting_capital == 250000 and cfg.paper_trading.taker_fee_bps == 3
    assert cfg.zerodha.api_key == "kite_key" and cfg.zerodha.api_secret.reveal() == "kite_secret_value_123"
    assert cfg.zerodha.root_url == "http://127.0.0.1:9000" and cfg.zerodha.ws_url == "wss://ws.kite.trade"
    assert cfg.binance.testnet is True
    assert cfg.sim["DEMO"].tick_size == 0.05 and cfg.sim["DEMO"].price == 2500
    assert cfg.source == str(tmp_path / "sq.toml")


def test_json_plan_layout(tmp_path):
    p = write(tmp_path / "config.json", json.dumps(PLAN_JSON))
    cfg = load_config(env_with(p), environ={}, cwd=tmp_path)
    assert cfg.trading_mode == "paper"
    assert cfg.symbols == ["NSE:INFY", "SIM:DEMO"]
    assert cfg.instruments[0].max_loss == 1000 and cfg.instruments[0].clip == 5
    assert cfg.risk.max_order_rate == 10 and cfg.paper_trading.maker_fee_bps == 0


def test_json_sniffed_without_suffix(tmp_path):
    p = write(tmp_path / "myconfig", json.dumps({"trading_mode": "live"}))
    assert load_config(env_with(p), environ={}, cwd=tmp_path).trading_mode == "live"


def test_defaults_when_no_config_anywhere(tmp_path):
    cfg = load_config(env_with(), environ={"SQ_HOME": str(tmp_path)}, cwd=tmp_path)
    assert cfg == Config()
    assert cfg.trading_mode == "paper" and cfg.instruments == () and cfg.source is None


def test_precedence_flag_then_env_then_platform_dir(tmp_path):
    home = tmp_path / "home"
    platform = paths.config_dir({"SQ_HOME": str(home)})
    platform.mkdir(parents=True)
    write(platform / "sq.toml", 'trading_mode = "live"\n')
    via_env = write(tmp_path / "env.toml", "[[instruments]]\nsymbol = 'SIM:ENV'\n")
    via_flag = write(tmp_path / "flag.toml", "[[instruments]]\nsymbol = 'SIM:FLAG'\n")
    environ = {"SQ_HOME": str(home), "SQ_CONFIG": str(via_env)}
    assert load_config(env_with(via_flag), environ=environ, cwd=tmp_path).symbols == ["SIM:FLAG"]
    assert load_config(env_with(), environ=environ, cwd=tmp_path).symbols == ["SIM:ENV"]
    cfg = load_config(env_with(), environ={"SQ_HOME": str(home)}, cwd=tmp_path)
    assert cfg.trading_mode == "live" and cfg.source == str(platform / "sq.toml")


def test_platform_dir_json_when_no_toml(tmp_path):
    platform = paths.config_dir({"SQ_HOME": str(tmp_path)})
    platform.mkdir(parents=True)
    write(platform / "config.json", json.dumps(PLAN_JSON))
    assert find_config(env_with(), {"SQ_HOME": str(tmp_path)}) == platform / "config.json"


def test_named_config_missing_is_78(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(env_with(tmp_path / "nope.toml"), environ={}, cwd=tmp_path)
    assert e.value.status == ExitStatus.CONFIG and "nope.toml" in e.value.message


def test_env_overrides_credentials_and_endpoints(tmp_path):
    p = write(tmp_path / "sq.toml", TOML)
    environ = {
        "ZKITE_API_KEY": "envkey",
        "ZKITE_API_SECRET": "env_secret_zzzzzz",
        "ZKITE_USER_ID": "AB1234",
        "ZKITE_PWD": "hunter2hunter2",
        "ZKITE_TOTP_SECRET": "ENVTOTPSEEDXXXX",
        "BINANCE_API_KEY": "benv",
        "BINANCE_API_SECRET": "benv_secret_yyyyy",
        "SQ_BINANCE_REST_URL": "http://127.0.0.1:1",
        "SQ_BINANCE_WS_URL": "ws://127.0.0.1:2",
        "SQ_BINANCE_WS_API_URL": "ws://127.0.0.1:3",
        "SQ_BINANCE_FUTURES_REST_URL": "http://127.0.0.1:4",
        "SQ_BINANCE_FUTURES_WS_URL": "ws://127.0.0.1:5",
        "SQ_KITE_ROOT_URL": "http://127.0.0.1:6",
        "SQ_KITE_WS_URL": "ws://127.0.0.1:7",
        "SQ_KITE_LOGIN_URL": "http://127.0.0.1:8",
    }
    cfg = load_config(env_with(p), environ=environ, cwd=tmp_path)
    z, b = cfg.zerodha, cfg.binance
    assert (z.api_key, z.user_id) == ("envkey", "AB1234")
    assert z.api_secret.reveal() == "env_secret_zzzzzz" and z.password.reveal() == "hunter2hunter2"
    assert z.totp_secret.reveal() == "ENVTOTPSEEDXXXX"
    assert (z.root_url, z.ws_url, z.login_url) == ("http://127.0.0.1:6", "ws://127.0.0.1:7", "http://127.0.0.1:8")
    assert (b.api_key, b.api_secret.reveal()) == ("benv", "benv_secret_yyyyy")
    assert (b.rest_url, b.ws_url, b.ws_api_url, b.futures_rest_url, b.futures_ws_url) == tuple(f"{s}://127.0.0.1:{i}" for s, i in [("http", 1), ("ws", 2), ("ws", 3), ("http", 4), ("ws", 5)])
    assert b.testnet is True  # untouched file values stay


def test_env_var_names_accepted_as_keys_in_file(tmp_path):
    p = write(tmp_path / "sq.toml", '[binance]\nSQ_BINANCE_REST_URL = "http://x"\n[zerodha]\nZKITE_API_KEY = "k"\n')
    cfg = load_config(env_with(p), environ={}, cwd=tmp_path)
    assert cfg.binance.rest_url == "http://x" and cfg.zerodha.api_key == "k"


def test_dotenv_in_cwd_fills_in_but_never_overrides_real_env(tmp_path):
    (tmp_path / ".env").write_text(
        "# creds\nexport ZKITE_API_KEY=fromdotenv\nBINANCE_API_KEY='quoted value'  \n"
        'BINANCE_API_SECRET="dq\\nsecret" # trailing\nSQ_KITE_WS_URL=ws://dotenv # comment\n'
    )
    cfg = load_config(env_with(), environ={"SQ_HOME": str(tmp_path / "h"), "ZKITE_API_KEY": "real"}, cwd=tmp_path)
    assert cfg.zerodha.api_key == "real"
    assert cfg.binance.api_key == "quoted value" and cfg.binance.api_secret.reveal() == "dq\nsecret"
    assert cfg.zerodha.ws_url == "ws://dotenv"


def test_dotenv_explicit_path_only(tmp_path):
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    (tmp_path / ".env").write_text("ZKITE_API_KEY=parent\n")  # a parent dir's .env is never searched
    assert load_config(env_with(), environ={"SQ_HOME": str(tmp_path / "h")}, cwd=sub).zerodha.api_key is None
    explicit = tmp_path / "creds.env"
    explicit.write_text("ZKITE_API_KEY=explicit\n")
    cfg = load_config(env_with(), environ={"SQ_HOME": str(tmp_path / "h"), "SQ_DOTENV": str(explicit)}, cwd=sub)
    assert cfg.zerodha.api_key == "explicit"


def test_dotenv_syntax_error_names_line_not_value():
    with pytest.raises(ConfigError) as e:
        parse_dotenv("OK=1\nTOPSECRETVALUE\n", name="x.env")
    assert "x.env:2" in e.value.message and "TOPSECRETVALUE" not in e.value.message


def test_unknown_key_is_78_naming_file_key_path_and_suggestion(tmp_path):
    p = write(tmp_path / "sq.toml", "[[instruments]]\nsymbol = 'SIM:DEMO'\nclipp = 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(env_with(p), environ={}, cwd=tmp_path)
    msg = e.value.message
    assert e.value.status == 78
    assert "sq.toml" in msg and "unknown key 'instruments[0].clipp'" in msg and "'clip'" in msg


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[risk]\nmax_daily_los = 1\n", "'risk.max_daily_los'"),
        ("tradingmode = 'paper'\n", "'tradingmode'"),
        ("[sim.DEMO]\ntick = 0.1\n", "'sim.DEMO.tick'"),
        ("[zerodha]\napi_secrett = 'x'\n", "'zerodha.api_secrett'"),
    ],
)
def test_unknown_keys_everywhere(tmp_path, text, needle):
    p = write(tmp_path / "sq.toml", text)
    with pytest.raises(ConfigError) as e:
        load_config(env_with(p), environ={}, cwd=tmp_path)
    assert needle in e.value.message


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[[instruments]]\nsymbol = 'SIM:DEMO'\nclip = 'big'\n", "'instruments[0].clip' must be a number"),
        ("trading_mode = 'lve'\n", "'trading_mode' must be one of"),
        ("instruments = 3\n", "'instruments' must be a list"),
        ("[risk]\nmax_open_orders = 2.5\n", "'risk.max_open_orders' must be an integer"),
        ("[binance]\ntestnet = 'maybe'\n", "'binance.testnet' must be true or false"),
        ("[[instruments]]\nclip = 1\n", "lacks required key 'symbol'"),
        ("[[instruments]]\nsymbol = 'FOO:BAR'\n", "'instruments[0].symbol'"),
        ("risk = 1\n", "'risk' must be a table"),
        ("this is not toml", "invalid TOML"),
    ],
)
def test_wrong_types_are_78(tmp_path, text, needle):
    p = write(tmp_path / "sq.toml", text)
    with pytest.raises(ConfigError) as e:
        load_config(env_with(p), environ={}, cwd=tmp_path)
    assert e.value.status == 78 and needle in e.value.message and str(p) in e.value.message


def test_invalid_json_is_78(tmp_path):
    p = write(tmp_path / "c.json", '{"trading_mode": ')
    with pytest.raises(ConfigError) as e:
        load_config(env_with(p), environ={}, cwd=tmp_path)
    assert "invalid JSON" in e.value.message


def test_config_objects_are_frozen(tmp_path):
    cfg = load_config(env_with(write(tmp_path / "sq.toml", TOML)), environ={}, cwd=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.trading_mode = "paper"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.instruments[0].clip = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.sim["X"] = None  # type: ignore[index]


def test_secrets_masked_in_repr_str_and_errors(tmp_path):
    cfg = load_config(env_with(write(tmp_path / "sq.toml", TOML)), environ={"ZKITE_PWD": "p4ssw0rd-very-secret"}, cwd=tmp_path)
    text = repr(cfg) + str(cfg) + f"{cfg.zerodha.api_secret}" + str(cfg.binance.api_secret)
    for secret in ("kite_secret_value_123", "JBSWY3DPEHPK3PXP", "binance_secret_value_456", "p4ssw0rd-very-secret"):
        assert secret not in text
    assert "Secret('ki***')" in repr(cfg.zerodha)
    assert repr(Secret("short")) == "Secret('***')"
    # a wrong type next to a secret names the key, never the value
    p = write(tmp_path / "bad.toml", '[zerodha]\napi_secret = 12345678901\npassword = ["hunter2hunter2"]\n')
    with pytest.raises(ConfigError) as e:
        load_config(env_with(p), environ={}, cwd=tmp_path)
    assert "12345678901" not in e.value.message and "'zerodha.api_secret' must be a string" in e.value.message


def test_cli_config_error_exit_78_and_secret_free(tmp_path, sq, monkeypatch):
    p = write(tmp_path / "sq.toml", "[zerodha]\napi_secret = 'leakme_leakme'\ntotp = 'x'\n")
    monkeypatch.setenv("SQ_CONFIG", str(p))
    from sq.core.config import load_config as lc
    from sq.core.exits import SqError
    from sq.cli import report_error
    import io

    err = io.StringIO()
    try:
        lc(env_with())
    except SqError as e:
        status = report_error(e, None, err)
    assert status == 78
    assert "unknown key 'zerodha.totp'" in err.getvalue() and "leakme" not in err.getvalue()


def test_world_readable_config_with_secrets_warns(tmp_path):
    import io

    p = tmp_path / "sq.toml"
    p.write_text("[binance]\napi_secret = 'abcdefghijkl'\n")
    os.chmod(p, 0o644)
    err = io.StringIO()
    e = Environment(stderr=err)
    e.config_path = str(p)
    load_config(e, environ={}, cwd=tmp_path)
    assert "chmod 600" in err.getvalue() and "abcdefghijkl" not in err.getvalue()


def test_paths_follow_sq_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SQ_HOME", str(tmp_path))
    assert paths.config_dir() == tmp_path / "config"
    assert paths.state_dir() == tmp_path / "state"
    assert paths.cache_dir() == tmp_path / "cache"
    assert paths.data_dir() == tmp_path / "data"
    monkeypatch.delenv("SQ_HOME")
    assert paths.config_dir().name == "sq" and paths.data_dir().name == "sq"


def test_write_secret_file_is_0600_and_atomic(tmp_path):
    old = os.umask(0)
    try:
        target = tmp_path / "creds" / "zerodha.json"
        paths.write_secret_file(target, '{"access_token": "t"}')
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
        paths.write_secret_file(target, b"second")
        assert target.read_bytes() == b"second" and stat.S_IMODE(target.stat().st_mode) == 0o600
        assert [p.name for p in target.parent.iterdir()] == ["zerodha.json"]  # no temp files left
    finally:
        os.umask(old)


def test_parse_config_direct_and_unknown_top_level():
    cfg = parse_config({"trading_mode": "paper", "instruments": [{"symbol": "sim:x"}]}, name="inline")
    assert cfg.symbols == ["SIM:X"]
    with pytest.raises(ConfigError, match="inline: unknown key 'paper_tradin'"):
        parse_config({"paper_tradin": {}}, name="inline")


def test_market_rule_switches_in_both_layouts(tmp_path):
    """docs/market-rules.md: the exchange's rules are on by default and each one turns off."""
    default = parse_config({})
    assert default.risk.enforce_trading_hours and default.risk.enforce_circuit_limits
    assert default.zerodha.square_off and default.zerodha.holidays_file is None
    toml = load_config(env_with(write(tmp_path / "sq.toml", '[risk]\nenforce_trading_hours = false\n'
                                      '[zerodha]\nsquare_off = false\nholidays_file = "h.csv"\n')), environ={}, cwd=tmp_path)
    assert not toml.risk.enforce_trading_hours and toml.risk.enforce_circuit_limits
    assert not toml.zerodha.square_off and toml.zerodha.holidays_file == "h.csv"
    doc = json.dumps({"risk": {"enforce_trading_hours": True, "enforce_circuit_limits": False}})
    js = load_config(env_with(write(tmp_path / "config.json", doc)), environ={}, cwd=tmp_path)
    assert js.risk.enforce_trading_hours and not js.risk.enforce_circuit_limits
    with pytest.raises(ConfigError, match="risk.enforce_trading_hours"):
        parse_config({"risk": {"enforce_trading_hours": "sometimes"}})


def test_research_returns_basis(tmp_path):
    """`[research] returns_basis` (docs/metrics.md): daily by default, a period dividing the day,
    anything else exit 78 naming the key."""
    assert load_config(env_with(), environ={"SQ_HOME": str(tmp_path)}, cwd=tmp_path).research.returns_basis == "1d"
    cfg = load_config(env_with(write(tmp_path / "r.toml", '[research]\nreturns_basis = "1h"\n')), environ={}, cwd=tmp_path)
    assert cfg.research.returns_basis == "1h"
    with pytest.raises(ConfigError, match="returns_basis"):
        load_config(env_with(write(tmp_path / "bad.toml", '[research]\nreturns_basis = "7m"\n')), environ={}, cwd=tmp_path)
