"""`sq live`, `sq reconcile` and `sq kill` against the local Kite (Zerodha) fake, through real
sockets on 127.0.0.1 and real `sq` subprocesses wherever a crash or a second process is involved:

* a live market-making run journals, seals and reconciles clean, every venue trade journaled;
* kill -9 at random moments, then `--resume`: zero differences, no order doubled (Kite orders carry
  sq's client id in their `tag`), nothing left open, every venue trade in the journal;
* uncertain sends (a place that times out or loses its connection after Kite executed it) are
  resolved by looking the tag up, never sent twice; a place Kite never saw is not invented; a 429
  storm is retried without doubling; a run through dropped connections and a rate-limit storm
  still reconciles clean;
* `sq kill` during a burst, while `sq live` is SIGSTOPped (it cancels at Kite with the stored
  session), `--flatten` with marketable orders, exit 1 when Kite refuses the cancels;
* `sq reconcile` finds every kind of disagreement with Kite, `--fix` adopts Kite's truth with an
  audit record and the next reconcile is clean;
* no Kite secret (api secret, password, TOTP seed, access tokens issued by the fake) in any
  artifact; the session file is 0600; live refuses (77) a group/world-readable session file.

Market hours: the gateway refuses NSE orders outside 09:15–15:30 IST, so subprocesses run with the
hours check pinned to a Monday 10:00 IST (tests/support/fakes/kite/openhours) and in-process gateways use
the `kite_open_hours` fixture — the tests pass at any wall-clock time.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from sq.core import journal as J
from tests.support.kitelive import (LIVE, SYMBOL, kite_gateway, live_env, price_below, run_kill, run_reconcile, start_live,
                                    store_session, venue_agrees)
from tests.support.livetools import kill9_then_resume, live_config
from tests.support.process import SQ_BIN

# ---------------------------------------------------------------------------------------------- helpers


def _secrets(fake) -> list[str]:
    return [fake.api_secret, fake.password, fake.totp_secret, *fake.valid_tokens, *fake.enctokens]


def _no_secrets(fake, dirs, texts, allow=()):
    secrets = _secrets(fake)
    for text in texts:
        for s in secrets:
            assert s not in text, "a Kite secret in a command's output"
    for base in dirs:
        for p in Path(base).rglob("*"):
            if p.is_file() and p not in allow:
                data = p.read_bytes()
                for s in secrets:
                    assert s.encode() not in data, f"a Kite secret in {p}"


# ---------------------------------------------------------------------------------------------- a clean run


def test_not_logged_in_is_77_before_any_request_to_kite(kite_env, tmp_path):
    """No `sq auth zerodha` session: 77 naming the fix, and Kite sees neither a request nor a ticker connection."""
    fake = kite_env
    before = (len(fake.requests), fake.ticker.connections)
    r = subprocess.run([SQ_BIN, *LIVE, "--journal", str(tmp_path / "run"), "--config", str(live_config(tmp_path)), "--confirm-live"],
                       capture_output=True, text=True, env=live_env(), timeout=60)
    assert r.returncode == 77 and "not logged in" in r.stderr and "sq auth zerodha" in r.stderr, r.stderr
    assert (len(fake.requests), fake.ticker.connections) == before
    assert not (tmp_path / "run").exists()


def test_live_run_journals_seals_and_reconciles_clean_and_leaks_no_secret(kite_env, tmp_path):
    """`sq auth zerodha` (TOTP login at the fake) stores a 0600 session; `sq live --strategy mm
    NSE:RELIANCE` trades at Kite with it, sees its fills during the run (not only at the final
    reconcile), seals its journal, and `sq reconcile` reports 0 differences. No Kite secret
    (api secret, password, TOTP seed, any token the fake issued) appears in the journal, the sq
    home (session file aside) or any output; a group/world-readable session or credentials file
    makes live refuse with 77 without printing the secret."""
    from sq.venues.zerodha.session import session_path

    fake = kite_env
    auth = subprocess.run([SQ_BIN, "auth", "zerodha", "--json"], capture_output=True, text=True, env=live_env(), timeout=60)
    assert auth.returncode == 0, auth.stderr
    sess = session_path()
    assert oct(sess.stat().st_mode)[-3:] == "600" and json.loads(sess.read_text())["access_token"] in fake.valid_tokens
    journal = tmp_path / "run"
    p = start_live(tmp_path, journal, "--for", "4s")
    out, err = p.communicate(timeout=120)
    outputs = [auth.stdout + auth.stderr, out + err]
    assert p.returncode == 0, err
    summary = json.loads(out)
    assert summary["mode"] == "live" and summary["venue"] == "zerodha" and summary["orders_sent"] >= 1
    assert summary["venue_fills"] == len({t["trade_id"] for t in fake.matching.trades})
    assert summary["order_updates_pushed"] > 0  # order postbacks on the ticker socket reached the loop
    view = venue_agrees(fake, journal)
    assert view.sealed and (journal / "orders.parquet").exists()
    # every order went out with the run's client id as its Kite tag, form-encoded on POST /orders/regular
    assert all((o.get("tag") or "").startswith(view.prefix) for o in fake.placed())
    r, doc = run_reconcile(journal)
    assert r.returncode == 0 and doc["differences"] == 0, r.stdout
    k = run_kill("--json")  # nothing running, nothing open: clean
    assert k.returncode == 0 and json.loads(k.stdout)["venues"][0]["ok"], k.stdout
    st = subprocess.run([SQ_BIN, "auth", "status", "--json"], capture_output=True, text=True, env=live_env(), timeout=60)
    outputs += [r.stdout + r.stderr, k.stdout + k.stderr, st.stdout + st.stderr]
    assert oct((journal / "journal.log").stat().st_mode)[-3:] == "600"
    _no_secrets(fake, [journal, Path(os.environ["SQ_HOME"]), tmp_path], outputs, allow={sess})
    token = json.loads(sess.read_text())["access_token"]
    os.chmod(sess, 0o644)
    bad = subprocess.run([SQ_BIN, *LIVE, "--config", str(live_config(tmp_path)), "--confirm-live", "--for", "1s"], capture_output=True,
                         text=True, env=live_env(), timeout=60)
    assert bad.returncode == 77 and "chmod 600" in bad.stderr and token not in bad.stderr + bad.stdout, bad.stderr
    os.chmod(sess, 0o600)
    creds = sess.parent / "credentials.json"
    creds.write_text(json.dumps({"api_secret": fake.api_secret}))
    os.chmod(creds, 0o640)
    bad = subprocess.run([SQ_BIN, *LIVE, "--config", str(live_config(tmp_path)), "--confirm-live", "--for", "1s"], capture_output=True,
                         text=True, env=live_env(), timeout=60)
    assert bad.returncode == 77 and "credentials.json" in bad.stderr and fake.api_secret not in bad.stderr + bad.stdout
    assert len(fake.placed()) == len({o["tag"] for o in fake.placed()})  # the refused runs sent nothing


# ---------------------------------------------------------------------------------------------- crashes


def _crash_cycles(fake, tmp_path, n, seed):
    journal = tmp_path / "run"
    outputs, _ = kill9_then_resume(lambda for_, resume: start_live(tmp_path, journal, "--for", for_, resume=resume), n, seed)
    r, doc = run_reconcile(journal)
    outputs.append(r.stdout + r.stderr)
    assert r.returncode == 0 and doc["differences"] == 0, r.stdout
    view = venue_agrees(fake, journal)
    assert view.sealed
    return journal, outputs


def test_kill9_at_random_moments_then_resume_reconciles_clean(kite_env, tmp_path):
    """Five kill -9s of `sq live` at random moments, each followed by `sq live --resume`: the final
    reconcile is clean, no tag twice at Kite, nothing open, every Kite trade journaled; each resume
    left an audit record; no secret in any artifact."""
    fake = kite_env
    store_session(fake)
    journal, outputs = _crash_cycles(fake, tmp_path, 5, seed=11)
    assert [r for r in J.load(journal).records if r.kind == "audit"]
    assert len(fake.placed()) >= 1
    home = Path(os.environ["SQ_HOME"])
    _no_secrets(fake, [journal, home], outputs, allow=set(home.rglob("session.json")))


@pytest.mark.slow
def test_kill9_fifty_times(kite_env, tmp_path):
    """The same with fifty crashes."""
    fake = kite_env
    store_session(fake)
    journal, outputs = _crash_cycles(fake, tmp_path, 50, seed=5)
    home = Path(os.environ["SQ_HOME"])
    _no_secrets(fake, [journal, home], outputs, allow=set(home.rglob("session.json")))


# ---------------------------------------------------------------------------------------------- uncertain sends


def _orders(timeout=0.7):
    gw = kite_gateway(timeout=timeout)
    gw.backoff_s = 0.02
    gw.circuit(SYMBOL)  # today's circuit limits cached: the next request of a send is its POST
    return gw


def _req(fake, cid, side=1):
    from sq.venues.base import OrderRequest

    return OrderRequest(SYMBOL, side, 1, price_below(fake), client_order_id=cid)


def _posts(fake):
    return [p for m, p in fake.requests if m == "POST" and p.startswith("/orders/")]


@pytest.mark.parametrize("fault", ["timeout", "drop"])
def test_place_that_timed_out_or_dropped_after_executing_is_found_by_tag_not_doubled(kite_env, kite_open_hours, fault):
    """Kite executes the order but the answer never arrives (too late for the client's timeout, or
    the connection closes): the send is resolved by looking the tag up at Kite and is never sent
    again."""
    fake = kite_env
    store_session(fake)
    fake.order_fault_delay_s = 2.0
    orders = _orders(timeout=0.7)
    fake.order_faults = [fault]
    st, _ = orders.place_idempotent(_req(fake, "sqtest0001-1"))
    venue = fake.placed("sqtest0001-1")
    assert st.client_order_id == "sqtest0001-1" and st.venue_order_id
    # the state is Kite's truth (the fake's SIM flow occasionally fills even a far order; see report)
    assert (st.status, venue[0]["status"]) in (("accepted", "OPEN"), ("filled", "COMPLETE")), (st, venue)
    assert [o["order_id"] for o in fake.placed("sqtest0001-1")] == [st.venue_order_id]
    assert len(_posts(fake)) == 1


def test_lookup_of_an_order_kite_never_saw_is_none_and_the_send_stays_unknown(kite_env, kite_open_hours):
    """The gateway's lookup by tag answers None for an id Kite never received (nothing invented),
    the adopted state for one it did, and a lookup Kite keeps refusing (429) is 'cannot tell'
    (VenueUnavailable), not 'never saw it'."""
    from sq.core.exits import VenueUnavailable

    fake = kite_env
    store_session(fake)
    orders = _orders()
    assert orders.order(SYMBOL, "sqtest0009-1") is None
    st, _ = orders.place_idempotent(_req(fake, "sqtest0009-2"))
    found = orders.order(SYMBOL, "sqtest0009-2")
    assert found.venue_order_id == st.venue_order_id and found.status == "accepted" and found.qty == 1
    fake.forced = [(429, "NetworkException", "Too many requests")] * (orders.retries_429 + 1)
    with pytest.raises(VenueUnavailable):
        orders.order(SYMBOL, "sqtest0009-2")
    orders.cancel(SYMBOL, "sqtest0009-2")


def test_429_storm_is_retried_once_placed_and_a_longer_storm_places_nothing(kite_env, kite_open_hours):
    """Kite answers HTTP 429 NetworkException "Too many requests": a short storm is waited out and
    the order placed exactly once; a storm outlasting the retries is a rate-limit error (75) with
    nothing placed."""
    from sq.core.exits import SqError

    fake = kite_env
    store_session(fake)
    orders = _orders()
    storm = (429, "NetworkException", "Too many requests")
    fake.forced = [storm] * 3
    st, _ = orders.place_idempotent(_req(fake, "sqtest0002-1"))
    assert st.status == "accepted" and len(fake.placed("sqtest0002-1")) == 1
    assert len(_posts(fake)) == 4  # three refused, one placed
    fake.forced = [storm] * (orders.retries_429 + 1)
    with pytest.raises(SqError) as e:
        orders.place_idempotent(_req(fake, "sqtest0002-2"))
    assert e.value.status == 75 and fake.placed("sqtest0002-2") == []
    orders.cancel(SYMBOL, "sqtest0002-1")


def test_live_through_dropped_connections_and_a_429_storm_reconciles_clean(kite_env, tmp_path):
    """A whole `sq live` run while Kite drops the connection of executed placements and rate-limits
    every request above 4/s: it ends cleanly, orders are never doubled, and the journal agrees with
    Kite (reconcile 0 differences)."""
    fake = kite_env
    store_session(fake)
    fake.order_faults = ["drop", "", "drop", "", "", "drop"]
    journal = tmp_path / "run"
    p = start_live(tmp_path, journal, "--for", "4s")
    time.sleep(1.5)
    fake.rate_limit = 4
    out, err = p.communicate(timeout=120)
    fake.rate_limit = None
    assert p.returncode == 0, err
    assert fake.throttled >= 1, "the storm never hit"
    assert fake.order_faults == [] or len(fake.placed()) < 6, "the drops were not exercised"
    venue_agrees(fake, journal)
    r, doc = run_reconcile(journal)
    assert r.returncode == 0 and doc["differences"] == 0, r.stdout
