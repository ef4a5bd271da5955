"""The dependency rule and the venue protocol, checked on the code itself.

* import-linter's contracts (pyproject `[tool.importlinter]`): core imports no run, command or
  venue package; venue packages import no run or command and not each other; runs and commands
  reach a venue only through `sq.venues.registry` and `sq.venues.base`.
* No module under `sq/core` compares anything with a venue name or a venue's symbol prefix.
* Every venue package offers the same module-level interface, and the registry's prefix table
  agrees with each package's own `PREFIXES`.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import ROOT

VENUE_WORDS = {"sim", "binance", "zerodha", "kite"}


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout and "kept" in r.stdout


def _venue_words() -> set[str]:
    from sq.venues.registry import PREFIX_VENUE

    return VENUE_WORDS | {p.lower() for p in PREFIX_VENUE}  # names and prefixes alike


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _venue_comparisons(tree: ast.AST, words: set[str]) -> list[int]:
    """Lines where a venue name or prefix is compared (==, !=, in) or prefix-tested (startswith)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            if any(s.strip().lower().rstrip(":") in words for s in _strings(node)):
                out.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("startswith", "endswith"):
            if any(s.strip().lower().rstrip(":") in words for s in _strings(node)):
                out.append(node.lineno)
    return out


def test_core_compares_no_venue_name():
    words = _venue_words()
    found = {}
    for path in sorted((ROOT / "sq" / "core").rglob("*.py")):
        lines = _venue_comparisons(ast.parse(path.read_text(), str(path)), words)
        if lines:
            found[str(path.relative_to(ROOT))] = lines
    assert found == {}


def test_the_comparison_check_can_fail():
    """The check above finds what it looks for (it is not vacuous)."""
    words = _venue_words()
    bad = 'def f(venue, s):\n    if venue == "binance":\n        return s.startswith("BINANCE-FUT:")\n'
    assert _venue_comparisons(ast.parse(bad), words) == [2, 3]


VENUE_INTERFACE = ("PREFIXES", "ORDER_RATE", "CORPORATE_ACTIONS", "holds_positions", "trading_session", "market_calendar", "secret_files",
                   "open_market_source", "open_gateway", "open_account", "instrument_info")


@pytest.mark.parametrize("venue", ["sim", "binance", "zerodha"])
def test_every_venue_package_offers_the_same_interface(venue):
    from sq.venues import registry

    module = registry.venue_module(venue)
    missing = [name for name in VENUE_INTERFACE if not hasattr(module, name)]
    assert missing == []
    assert {p for p, v in registry.PREFIX_VENUE.items() if v == venue} == set(module.PREFIXES)
    assert set(registry.PREFIX_VENUE) == set(registry.EXCHANGES)  # every prefix of the grammar has a venue
    kill = registry.kill_module(venue)
    assert callable(kill.account) and callable(kill.kill)
    if venue in registry.ACCOUNT_VENUES:
        auth = importlib.import_module(f"sq.venues.{venue}.auth")
        assert callable(auth.login) and callable(auth.status) and callable(auth.require_credentials)


def test_capabilities_answer_per_market():
    from sq.venues import registry

    assert registry.holds_positions("BINANCE-FUT:BTCUSDT") and not registry.holds_positions("BINANCE:BTCUSDT")
    assert registry.holds_positions("NSE:RELIANCE") and registry.holds_positions("SIM:DEMO")
    assert registry.trades_live("binance") and registry.trades_live("zerodha") and not registry.trades_live("sim")
    assert registry.order_rate("binance") == 10.0 and registry.order_rate("zerodha") == 10.0
    demo = registry.instrument_info([registry.parse_symbol("SIM:DEMO")], None)["SIM:DEMO"]
    assert (demo.tick_size, demo.lot_size, demo.venue) == (0.01, 1.0, "sim")
    assert {p.name for p in registry.secret_files({"SQ_CONFIG_DIR": "/nonexistent"})} >= {"binance.json", "session.json"}


@pytest.mark.parametrize("venue", ["sim", "binance", "zerodha"])
def test_history_modules_offer_the_fetch_protocol(venue):
    """A venue with downloadable history has the module-level names `sq fetch` uses (sq.venues.base)."""
    import importlib.util

    from sq.core.exits import UsageError
    from sq.venues import registry

    if importlib.util.find_spec(f"sq.venues.{venue}.history") is None:
        with pytest.raises(UsageError, match="no downloadable history"):
            registry.history_module(venue)
        return
    history = registry.history_module(venue)
    assert set(history.KINDS.values()) <= {"market", "bars", "funding"} and history.KINDS
    assert isinstance(history.INTERVALS, tuple)
    assert callable(history.calendar) and callable(history.open_history)


def test_trading_sessions_come_from_the_venue_packages():
    import datetime as dt

    from sq.core.sessions import UTC_DAY
    from sq.venues import registry

    nse = registry.trading_session("NSE:INFY")
    assert (nse.open, nse.close, nse.utc_offset) == (dt.time(9, 15), dt.time(15, 30), dt.timedelta(hours=5, minutes=30))
    assert registry.trading_session("NFO:NIFTY24JANFUT") == registry.trading_session("BSE:INFY") == nse
    assert registry.trading_session("MCX:CRUDEOIL").close == dt.time(23, 30)
    assert registry.trading_session("BINANCE:BTCUSDT") == registry.trading_session("SIM:DEMO") == UTC_DAY
    assert registry.trading_session("FOREIGN") == UTC_DAY  # no venue prefix: the UTC day
    assert nse.describe() == "09:15–15:30 UTC+05:30 (IST)" and UTC_DAY.describe() == "00:00–24:00 UTC+00:00 (UTC day)"
