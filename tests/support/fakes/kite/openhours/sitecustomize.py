"""Put on PYTHONPATH of an `sq` subprocess (see tests.support.fakes.kite.open_hours_env) to run it as if
it were Monday 24 Nov 2025 10:00 IST for the market-hours checks only: the gateway still calls the
real `hours_violation`, just at a fixed time inside NSE's normal session, and the engine gets no
market calendar for Zerodha symbols (no session, holidays or square-off on the wall clock), so tests
of `sq live` on Zerodha do not depend on the wall clock. Nothing else is changed."""

import os

if os.environ.get("SQ_TEST_KITE_OPEN_HOURS") == "1":
    import datetime as _dt

    import sq.venues.zerodha as _Z
    from sq.venues.zerodha import market_rules as _R

    _real = _R.hours_violation
    _NOW = _dt.datetime(2025, 11, 24, 10, 0, tzinfo=_R.IST)

    def _hours_violation(now, exchange, variety="regular"):
        return _real(_NOW, exchange, variety)

    _R.hours_violation = _hours_violation
    _Z.market_calendar = lambda symbol, config=None: None
