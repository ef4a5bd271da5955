"""`sq reconcile`: paper journals against themselves, live journals against the Binance fake
(missing fills, states, orders the venue never got), --fix with an audit record, exit codes,
JSON and table output, cron safety (no prompt)."""

from __future__ import annotations

import json

import pytest

from sq.core import journal as J


def _order(cid, event, filled=0.0, *, symbol="SIM:DEMO", side=1, price=100.0, qty=1.0, void=None, ts=1):
    return ("order", {"ts": ts, "symbol": symbol, "client_order_id": cid, "venue_order_id": void, "event": event, "side": side,
                      "price": price, "qty": qty, "filled_qty": filled, "leaves_qty": max(qty - filled, 0.0), "reason": None})


def _fill(cid, tid, qty=1.0, *, symbol="SIM:DEMO", side=1, price=100.0, void=None):
    return ("fill", {"ts": 2, "symbol": symbol, "client_order_id": cid, "venue_order_id": void, "trade_id": tid, "side": side,
                     "price": price, "qty": qty, "fee": 0.0, "fee_ccy": "USDT", "liquidity": "maker"})


def _paper(tmp_path, recs, name="run"):
    d = tmp_path / name
    j = J.Journal.create(d, {"run_id": name, "mode": "paper", "strategy": "mm", "symbols": ["SIM:DEMO"]})
    j.write_step(recs)
    j.seal({"ts": 3}, compact_to_parquet=False)
    return d


def test_paper_journal_consistent_is_clean(sq, tmp_path):
    d = _paper(tmp_path, [_order("1", "new"), _order("1", "accepted"), _fill("1", "t1"), _order("1", "filled", 1.0),
                          ("pnl", {"ts": 2, "symbol": "SIM:DEMO", "position": 1.0}), _order("2", "new", side=-1), _order("2", "canceled", side=-1)])
    r = sq(["reconcile", "--journal", str(d), "--json"])
    assert r.exit_code == 0, r.stdout
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["runs"][0]["checked"] == "journal" and doc["runs"][0]["fills"] == 1


def test_paper_journal_differences_and_fix(sq, tmp_path):
    d = _paper(tmp_path, [_order("1", "new"), _order("1", "accepted"), _fill("1", "t1", 0.4), _order("1", "partially_filled", 0.5),
                          _fill("9", "t2"), ("pnl", {"ts": 2, "symbol": "SIM:DEMO", "position": 3.0})])
    r = sq(["reconcile", "--journal", str(d), "--json"])
    assert r.exit_code == 1
    kinds = sorted(x["kind"] for x in json.loads(r.stdout)["runs"][0]["differences"])
    assert kinds == ["fill_without_order", "filled_qty", "open_after_end", "position"]
    r = sq(["reconcile", "--journal", str(d), "--fix", "--json"], stdin_isatty=False)
    assert r.exit_code == 1 and json.loads(r.stdout)["runs"][0]["fixed"] == 2
    loaded = J.load(d)  # still a valid hash chain, with the audit record last
    assert loaded.records[-1].kind == "audit" and {c["kind"] for c in loaded.records[-1].data["changes"]} == {"filled_qty", "open_after_end"}
    assert (d / "orders.parquet").exists()
    kinds = sorted(x["kind"] for x in json.loads(sq(["reconcile", "--journal", str(d), "--json"]).stdout)["runs"][0]["differences"])
    assert kinds == ["fill_without_order", "position"]  # what the journal cannot prove stays reported


def test_no_runs_is_clean_and_table_on_a_terminal(sq, tmp_path):
    r = sq(["reconcile", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["runs"] == []
    d = _paper(tmp_path, [_order("1", "new"), _order("1", "accepted")])
    r = sq(["reconcile", "--journal", str(tmp_path)], stdout_isatty=True)
    assert r.exit_code == 1 and b"open_after_end" in r.stdout and b"differences" in r.stdout
    assert sq(["reconcile", "--journal", str(tmp_path / "nope")]).exit_code == 66
    assert sq(["reconcile", "--tolerance", "-1", "--journal", str(d)]).exit_code == 2


def test_recent_runs_in_the_data_dir_and_venue_filter(sq, tmp_path):
    from sq.core import paths

    runs = paths.data_dir() / "runs"
    _paper(runs, [_order("1", "new"), _order("1", "canceled")], name="a")
    _paper(runs, [_order("1", "new"), _order("1", "accepted")], name="b")
    doc = json.loads(sq(["reconcile", "--json"]).stdout)
    assert [r["run"] for r in doc["runs"]] == ["a", "b"] and doc["differences"] == 1
    assert json.loads(sq(["reconcile", "--venue", "binance", "--json"]).stdout)["runs"] == []


def _place(fake, gw, cid, side=1, offset=2.0):
    from sq.venues.base import OrderRequest

    bid, ask = fake.market().best()
    return gw.place(OrderRequest("BINANCE:BTCUSDT", side, 0.01, round(bid - offset if side > 0 else ask + offset, 2), client_order_id=cid))


def test_live_journal_against_the_venue_and_fix(sq, binance_fake, tmp_path):
    from sq.core.config import load_config
    from sq.venues.binance.gateway import BinanceGateway
    from sq.venues.base import OrderRequest

    fake = binance_fake()
    gw = BinanceGateway.open(load_config(), None, user_stream=False)
    prefix = "sqabcdef12-"
    a = _place(fake, gw, prefix + "1")  # resting; journal says canceled
    bid, ask = fake.market().best()
    b = gw.place(OrderRequest("BINANCE:BTCUSDT", 1, 0.01, round(ask + 1, 2), time_in_force="ioc", client_order_id=prefix + "2"))
    assert b.filled_qty > 0
    d = tmp_path / "live"
    j = J.Journal.create(d, {"run_id": "live", "mode": "live", "venue": "binance", "strategy": "mm", "symbols": ["BINANCE:BTCUSDT"],
                             "client_prefix": prefix})
    S = dict(symbol="BINANCE:BTCUSDT", qty=0.01)
    j.write_step([_order(prefix + "1", "new", price=a.price, **S), _order(prefix + "1", "accepted", void=a.venue_order_id, price=a.price, **S),
                  _order(prefix + "1", "canceled", void=a.venue_order_id, price=a.price, **S),
                  _order(prefix + "2", "new", price=b.price, **S), _order(prefix + "2", "accepted", void=b.venue_order_id, price=b.price, **S),
                  _order(prefix + "3", "new", price=a.price, **S)])  # journaled, never sent
    j.close()
    r = sq(["reconcile", "--journal", str(d), "--json"])
    assert r.exit_code == 1, r.stderr
    kinds = sorted(x["kind"] for x in json.loads(r.stdout)["runs"][0]["differences"])
    assert "missing_at_venue" in kinds and "missing_fill" in kinds and "status" in kinds
    r = sq(["reconcile", "--journal", str(d), "--fix", "--json"])
    assert json.loads(r.stdout)["runs"][0]["fixed"] >= 3
    r = sq(["reconcile", "--journal", str(d), "--json"])
    assert r.exit_code == 0, r.stdout
    assert J.load(d).records[-1].kind == "audit"
    assert fake.account.api_secret not in r.stdout.decode() + r.stderr
    gw.cancel_all("BINANCE:BTCUSDT")
