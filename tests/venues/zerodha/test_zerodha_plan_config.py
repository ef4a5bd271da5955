"""The plan's `zerodha.cache` keys and `ticker_id` against the local Kite server: `sq auth zerodha`
keeps the session at `access_token_path` (0600, read back from there, listed as a secret file),
the day's instruments dump is cached in `instruments_cache_dir`, and a `ticker_id` that is not the
symbol's instrument_token stops the run with 78."""

from __future__ import annotations

import json
import os
import stat

import pytest

from sq.core.config import load_config
from sq.core.environment import Environment
from sq.core.exits import ConfigError
from sq.core.symbols import parse_symbol
from sq.venues import registry
from sq.venues.zerodha.session import access_token, session_path


def plan_config(tmp_path, monkeypatch, ticker_id: int) -> None:
    p = tmp_path / "trading.json"
    p.write_text('{\n  "trading_mode": "PAPER",  // "PAPER" or "LIVE"\n  "exchange": "ZERODHA",\n' + json.dumps({
        "zerodha": {"cache": {"access_token_path": "tokens/token.json", "instruments_cache_dir": "instruments"}},
        "instruments": [{"symbol": "RELIANCE", "exchange": "NSE", "ticker_id": ticker_id, "clip": 1}],
    })[1:])
    os.chmod(p, 0o600)
    monkeypatch.setenv("SQ_CONFIG", str(p))


def test_cache_paths_hold_the_session_and_the_dump(sq, kite_env, tmp_path, monkeypatch):
    plan_config(tmp_path, monkeypatch, ticker_id=738561)
    r = sq(["auth", "zerodha", "--json"])
    assert r.exit_code == 0, r.stderr
    token_file = tmp_path / "tokens" / "token.json"
    assert json.loads(r.stdout)["zerodha"]["token_file"] == str(token_file)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and not session_path().exists()
    config = load_config(Environment())
    assert access_token(config.zerodha)[1] in kite_env.valid_tokens  # read back from the moved file
    assert token_file in registry.secret_files(None, config) and token_file not in registry.secret_files(None)
    info = registry.instrument_info([parse_symbol("NSE:RELIANCE")], config)
    assert info["NSE:RELIANCE"].extra["instrument_token"] == 738561
    assert len(list((tmp_path / "instruments").glob("instruments-*.csv"))) == 1


def test_a_ticker_id_that_is_not_the_instrument_token_is_78(sq, kite_env, tmp_path, monkeypatch):
    plan_config(tmp_path, monkeypatch, ticker_id=1001)
    assert sq(["auth", "zerodha"]).exit_code == 0
    with pytest.raises(ConfigError) as e:
        registry.instrument_info([parse_symbol("NSE:RELIANCE")], load_config(Environment()))
    assert e.value.status == 78
    assert "'instruments[0].ticker_id' 1001 is not the instrument_token of NSE:RELIANCE" in e.value.message and "738561" in e.value.message
