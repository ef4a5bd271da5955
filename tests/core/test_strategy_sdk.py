"""The strategy SDK in process: loading every form, declarations, parameters, the context's
answers, every event handler, failures, and the built-ins as ordinary SDK strategies."""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sq.core import schemas as S
from sq.core.config import Config
from sq.core.engine import Engine, FillModelConfig
from sq.core.engine import params as engine_params
from sq.core.exits import StrategyError, UsageError
from sq.core.strategy import loader
from sq.core.strategy.declaration import DeclarationError, Strategy
from sq.core.streams import open_input
from tests.support.marketdata import market_rows
from tests.support.process import ROOT

SYM = "SIM:T"
INST = {SYM: S.Instrument(SYM, "sim", 1.0, 1.0)}
FIXTURE = str(ROOT / "fixtures" / "sim-demo")


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def fixture_run(strategy, params=None, **fill):
    src = open_input(None, [FIXTURE], "market")
    decl = strategy if isinstance(strategy, Strategy) else loader.load(strategy)
    p = engine_params.resolve(decl, sorted(src.instruments), None, params or [])
    e = Engine(decl, src.instruments, p, config=Config(), fill=FillModelConfig(**fill), seed=1)
    outs = [e.process(b) for b in src.batches()] + [e.finish()]
    orders = pl.concat([pl.from_arrow(o.orders) for o in outs if o.orders.num_rows])
    fills = pl.concat([pl.from_arrow(o.fills) for o in outs if o.fills.num_rows])
    return e, orders, fills


# ---------------------------------------------------------------------------------------------- loading


MINE = '''
    from sq.strategy import BUY, SELL, Strategy

    strategy = Strategy("mine", "a test strategy")
    SIZE = strategy.param("size", 2.0, above=0.0, doc="order size")

    @strategy.on_book
    def on_book(ctx, s):
        if ctx.has_bid(s) and ctx.has_ask(s):
            ctx.quote(s, BUY, ctx.bid(s) - 1, ctx.param(s, SIZE))
            ctx.quote(s, SELL, ctx.ask(s) + 1, ctx.param(s, SIZE))
'''


def test_built_ins_load_like_any_strategy_and_declare_their_parameters():
    for name in ("mm", "lt", "avellaneda"):
        s = loader.load(name)
        assert s.name == name and s.source.startswith("builtin (sq.strategies.")
        names = [p.name for p in s.all_params]
        assert names[-3:] == ["max_order_size", "max_position", "max_loss"] and len(names) > 3
    assert {p.name for p in loader.load("mm").params} == {"clip", "threshold", "ioc"}
    assert [s.name for s in loader.available()][:3] == ["mm", "lt", "avellaneda"]


def test_a_file_a_named_object_and_a_module_path_load(tmp_path, monkeypatch):
    path = write(tmp_path, "mine.py", MINE)
    s = loader.load(str(path))
    assert s.name == "mine" and s.source == str(path.resolve()) and [p.name for p in s.params] == ["size"]
    assert loader.load(f"{path}:strategy") is s or loader.load(f"{path}:strategy").name == "mine"
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg, "strat.py", MINE.replace('"mine"', '"frommodule"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    m = loader.load("mypkg.strat:strategy")
    assert m.name == "frommodule" and m.source == "mypkg.strat:strategy"


def test_an_installed_package_registers_a_strategy_by_entry_point(tmp_path, monkeypatch):
    write(tmp_path, "plugstrat.py", MINE.replace('"mine"', '"plugged"'))
    dist = tmp_path / "plugstrat-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugstrat\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sq.strategies]\nplugged = plugstrat:strategy\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    s = loader.load("plugged")
    assert s.name == "plugged" and s.source == "entry point plugstrat:strategy"
    assert "plugged" in [x.name for x in loader.available()]


@pytest.mark.parametrize("spec, words", [
    ("mn", ["unknown strategy", "did you mean mm"]),
    ("./nope.py", ["does not exist"]),
    ("no.such.module:thing", ["cannot import"]),
])
def test_what_cannot_be_loaded_is_a_usage_error_naming_it(spec, words):
    with pytest.raises(UsageError) as e:
        loader.load(spec)
    assert all(w in e.value.message for w in words)


def test_a_file_with_two_strategies_needs_a_name_and_declarations_are_checked(tmp_path):
    two = write(tmp_path, "two.py", textwrap.dedent(MINE) + '\nother = Strategy("other", "another")\n')
    with pytest.raises(UsageError, match="several strategies"):
        loader.load(str(two))
    assert loader.load(f"{two}:other").name == "other"
    with pytest.raises(DeclarationError, match="risk parameters"):
        Strategy("x").param("max_position", 1.0)
    with pytest.raises(DeclarationError, match="default"):
        Strategy("x").param("size", 0.0, above=0.0)
    with pytest.raises(DeclarationError, match="timer"):
        Strategy("x").on_timer(lambda ctx, s: None)
    broken = write(tmp_path, "broken.py", "from sq.strategy import Strategy\nstrategy = Strategy('Bad Name')\n")
    with pytest.raises(UsageError, match="lower-case"):
        loader.load(str(broken))


def test_parameters_follow_the_declaration():
    mm = loader.load("mm")
    p = engine_params.resolve(mm, [SYM], None, ["clip=3", f"{SYM}.threshold=0.2"])[SYM]
    assert p["clip"] == 3.0 and p["threshold"] == 0.2 and p["max_position"] == 10.0
    with pytest.raises(UsageError, match="did you mean 'clip'"):
        engine_params.resolve(mm, [SYM], None, ["clpi=3"])
    with pytest.raises(UsageError, match="must be one of 0, 1"):
        engine_params.resolve(mm, [SYM], None, ["ioc=2"])
    av = loader.load("avellaneda")
    with pytest.raises(UsageError, match="gamma"):
        engine_params.resolve(av, [SYM], None, ["gamma=0"])


def test_a_config_params_table_sets_any_declared_parameter(tmp_path):
    from sq.core.config import load_config
    from sq.core.environment import Environment
    from sq.core.exits import ConfigError

    cfg = tmp_path / "sq.toml"
    cfg.write_text(f'[[instruments]]\nsymbol = "{SYM}"\nmax_position = 3\n[instruments.params]\ngamma = 0.5\n')
    env = Environment()
    env.config_path = str(cfg)
    config = load_config(env)
    p = engine_params.resolve(loader.load("avellaneda"), [SYM], config, ["kappa=2"])[SYM]
    assert p["gamma"] == 0.5 and p["kappa"] == 2.0 and p["max_position"] == 3.0
    cfg.write_text(f'[[instruments]]\nsymbol = "{SYM}"\n[instruments.params]\ngama = 0.5\n')
    with pytest.raises(ConfigError, match="no such parameter"):
        engine_params.resolve(loader.load("avellaneda"), [SYM], load_config(env), [])


# ---------------------------------------------------------------------------------------------- running


def test_mm_from_a_user_file_trades_exactly_as_the_built_in(tmp_path):
    text = (ROOT / "sq" / "strategies" / "mm.py").read_text().replace('Strategy("mm"', 'Strategy("copy"')
    copy = loader.load(str(write(tmp_path, "copy.py", text)))
    _, o1, f1 = fixture_run("mm")
    _, o2, f2 = fixture_run(copy)
    assert len(f1) > 10
    assert o1.drop("ts").equals(o2.drop("ts")) and f1.equals(f2)


def test_avellaneda_trades_and_stays_inside_its_position_limit():
    e, orders, fills = fixture_run("avellaneda", ["max_position=2", "size=1"])
    assert len(fills) > 5
    pos: dict[str, float] = {}
    for row in fills.iter_rows(named=True):
        pos[row["symbol"]] = pos.get(row["symbol"], 0.0) + row["side"] * row["qty"]
        assert abs(pos[row["symbol"]]) <= 2.0 + 1e-9
    assert e.rejections().get("position_too_large", 0) == 0  # it never asked beyond its limit


EVENTS = '''
    from sq.strategy import BUY, SELL, IOC, Strategy

    strategy = Strategy("events", "counts every event it gets", state=6, timer="1s")

    @strategy.on_book
    def on_book(ctx, s):
        st = ctx.state(s)
        st[0] += 1
        if ctx.has_bid(s) and ctx.has_ask(s):
            t, q = ctx.level(s, BUY, 0)
            st[4] = 1.0 if (t == ctx.bid(s) and q == ctx.bid_qty(s)) else -1.0
            ctx.take(s, BUY, ctx.ask(s), 1.0)

    @strategy.on_trade
    def on_trade(ctx, s, side, ticks, qty):
        ctx.state(s)[1] += 1

    @strategy.on_fill
    def on_fill(ctx, s, side, price, qty):
        st = ctx.state(s)
        st[2] += qty
        st[5] = ctx.position(s)

    @strategy.on_timer
    def on_timer(ctx, s):
        ctx.state(s)[3] += 1
'''


def test_every_event_reaches_its_handler(tmp_path):
    strat = loader.load(str(write(tmp_path, "events.py", EVENTS)))
    e, orders, fills = fixture_run(strat, ["max_position=1e9"], order_latency_ns=0)
    c = e.counters()
    for name in e.registry.symbols:
        s = e.registry.id(name)
        st = e.us[s]
        mine = fills.filter(pl.col("symbol") == name)
        assert st[0] > 100  # complete book messages
        assert st[1] > 0  # public trades
        assert st[2] == pytest.approx(float(mine["qty"].sum())) and st[2] > 0  # every fill of ours, once
        assert st[5] == pytest.approx(float((mine["side"] * mine["qty"]).sum()))  # position already includes the fill
        assert st[4] == 1.0  # level 0 is the touch
        assert 1 <= st[3] <= 1 + c["events"]  # the timer fired
    assert len(orders.filter(pl.col("event") == "new")) > 0


def test_the_context_answers_from_the_exact_book(tmp_path):
    probe = write(tmp_path, "probe.py", '''
        from sq.strategy import BUY, SELL, Strategy

        strategy = Strategy("probe", "records what ctx says", state=16)

        @strategy.on_book
        def on_book(ctx, s):
            st = ctx.state(s)
            st[0] = ctx.bid(s); st[1] = ctx.ask(s); st[2] = ctx.bid_qty(s); st[3] = ctx.ask_qty(s)
            st[4] = ctx.mid(s); st[5] = ctx.fair(s); st[6] = ctx.spread(s); st[7] = ctx.imbalance(s)
            t, q = ctx.level(s, SELL, 1)
            st[8] = t; st[9] = q
            t, q = ctx.level(s, BUY, 5)
            st[10] = q
            st[11] = ctx.price(s, ctx.bid(s)); st[12] = ctx.ticks(s, 101.0); st[13] = ctx.lots(s, 7.9)
            st[14] = ctx.tick_size(s); st[15] = ctx.now()
    ''')
    e = Engine(loader.load(str(probe)), {SYM: S.Instrument(SYM, "sim", 1.0, 2.0)}, {SYM: {}}, config=Config())
    rows = [(5_000, SYM, S.CLEAR, 0, 0.0, 0.0, 1), (5_000, SYM, S.LEVEL, 1, 100.0, 300.0, 1), (5_000, SYM, S.LEVEL, 1, 98.0, 5.0, 1),
            (5_000, SYM, S.LEVEL, -1, 101.0, 100.0, 1), (5_000, SYM, S.LEVEL, -1, 103.0, 7.0, 1),
            (5_000, SYM, S.SNAPSHOT_END, 0, 0.0, 0.0, 1)]
    batch = market_rows(rows, [SYM], tick=1.0)
    e.process(batch, complete=True)
    st = e.us[0]
    assert list(st[:4]) == [100, 101, 300, 100]
    assert st[4] == 100.5 and st[5] == pytest.approx((100 * 100 + 101 * 300) / 400) and st[6] == 1.0
    assert st[7] == pytest.approx(0.5)
    assert (st[8], st[9], st[10]) == (103, 7.0, 0.0)
    assert (st[11], st[12], st[13], st[14]) == (100.0, 101, 6.0, 1.0)
    assert st[15] == batch.column("recv_ts").cast("int64")[-1].as_py()  # the local time of the event handled


# ---------------------------------------------------------------------------------------------- failures


def test_a_raised_error_stops_the_strategy_naming_its_file_line_and_handler(tmp_path):
    path = write(tmp_path, "boom.py", '''
        from sq.strategy import BUY, Strategy

        strategy = Strategy("boom", "raises once it holds a position")

        @strategy.on_book
        def on_book(ctx, s):
            if ctx.position(s) != 0.0:
                raise ValueError("not flat any more")
            ctx.take(s, BUY, ctx.ask(s), 1.0)
    ''')
    with pytest.raises(StrategyError) as e:
        fixture_run(str(path), order_latency_ns=0)
    msg = e.value.message
    assert f"{path.resolve()}:9" in msg and "on_book" in msg and "ValueError: not flat any more" in msg
    assert e.value.status == 70


@pytest.mark.parametrize("call, what", [
    ("ctx.quote(s, BUY, ctx.bid(s), math.nan)", "size"),
    ("ctx.quote(s, BUY, ctx.bid(s), -1.0)", "size"),
    ("ctx.quote(s, BUY, 0, 1.0)", "price"),
    ("ctx.take(s, BUY, math.nan, 1.0)", "price"),
    ("ctx.quote(s, 2, ctx.bid(s), 1.0)", "side"),
])
def test_a_bad_value_is_rejected_named_and_stops_the_strategy(tmp_path, call, what):
    path = write(tmp_path, "bad.py", f'''
        import math
        from sq.strategy import BUY, Strategy

        strategy = Strategy("bad", "sends a bad value")

        @strategy.on_book
        def on_book(ctx, s):
            if ctx.has_bid(s) and ctx.has_ask(s):
                {call}
    ''')
    with pytest.raises(StrategyError) as e:
        e2, orders, _ = fixture_run(str(path))
    assert what in e.value.message and "on_book" in e.value.message and str(path.resolve()) in e.value.message


def test_a_handler_that_cannot_compile_is_a_usage_error_at_its_line(tmp_path):
    path = write(tmp_path, "nocompile.py", '''
        from sq.strategy import BUY, Strategy

        strategy = Strategy("nocompile", "does not compile")

        @strategy.on_book
        def on_book(ctx, s):
            x = "a" + ctx.bid(s)
    ''')
    with pytest.raises(UsageError) as e:
        loader.compiled(loader.load(str(path)))
    assert e.value.status == 2 and "nocompile.py:8" in e.value.message and 'x = "a" + ctx.bid(s)' in e.value.message
    assert "ContextType(" not in e.value.message  # numba's internals trimmed away


def test_on_fill_follows_live_venue_answers_through_the_bridge(tmp_path):
    from sq.core.engine import layout as L
    from sq.core.engine.venue_bridge import FILL_TAKER, LiveBridge

    strat = loader.load(str(write(tmp_path, "fills.py", '''
        from sq.strategy import BUY, Strategy

        strategy = Strategy("fills", "takes once, counts fills", state=2)

        @strategy.on_book
        def on_book(ctx, s):
            if ctx.state(s)[0] == 0.0 and ctx.has_ask(s):
                ctx.take(s, BUY, ctx.ask(s), 3.0)
                ctx.state(s)[0] = 1.0

        @strategy.on_fill
        def on_fill(ctx, s, side, price, qty):
            ctx.state(s)[1] += qty * side
    ''')))
    e = Engine(strat, INST, {SYM: {}}, config=Config(), sim_venue=False)
    bridge = LiveBridge(e)
    rows = [(5_000, SYM, S.LEVEL, 1, 100.0, 10.0, 1), (5_000, SYM, S.LEVEL, -1, 101.0, 10.0, 1)]
    e.process(market_rows(rows, [SYM], tick=1.0), complete=True)
    [intent] = bridge.take_outbox()
    assert intent.side == 1 and intent.ticks == 101 and intent.qty == 3.0 and intent.ioc
    bridge.answer(intent.coid, L.K_ACK, now=6_000, first=True)
    bridge.answer(intent.coid, FILL_TAKER, px=101, qty=2.0, now=7_000)
    assert e.us[0, 1] == 2.0 and e.positions()[SYM]["position"] == 2.0
    assert math.isfinite(e.us[0, 0])


def test_the_strategies_own_state_and_params_survive_a_checkpoint(tmp_path):
    strat = loader.load("avellaneda")
    e, _, fills = fixture_run(strat, ["max_position=5"])
    state = e.snapshot_state()
    other = Engine(strat, e.instruments, {k: {} for k in e.registry.symbols}, config=Config())
    other.restore_state(state)
    assert np.array_equal(other.us, e.us) and np.array_equal(other.pf, e.pf) and other.us.any()
    del state["us"]
    with pytest.raises(Exception, match="older sq"):
        other.restore_state(state)


def test_the_sdk_imports_only_what_a_strategy_needs():
    """`from sq.strategy import ...` in a fresh interpreter pulls in no venue, run or command."""
    import subprocess

    code = "import sys, sq.strategy; print(','.join(m for m in sys.modules if m.startswith(('sq.runs', 'sq.commands', 'sq.venues'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout.strip()
    assert out == ""


def test_reporting_a_raised_error_sends_nothing_and_changes_nothing(tmp_path):
    """The report calls the handler again to learn its exception: on a copy of the state, so
    that second call neither sends an order nor touches the strategy's own state."""
    path = write(tmp_path, "once.py", '''
        from sq.strategy import BUY, Strategy

        strategy = Strategy("once", "orders, counts, then raises", state=1)

        @strategy.on_book
        def on_book(ctx, s):
            if ctx.has_bid(s) and ctx.has_ask(s) and ctx.state(s)[0] == 0.0:
                ctx.state(s)[0] += 1.0
                ctx.quote(s, BUY, ctx.bid(s), 1.0)
                raise RuntimeError("after one order")
    ''')
    strat = loader.load(str(path))
    e = Engine(strat, INST, {SYM: {}}, config=Config(), fill=FillModelConfig(order_latency_ns=0))
    rows = [(5_000, SYM, S.LEVEL, 1, 100.0, 10.0, 1), (5_000, SYM, S.LEVEL, -1, 101.0, 10.0, 1)]
    with pytest.raises(StrategyError, match="after one order"):
        e.process(market_rows(rows, [SYM], tick=1.0), complete=True)
    assert e.us[0, 0] == 1.0 and e.counters()["orders"] == 1
    assert e.halted == "strategy_error"
