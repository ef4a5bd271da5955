"""pytest plugin form of the Binance fake: list it in `pytest_plugins` to get `binance_fake`."""

from tests.fakes.binance import binance_fake  # noqa: F401
