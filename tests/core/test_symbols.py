"""Symbols (README: Symbols) and durations as the CLI reads them."""

from __future__ import annotations

import pytest

from sq.core.durations import parse_duration_ns
from sq.core.exits import UsageError
from sq.venues.registry import parse_symbol, parse_symbols, venue_of


@pytest.mark.parametrize(
    "text, canonical, venue",
    [
        ("sim:demo", "SIM:DEMO", "sim"),
        ("NSE:RELIANCE", "NSE:RELIANCE", "zerodha"),
        ("nfo:nifty25decfut", "NFO:NIFTY25DECFUT", "zerodha"),
        ("NSE:NIFTY 50", "NSE:NIFTY 50", "zerodha"),
        ("binance:btcusdt", "BINANCE:BTCUSDT", "binance"),
        ("Binance-Fut:ethusdt", "BINANCE-FUT:ETHUSDT", "binance"),
        (" mcx:crudeoil25decfut ", "MCX:CRUDEOIL25DECFUT", "zerodha"),
    ],
)
def test_canonical_form_and_venue(text, canonical, venue):
    s = parse_symbol(text)
    assert s.canonical == canonical and venue_of(s) == venue


def test_unknown_prefix_suggests_close_matches():
    with pytest.raises(UsageError) as e:
        parse_symbol("BINANSE:BTCUSDT")
    assert "BINANCE:BTCUSDT" in e.value.message and "BINANSE" in e.value.message


def test_missing_prefix_and_empty_name():
    with pytest.raises(UsageError, match="no venue prefix"):
        parse_symbol("RELIANCE")
    with pytest.raises(UsageError, match="empty"):
        parse_symbol("SIM:")


def test_duplicates_dropped_in_order():
    assert [s.canonical for s in parse_symbols(["sim:b", "SIM:A", "SIM:B"])] == ["SIM:B", "SIM:A"]


@pytest.mark.parametrize(
    "text, ns",
    [("30s", 30_000_000_000), ("100ms", 100_000_000), ("1h30m", 5_400_000_000_000), ("0", 0),
     ("1.5s", 1_500_000_000), ("500us", 500_000), ("1d", 86_400_000_000_000)],
)
def test_durations(text, ns):
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("bad", ["", "abc", "10x", "-5", "5s3", "20", "2.5"])
def test_bad_durations_name_the_option(bad):
    with pytest.raises(UsageError, match="--for"):
        parse_duration_ns(bad, option="--for")


def test_a_number_without_a_unit_says_which_units_it_could_mean():
    """`--latency 20` used to be 20 seconds; it is ambiguous, so it is refused naming both readings."""
    with pytest.raises(UsageError, match=r"--latency: '20' needs a unit — e\.g\. 20ms or 20s"):
        parse_duration_ns("20", option="--latency")
