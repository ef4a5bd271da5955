"""What people see: live views on fake 80- and 120-column terminals keep what matters (subscribe:
best bid/ask and spread; the paper dashboard: total PnL; the sweep table: the objective), prices
carry their tick's decimals, `--format table` names kinds and sides, and a progress bar shows on
a terminal stderr — never on a pipe."""

from __future__ import annotations

import io
import json
import re

import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from tests.support.marketdata import market_table, write_market_file

SYM = "SIM:TICKY"
T0 = 1_717_400_000_000_000_000  # 2024-06-03 07:33:20 UTC
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ROWS = 404


@pytest.fixture(scope="module")
def ticky(tmp_path_factory) -> str:
    """A market on a 0.05 tick (an NSE equity's grid): bid 99.40, ask 99.45, trades on both, 4 s of data."""
    rows = [(T0, SYM, S.CLEAR, 0, 0.0, 0.0, 1), (T0, SYM, S.LEVEL, 1, 99.40, 10.0, 1), (T0, SYM, S.LEVEL, -1, 99.45, 12.0, 1),
            (T0, SYM, S.SNAPSHOT_END, 0, 0.0, 0.0, 1)]
    for m in range(400):
        ts = T0 + (m + 1) * 10_000_000
        if m % 4 == 3:
            buy = m % 8 == 3
            rows.append((ts, SYM, S.TRADE, 1 if buy else -1, 99.45 if buy else 99.40, 1.0, m + 2))
        else:
            rows.append((ts, SYM, S.LEVEL, 1 if m % 2 else -1, 99.40 if m % 2 else 99.45, 10.0 + m % 5, m + 2))
    path = tmp_path_factory.mktemp("views") / "ticky.parquet"
    return write_market_file(market_table(rows, {SYM: S.Instrument(SYM, "sim", 0.05, 1.0)}), path)


def plain(text: str) -> str:
    return ANSI.sub("", text)


def last_frame(stdout: bytes, marker: str) -> str:
    """The last frame a live view drew (it redraws the whole view each time)."""
    text = plain(stdout.decode())
    return text[text.rindex(marker):]


def headers(frame: str, first: str = "symbol") -> list[str]:
    """The column headers of the first table row in `frame` that starts with `first`."""
    for line in frame.splitlines():
        cells = [c.strip() for c in re.split(r"[┃│]|\s{2,}", line) if c.strip()]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no header row starting with {first!r} in:\n{frame}")


# -- sq subscribe


def test_subscribe_view_keeps_bid_ask_and_spread_at_80_columns(sq):
    args = ["subscribe", "SIM:DEMO", "SIM:AVERYLONGNAME", "--limit", "3000"]
    narrow = sq(args, stdout_isatty=True, width=80)
    wide = sq(args, stdout_isatty=True, width=120)
    assert narrow.exit_code == 0 and wide.exit_code == 0, narrow.stderr + wide.stderr
    frame = last_frame(narrow.stdout, "sq subscribe")
    h80, h120 = headers(frame), headers(last_frame(wide.stdout, "sq subscribe"))
    assert h80[:4] == ["symbol", "bid", "ask", "spread"] and h120[:4] == h80[:4]
    assert "last trades" not in h80 and set(h80) < set(h120)  # the tape and the rate gave way, not the prices
    assert "…" not in frame and max(len(line) for line in frame.splitlines()) <= 80
    demo = next(line for line in frame.splitlines() if "SIM:DEMO" in line)
    bid, ask, spread = [c.strip() for c in demo.split("│")[2:5]]
    assert re.fullmatch(r"\d+\.\d\d", bid) and re.fullmatch(r"\d+\.\d\d", ask) and re.fullmatch(r"\d\.\d\d", spread)  # tick 0.01


def test_subscribe_view_prices_carry_the_tick_decimals(ticky):
    from rich.console import Console

    from sq.commands.subscribe import _BookView
    from sq.core.streams import open_input
    from sq.core.environment import Environment

    source = open_input(Environment(stdin_isatty=True), [ticky], "market")
    for width in (80, 120):
        out = io.StringIO()
        console = Console(file=out, width=width, force_terminal=True, color_system=None, _environ={})
        view = _BookView([SYM], source.instruments, console)
        for batch in pq.read_table(ticky).to_batches():
            view.update(batch)
        console.print(view.render())
        row = next(line for line in out.getvalue().splitlines() if SYM in line)
        assert [c.strip() for c in row.split("│")[1:5]] == [SYM, "99.40", "99.45", "0.05"]
        assert ("@99.40" in row) == (width == 120)  # the last trades, to the tick, where they fit


# -- sq paper


def test_paper_dashboard_keeps_total_pnl_at_80_columns(sq, ticky, tmp_path):
    frames = {}
    for width in (80, 120):
        r = sq(["paper", "-s", "mm", "--from", ticky, "--journal", str(tmp_path / f"j{width}")], stdout_isatty=True, width=width)
        assert r.exit_code == 0, r.stderr
        frames[width] = last_frame(r.stdout, "sq paper mm")
    h80, h120 = headers(frames[80]), headers(frames[120])
    assert "total" in h80 and "bid" in h80 and "ask" in h80
    assert set(h80) < set(h120) and "bid qty" in h120
    assert "…" not in frames[80] and "99.40" in frames[80] and "99.45" in frames[80]
    assert "data 2024-06-03 07:33:24 UTC" in frames[120] and "100%" in frames[120]  # a replay: its data time and progress


# -- sq backtest --sweep


def test_sweep_table_keeps_the_objective_at_80_columns(sq, ticky):
    args = ["backtest", "-s", "mm", ticky, "--sweep", "clip=1,2", "--sweep", "threshold=0.3,0.5", "--sweep", "max_position=5,10", "-j", "1"]
    doc = json.loads(sq(args + ["--json"]).stdout)
    narrow, wide = (sq(args, stdout_isatty=True, width=w) for w in (80, 120))
    assert narrow.exit_code == 0 and wide.exit_code == 0, narrow.stderr
    text80, text120 = plain(narrow.stdout.decode()), plain(wide.stdout.decode())
    h80, h120 = headers(text80, "clip"), headers(text120, "clip")
    assert h80[:4] == ["clip", "threshold", "max_position", "PnL total"] and set(h80) < set(h120)
    assert "…" not in text80 and max(len(line) for line in text80.splitlines()) <= 80
    for run in doc["runs"]:
        assert f"{run['pnl']['total']:,.4f}" in text80


# -- --format table


def test_format_table_names_kinds_and_sides(sq):
    r = sq(["subscribe", "SIM:DEMO", "--limit", "50", "--format", "table"])
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    head = lines[0].split()
    kind, side = head.index("kind"), head.index("side")
    levels = [line.split() for line in lines[1:] if " level " in line]
    assert levels and {c[kind] for c in levels} == {"level"} and {c[side] for c in levels} == {"bid", "ask"}
    assert any(" clear " in line for line in lines[1:])


def test_format_table_prices_to_the_tick(sq, ticky):
    r = sq(["book", ticky, "--format", "table"])
    assert r.exit_code == 0, r.stderr
    first = r.stdout.decode().splitlines()[1].split()
    assert first[4:9] == ["99.40", "99.45", "12", "99.425", "0.05"]  # bid, ask, ask qty, mid, spread
    assert re.fullmatch(r"-?\d\.\d{3}", first[10])  # imbalance
    r = sq(["bars", "1s", ticky, "--format", "table"])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.decode().splitlines()[1].split()[3:7] == ["99.45", "99.45", "99.40", "99.40"]  # open high low close


# -- progress


@pytest.mark.parametrize("command,unit", [(["backtest", "-s", "mm", "{input}", "--json"], "events"),
                                          (["book", "{input}", "-o", "{out}/book.parquet"], "rows"),
                                          (["bars", "1s", "{input}", "-o", "{out}/bars.parquet"], "events")])
def test_a_progress_bar_on_a_terminal_stderr_only(sq, ticky, tmp_path, command, unit):
    args = [a.format(input=ticky, out=tmp_path) for a in command]
    tty = sq(args, stderr_isatty=True, width=120)
    assert tty.exit_code == 0, tty.stderr
    err = plain(tty.stderr)
    assert "100%" in err and f"{ROWS} {unit}" in err and "ETA" in err
    piped = sq(args)  # stderr not a terminal (a pipe, a cron log): nothing but the command's own lines
    assert piped.exit_code == 0, piped.stderr
    assert "%" not in piped.stderr and "\x1b" not in piped.stderr and "ETA" not in piped.stderr


def test_a_realtime_replay_shows_its_data_time_and_progress(sq, ticky, tmp_path):
    args = ["paper", "-s", "mm", "--from", ticky, "--realtime", "--for", "1s"]
    tty = sq(args + ["--journal", str(tmp_path / "a")], stderr_isatty=True, width=120)
    assert tty.exit_code == 0, tty.stderr
    err = plain(tty.stderr)
    assert re.search(r"replay\s+data 2024-06-03 07:33:2\d UTC", err) and re.search(r"\d+%", err)
    piped = sq(args + ["--journal", str(tmp_path / "b")])
    assert piped.exit_code == 0 and "data 2024" not in piped.stderr and not re.search(r"replay\s+data", piped.stderr)
