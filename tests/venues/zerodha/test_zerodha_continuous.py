"""Continuous futures names (`NFO:NIFTY-FUT`) → the dated contract, against the Kite fake's
instruments dump (tests/support/fakes/kite: NIFTY, BANKNIFTY and CRUDEOIL list three expiries,
RELIANCE two, NIFTY25DECFUT and USDINR25DECFUT have expired). The moment of resolution is a
parameter (`continuous.choose`) or the pinned `continuous.now_ist` clock, never the wall clock."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from sq.core.config import load_config
from sq.core.environment import Environment
from sq.core.exits import UsageError
from sq.core.symbols import parse_symbols
from sq.venues import registry
from sq.venues.base import Contract
from sq.venues.zerodha import continuous
from sq.venues.zerodha.instruments import parse_csv
from sq.venues.zerodha.session import IST
from tests.support.fakes.kite import KiteFake, packets


@pytest.fixture(scope="module")
def dump():
    return parse_csv(KiteFake().instruments_csv)


def at(day: str, hh: int = 10, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hh, mm), IST)


def pick(dump, symbol: str, now: dt.datetime, rule: str = "near") -> str:
    return continuous.choose(symbol, dump, rule, now).symbol


@pytest.fixture
def pinned(kite_env, monkeypatch):
    """Logged in at the fake, with continuous names resolved as of 7 Dec 2026 10:00 IST."""
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    monkeypatch.setattr(continuous, "now_ist", lambda: at("2026-12-07"))
    return kite_env


def test_the_nearest_contract_until_its_expiry_days_close_then_the_next(dump):
    assert pick(dump, "NFO:NIFTY-FUT", at("2026-12-07")) == "NFO:NIFTY26DECFUT"  # NIFTY25DECFUT (2025) has expired
    assert pick(dump, "NFO:NIFTY-FUT", at("2026-12-29", 15, 29)) == "NFO:NIFTY26DECFUT"  # expiry day, market open
    assert pick(dump, "NFO:NIFTY-FUT", at("2026-12-29", 15, 30)) == "NFO:NIFTY27JANFUT"  # NFO closes 15:30 IST
    assert pick(dump, "NFO:NIFTY-FUT", at("2026-12-30", 9, 0)) == "NFO:NIFTY27JANFUT"
    assert pick(dump, "MCX:CRUDEOIL-FUT", at("2026-12-17", 23, 29)) == "MCX:CRUDEOIL26DECFUT"  # MCX trades until 23:30
    assert pick(dump, "MCX:CRUDEOIL-FUT", at("2026-12-17", 23, 30)) == "MCX:CRUDEOIL27JANFUT"
    # any time zone is read in IST: 10:00 UTC is 15:30 IST, NFO's close
    assert pick(dump, "NFO:NIFTY-FUT", dt.datetime(2026, 12, 29, 9, 59, tzinfo=dt.timezone.utc)) == "NFO:NIFTY26DECFUT"
    assert pick(dump, "NFO:NIFTY-FUT", dt.datetime(2026, 12, 29, 10, 0, tzinfo=dt.timezone.utc)) == "NFO:NIFTY27JANFUT"


def test_next_and_far_are_the_second_and_third_listed_contracts(dump):
    now = at("2026-12-07")
    assert [pick(dump, "NFO:BANKNIFTY-FUT", now, r) for r in ("near", "next", "far")] == \
        ["NFO:BANKNIFTY26DECFUT", "NFO:BANKNIFTY27JANFUT", "NFO:BANKNIFTY27FEBFUT"]
    assert pick(dump, "NFO:NIFTY-FUT", at("2026-12-29", 16), "next") == "NFO:NIFTY27FEBFUT"  # the roll moves them all
    assert pick(dump, "NFO:RELIANCE-FUT", now, "next") == "NFO:RELIANCE27JANFUT"
    with pytest.raises(UsageError) as e:  # RELIANCE lists two expiries
        pick(dump, "NFO:RELIANCE-FUT", now, "far")
    assert e.value.status == 2 and "3rd" in e.value.message and "RELIANCE26DECFUT, RELIANCE27JANFUT" in e.value.message
    assert "\n" not in e.value.message
    with pytest.raises(UsageError):  # after December's expiry CRUDEOIL lists only January and February
        pick(dump, "MCX:CRUDEOIL-FUT", at("2026-12-18"), "far")


def test_nifty50_names_the_nifty_underlyings_futures_and_options_never_count(dump):
    now = at("2026-12-07")
    assert pick(dump, "NFO:NIFTY50-FUT", now) == pick(dump, "NFO:NIFTY-FUT", now) == "NFO:NIFTY26DECFUT"
    assert pick(dump, "nfo:nifty50-fut", now, "far") == "NFO:NIFTY27FEBFUT"
    # NIFTY26DEC24000CE (name NIFTY, same expiry) is an option: three futures, not four
    assert [k.tradingsymbol for k in continuous.listed(dump, "NFO", "NIFTY", now)] == ["NIFTY26DECFUT", "NIFTY27JANFUT", "NIFTY27FEBFUT"]


@pytest.mark.parametrize("symbol, words", [
    ("NFO:NIFTI-FUT", ["NIFTI", "did you mean NFO:NIFTY-FUT"]),
    ("MCX:CRUDE-FUT", ["CRUDE", "did you mean MCX:CRUDEOIL-FUT"]),
    ("NFO:USDINR-FUT", ["USDINR", "CDS:USDINR-FUT"]),  # its futures trade on another segment
    ("CDS:USDINR-FUT", ["expired", "2025-12-29"]),
    ("NSE:RELIANCE-FUT", ["NSE lists no futures", "NFO:RELIANCE-FUT"]),
    ("NFO:ZZZZ-FUT", ["ZZZZ"]),
])
def test_an_unknown_underlying_is_a_one_line_usage_error_with_close_matches(dump, symbol, words):
    with pytest.raises(UsageError) as e:
        continuous.resolve_continuous([symbol], dump, "near", at("2026-12-07"))
    assert e.value.status == 2 and "\n" not in e.value.message
    for w in words:
        assert w in e.value.message


def test_only_continuous_names_are_resolved(dump):
    assert continuous.resolve_continuous(["NSE:INFY", "NFO:NIFTY26DECFUT", "NSE:CENTRALBK-BE", "NFO:-FUT"], dump, "near", at("2026-12-07")) == {}


def test_the_registry_replaces_continuous_names_by_todays_contracts(pinned, tmp_path, monkeypatch):
    config = load_config()
    syms, chosen = registry.resolve_contracts(parse_symbols(["NFO:NIFTY-FUT", "NSE:INFY", "NFO:NIFTY26DECFUT", "MCX:CRUDEOIL-FUT"]), config)
    assert [s.canonical for s in syms] == ["NFO:NIFTY26DECFUT", "NSE:INFY", "MCX:CRUDEOIL26DECFUT"]  # the duplicate contract once
    assert chosen == {"NFO:NIFTY26DECFUT": Contract("NFO:NIFTY-FUT", "NFO:NIFTY26DECFUT", "2026-12-29", "near"),
                      "MCX:CRUDEOIL26DECFUT": Contract("MCX:CRUDEOIL-FUT", "MCX:CRUDEOIL26DECFUT", "2026-12-17", "near")}
    assert chosen["NFO:NIFTY26DECFUT"].describe() == "NFO:NIFTY-FUT → NFO:NIFTY26DECFUT (expiry 2026-12-29)"
    syms, chosen = registry.resolve_contracts(parse_symbols(["NFO:NIFTY-FUT"]), config, expiry="far")
    assert [s.canonical for s in syms] == ["NFO:NIFTY27FEBFUT"] and chosen["NFO:NIFTY27FEBFUT"].rule == "far"
    assert "far expiry" in chosen["NFO:NIFTY27FEBFUT"].describe()
    # the config's rule, when no --expiry is given
    (tmp_path / "sq.toml").write_text('[zerodha]\nexpiry = "next"\n')
    monkeypatch.setenv("SQ_CONFIG", str(tmp_path / "sq.toml"))
    syms, _ = registry.resolve_contracts(parse_symbols(["NFO:BANKNIFTY-FUT"]), load_config())
    assert [s.canonical for s in syms] == ["NFO:BANKNIFTY27JANFUT"]
    syms, _ = registry.resolve_contracts(parse_symbols(["NFO:BANKNIFTY-FUT"]), load_config(), expiry="near")  # the flag wins
    assert [s.canonical for s in syms] == ["NFO:BANKNIFTY26DECFUT"]


def test_expiry_without_a_continuous_name_or_with_a_bad_rule_is_a_usage_error(pinned):
    config = load_config()
    with pytest.raises(UsageError, match="none"):
        registry.resolve_contracts(parse_symbols(["NSE:INFY"]), config, expiry="next")
    with pytest.raises(UsageError, match="near, next, far"):
        registry.resolve_contracts(parse_symbols(["NFO:NIFTY-FUT"]), config, expiry="later")
    syms, chosen = registry.resolve_contracts(parse_symbols(["SIM:DEMO"]), config)  # a venue without dated futures
    assert [s.canonical for s in syms] == ["SIM:DEMO"] and chosen == {}
    with pytest.raises(UsageError):
        registry.resolve_contracts(parse_symbols(["SIM:DEMO"]), config, expiry="near")


def test_a_config_with_an_unknown_expiry_rule_is_refused(tmp_path, monkeypatch):
    from sq.core.exits import ConfigError

    (tmp_path / "sq.toml").write_text('[zerodha]\nexpiry = "soon"\n')
    monkeypatch.setenv("SQ_CONFIG", str(tmp_path / "sq.toml"))
    with pytest.raises(ConfigError) as e:
        load_config()
    assert e.value.status == 78 and "expiry" in e.value.message


def test_a_replay_resolves_against_its_capture_at_the_time_it_was_recorded(tmp_path, monkeypatch):
    """No network: the capture's /instruments rows and their receive time decide, not today's dump."""
    monkeypatch.setattr(continuous, "now_ist", lambda: pytest.fail("a replay must not use the clock"))
    header = KiteFake().instruments_csv.splitlines()[0]
    rows = [r for r in KiteFake().instruments_csv.splitlines() if ",NIFTY26DECFUT," in r or ",NIFTY27JANFUT," in r]
    recorded = int(at("2026-12-29", 15, 0).timestamp() * 1e9)  # before December's expiry close
    token = 15360258  # NIFTY26DECFUT
    lines = [{"t": recorded, "src": "rest", "venue": "zerodha", "stream": "/instruments", "kind": "text", "data": "\n".join([header, *rows]) + "\n"},
             {"t": recorded + 1, "src": "ws", "venue": "zerodha", "stream": "x", "kind": "binary",
              "data": base64.b64encode(packets.frame([packets.ltp(token, 26100.5)])).decode()}]
    raw = tmp_path / "cap.jsonl"
    raw.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    syms, chosen = registry.resolve_contracts(parse_symbols(["NFO:NIFTY-FUT"]), load_config(), replay_path=str(raw))
    assert [s.canonical for s in syms] == ["NFO:NIFTY26DECFUT"]
    src = registry.open_market_source(syms, registry.SourceOptions(config=load_config(), env=Environment(), replay_path=str(raw),
                                                                   contracts=chosen))
    assert src.instruments["NFO:NIFTY26DECFUT"].extra["continuous"] == "NFO:NIFTY-FUT"
    assert [b.num_rows for b in src.batches()] == [1]
    with pytest.raises(UsageError, match="2 "):  # the capture lists two contracts: no far one
        registry.resolve_contracts(parse_symbols(["NFO:NIFTY-FUT"]), load_config(), expiry="far", replay_path=str(raw))
