"""sq configuration (README: Configuration): one frozen `Config` from file, `.env` and environment.

Where it comes from, first match wins for the file:
  1. `--config FILE` (the CLI stores it in `env.config_path`),
  2. `$SQ_CONFIG`,
  3. the platform config dir (`sq.paths.config_dir()`): `sq.toml`, else `config.json`.
No file anywhere means defaults: paper trading, no instruments.

Two layouts are read into the one model below: `sq.toml` (TOML) and the `trading.json` layout
(docs/config.md#the-tradingjson-layout: JSON with `//` comments; `"trading_mode": "PAPER"`, a
top-level `exchange`, `zerodha.api_credentials` / `zerodha.cache` / `zerodha.paper_trading`, instruments as
`symbol` + `exchange` + `ticker_id`, `risk.max_position_value` and the `enforce_*` switches). The
format is chosen by the suffix, else by sniffing a leading `{`. The plan's nesting is a spelling,
not a second model: `zerodha.api_credentials.api_secret` is `zerodha.api_secret`,
`zerodha.paper_trading` is the top-level `paper_trading` (sq has one simulated fill model), and
`min_latency_ms`/`max_latency_ms` are a uniform order latency. On top of the file, environment
variables override venue credentials and endpoints (`ZKITE_*`, `BINANCE_API_*`,
`SQ_BINANCE_*_URL`, `SQ_KITE_*_URL`), and a `.env` file (working directory, or the explicit
`$SQ_DOTENV` path) fills in variables the real environment does not set.

Every table is parsed into a frozen dataclass that rejects unknown keys: a typo or a wrong type is
a `ConfigError` (exit 78) naming the file and the key path, with close matches suggested; a plan
key sq cannot honour with the value given (a fill probability below 1) is refused the same way,
never ignored. Secrets (API secrets, passwords, TOTP seeds, access tokens) are wrapped in
`Secret`, whose repr and str are masked; error messages never quote values.
`load_config_with_origins` also says where each value came from (`sq config check`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

from sq.core import paths
from sq.core.dotenv import merge_environ, read_dotenv
from sq.core.exits import ConfigError, SqError

CONFIG_NAMES = ("sq.toml", "config.json")


# ----------------------------------------------------------------------------------------------
# secrets


class Secret:
    """A secret string: `repr`/`str`/`format` show only a masked form (`ab***`); `.reveal()` gives it.

    Kept out of every log, error and `repr(config)` by construction rather than by discipline.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        object.__setattr__(self, "_value", str(value))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        """The real value — pass it to the venue client, never to a print or a log."""
        return self._value

    def masked(self) -> str:
        """At most the first two characters of a long secret, then `***`."""
        v = self._value
        return (v[:2] + "***") if len(v) >= 8 else "***"

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    def __str__(self) -> str:
        return self.masked()

    def __format__(self, spec: str) -> str:
        return format(self.masked(), spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # pickling is for processes we spawn ourselves (backtest pools)
        return (Secret, (self._value,))


# ----------------------------------------------------------------------------------------------
# the frozen config objects
#
# Field metadata: "aliases" are extra accepted key names (e.g. the environment-variable spelling);
# "doc" (one line) and "unit" are what docs/config.md says of the key (`make docs` generates it from
# these classes; a test fails when a key has no "doc").


def _f(default: Any = None, *aliases: str, doc: str = "", unit: str = "", factory: Any = None, minimum: float | None = None,
       above: float | None = None, only: tuple | None = None, why: str = "", path: bool = False,
       maximum: float | None = None) -> Any:
    """A config field with its one-line meaning (`doc`) and `unit`, its alias names (other
    spellings, environment variables) and bounds: `minimum` (value ≥ it) or `above` (value > it),
    `maximum` (value ≤ it), or `only` these values (`why` says why sq supports no other), checked
    when the file is read (exit 78). `path`: a file or directory, `~` expanded and relative to the
    config file's directory. A field without a default (`default=dataclasses.MISSING`) is required."""
    md = {"aliases": aliases, "minimum": minimum, "above": above, "only": only, "why": why, "path": path, "maximum": maximum,
          "doc": doc, "unit": unit}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


RETURNS_BASES = ("1d", "12h", "8h", "6h", "4h", "3h", "2h", "1h", "30m", "20m", "15m", "10m", "5m", "2m", "1m", "30s", "20s",
                 "15s", "10s", "5s", "2s", "1s")  # `[research] returns_basis`: periods that divide a day evenly


@dataclass(frozen=True)
class InstrumentConfig:
    """One traded instrument and its strategy and risk parameters (docs/strategies.md).

    `symbol` is canonical (`NSE:RELIANCE`); the plan's JSON layout may give `exchange` + `symbol`
    (`"NSE"` + `"RELIANCE"`) or `exchange` + `tradingsymbol` instead. `ticker_id` is the venue's
    numeric instrument id (Kite's `instrument_token`): when given, a Zerodha run checks it against
    the day's instruments dump and stops (78) on a mismatch, so a stale id cannot silently trade
    another instrument; other venues have no numeric ids and refuse it. Unset limits are None
    (the strategy or risk layer decides its own default). `params`
    sets any parameter the strategy declares (`[instruments.params]`, e.g. `spread = 2.5`); the
    named keys are shorthands for the risk limits and the built-in strategies' parameters.
    `tick_size` / `lot_size` give the price and size grids where the venue cannot be asked.
    """

    symbol: str = _f(dataclasses.MISSING, doc="the instrument, `EXCHANGE:NAME` (`NSE:RELIANCE`); required")
    clip: float | None = _f(None, doc="order size of the built-in strategies (`mm`, `lt`), rounded down to the lot; unset: the strategy's default", unit="base quantity")
    threshold: float | None = _f(None, doc="the built-in strategies' trigger: `mm` ticks the microprice must clear from the touch, `lt` trade qty ÷ opposite touch qty; unset: the strategy's default")
    max_order_size: float | None = _f(None, doc="largest order; a larger one is rejected; unset: the strategy's default (10)", unit="base quantity")
    max_position: float | None = _f(None, doc="largest absolute position, working orders on that side included; unset: the strategy's default (10)", unit="base quantity")
    max_loss: float | None = _f(None, doc="the symbol's PnL below −|max_loss| halts the strategy (`[risk] halt_on_max_loss`); unset: the strategy's default (1000)", unit="quote currency")
    strategy: str | None = _f(None, doc="the strategy this instrument is traded with when the command names none")
    params: Mapping[str, float] = _f(factory=lambda: types.MappingProxyType({}), doc="any parameter the strategy declares, `[instruments.params]` (`spread = 2.5`)")
    # the instrument's price and size grids, for when its venue cannot be asked (`sq import` offline)
    tick_size: float | None = _f(None, above=0.0, doc="the price grid, where the venue cannot be asked (`sq import` offline)", unit="quote currency")
    lot_size: float | None = _f(None, above=0.0, doc="the size grid, where the venue cannot be asked", unit="base quantity")
    ticker_id: int | None = _f(None, minimum=0, doc="the venue's numeric id (Kite `instrument_token`): a Zerodha run stops (78) when the day's dump disagrees; other venues refuse it")


@dataclass(frozen=True)
class RiskConfig:
    """Account-wide pre-trade risk (docs/architecture.md): daily loss, order rate, price band,
    notional caps, and the exchange's rules (docs/market-rules.md): trading hours and holidays,
    circuit limits.

    `max_notional` caps one order's value (price × quantity); `max_position_value` caps the value
    of a symbol's position the order could leave (|position + working orders on that side +
    the order| × its price), both in the quote currency. `enforce_trading_hours` and
    `enforce_circuit_limits` (on by default) refuse orders outside the venue's session (weekends
    and exchange holidays included) and limit prices outside the exchange's circuit band; turning
    one off removes that check, nothing else.
    """

    max_daily_loss: float | None = _f(None, doc="halt when the UTC day's PnL on the venue (earlier live runs' included) falls below −|max_daily_loss|; unset: no limit", unit="quote currency")
    max_order_rate: float | None = _f(None, "max_orders_per_second", doc="token-bucket order rate; unset: half the venue's published limit", unit="orders/s")
    price_band_pct: float | None = _f(None, doc="reject limit prices further than this from the fair price; unset: no band", unit="%")
    max_notional: float | None = _f(None, doc="largest order value, price × quantity; unset: no cap", unit="quote currency")
    max_position_value: float | None = _f(None, above=0.0, doc="largest |position + working orders on that side + the order| × price per symbol; unset: no cap", unit="quote currency")
    max_open_orders: int | None = _f(None, doc="most working orders at once; unset: no cap", unit="orders")
    halt_on_max_loss: bool = _f(True, doc="a symbol's `max_loss` breach halts the whole strategy (false: only that symbol's new orders are rejected)")
    enforce_trading_hours: bool = _f(True, doc="reject orders outside the market's session, on weekends and exchange holidays (docs/market-rules.md)")
    enforce_circuit_limits: bool = _f(True, doc="reject limit prices outside the circuit limits the instruments carry (docs/market-rules.md)")


@dataclass(frozen=True)
class PaperTradingConfig:
    """Simulated fills for paper trading and backtests; conservative defaults (docs/architecture.md).

    Each order's latency (each way) is `order_latency_ms`, plus, with `latency_dist` `uniform` or
    `exponential`, a seeded jitter of scale `latency_jitter_ms`; the plan's `min_latency_ms` /
    `max_latency_ms` are read as a uniform latency between the two. Fills come from the recorded
    book and the order's queue position; on top of that, `fill_probability` (0 < p ≤ 1) lets
    each fill the simulated venue would give happen with probability p (a seeded draw: a missed
    resting fill keeps the order resting, a missed immediate fill leaves the order to rest or, if
    IOC, expire), and `slippage_model` moves every immediate (taker) fill price against the order
    by a number of ticks: `book` none beyond walking the visible levels, `fixed` `slippage_ticks`,
    `normal` |N(0, slippage_ticks)| rounded, `pareto` slippage_ticks·(U^(−1/3) − 1) rounded (a
    heavy tail: mostly small, sometimes large).
    """

    starting_capital: float = _f(1_000_000.0, doc="the capital the run summaries' returns are on (return on capital, Sharpe, VaR; docs/metrics.md)", unit="quote currency")
    currency: str = _f("INR", doc="the currency simulated fees are charged in (`fee_ccy` of the fills stream)")
    maker_fee_bps: float = _f(2.0, doc="fee on a fill of a resting (maker) order, of its value; negative: a rebate", unit="bps")
    taker_fee_bps: float = _f(5.0, doc="fee on an immediate (taker) fill, of its value", unit="bps")
    feed_latency_ms: float | None = _f(None, minimum=0.0, doc="a fixed market-data delay for the simulated fills instead of each event's `recv_ts − ts` (unset: the data's own; `--feed-latency` overrides)", unit="ms")
    order_latency_ms: float = _f(20.0, minimum=0.0, doc="each way between the strategy and the simulated venue (order out, its answer back)", unit="ms")
    latency_dist: Literal["constant", "uniform", "exponential"] = _f("constant", doc="order latency's seeded jitter on top of `order_latency_ms`: none, uniform in [0, jitter) or exponential of mean jitter")
    latency_jitter_ms: float = _f(0.0, minimum=0.0, doc="scale of the order latency's jitter (`latency_dist`)", unit="ms")
    queue_cancel_share: float = _f(0.5, doc="share of the cancels at our price assumed to be ahead of our order in the queue (0…1)")
    fill_probability: float = _f(1.0, above=0.0, maximum=1.0, doc="each fill the simulated venue would give happens with this probability (seeded draws, `--seed`)")
    slippage_model: Literal["book", "fixed", "normal", "pareto"] = _f("book", doc="extra ticks against each taker fill: `book` none, `fixed` slippage_ticks, `normal` |N(0, s)|, `pareto` s·(U^(−1/3) − 1)")
    slippage_ticks: float = _f(1.0, minimum=0.0, doc="the slippage model's scale", unit="ticks")


@dataclass(frozen=True)
class ZerodhaConfig:
    """Kite Connect credentials, endpoints (`SQ_KITE_*_URL` point at a fake or a proxy) and files.

    The plan's `api_credentials` and `cache` sub-tables are other spellings of the same keys
    (`GROUPS`). `access_token_path` is the file holding the Kite session `sq auth zerodha` writes
    (default `<config dir>/zerodha/session.json`); `instruments_cache_dir` the directory where the
    day's instruments dump is cached (default `<cache dir>/zerodha`).
    """

    GROUPS: ClassVar[dict[str, tuple[str, ...]]] = {
        "api_credentials": ("api_key", "api_secret", "user_id", "password", "totp_secret", "access_token"),
        "cache": ("access_token_path", "instruments_cache_dir"),
    }

    api_key: str | None = _f(None, "ZKITE_API_KEY", doc="Kite Connect app's API key")
    api_secret: Secret | None = _f(None, "ZKITE_API_SECRET", doc="Kite Connect app's API secret (masked everywhere)")
    user_id: str | None = _f(None, "ZKITE_USER_ID", doc="Zerodha client id, for the unattended login of `sq auth zerodha`")
    password: Secret | None = _f(None, "ZKITE_PWD", "pwd", doc="Zerodha password, for the unattended login")
    totp_secret: Secret | None = _f(None, "ZKITE_TOTP_SECRET", doc="base32 TOTP seed of the account's 2FA, for the unattended login")
    access_token: Secret | None = _f(None, "ZKITE_ACCESS_TOKEN", doc="a Kite session token to use instead of the stored session")
    root_url: str = _f("https://api.kite.trade", "SQ_KITE_ROOT_URL", doc="Kite REST API (point at a fake or a proxy)")
    ws_url: str = _f("wss://ws.kite.trade", "SQ_KITE_WS_URL", doc="Kite ticker websocket")
    login_url: str = _f("https://kite.zerodha.com", "SQ_KITE_LOGIN_URL", doc="Kite login pages (`sq auth zerodha`)")
    product: Literal["MIS", "NRML", "CNC", "MTF"] = _f("MIS", doc="order product: MIS intraday (squared off by the broker), NRML/CNC/MTF to carry positions")
    # which contract a continuous futures name (NFO:NIFTY-FUT) trades: the nearest listed expiry,
    # the 2nd or the 3rd (`--expiry` overrides it for one run)
    expiry: Literal["near", "next", "far"] = _f("near", doc="the contract a continuous futures name (`NFO:NIFTY-FUT`) trades: nearest, 2nd or 3rd expiry (`--expiry`)")
    # F&O freeze quantities by underlying (or tradingsymbol), over sq's built-in table: orders above
    # them are sliced (NSE revises these; keep them current here without waiting for a release)
    freeze_qty: Mapping[str, float] = _f(factory=lambda: types.MappingProxyType({}), doc="F&O freeze quantities by underlying or tradingsymbol (`[zerodha.freeze_qty] NIFTY = 1800`), over the built-in table; larger orders are sliced", unit="base quantity")
    access_token_path: str | None = _f(None, path=True, doc="the Kite session file `sq auth zerodha` writes (0600); unset: `<config dir>/zerodha/session.json`")
    instruments_cache_dir: str | None = _f(None, path=True, doc="where the day's instruments dump is cached; unset: `<cache dir>/zerodha`")
    # the broker's intraday square-off of MIS positions (equity 15:20, F&O 15:25 IST), in backtest,
    # paper and live (a minute early); NSE/BSE trading holidays from this CSV instead of sq's list
    # for the years it has (docs/market-rules.md)
    square_off: bool = _f(True, doc="the broker's MIS square-off (equity 15:20, F&O 15:25 IST; live a minute early) in backtest, paper and live")
    holidays_file: str | None = _f(None, doc="CSV `date,exchanges,description` of trading holidays, replacing sq's list for the years it has (docs/market-rules.md)")
    # Zerodha's charges (brokerage, STT, exchange, SEBI, stamp duty, GST) by segment and effective
    # date, charged on every fill in backtest, paper and live (docs/costs.md)
    charges_file: str | None = _f(None, path=True, doc="CSV of Zerodha's charges by segment and effective date, replacing sq's table (docs/costs.md)")


@dataclass(frozen=True)
class BinanceConfig:
    """Binance API keys and endpoints (spot, USD-M futures; testnets via the `*_url` keys) and the
    public data archive `sq fetch` downloads from (`data_url`).

    `api_credentials` is another spelling of the key, secret and testnet switch (the
    `trading.json` layout's nesting)."""

    GROUPS: ClassVar[dict[str, tuple[str, ...]]] = {"api_credentials": ("api_key", "api_secret", "testnet")}

    api_key: str | None = _f(None, "BINANCE_API_KEY", doc="Binance API key")
    api_secret: Secret | None = _f(None, "BINANCE_API_SECRET", doc="Binance API secret (HMAC; masked everywhere)")
    testnet: bool = _f(False, doc="trade on Binance's testnet (with the testnet's `*_url` values)")
    rest_url: str = _f("https://api.binance.com", "SQ_BINANCE_REST_URL", doc="spot REST API")
    ws_url: str = _f("wss://stream.binance.com:9443", "SQ_BINANCE_WS_URL", doc="spot market-data websocket")
    ws_api_url: str = _f("wss://ws-api.binance.com:443/ws-api/v3", "SQ_BINANCE_WS_API_URL", doc="spot websocket API (orders, user data)")
    futures_rest_url: str = _f("https://fapi.binance.com", "SQ_BINANCE_FUTURES_REST_URL", doc="USD-M futures REST API")
    futures_ws_url: str = _f("wss://fstream.binance.com", "SQ_BINANCE_FUTURES_WS_URL", doc="USD-M futures market-data websocket")
    data_url: str = _f("https://data.binance.vision", "SQ_BINANCE_DATA_URL", doc="the public data archive `sq fetch` downloads from")
    maker_fee_bps: float | None = _f(None, doc="spot maker fee of simulated runs (backtest, paper) on Binance symbols; unset: `[paper_trading] maker_fee_bps` (live reads the account's own rates)", unit="bps")
    taker_fee_bps: float | None = _f(None, doc="spot taker fee of simulated runs on Binance symbols; unset: `[paper_trading] taker_fee_bps`", unit="bps")
    futures_maker_fee_bps: float | None = _f(None, doc="USD-M futures maker fee of simulated runs; unset: `[paper_trading] maker_fee_bps`", unit="bps")
    futures_taker_fee_bps: float | None = _f(None, doc="USD-M futures taker fee of simulated runs; unset: `[paper_trading] taker_fee_bps`", unit="bps")
    bnb_fee_discount: bool = _f(False, doc="simulated runs pay fees in BNB: spot fees ×0.75, futures ×0.9 (live follows the account's own setting)")


@dataclass(frozen=True)
class LiveConfig:
    """`sq live` safety settings; the command's flags override them for one run.

    The circuit breaker opens after `breaker_failures` venue failures in a row (no new orders) and
    lets one trial order through after `breaker_cooldown_s`. A send with no answer within
    `order_timeout_s` is resolved by asking the venue for its client id. Working orders are
    checked at the venue every `sweep_interval_s` while the venue's order-update stream (Binance
    user data, Kite postbacks) is up, every `sweep_fallback_s` while it is down. Before its first
    order a new run reconciles the journals of earlier live runs on its venue and symbols changed
    within `previous_runs_hours` (0 = never) and cancels the orders they left open. When the
    market-data connection has been down for `feed_grace_s`, the run cancels its working orders
    (they would rest on a book it can no longer see) and sends nothing until the feed is back.
    """

    breaker_failures: int = _f(5, minimum=1, doc="venue failures in a row that open the circuit breaker (no new orders)", unit="failures")
    breaker_cooldown_s: float = _f(10.0, "breaker_cooldown", minimum=0.0, doc="then one trial order; success closes the breaker, failure re-opens it", unit="s")
    order_timeout_s: float = _f(5.0, "order_timeout", above=0.0, doc="an unanswered send is resolved by asking the venue for its client id", unit="s")
    sweep_interval_s: float = _f(5.0, "sweep_interval", above=0.0, doc="check working orders at the venue this often while its order stream is up", unit="s")
    sweep_fallback_s: float = _f(0.5, "sweep_fallback", above=0.0, doc="… and this often while it is down", unit="s")
    previous_runs_hours: float = _f(72.0, minimum=0.0, doc="before the first order, reconcile earlier live runs on the same venue and symbols changed this recently (0: never)", unit="h")
    cancel_previous_orders: bool = _f(True, doc="and cancel the orders they left open")
    feed_grace_s: float = _f(2.0, minimum=0.0, doc="market data down this long: cancel working orders and send none until it is back", unit="s")
    protective_orders: bool = _f(True, doc="a bar strategy's stop-loss and take-profit rest at the venue as protective orders (false: the run watches the price and exits with IOC orders; docs/orders.md)")
    protective_slippage_pct: float = _f(0.5, minimum=0.0, maximum=50.0, doc="a protective limit order (Binance spot stop and OCO stop leg, Kite GTT stop leg) is priced this far beyond its trigger", unit="%")
    protective_trigger: Literal["mark", "contract"] = _f("mark", doc="the price that triggers protective orders where the venue offers a choice (Binance USD-M: MARK_PRICE or CONTRACT_PRICE)")


@dataclass(frozen=True)
class CleanConfig:
    """The bad-tick filter of replays (`sq backtest`, `sq paper --from`). Off
    unless `enabled` or `--clean`, so a run's results never change silently.

    A trade is dropped when its price is not positive, or moves more than `max_jump_pct` % or
    more than `sigma_k` × σ from the symbol's last accepted trade, σ being the EWMA (half-life
    `sigma_halflife` trades) of its trade-to-trade log returns, never below one tick, once
    `warmup` returns are in; `confirm_trades` such trades in a row that agree with each other are
    a real move and the last of them is accepted. A level (or trade, or tick) with a
    non-positive price or a negative quantity is dropped, and so is any row whose `ts` is more than `max_backward_ns`
    before the latest of its symbol. A message that leaves the book locked or crossed is counted
    and kept, or dropped (the book restored to before it) with `drop_crossed`. 0 turns the
    jump or σ rule off.
    """

    enabled: bool = _f(False, doc="clean replays by default (`--clean` / `--no-clean` for one run)")
    max_jump_pct: float = _f(10.0, minimum=0.0, doc="drop a trade this far from the symbol's last accepted trade (0: off)", unit="%")
    sigma_k: float = _f(20.0, minimum=0.0, doc="… or more than this many σ of its trade-to-trade log returns (0: off)", unit="σ")
    sigma_halflife: float = _f(100.0, above=0.0, doc="half-life of the EWMA σ, never below one tick", unit="trades")
    warmup: int = _f(50, minimum=1, doc="returns needed before the σ rule applies", unit="returns")
    confirm_trades: int = _f(3, minimum=2, doc="this many dropped trades in a row that agree are a real move: the last is accepted", unit="trades")
    max_backward_ns: int = _f(0, minimum=0, doc="drop a row whose `ts` is more than this before its symbol's latest", unit="ns")
    drop_crossed: bool = _f(False, doc="a message leaving the book locked or crossed: counted and kept (false) or dropped, the book restored")


@dataclass(frozen=True)
class ResearchConfig:
    """How run summaries measure performance (`[research]`; docs/metrics.md). Sharpe, Sortino, Calmar
    and VaR are computed on returns on `[paper_trading] starting_capital` over periods of
    `returns_basis` and annualised: 252 trading days a year for a market with a calendar (NSE, BSE;
    weekend periods skipped), 365 for one trading around the clock (Binance, SIM). A run shorter
    than two periods has no Sharpe. `sq backtest --returns-basis` overrides it for one run.
    """

    returns_basis: str = _f("1d", doc="the period of the returns the risk-adjusted metrics are computed on (a duration: 1d, 1h, 1m, 1s)",
                            only=RETURNS_BASES, why="a basis divides the day evenly, from 1s to 1d")


@dataclass(frozen=True)
class SimSymbolConfig:
    """Per-symbol grid and starting price of the simulated exchange (`[sim.DEMO]` for `SIM:DEMO`);
    an unset key keeps the simulator's default."""

    tick_size: float | None = _f(None, doc="the symbol's price grid; unset: the simulator's default", unit="quote currency")
    price: float | None = _f(None, doc="the simulated market's starting price; unset: the simulator's default", unit="quote currency")
    lot_size: float | None = _f(None, doc="the symbol's size grid; unset: the simulator's default", unit="base quantity")


@dataclass(frozen=True)
class MonitoringConfig:
    """Prometheus metrics and alerts of `sq record`, `sq paper` and `sq live` (`[monitoring]`;
    docs/monitoring.md). The commands' `--metrics`, `--metrics-file` and `--alert` flags override
    `metrics` and `metrics_file` and add to `alerts` for one run.

    `metrics` (`HOST:PORT`) serves the run's metrics over HTTP for Prometheus to scrape;
    `metrics_file` rewrites them, every few seconds and at the end, into a file for
    node_exporter's textfile collector (a cron job's run). `alerts` are apprise URLs (Telegram,
    Slack, Discord, e-mail, a JSON webhook …) told about risk halts, loss limits, the circuit
    breaker, the feed, `sq kill`, an unexpected exit, reconcile differences, credentials about to
    expire and, at the end, the run's summary; the same alert is sent at most once per
    `alert_min_interval_s`. The URLs carry tokens: they are shown masked everywhere.
    """

    metrics: str | None = _f(None, doc="serve the run's Prometheus metrics on this address (`--metrics`), e.g. `127.0.0.1:9108`", unit="HOST:PORT")
    metrics_file: str | None = _f(None, path=True, doc="rewrite the metrics into this `.prom` file for node_exporter's textfile collector (`--metrics-file`)")
    alerts: tuple[str, ...] = _f((), doc="apprise URLs told about halts, loss limits, the breaker, the feed, kill, errors, reconcile differences, expiring sessions and the summary (`--alert` adds); shown masked")
    alert_min_interval_s: float = _f(300.0, minimum=0.0, doc="the same alert (kind and subject) is sent at most this often", unit="s")
    token_expiry_warn_hours: float = _f(12.0, minimum=0.0, doc="alert when a venue session expires within this many hours (0: never)", unit="h")


@dataclass(frozen=True)
class Config:
    """Everything sq reads from configuration; `source` is the file it came from (None = defaults).

    `exchange` (the plan's top-level key) names the venue this config trades: every configured
    instrument must be on it (checked where runs reach venues, `sq.venues.registry.check_config`).
    """

    trading_mode: Literal["paper", "live"] = _f("paper", doc="`live` lets `sq live` send real orders (with `--confirm-live`); case-insensitive (`PAPER`)")
    exchange: Literal["zerodha", "binance", "sim"] | None = _f(None, doc="the venue this config trades: every instrument must be on it (exit 78 otherwise)")
    instruments: tuple[InstrumentConfig, ...] = _f((), doc="the traded instruments, `[[instruments]]`")
    risk: RiskConfig = _f(factory=RiskConfig, doc="account-wide pre-trade risk")
    paper_trading: PaperTradingConfig = _f(factory=PaperTradingConfig, doc="the simulated fill model")
    zerodha: ZerodhaConfig = _f(factory=ZerodhaConfig, doc="Zerodha (Kite Connect)")
    binance: BinanceConfig = _f(factory=BinanceConfig, doc="Binance")
    live: LiveConfig = _f(factory=LiveConfig, doc="`sq live` safety settings")
    clean: CleanConfig = _f(factory=CleanConfig, doc="the bad-tick filter of replays")
    monitoring: MonitoringConfig = _f(factory=MonitoringConfig, doc="Prometheus metrics and alerts of record, paper and live runs")
    research: ResearchConfig = _f(factory=ResearchConfig, doc="how run summaries measure performance (docs/metrics.md)")
    sim: Mapping[str, SimSymbolConfig] = _f(factory=lambda: types.MappingProxyType({}), doc="the simulated exchange's symbols, `[sim.DEMO]`")
    source: str | None = _f(None, doc="the file the config came from (set by sq, not a key)")

    def instrument(self, symbol: str) -> InstrumentConfig | None:
        """The configured instrument for a canonical symbol, if any."""
        want = symbol.strip().upper()
        return next((i for i in self.instruments if i.symbol == want), None)

    @property
    def symbols(self) -> list[str]:
        return [i.symbol for i in self.instruments]


# fields holding URLs with credentials in them (apprise alert URLs): shown through `sq.core.redact.mask_url`
URL_SECRETS: dict[type, tuple[str, ...]] = {MonitoringConfig: ("alerts",)}

# environment variable → (section, field): real env and .env override the file
ENV_OVERRIDES: dict[str, tuple[str, str]] = {}
for _section, _cls in (("zerodha", ZerodhaConfig), ("binance", BinanceConfig)):
    for _fld in dataclasses.fields(_cls):
        for _alias in _fld.metadata.get("aliases", ()):
            if _alias.isupper():
                ENV_OVERRIDES[_alias] = (_section, _fld.name)

VENUE_SECTIONS = ("zerodha", "binance")  # the sections that may hold the plan's `paper_trading`


@dataclass(frozen=True)
class Origin:
    """Where one resolved value came from: `kind` is `file`, `env`, `.env` or `default`; `path` is
    the config or .env file, `key` the key path in the config file or the variable's name."""

    kind: Literal["file", "env", ".env", "default"]
    path: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        if self.kind == "file":
            return f"file {self.path}: {self.key}"
        if self.kind == ".env":
            return f".env {self.path}: {self.key}"
        if self.kind == "env":
            return f"env {self.key}"
        return "default"


DEFAULT = Origin("default")


# ----------------------------------------------------------------------------------------------
# loading


def find_config(env: Any = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file to use: --config, then $SQ_CONFIG, then the platform config dir; None if none.

    A file named explicitly (--config or $SQ_CONFIG) that does not exist is a ConfigError.
    """
    environ = os.environ if environ is None else environ
    explicit = getattr(env, "config_path", None)
    how = "--config"
    if not explicit and environ.get("SQ_CONFIG"):
        explicit, how = environ["SQ_CONFIG"], "$SQ_CONFIG"
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"{explicit}: config file not found (named by {how})")
        return p
    d = paths.config_dir(environ)
    for name in CONFIG_NAMES:
        if (d / name).is_file():
            return d / name
    return None


def load_config(
    env: Any = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    dotenv_path: str | os.PathLike | None = None,
) -> Config:
    """Load the effective configuration for a command run.

    `env` is the command's Environment (only `config_path` and `warn` are used); `environ`
    defaults to os.environ, `cwd` (for `./.env`) to the working directory. The `.env` file is
    `dotenv_path`, else `$SQ_DOTENV`, else `./.env` when present.
    """
    return load_config_with_origins(env, environ=environ, cwd=cwd, dotenv_path=dotenv_path)[0]


def load_config_with_origins(
    env: Any = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    dotenv_path: str | os.PathLike | None = None,
) -> tuple[Config, dict[str, Origin]]:
    """`load_config`, plus where each value not left at its default came from, by key path
    (`zerodha.api_secret`, `instruments[0].clip`): the file and the key it was written as, an
    environment variable, or the `.env` file (`sq config check`)."""
    real = dict(os.environ if environ is None else environ)
    explicit = dotenv_path or real.get("SQ_DOTENV") or None
    dotenv = read_dotenv(explicit, cwd=cwd)
    dotenv_file = str(Path(explicit) if explicit else Path(cwd or os.getcwd()) / ".env")
    merged = merge_environ(dotenv, real)
    env_origin = {var: Origin("env", None, var) if real.get(var) else Origin(".env", dotenv_file, var) for var in ENV_OVERRIDES if merged.get(var)}
    path = find_config(env, merged)
    raw: dict[str, Any] = {}
    name = "<defaults>"
    if path is not None:
        name = str(path)
        raw = read_config_file(path)
        _warn_if_exposed(env, path, raw)
    return parse_config_with_origins(raw, name=name, environ=merged, source=None if path is None else str(path), env_origin=env_origin)


_JSON_COMMENT = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*')


def strip_json_comments(text: str) -> str:
    """`text` without `//` comments, whole-line or trailing (the plan's `trading.json` has them);
    `//` inside a string is kept, and every line stays where it was, so a JSON error's line and
    column still point into the file."""
    return _JSON_COMMENT.sub(lambda m: m.group(1) or "", text)


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML or JSON file into plain data (no validation); syntax errors → ConfigError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config file: {e.strerror}") from None
    start = data.lstrip()
    is_json = p.suffix.lower() == ".json" or (p.suffix.lower() != ".toml" and (start[:1] == b"{" or start[:2] == b"//"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: config file is not UTF-8 text") from None
    if is_json:
        try:
            raw = json.loads(strip_json_comments(text))
        except json.JSONDecodeError as e:  # message has positions only, never content
            raise ConfigError(f"{p}: invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: the JSON config must be an object at the top level")
        return raw
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None


def parse_config(
    raw: Mapping[str, Any],
    *,
    name: str = "<config>",
    environ: Mapping[str, str] | None = None,
    source: str | None = None,
) -> Config:
    """Validate plain data into a frozen Config, then apply environment overrides."""
    return parse_config_with_origins(raw, name=name, environ=environ, source=source)[0]


def parse_config_with_origins(
    raw: Mapping[str, Any],
    *,
    name: str = "<config>",
    environ: Mapping[str, str] | None = None,
    source: str | None = None,
    env_origin: Mapping[str, Origin] | None = None,
) -> tuple[Config, dict[str, Origin]]:
    """`parse_config`, plus each set value's `Origin` by key path (see `load_config_with_origins`)."""
    data = dict(raw)
    found: dict[str, str] = {}  # key path in the model → key path in the file
    # the plan keeps the paper fill model under the venue (`zerodha.paper_trading`); sq has one
    pieces = []
    for section in VENUE_SECTIONS:
        sect = data.get(section)
        if isinstance(sect, Mapping) and "paper_trading" in sect:
            data[section] = {k: v for k, v in sect.items() if k != "paper_trading"}
            piece: dict[str, str] = {}
            built = _build(PaperTradingConfig, sect["paper_trading"], f"{section}.paper_trading", name, canon="paper_trading", origins=piece)
            pieces.append((built, piece))
    cfg = _build(Config, data, "", name, skip=("source",), origins=found)
    for built, piece in pieces:
        cfg = dataclasses.replace(cfg, paper_trading=_merge_table(cfg.paper_trading, found, built, piece, "paper_trading", name))
    origins = {k: Origin("file", source or name, v) for k, v in found.items()}
    cfg = _apply_environment(cfg, environ or {}, env_origin or {}, origins)
    cfg = _resolve_paths(cfg, source)
    return dataclasses.replace(cfg, source=source), origins


def _merge_table(top: Any, top_found: dict[str, str], piece: Any, piece_found: dict[str, str], prefix: str, name: str) -> Any:
    """`top` with the keys `piece` sets (the same table written in a second place); a key set in
    both places is a ConfigError naming both."""
    pre = prefix + "."
    mine = {k[len(pre):] for k in top_found if k.startswith(pre)}
    theirs = {k[len(pre):] for k in piece_found if k.startswith(pre)}
    both = sorted(mine & theirs)
    if both:
        k = pre + both[0]
        raise ConfigError(f"{name}: {_label(top_found[k])} and {_label(piece_found[k])} both set '{k}'; keep one")
    top_found.update(piece_found)
    return dataclasses.replace(top, **{f: getattr(piece, f) for f in theirs})


def _apply_environment(cfg: Config, environ: Mapping[str, str], env_origin: Mapping[str, Origin], origins: dict[str, Origin]) -> Config:
    """Environment variables (and .env) override venue credentials and endpoints."""
    for var, (section, key) in ENV_OVERRIDES.items():
        value = environ.get(var)
        if not value:
            continue
        sect = getattr(cfg, section)
        value = _convert(typing.get_type_hints(type(sect))[key], value, var, "the environment")
        cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(sect, **{key: value})})
        origins[f"{section}.{key}"] = env_origin.get(var) or Origin("env", None, var)
    return cfg


def _resolve_paths(cfg: Config, source: str | None) -> Config:
    """Path-valued keys (`_f(path=True)`): `~` expanded, relative ones taken from the config file's
    directory (not the working directory, which differs under cron)."""
    base = Path(source).parent if source else None
    changes = {}
    for sf in dataclasses.fields(cfg):
        sect = getattr(cfg, sf.name)
        if not dataclasses.is_dataclass(sect):
            continue
        fixed = {}
        for f in dataclasses.fields(sect):
            value = getattr(sect, f.name)
            if f.metadata.get("path") and value:
                p = Path(value).expanduser()
                fixed[f.name] = str(p if p.is_absolute() or base is None else base / p)
        if fixed:
            changes[sf.name] = dataclasses.replace(sect, **fixed)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def config_values(config: Config, origins: Mapping[str, Origin]) -> list[tuple[str, Any, Origin]]:
    """Every resolved value as (key path, printable value, origin), in the model's order: secrets
    masked (`Secret.masked`), tables as dicts, lists as lists, unset values None."""
    rows: list[tuple[str, Any, Origin]] = []

    def visit(value: Any, key: str) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                if f.name in URL_SECRETS.get(type(value), ()):  # apprise URLs carry tokens
                    from sq.core.redact import mask_url

                    rows.append((f"{key}.{f.name}", [mask_url(u) for u in getattr(value, f.name)], origins.get(f"{key}.{f.name}", DEFAULT)))
                elif f.name != "source":
                    visit(getattr(value, f.name), f"{key}.{f.name}" if key else f.name)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            for i, item in enumerate(value):
                visit(item, f"{key}[{i}]")
        elif isinstance(value, Mapping) and value:
            for k, item in value.items():
                visit(item, f"{key}.{k}")
        else:
            rows.append((key, _printable(value), origins.get(key, DEFAULT)))

    visit(config, "")
    return rows


def _printable(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.masked()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _canonical_key(section: str, key: str) -> str:
    cls = {"zerodha": ZerodhaConfig, "binance": BinanceConfig}[section]
    for f in dataclasses.fields(cls):
        if key == f.name or key in f.metadata.get("aliases", ()):
            return f.name
    return key


def _warn_if_exposed(env: Any, path: Path, raw: Mapping[str, Any]) -> None:
    """Warn when a config file holding secrets is readable by group or others (should be 0600)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not mode & 0o077 or not hasattr(env, "warn"):
        return
    mon = raw.get("monitoring")
    if isinstance(mon, Mapping) and mon.get("alerts"):  # alert URLs carry tokens and passwords
        env.warn(f"{path} holds alert URLs (tokens) but is readable by others; run: chmod 600 {path}")
        return
    secret_keys = {f.name for c in (ZerodhaConfig, BinanceConfig) for f in dataclasses.fields(c) if "Secret" in str(f.type)}
    for section in VENUE_SECTIONS:
        sect = raw.get(section)
        if not isinstance(sect, Mapping):
            continue
        keys = list(sect)
        for group in ("api_credentials",):
            if isinstance(sect.get(group), Mapping):
                keys += list(sect[group])
        if any(_canonical_key(section, k) in secret_keys for k in keys):
            env.warn(f"{path} holds secrets but is readable by others; run: chmod 600 {path}")
            return


# ----------------------------------------------------------------------------------------------
# the strict builder: plain data → frozen dataclasses


def _build(cls: type, data: Any, where: str, name: str, skip: tuple[str, ...] = (), canon: str | None = None,
           origins: dict[str, str] | None = None) -> Any:
    """`cls` from the table `data` found at key path `where` of file `name`; `canon` is its key
    path in the model (where the plan's layout put it elsewhere), `origins` collects model key
    path → file key path for every key given."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: {_label(where) or 'the config'} must be a table/object, got {_tname(data)}")
    canon = where if canon is None else canon
    keypath: dict[str, str] = {}  # a data key → its key path in the file, where that is not `where.key`
    normalise = _NORMALISE.get(cls)
    if normalise is not None:
        data, keypath = normalise(data, where, name)
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip]
    hints = typing.get_type_hints(cls)
    lookup: dict[str, dataclasses.Field] = {}
    for f in fields:
        lookup[f.name] = f
        for a in f.metadata.get("aliases", ()):
            lookup[a] = f
    data = _ungroup(cls, data, where, name, lookup, keypath)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        f = lookup.get(key)
        path = keypath.get(key) or (f"{where}.{key}" if where else str(key))
        if f is None:
            known = [x.name for x in fields] + list(getattr(cls, "GROUPS", {}))
            close = difflib.get_close_matches(str(key), known, n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            raise ConfigError(f"{name}: unknown key {_label(path)}{hint}; known keys here: {', '.join(known)}")
        if f.name in kwargs:
            raise ConfigError(f"{name}: {_label(path)} given twice (as {f.name!r} and an alias)")
        at = f"{canon}.{f.name}" if canon else f.name
        value = _convert(hints[f.name], value, path, name, at, origins)
        kwargs[f.name] = _check_bounds(f, value, path, name)
        if origins is not None:
            origins[at] = path
    missing = [f.name for f in fields if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{name}: {_label(where) or 'the config'} lacks required key {missing[0]!r}")
    return cls(**kwargs)


def _ungroup(cls: type, data: Mapping[str, Any], where: str, name: str, lookup: Mapping[str, dataclasses.Field],
             keypath: dict[str, str]) -> Mapping[str, Any]:
    """Lift the keys of `cls.GROUPS` sub-tables (the plan's `zerodha.api_credentials`, `cache`) to
    the table itself, remembering where each was written."""
    groups: dict[str, tuple[str, ...]] = getattr(cls, "GROUPS", {})
    if not any(g in data for g in groups):
        return data
    out: dict[str, Any] = {}

    def put(key: str, value: Any, path: str) -> None:
        if key in out:
            raise ConfigError(f"{name}: {_label(path)} given twice (also as {_label(keypath.get(key) or f'{where}.{key}')})")
        out[key] = value

    for key, value in data.items():
        if key not in groups:
            put(key, value, f"{where}.{key}")
            continue
        gpath = f"{where}.{key}"
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: {_label(gpath)} must be a table/object, got {_tname(value)}")
        allowed = groups[key]
        names = {a for n in allowed for a in (n, *lookup[n].metadata.get("aliases", ()))}
        for sub, v in value.items():
            spath = f"{gpath}.{sub}"
            if sub not in names:
                close = difflib.get_close_matches(str(sub), list(allowed), n=3, cutoff=0.6)
                hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
                raise ConfigError(f"{name}: unknown key {_label(spath)}{hint}; known keys here: {', '.join(allowed)}")
            put(sub, v, spath)
            keypath[sub] = spath
    return out


def _check_bounds(f: dataclasses.Field, value: Any, path: str, name: str) -> Any:
    """`value` if it is within the field's bounds (the `only` value's spelling for a choice)."""
    only = f.metadata.get("only")
    if only is not None and value is not None:
        for o in only:
            if (value.lower() == o.lower()) if isinstance(o, str) and isinstance(value, str) else (value == o and not isinstance(value, str)):
                return o
        shown = " or ".join(repr(o) if isinstance(o, str) else f"{o:g}" for o in only)
        raise ConfigError(f"{name}: {_label(path)} must be {shown}: {f.metadata.get('why')}")
    lo, above = f.metadata.get("minimum"), f.metadata.get("above")
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if value != value:
        raise ConfigError(f"{name}: {_label(path)} must be a number, got NaN")
    if lo is not None and value < lo:
        raise ConfigError(f"{name}: {_label(path)} must be ≥ {lo:g}, got {value:g}")
    if above is not None and value <= above:
        raise ConfigError(f"{name}: {_label(path)} must be > {above:g}, got {value:g}")
    hi = f.metadata.get("maximum")
    if hi is not None and value > hi:
        raise ConfigError(f"{name}: {_label(path)} must be ≤ {hi:g}, got {value:g}")
    return value


def _instrument_symbol(data: Mapping[str, Any], where: str, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Accept `symbol` (`NSE:RELIANCE`), or the plan's `exchange` + `symbol` (`NSE` + `RELIANCE`)
    or `exchange` + `tradingsymbol`; canonicalise to `symbol`."""
    from sq.core.symbols import parse_symbol

    d = dict(data)
    exch, ts = d.pop("exchange", None), d.pop("tradingsymbol", None)
    if ts is not None and "symbol" in d:
        raise ConfigError(f"{name}: {_label(where)} gives both 'symbol' and 'tradingsymbol'; use one")
    key = "tradingsymbol" if ts is not None else "symbol"
    text = ts if ts is not None else d.get("symbol")
    path = f"{where}.{key}"
    if text is None:
        raise ConfigError(f"{name}: {_label(where)} lacks required key 'symbol' (or 'exchange' + 'symbol')")
    if not isinstance(text, str):
        raise ConfigError(f"{name}: {_label(path)} must be a string, got {_tname(text)}")
    if exch is not None:
        if not isinstance(exch, str):
            raise ConfigError(f"{name}: {_label(where + '.exchange')} must be a string, got {_tname(exch)}")
        if ":" in text:
            if text.split(":", 1)[0].strip().upper() != exch.strip().upper():
                raise ConfigError(f"{name}: {_label(where)}: 'exchange' {exch!r} and the prefix of {key} {text!r} disagree")
        else:
            text = f"{exch}:{text}"
        path = f"{where}.{{exchange,{key}}}"
    elif ts is not None:
        raise ConfigError(f"{name}: {_label(where)} needs 'exchange' with 'tradingsymbol'")
    try:
        d["symbol"] = parse_symbol(text).canonical
    except SqError as e:
        raise ConfigError(f"{name}: {_label(path)}: {e.message}") from None
    return d, {"symbol": path}


def _plan_latency(data: Mapping[str, Any], where: str, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The plan's `min_latency_ms` / `max_latency_ms`: a uniform order latency between the two
    (`order_latency_ms` = min, `latency_dist` = uniform, `latency_jitter_ms` = max − min)."""
    d = dict(data)
    if "min_latency_ms" not in d and "max_latency_ms" not in d:
        return d, {}
    if "min_latency_ms" not in d or "max_latency_ms" not in d:
        raise ConfigError(f"{name}: {_label(where)} needs both 'min_latency_ms' and 'max_latency_ms' (a uniform order latency between them)")
    for k in ("order_latency_ms", "latency_dist", "latency_jitter_ms"):
        if k in d:
            raise ConfigError(f"{name}: {_label(f'{where}.{k}')} and 'min_latency_ms'/'max_latency_ms' both set the order latency; keep one")
    lo, hi = d.pop("min_latency_ms"), d.pop("max_latency_ms")
    for v, k in ((lo, "min_latency_ms"), (hi, "max_latency_ms")):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            raise ConfigError(f"{name}: {_label(f'{where}.{k}')} must be a number, got {_tname(v)}")
        if v < 0:
            raise ConfigError(f"{name}: {_label(f'{where}.{k}')} must be ≥ 0, got {v:g}")
    if hi < lo:
        raise ConfigError(f"{name}: {_label(f'{where}.max_latency_ms')} must be ≥ 'min_latency_ms' ({lo:g}), got {hi:g}")
    d.update(order_latency_ms=float(lo), latency_dist="uniform", latency_jitter_ms=float(hi) - float(lo))
    both = f"{where}.{{min_latency_ms,max_latency_ms}}"
    return d, {"order_latency_ms": f"{where}.min_latency_ms", "latency_dist": both, "latency_jitter_ms": both}


# tables whose plan spellings are rewritten before they are read
_NORMALISE = {InstrumentConfig: _instrument_symbol, PaperTradingConfig: _plan_latency}

# The `trading.json` spellings read by code rather than by field metadata (the normalisers above,
# the venue's `paper_trading`, case-insensitive choices), for docs/config.md: key as written → the
# model's key and what it means. Aliases and `GROUPS` sub-tables are documented from the classes.
PLAN_SPELLINGS: tuple[tuple[str, str], ...] = (
    ('"trading_mode": "PAPER"', '`trading_mode = "paper"` (every choice is case-insensitive: `"LIVE"`, `"ZERODHA"`, `"NORMAL"`)'),
    ("instruments[].exchange + symbol", '`symbol = "EXCHANGE:SYMBOL"` (`"NSE"` + `"RELIANCE"` is `NSE:RELIANCE`; a prefixed `symbol` must agree with `exchange`)'),
    ("instruments[].exchange + tradingsymbol", "the same, with Kite's `tradingsymbol` spelling"),
    ("zerodha.paper_trading, binance.paper_trading", "the top-level `[paper_trading]` table (sq has one simulated fill model; a key set in both places is exit 78)"),
    ("paper_trading.min_latency_ms + max_latency_ms", "a uniform order latency between the two: `order_latency_ms` = min, `latency_dist` = `uniform`, `latency_jitter_ms` = max − min (not with those keys)"),
    ("// comments", "whole-line or trailing `//` comments are allowed in any JSON config"),
)


def _convert(tp: Any, value: Any, where: str, name: str, canon: str | None = None, origins: dict[str, str] | None = None) -> Any:
    canon = where if canon is None else canon
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where, name, canon, origins)
    if origin is Literal:
        if value in args:
            return value
        if isinstance(value, str):  # `"PAPER"` is `paper`: choices are case-insensitive
            same = [a for a in args if isinstance(a, str) and a.lower() == value.lower()]
            if len(same) == 1:
                return same[0]
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1, cutoff=0.5) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{name}: {_label(where)} must be one of {', '.join(repr(a) for a in args)}{hint}")
    if origin is tuple:  # tuple[X, ...]: a list of tables
        if not isinstance(value, list):
            raise ConfigError(f"{name}: {_label(where)} must be a list, got {_tname(value)}")
        return tuple(_convert(args[0], v, f"{where}[{i}]", name, f"{canon}[{i}]", origins) for i, v in enumerate(value))
    if origin in (Mapping, dict) or (origin is not None and origin.__name__ == "Mapping"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: {_label(where)} must be a table/object, got {_tname(value)}")
        out = {}
        own_prefix = canon.rsplit(".", 1)[-1].upper() + ":"  # `[sim."SIM:DEMO"]` is `[sim.DEMO]`
        for k, v in value.items():
            key = str(k).upper()
            if key.startswith(own_prefix):
                key = key[len(own_prefix):]
            out[key] = _convert(args[1], v, f"{where}.{k}", name, f"{canon}.{key}", origins)
            if origins is not None:
                origins[f"{canon}.{key}"] = f"{where}.{k}"
        return types.MappingProxyType(out)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, name, canon=canon, origins=origins)
    if tp is Secret:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: {_label(where)} must be a string, got {_tname(value)}")
        return Secret(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
        raise ConfigError(f"{name}: {_label(where)} must be true or false, got {_tname(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{name}: {_label(where)} must be a number, got {_tname(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{name}: {_label(where)} must be an integer, got {_tname(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name}: {_label(where)} must be a string, got {_tname(value)}")
    raise ConfigError(f"{name}: {_label(where)}: unsupported value")  # pragma: no cover - schema bug


def _label(path: str) -> str:
    return f"'{path}'" if path else ""


def _tname(value: Any) -> str:
    """A value's type in config words — never the value itself (it may be a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    if value is None:
        return "null"
    return type(value).__name__
