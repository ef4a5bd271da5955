"""sq configuration (README: Configuration): one frozen `Config` from file, `.env` and environment.

Where it comes from, first match wins for the file:
  1. `--config FILE` (the CLI stores it in `env.config_path`),
  2. `$SQ_CONFIG`,
  3. the platform config dir (`sq.paths.config_dir()`): `sq.toml`, else `config.json`.
No file anywhere means defaults: paper trading, no instruments.

Two layouts are accepted with the same key names: `sq.toml` (TOML) and the original plan's JSON
(`trading_mode`, `instruments` as a list of objects, `risk`, `paper_trading`); the format is
chosen by the suffix, else by sniffing a leading `{`. On top of the file, environment variables
override venue credentials and endpoints (`ZKITE_*`, `BINANCE_API_*`, `SQ_BINANCE_*_URL`,
`SQ_KITE_*_URL`), and a `.env` file (working directory, or the explicit `$SQ_DOTENV` path) fills in
variables the real environment does not set.

Every table is parsed into a frozen dataclass that rejects unknown keys: a typo or a wrong type is
a `ConfigError` (exit 78) naming the file and the key path, with close matches suggested.
Secrets (API secrets, passwords, TOTP seeds, access tokens) are wrapped in `Secret`, whose repr
and str are masked; error messages never quote values.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

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
# Field metadata: "aliases" are extra accepted key names (e.g. the environment-variable spelling).


def _f(default: Any = None, *aliases: str, factory: Any = None, minimum: float | None = None, above: float | None = None) -> Any:
    """A config field with its alias names (other spellings, environment variables) and bounds:
    `minimum` (value ≥ it) or `above` (value > it), checked when the file is read (exit 78)."""
    md = {"aliases": aliases, "minimum": minimum, "above": above}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


@dataclass(frozen=True)
class InstrumentConfig:
    """One traded instrument and its strategy/risk parameters (docs/architecture.md).

    `symbol` is canonical (`NSE:RELIANCE`); the JSON layout may give `exchange` + `tradingsymbol`
    instead. Unset limits are None (the strategy or risk layer decides its own default). `params`
    sets any parameter the strategy declares (`[instruments.params]`, e.g. `spread = 2.5`); the
    named keys are shorthands for the risk limits and the built-in strategies' parameters.
    `tick_size` / `lot_size` give the price and size grids where the venue cannot be asked.
    """

    symbol: str
    clip: float | None = None
    threshold: float | None = None
    max_order_size: float | None = None
    max_position: float | None = None
    max_loss: float | None = None
    strategy: str | None = None
    params: Mapping[str, float] = field(default_factory=lambda: types.MappingProxyType({}))  # any declared parameter
    # the instrument's price and size grids, for when its venue cannot be asked (`sq import` offline)
    tick_size: float | None = _f(None, above=0.0)
    lot_size: float | None = _f(None, above=0.0)


@dataclass(frozen=True)
class RiskConfig:
    """Account-wide pre-trade risk (docs/architecture.md): daily loss, order rate, price band, and
    the exchange's rules (docs/market-rules.md): trading hours and holidays, circuit limits."""

    max_daily_loss: float | None = None
    max_order_rate: float | None = _f(None, "max_orders_per_second")  # orders per second
    price_band_pct: float | None = None  # reject limit prices further than this % from fair price
    max_notional: float | None = None  # per order, in quote currency
    max_open_orders: int | None = None
    halt_on_max_loss: bool = True
    enforce_trading_hours: bool = True  # reject orders outside the market's session, on weekends and holidays
    enforce_circuit_limits: bool = True  # reject limit prices outside the circuit limits the instruments carry


@dataclass(frozen=True)
class PaperTradingConfig:
    """Simulated fills for paper trading and backtests; conservative defaults (docs/architecture.md)."""

    starting_capital: float = 1_000_000.0
    currency: str = "INR"
    maker_fee_bps: float = 2.0
    taker_fee_bps: float = 5.0
    feed_latency_ms: float = 5.0
    order_latency_ms: float = 20.0
    queue_cancel_share: float = 0.5  # share of cancels at our price assumed to be ahead of us


@dataclass(frozen=True)
class ZerodhaConfig:
    """Kite Connect credentials and endpoints (`SQ_KITE_*_URL` point at a fake or a proxy)."""

    api_key: str | None = _f(None, "ZKITE_API_KEY")
    api_secret: Secret | None = _f(None, "ZKITE_API_SECRET")
    user_id: str | None = _f(None, "ZKITE_USER_ID")
    password: Secret | None = _f(None, "ZKITE_PWD", "pwd")
    totp_secret: Secret | None = _f(None, "ZKITE_TOTP_SECRET")
    access_token: Secret | None = _f(None, "ZKITE_ACCESS_TOKEN")
    root_url: str = _f("https://api.kite.trade", "SQ_KITE_ROOT_URL")
    ws_url: str = _f("wss://ws.kite.trade", "SQ_KITE_WS_URL")
    login_url: str = _f("https://kite.zerodha.com", "SQ_KITE_LOGIN_URL")
    product: Literal["MIS", "NRML", "CNC", "MTF"] = "MIS"  # intraday by default; NRML/CNC to carry positions
    # F&O freeze quantities by underlying (or tradingsymbol), over sq's built-in table: orders above
    # them are sliced (NSE revises these; keep them current here without waiting for a release)
    freeze_qty: Mapping[str, float] = _f(factory=lambda: types.MappingProxyType({}))
    # the broker's intraday square-off of MIS positions (equity 15:20, F&O 15:25 IST), in backtest,
    # paper and live (a minute early); NSE/BSE trading holidays from this CSV instead of sq's list
    # for the years it has (docs/market-rules.md)
    square_off: bool = True
    holidays_file: str | None = None


@dataclass(frozen=True)
class BinanceConfig:
    """Binance API keys and endpoints (spot, USD-M futures; testnets via the `*_url` keys) and the
    public data archive `sq fetch` downloads from (`data_url`)."""

    api_key: str | None = _f(None, "BINANCE_API_KEY")
    api_secret: Secret | None = _f(None, "BINANCE_API_SECRET")
    testnet: bool = False
    rest_url: str = _f("https://api.binance.com", "SQ_BINANCE_REST_URL")
    ws_url: str = _f("wss://stream.binance.com:9443", "SQ_BINANCE_WS_URL")
    ws_api_url: str = _f("wss://ws-api.binance.com:443/ws-api/v3", "SQ_BINANCE_WS_API_URL")
    futures_rest_url: str = _f("https://fapi.binance.com", "SQ_BINANCE_FUTURES_REST_URL")
    futures_ws_url: str = _f("wss://fstream.binance.com", "SQ_BINANCE_FUTURES_WS_URL")
    data_url: str = _f("https://data.binance.vision", "SQ_BINANCE_DATA_URL")  # the public data archive (`sq fetch`)


@dataclass(frozen=True)
class LiveConfig:
    """`sq live` safety settings (README: Design), `[live]` in the config; the command's flags
    override them for one run.

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

    breaker_failures: int = _f(5, minimum=1)
    breaker_cooldown_s: float = _f(10.0, "breaker_cooldown", minimum=0.0)
    order_timeout_s: float = _f(5.0, "order_timeout", above=0.0)
    sweep_interval_s: float = _f(5.0, "sweep_interval", above=0.0)
    sweep_fallback_s: float = _f(0.5, "sweep_fallback", above=0.0)
    previous_runs_hours: float = _f(72.0, minimum=0.0)
    cancel_previous_orders: bool = True
    feed_grace_s: float = _f(2.0, minimum=0.0)


@dataclass(frozen=True)
class CleanConfig:
    """The bad-tick filter of replays (`[clean]`; `sq backtest` and `sq paper --from`, see
    `sq.core.clean`). Off unless `enabled` or `--clean`, so a run's results never change silently.

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

    enabled: bool = False
    max_jump_pct: float = _f(10.0, minimum=0.0)
    sigma_k: float = _f(20.0, minimum=0.0)
    sigma_halflife: float = _f(100.0, above=0.0)
    warmup: int = _f(50, minimum=1)
    confirm_trades: int = _f(3, minimum=2)
    max_backward_ns: int = _f(0, minimum=0)
    drop_crossed: bool = False


@dataclass(frozen=True)
class SimSymbolConfig:
    """Per-symbol grid and starting price of the simulated exchange (`[sim.DEMO]`); None = SIM default."""

    tick_size: float | None = None
    price: float | None = None
    lot_size: float | None = None


@dataclass(frozen=True)
class Config:
    """Everything sq reads from configuration; `source` is the file it came from (None = defaults)."""

    trading_mode: Literal["paper", "live"] = "paper"
    instruments: tuple[InstrumentConfig, ...] = ()
    risk: RiskConfig = field(default_factory=RiskConfig)
    paper_trading: PaperTradingConfig = field(default_factory=PaperTradingConfig)
    zerodha: ZerodhaConfig = field(default_factory=ZerodhaConfig)
    binance: BinanceConfig = field(default_factory=BinanceConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    sim: Mapping[str, SimSymbolConfig] = field(default_factory=lambda: types.MappingProxyType({}))
    source: str | None = None

    def instrument(self, symbol: str) -> InstrumentConfig | None:
        """The configured instrument for a canonical symbol, if any."""
        want = symbol.strip().upper()
        return next((i for i in self.instruments if i.symbol == want), None)

    @property
    def symbols(self) -> list[str]:
        return [i.symbol for i in self.instruments]


# environment variable → (section, field): real env and .env override the file
ENV_OVERRIDES: dict[str, tuple[str, str]] = {}
for _section, _cls in (("zerodha", ZerodhaConfig), ("binance", BinanceConfig)):
    for _fld in dataclasses.fields(_cls):
        for _alias in _fld.metadata.get("aliases", ()):
            if _alias.isupper():
                ENV_OVERRIDES[_alias] = (_section, _fld.name)


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
    real = dict(os.environ if environ is None else environ)
    dotenv = read_dotenv(dotenv_path or real.get("SQ_DOTENV") or None, cwd=cwd)
    merged = merge_environ(dotenv, real)
    path = find_config(env, merged)
    raw: dict[str, Any] = {}
    name = "<defaults>"
    if path is not None:
        name = str(path)
        raw = read_config_file(path)
        _warn_if_exposed(env, path, raw)
    return parse_config(raw, name=name, environ=merged, source=None if path is None else str(path))


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML or JSON file into plain data (no validation); syntax errors → ConfigError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config file: {e.strerror}") from None
    is_json = p.suffix.lower() == ".json" or (p.suffix.lower() != ".toml" and data.lstrip()[:1] == b"{")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: config file is not UTF-8 text") from None
    if is_json:
        try:
            raw = json.loads(text)
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
    data = dict(raw)
    # environment overrides: credentials and endpoints
    for var, (section, key) in ENV_OVERRIDES.items():
        value = (environ or {}).get(var)
        if value:
            sect = data.get(section)
            if sect is None:
                sect = {}
            elif not isinstance(sect, Mapping):
                break  # the type error is reported below with the file's key path
            sect = {k: v for k, v in sect.items() if _canonical_key(section, k) != key}
            sect[key] = value
            data[section] = sect
    cfg = _build(Config, data, "", name, skip=("source",))
    return dataclasses.replace(cfg, source=source)


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
    secret_keys = {f.name for c in (ZerodhaConfig, BinanceConfig) for f in dataclasses.fields(c) if "Secret" in str(f.type)}
    for section in ("zerodha", "binance"):
        sect = raw.get(section)
        if isinstance(sect, Mapping) and any(_canonical_key(section, k) in secret_keys for k in sect):
            env.warn(f"{path} holds secrets but is readable by others; run: chmod 600 {path}")
            return


# ----------------------------------------------------------------------------------------------
# the strict builder: plain data → frozen dataclasses


def _build(cls: type, data: Any, where: str, name: str, skip: tuple[str, ...] = ()) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: {_label(where) or 'the config'} must be a table/object, got {_tname(data)}")
    if cls is InstrumentConfig:
        data = _instrument_symbol(data, where, name)
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip]
    hints = typing.get_type_hints(cls)
    lookup: dict[str, dataclasses.Field] = {}
    for f in fields:
        lookup[f.name] = f
        for a in f.metadata.get("aliases", ()):
            lookup[a] = f
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        f = lookup.get(key)
        path = f"{where}.{key}" if where else str(key)
        if f is None:
            close = difflib.get_close_matches(str(key), [x.name for x in fields], n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            known = ", ".join(x.name for x in fields)
            raise ConfigError(f"{name}: unknown key {_label(path)}{hint}; known keys here: {known}")
        if f.name in kwargs:
            raise ConfigError(f"{name}: {_label(path)} given twice (as {f.name!r} and an alias)")
        kwargs[f.name] = _convert(hints[f.name], value, f"{where}.{f.name}" if where else f.name, name)
        _check_bounds(f, kwargs[f.name], path, name)
    missing = [f.name for f in fields if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{name}: {_label(where) or 'the config'} lacks required key {missing[0]!r}")
    return cls(**kwargs)


def _check_bounds(f: dataclasses.Field, value: Any, path: str, name: str) -> None:
    lo, above = f.metadata.get("minimum"), f.metadata.get("above")
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if value != value:
        raise ConfigError(f"{name}: {_label(path)} must be a number, got NaN")
    if lo is not None and value < lo:
        raise ConfigError(f"{name}: {_label(path)} must be ≥ {lo:g}, got {value:g}")
    if above is not None and value <= above:
        raise ConfigError(f"{name}: {_label(path)} must be > {above:g}, got {value:g}")


def _instrument_symbol(data: Mapping[str, Any], where: str, name: str) -> dict[str, Any]:
    """Accept `symbol`, or the plan's `exchange` + `tradingsymbol`; canonicalise to `symbol`."""
    from sq.core.symbols import parse_symbol

    d = dict(data)
    exch, ts = d.pop("exchange", None), d.pop("tradingsymbol", None)
    if exch is not None or ts is not None:
        if "symbol" in d:
            raise ConfigError(f"{name}: {_label(where)} gives both 'symbol' and 'exchange'/'tradingsymbol'; use one")
        if not isinstance(exch, str) or not isinstance(ts, str):
            raise ConfigError(f"{name}: {_label(where)} needs both 'exchange' and 'tradingsymbol' as strings")
        d["symbol"] = f"{exch}:{ts}"
    if "symbol" not in d:
        raise ConfigError(f"{name}: {_label(where)} lacks required key 'symbol' (or 'exchange' + 'tradingsymbol')")
    if not isinstance(d["symbol"], str):
        raise ConfigError(f"{name}: {_label(where + '.symbol')} must be a string, got {_tname(d['symbol'])}")
    try:
        d["symbol"] = parse_symbol(d["symbol"]).canonical
    except SqError as e:
        raise ConfigError(f"{name}: {_label(where + '.symbol')}: {e.message}") from None
    return d


def _convert(tp: Any, value: Any, where: str, name: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where, name)
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1, cutoff=0.5) if isinstance(value, str) else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{name}: {_label(where)} must be one of {', '.join(repr(a) for a in args)}{hint}")
        return value
    if origin is tuple:  # tuple[X, ...]: a list of tables
        if not isinstance(value, list):
            raise ConfigError(f"{name}: {_label(where)} must be a list, got {_tname(value)}")
        return tuple(_convert(args[0], v, f"{where}[{i}]", name) for i, v in enumerate(value))
    if origin in (Mapping, dict) or (origin is not None and origin.__name__ == "Mapping"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: {_label(where)} must be a table/object, got {_tname(value)}")
        out = {}
        own_prefix = where.rsplit(".", 1)[-1].upper() + ":"  # `[sim."SIM:DEMO"]` is `[sim.DEMO]`
        for k, v in value.items():
            key = str(k).upper()
            if key.startswith(own_prefix):
                key = key[len(own_prefix):]
            out[key] = _convert(args[1], v, f"{where}.{k}", name)
        return types.MappingProxyType(out)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, name)
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
