"""Where Binance lives: REST, market-stream and WebSocket-API URLs per market, from the config.

The config (`[binance]` keys or `SQ_BINANCE_*_URL` variables) wins; `testnet` swaps any URL still
at its production default for the testnet one. Paths and request weights of the endpoints sq
uses are here too, so the source, the gateway and the fake server agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sq.core.symbols import Symbol

PROD = {
    "rest_url": "https://api.binance.com",
    "ws_url": "wss://stream.binance.com:9443",
    "ws_api_url": "wss://ws-api.binance.com:443/ws-api/v3",
    "futures_rest_url": "https://fapi.binance.com",
    "futures_ws_url": "wss://fstream.binance.com",
}
TESTNET = {
    "rest_url": "https://testnet.binance.vision",
    "ws_url": "wss://stream.testnet.binance.vision",
    "ws_api_url": "wss://ws-api.testnet.binance.vision/ws-api/v3",
    "futures_rest_url": "https://testnet.binancefuture.com",
    "futures_ws_url": "wss://stream.binancefuture.com",
}

SPOT, FUTURES = "spot", "futures"
PREFIXES = ("BINANCE", "BINANCE-FUT")  # symbol prefixes: spot, USD-M futures

PATHS = {
    SPOT: {
        "depth": "/api/v3/depth", "exchange_info": "/api/v3/exchangeInfo", "time": "/api/v3/time",
        "order": "/api/v3/order", "open_orders": "/api/v3/openOrders", "account": "/api/v3/account",
        "my_trades": "/api/v3/myTrades", "ping": "/api/v3/ping",
    },
    FUTURES: {
        "depth": "/fapi/v1/depth", "exchange_info": "/fapi/v1/exchangeInfo", "time": "/fapi/v1/time",
        "order": "/fapi/v1/order", "open_orders": "/fapi/v1/openOrders", "all_open_orders": "/fapi/v1/allOpenOrders",
        "algo_order": "/fapi/v1/algoOrder", "open_algo_orders": "/fapi/v1/openAlgoOrders", "algo_open_orders": "/fapi/v1/algoOpenOrders",
        "account": "/fapi/v2/account", "position_risk": "/fapi/v2/positionRisk", "leverage": "/fapi/v1/leverage",
        "margin_type": "/fapi/v1/marginType", "position_side": "/fapi/v1/positionSide/dual", "my_trades": "/fapi/v1/userTrades",
        "listen_key": "/fapi/v1/listenKey", "ping": "/fapi/v1/ping", "funding_info": "/fapi/v1/fundingInfo",
    },
}

MAX_STREAMS_PER_CONNECTION = 1024
SPOT_DEPTH_LIMIT = 5000
FUTURES_DEPTH_LIMIT = 1000


def market_of(symbol: Symbol | str) -> str:
    """`BINANCE:…` is spot, `BINANCE-FUT:…` USD-M futures."""
    exchange = symbol.exchange if isinstance(symbol, Symbol) else str(symbol).split(":", 1)[0].upper()
    return FUTURES if exchange == "BINANCE-FUT" else SPOT


@dataclass(frozen=True)
class Endpoints:
    rest_url: str
    ws_url: str
    ws_api_url: str
    futures_rest_url: str
    futures_ws_url: str
    testnet: bool = False

    def rest(self, market: str) -> str:
        return (self.futures_rest_url if market == FUTURES else self.rest_url).rstrip("/")

    def ws(self, market: str) -> str:
        return (self.futures_ws_url if market == FUTURES else self.ws_url).rstrip("/")

    def path(self, market: str, name: str) -> str:
        return PATHS[market][name]

    def url(self, market: str, name: str) -> str:
        return self.rest(market) + self.path(market, name)

    def combined_stream_url(self, market: str, streams: list[str]) -> str:
        """`…/stream?streams=a/b/c` for at most 1,024 streams."""
        if not 0 < len(streams) <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(f"a connection carries 1 to {MAX_STREAMS_PER_CONNECTION} streams, not {len(streams)}")
        return f"{self.ws(market)}/stream?streams={'/'.join(streams)}"


def endpoints(binance_config, testnet: bool | None = None) -> Endpoints:
    """The endpoints of a `BinanceConfig`; `testnet` (or the config's) swaps production defaults."""
    use_testnet = binance_config.testnet if testnet is None else (testnet or binance_config.testnet)
    urls = {}
    for key, prod in PROD.items():
        value = getattr(binance_config, key)
        urls[key] = TESTNET[key] if use_testnet and value == prod else value
    return Endpoints(**urls, testnet=use_testnet)


def stream_names(venue_symbol: str, mode: str, market: str) -> list[str]:
    """Streams for one symbol: full = diff depth @100ms + trades; quote = bookTicker + trades; ltp = trades."""
    s = venue_symbol.lower()
    trades = f"{s}@aggTrade" if market == FUTURES else f"{s}@trade"
    if mode == "ltp":
        return [trades]
    if mode == "quote":
        return [f"{s}@bookTicker", trades]
    return [f"{s}@depth@100ms", trades]
