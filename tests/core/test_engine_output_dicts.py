"""`EngineOutput.dicts`: the orders and pnl rows straight from the kernel's arrays (what `sq live`
journals between a tick and its order) are exactly what `journal.rows_from_batch` reads from the
built Arrow batches — same keys, values and types, so the journal's bytes do not change."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from sq.core import journal as J
from sq.core.config import Config
from sq.core.engine import Engine
from sq.core.engine import venue_bridge as LB
from sq.core.engine.venue_bridge import LiveBridge


@pytest.fixture(scope="module")
def sim_table():
    from sq.venues.sim.venue import SimVenue

    v = SimVenue(["SIM:DEMO", "SIM:ALT"], seed=7)
    return pa.Table.from_batches(list(v.market_source(limit=4_000).batches())), v.instruments


def typed(rows: list[dict]) -> list[list[tuple]]:
    """Rows as (key, type, canonical JSON value) so 1 and 1.0, nan and None all differ."""
    return [sorted((k, type(v).__name__, J.canonical(v)) for k, v in r.items()) for r in rows]


@pytest.mark.parametrize("sim_venue", [True, False])
def test_dicts_equal_the_batches_rows(sim_table, sim_venue):
    table, inst = sim_table
    config = Config()
    config = dataclasses.replace(config, risk=dataclasses.replace(config.risk, max_open_orders=1))  # rejections: reasons
    e = Engine("mm", inst, {"*": {"clip": 1.0, "threshold": 0.6, "max_position": 5.0}}, config=config, seed=3, sim_venue=sim_venue)
    bridge = LiveBridge(e) if not sim_venue else None
    seen = {"orders": 0, "pnl": 0, "reason": 0}
    for size in (1, 5, 200):
        for batch in table.slice(0, 1500).to_batches(max_chunksize=size):
            outs = [e.process(batch, complete=True)]
            if bridge is not None:  # a venue that acks every new order and every cancel at once
                for it in bridge.take_outbox():
                    bridge.answer(it.coid, LB.ACK if it.kind == LB.NEW else LB.CANCELED, px=it.coid, now=it.ts, first=True)
                outs.append(bridge.output())
            for out, (k, name) in ((o, kn) for o in outs for kn in ((0, "orders"), (2, "pnl"))):
                fast = out.dicts(k)
                assert fast is not None
                slow = J.rows_from_batch(getattr(out, name))
                assert typed(fast) == typed(slow)
                seen[name] += len(fast)
                seen["reason"] += sum(1 for r in fast if k == 0 and r["reason"] is not None)
    assert seen["orders"] > 10
    if sim_venue:  # fills make pnl marks; the risk cap makes rejections with a reason
        assert seen["pnl"] > 0 and seen["reason"] > 0
    assert out.dicts(1) is None or out.dicts(1) == []  # fills: read the batch
