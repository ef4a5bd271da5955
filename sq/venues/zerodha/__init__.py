"""Zerodha Kite Connect venue: ticker market source, order gateway, and `sq auth zerodha`.

    open_market_source(symbols, options) -> ZerodhaSource   (live ticker, or --replay RAWFILE)
    open_gateway(config, env, **kw) -> ZerodhaGateway
    contracts(symbols, config, *, expiry, replay_path) -> [Contract]   (`NFO:NIFTY-FUT` → its contract)

Modules: endpoints (URLs), session (cached token), auth (login flows), instruments (dump, symbol
resolution), ticker_parser (binary frames → Arrow), source (websocket client), raw (capture
files), market_rules (hours, ticks, lots, circuits, freeze slicing, square-off times), holidays
(the exchange holidays list, holidays.csv), charge_table (the dated charges table, charges.csv), quotes (today's circuit limits), ratelimit (token buckets),
errors (Kite → sq errors), gateway (orders over REST), history (historical candles for `sq fetch`),
candles (Kite candles → bars tables) and continuous (continuous futures names → dated contracts).
kiteconnect is imported only by the gateway.
"""

from __future__ import annotations

from sq.core.exits import DataError

PREFIXES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX")  # Kite exchange segments
ORDER_RATE = 10.0  # orders per second (Kite's published limit)
# cash-market segments whose equities have splits, bonuses and dividends, with the exchange's UTC
# offset in minutes (IST): an ex-date is an Indian date (`sq backtest --adjust`, sq.core.corporate)
CORPORATE_ACTIONS = {"NSE": 330, "BSE": 330}


def holds_positions(symbol: str) -> bool:
    """Every Kite segment reports net positions (intraday and carried)."""
    return True


def trading_session(symbol: str):
    """The segment's normal session in IST (`market_rules.SESSIONS`: NSE, BSE, NFO, BFO 09:15–15:30,
    CDS and BCD 09:00–17:00, MCX 09:00–23:30): the day `sq bars session` makes one bar of."""
    from sq.core.sessions import TradingSession
    from sq.venues.zerodha.market_rules import SESSIONS
    from sq.venues.zerodha.session import IST

    open_, close = SESSIONS[str(symbol).split(":", 1)[0].strip().upper()]
    return TradingSession(open_, close, IST.utcoffset(None), "IST")


def market_calendar(symbol: str, config=None):
    """NSE, BSE and their F&O segments (NFO, BFO): the normal session (`trading_session`), closed
    on weekends and on the exchange's trading holidays (`holidays`: the shipped list, or the
    years of `[zerodha] holidays_file`), and — for the intraday product (`zerodha.product` MIS,
    unless `[zerodha] square_off = false`) — the broker's square-off: equity 15:20, F&O 15:25 IST
    (`market_rules.SQUARE_OFF`). Other segments (currency, commodities): None, not modelled."""
    from sq.core.config import ZerodhaConfig
    from sq.core.sessions import MarketCalendar
    from sq.venues.zerodha import holidays
    from sq.venues.zerodha.market_rules import CALENDAR_EXCHANGES, SQUARE_OFF

    exchange = str(symbol).split(":", 1)[0].strip().upper()
    if exchange not in CALENDAR_EXCHANGES:
        return None
    z = getattr(config, "zerodha", None) or ZerodhaConfig()
    table = holidays.load(z.holidays_file)
    square_off = SQUARE_OFF[exchange] if z.product == "MIS" and z.square_off else None
    return MarketCalendar(trading_session(symbol), table.of(exchange), table.years, square_off=square_off)


def charges(symbol: str, instrument=None, config=None):
    """Zerodha's charges on the symbol's fills by trade date (`charge_table`, docs/costs.md): the
    segment (equity intraday under MIS, else delivery; futures; options; currency) at NSE's or BSE's
    rates from the dated table (`charges.csv`, or `[zerodha] charges_file`); None for commodities."""
    from sq.venues.zerodha.charge_table import schedule

    return schedule(symbol, instrument, config)


def secret_files(environ=None, config=None) -> list:
    """The cached Kite session (access token) and a stored credentials file, both 0600; with a
    config, its `zerodha.access_token_path` session file too."""
    from sq.venues.zerodha.session import session_path

    session = session_path(environ)
    files = [session, session.parent / "credentials.json"]
    moved = session_path(environ, config.zerodha) if config is not None else session
    return files if moved == session else [moved, *files]


def _capture_head(path):
    """A raw capture's records up to its first ticker frame, the rest of them (an iterator), the
    instruments of its `/instruments` records and when the first of those was received (ns)."""
    from sq.venues.zerodha.instruments import parse_csv
    from sq.venues.zerodha.raw import read_raw

    records = read_raw(path)
    head = []  # everything up to the first ticker frame: the /instruments answer lives there
    for rec in records:
        head.append(rec)
        if rec.src == "ws":
            break
    dumps = [r for r in head if r.src == "rest" and "/instruments" in r.stream and isinstance(r.data, str)]
    if not dumps:
        raise DataError(f"{path}: the capture has no /instruments record before its first frame; it cannot be replayed")
    table = {}
    for d in dumps:
        table.update(parse_csv(d.data))
    return head, records, table, dumps[0].t


def contracts(symbols, config, *, expiry=None, replay_path=None) -> list:
    """The dated contract (`sq.venues.base.Contract`) of every continuous futures name among
    `symbols` (`NFO:NIFTY-FUT`, `MCX:CRUDEOIL-FUT`; continuous.py): the nearest listed one now, or
    the 2nd/3rd with `expiry` next/far (default: the config's `[zerodha] expiry`). A replay
    resolves against its capture's instruments as they were when it was recorded. Today's dump is
    loaded only when a name needs it."""
    from sq.venues.base import Contract
    from sq.venues.zerodha import continuous as C

    names = [getattr(s, "canonical", str(s)) for s in symbols]
    wanted = [n for n in names if C.is_continuous(n)]
    if not wanted:
        return []
    rule = expiry or config.zerodha.expiry
    if replay_path:
        import datetime as dt

        _, _, table, t_ns = _capture_head(replay_path)
        now = dt.datetime.fromtimestamp(t_ns / 1e9, dt.timezone.utc)
    else:
        from sq.venues.zerodha.endpoints import Endpoints
        from sq.venues.zerodha.instruments import load_dump, parse_csv
        from sq.venues.zerodha.session import access_token

        z = config.zerodha
        api_key, token = access_token(z)
        table = parse_csv(load_dump(Endpoints.from_config(z), api_key, token, cache_dir=z.instruments_cache_dir))
        now = C.now_ist()
    chosen = C.resolve_continuous(wanted, table, rule, now)
    return [Contract(name, ki.symbol, ki.expiry, rule) for name, ki in chosen.items()]


def open_market_source(symbols, options):
    """A market source for Zerodha `symbols` honouring mode, limit, duration, raw and replay
    options; the instruments of `options.contracts` say which continuous name they stand for."""
    from sq.venues.zerodha import quotes
    from sq.venues.zerodha.instruments import check_ticker_ids, load_dump, parse_csv, resolve
    from sq.venues.zerodha.source import ZerodhaSource

    names = [getattr(s, "canonical", str(s)) for s in symbols]
    if options.replay_path:
        import itertools

        head, records, table, _ = _capture_head(options.replay_path)
        resolved = resolve(names, table)
        check_ticker_ids(resolved, options.config)
        quote = next((r.data for r in head if r.src == "rest" and r.stream == quotes.PATH and isinstance(r.data, str)), "")
        return ZerodhaSource(resolved, options, replay_records=itertools.chain(head, records), quote_json=quote)
    from sq.core.exits import SqError
    from sq.venues.zerodha.endpoints import Endpoints
    from sq.venues.zerodha.session import access_token

    z = options.config.zerodha
    api_key, token = access_token(z)
    ep = Endpoints.from_config(z)
    dump = load_dump(ep, api_key, token, cache_dir=z.instruments_cache_dir)
    resolved = resolve(names, parse_csv(dump))
    check_ticker_ids(resolved, options.config)
    try:  # today's circuit limits, for the instruments' metadata (a recording carries them)
        quote = quotes.fetch(ep, api_key, token, [k.symbol for k in resolved])
    except SqError as e:
        quote = ""
        options.env.warn(f"zerodha: no circuit limits for today ({e.message}); the run goes on without them")
    return ZerodhaSource(resolved, options, endpoints=ep, api_key=api_key, access_token=token, dump_csv=dump, quote_json=quote)


def instrument_info(symbols, config) -> dict:
    """Each symbol's `Instrument` from today's instruments dump (cached, else downloaded with the
    stored session: AuthError (77) without one, VenueUnavailable (69) when Kite cannot be reached)."""
    from sq.venues.zerodha.endpoints import Endpoints
    from sq.venues.zerodha.instruments import check_ticker_ids, load_dump, parse_csv, resolve
    from sq.venues.zerodha.session import access_token

    z = config.zerodha
    api_key, token = access_token(z)
    table = parse_csv(load_dump(Endpoints.from_config(z), api_key, token, cache_dir=z.instruments_cache_dir))
    resolved = resolve([getattr(s, "canonical", str(s)) for s in symbols], table)
    check_ticker_ids(resolved, config)
    return {ki.symbol: ki.to_instrument() for ki in resolved}


def open_gateway(config, env, **kw):
    """An order gateway on the logged-in Kite account (see gateway.ZerodhaGateway for `kw`)."""
    from sq.venues.zerodha.gateway import ZerodhaGateway

    return ZerodhaGateway(config, env, **kw)


def open_account(config, env, *, symbols=(), order_timeout_s: float | None = None, push: bool = False):
    """The gateway of a live run or a reconcile. Requests time out at the run's order timeout (a
    place that times out is then looked up by its tag); postbacks are followed through the
    market source (`gateway.follow`), so `push` opens nothing here."""
    return open_gateway(config, env) if order_timeout_s is None else open_gateway(config, env, timeout=order_timeout_s)
