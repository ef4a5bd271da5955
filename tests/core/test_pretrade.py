"""`pretrade.check_order`: one order outside a running engine gets the engine's own risk verdicts
(the same kernel), from the config's limits and the account's position and working orders."""

from __future__ import annotations

import datetime as dt

from sq.core.config import parse_config
from sq.core.engine.pretrade import MarketState, SymbolLimits, check_order
from sq.core.sessions import MarketCalendar, TradingSession

SYM = "NSE:INFY"
NOON_UTC_MONDAY = int(dt.datetime(2026, 12, 7, 6, 30, tzinfo=dt.timezone.utc).timestamp() * 1e9)  # 12:00 IST
SATURDAY = NOON_UTC_MONDAY - 2 * 86_400_000_000_000


def _config(risk: str = "", inst: str = 'max_order_size = 10\nmax_position = 20\n'):
    import tomllib

    return parse_config(tomllib.loads(f'[risk]\n{risk}\n[[instruments]]\nsymbol = "{SYM}"\n{inst}'))


def _nse():
    return MarketCalendar(TradingSession(dt.time(9, 15), dt.time(15, 30), dt.timedelta(hours=5, minutes=30), "NSE"))


def check(config, side=1, qty=1.0, price=100.0, now=NOON_UTC_MONDAY, **market):
    return check_order(config, SYM, side, qty, price, MarketState(tick_size=0.05, **market), now)


def test_limits_come_from_the_config_else_the_strategy_defaults():
    assert SymbolLimits.of(_config(), SYM) == SymbolLimits(10.0, 20.0, 1000.0)
    assert SymbolLimits.of(_config(), "NSE:TCS") == SymbolLimits(10.0, 10.0, 1000.0)


def test_order_size_and_position_with_working_orders():
    c = _config()
    assert check(c, qty=10) == "ok"
    assert check(c, qty=10.5) == "order_too_large"
    assert check(c, qty=5, position=16) == "position_too_large"
    assert check(c, qty=5, position=10, working_buy=6) == "position_too_large"  # working buys count
    assert check(c, qty=5, position=10, working_sell=6) == "ok"  # the other side does not
    assert check(c, side=-1, qty=5, position=16) == "ok"  # a sell reduces the long


def test_notional_open_orders_and_circuit_limits():
    c = _config("max_notional = 500\nmax_open_orders = 2")
    assert check(c, qty=4, price=100) == "ok"
    assert check(c, qty=6, price=100) == "notional_too_large"
    assert check(c, open_orders=2) == "too_many_open_orders"
    assert check(c, circuit=(90.0, 110.0), price=111.0) == "circuit_limit"
    assert check(c, circuit=(90.0, 110.0), price=109.0) == "ok"


def test_trading_hours_of_the_market_calendar():
    c = _config()
    assert check(c, calendar=_nse()) == "ok"
    assert check(c, calendar=_nse(), now=NOON_UTC_MONDAY + 5 * 3_600_000_000_000) == "trading_hours"  # 17:00 IST
    assert check(c, calendar=_nse(), now=SATURDAY) == "trading_hours"
    assert check(_config("enforce_trading_hours = false"), calendar=_nse(), now=SATURDAY) == "ok"

