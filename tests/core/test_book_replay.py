"""Done-when check of the book issue: `sq subscribe SIM:DEMO --limit 50000 | sq book --depth 5`
through real pipes, every row compared with an independent plain-Python replay of the same
market stream (a dict per side, recomputed from scratch after every complete message)."""

from __future__ import annotations

import math
import subprocess

import pyarrow as pa
import pyarrow.ipc as ipc

from tests.support.process import SQ_BIN, subprocess_env

DEPTH = 5


def _replay(market: pa.Table) -> list[tuple]:
    """(symbol, seq, bids, asks, last_trade) after every complete message outside snapshots."""
    cols = {n: market.column(n).to_pylist() for n in ("kind", "side", "price", "qty", "seq")}
    syms = market.column("symbol").cast(pa.string()).to_pylist()
    books: dict[str, tuple[dict, dict]] = {}
    last_trade: dict[str, float] = {}
    in_snap: dict[str, bool] = {}
    out = []
    n = len(syms)
    for i in range(n):
        s, k = syms[i], cols["kind"][i]
        bids, asks = books.setdefault(s, ({}, {}))
        if k == 1:
            side = bids if cols["side"][i] > 0 else asks
            if cols["qty"][i] > 0:
                side[cols["price"][i]] = cols["qty"][i]
            else:
                side.pop(cols["price"][i], None)
        elif k == 2:
            last_trade[s] = cols["price"][i]
        elif k == 3:
            bids.clear()
            asks.clear()
            in_snap[s] = True
        elif k == 4:
            in_snap[s] = False
        end = i + 1 == n or syms[i + 1] != s or cols["seq"][i + 1] != cols["seq"][i]
        if end and not in_snap.get(s, False):
            b = sorted(bids.items(), reverse=True)[:DEPTH]
            a = sorted(asks.items())[:DEPTH]
            out.append((s, cols["seq"][i], b, a, last_trade.get(s, math.nan)))
    return out


def _close(x: float, y: float) -> bool:
    if x != x or y != y:
        return x != x and y != y
    return abs(x - y) <= 1e-9 * max(1.0, abs(x))


def test_book_rows_match_an_independent_replay(tmp_path):
    cmd = f"{SQ_BIN} subscribe SIM:DEMO --limit 50000 --seed 5 | tee m.arrow | {SQ_BIN} book --depth {DEPTH} --every 1 > b.arrow"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=tmp_path, env=subprocess_env(), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    market = ipc.open_stream(pa.OSFile(str(tmp_path / "m.arrow"))).read_all()
    book = ipc.open_stream(pa.OSFile(str(tmp_path / "b.arrow"))).read_all()
    expected = _replay(market)
    assert book.num_rows == len(expected) > 10_000
    got = {n: book.column(n).to_pylist() for n in book.schema.names if n not in ("ts", "symbol")}
    got_sym = book.column("symbol").cast(pa.string()).to_pylist()
    for r_i, (sym, seq, bids, asks, ltp) in enumerate(expected):
        assert got_sym[r_i] == sym and got["seq"][r_i] == seq, r_i
        for lvl in range(DEPTH):
            for side, levels in (("bid", bids), ("ask", asks)):
                px, qty = levels[lvl] if lvl < len(levels) else (math.nan, math.nan)
                assert _close(got[f"{side}_px_{lvl}"][r_i], px) and _close(got[f"{side}_qty_{lvl}"][r_i], qty), (r_i, side, lvl)
        if bids and asks:
            (bp, bq), (ap, aq) = bids[0], asks[0]
            assert _close(got["mid"][r_i], (bp + ap) / 2) and _close(got["spread"][r_i], ap - bp), r_i
            assert _close(got["microprice"][r_i], (bp * aq + ap * bq) / (bq + aq)), r_i
            sb, sa = sum(q for _, q in bids), sum(q for _, q in asks)
            assert _close(got["imbalance"][r_i], (sb - sa) / (sb + sa)), r_i
        else:
            assert math.isnan(got["microprice"][r_i]), r_i
        assert _close(got["last_trade_px"][r_i], ltp), r_i
