"""`sq live`, `sq reconcile` and `sq kill` against the local Kite fake, as the Zerodha live and kill
tests drive them: real `sq` subprocesses with the market-hours check pinned to an open session
(`live_env`), a stored Kite session (`store_session`), in-process gateways (`kite_gateway`), and
the check that the fake and a run's journal tell the same story (`venue_agrees`)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

from sq.core import journal as J
from tests.support.fakes.kite import open_hours_env
from tests.support.livetools import live_config, orders_working
from tests.support.process import SQ_BIN, subprocess_env

SYMBOL = "NSE:RELIANCE"
LIVE = ["live", "--strategy", "mm", SYMBOL, "--param", "clip=1", "--param", "threshold=0.1"]


def live_env(**extra: str) -> dict[str, str]:
    """Environment of an `sq` subprocess at the fake, at a fixed time inside NSE's session."""
    return open_hours_env(subprocess_env(**extra))


def store_session(fake) -> str:
    """Store a Kite session the way `sq auth zerodha` does (0600 file) with a token the fake issued."""
    from sq.core.config import Secret
    from sq.venues.zerodha.session import IST, Session, next_expiry, save_session

    now = dt.datetime.now(dt.timezone.utc)
    tok = fake.issue_token()
    save_session(Session(fake.api_key, fake.user_id, "Test User", Secret(tok), now.astimezone(IST).isoformat(),
                         next_expiry(now).isoformat()))
    return tok


def start_live(tmp_path, journal, *extra, resume=False, rate=20) -> subprocess.Popen:
    """`sq live --strategy mm NSE:RELIANCE --json` journaling into `journal` (or `--resume` it)."""
    head = ["live", "--resume", str(journal)] if resume else LIVE + ["--journal", str(journal)]
    args = [SQ_BIN, *head, "--config", str(live_config(tmp_path, rate)), "--confirm-live", "--json", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=live_env())


def wait_open(fake, proc, n=1, timeout=60) -> None:
    """Return once the fake has `n` open orders; fail if `proc` (an `sq live`) exits first."""
    orders_working(proc, lambda: len(fake.open_orders()), n, timeout)


def run_reconcile(journal, *extra):
    """`sq reconcile --journal JOURNAL --json`: the completed process and its JSON document."""
    r = subprocess.run([SQ_BIN, "reconcile", "--journal", str(journal), "--json", *extra], capture_output=True, text=True,
                       env=live_env(), timeout=120)
    return r, json.loads(r.stdout)


def run_kill(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([SQ_BIN, "kill", *args], capture_output=True, text=True, env=live_env(), timeout=timeout)


def venue_agrees(fake, journal):
    """The Kite fake and the run's journal tell the same story: no tag placed twice, nothing of
    the run open at Kite, every order Kite has is journaled, every Kite trade of the run is a
    journal fill (and no journal fill is missing at Kite). Returns the journal's view."""
    from sq.runs.reconcile import view_of

    view = view_of(J.load(journal))
    assert view.prefix
    ours = [o for o in fake.placed() if (o.get("tag") or "").startswith(view.prefix)]
    tags = [o["tag"] for o in ours]
    assert len(tags) == len(set(tags)), "an order was sent twice"
    assert not [o for o in fake.open_orders() if (o.get("tag") or "").startswith(view.prefix)], "left open at Kite"
    assert set(tags) <= set(view.orders), "Kite has an order the journal lacks"
    oids = {o["order_id"] for o in ours}
    with fake.lock:
        trades = {str(t["trade_id"]) for t in fake.matching.trades if t["order_id"] in oids}
    assert {k[1] for k in view.fills} == trades, "venue trades and journal fills differ"
    return view


def kite_gateway(**kw):
    """The Zerodha order gateway of this process, opened with the environment's config."""
    from sq.core.config import load_config
    from sq.core.environment import Environment
    from sq.venues.zerodha import open_gateway

    return open_gateway(load_config(), Environment(), **kw)


def price_below(fake):
    """A buy price 5% below the market (inside the ±20% circuit band): it rests, the simulated
    flow cannot reach it within a test."""
    with fake.lock:
        last = float(fake.market_quote(fake.token_of(SYMBOL))["last_price"])
    return round(round(last * 0.95 / 0.05) * 0.05, 2)
