"""Continuous futures names in a run: `NFO:NIFTY-FUT` becomes the dated contract it stands for.

Every run that takes venue symbols (record, subscribe, paper, live, fetch) resolves them once,
before anything is opened (`resolve`): from then on the run, its journal and its data name the
contract (`NFO:NIFTY26DECFUT`), so a run never changes contract under a position and a resumed
run trades what it traded. The choice is said on stderr (`NFO:NIFTY-FUT → NFO:NIFTY26DECFUT
(expiry 2026-12-29)`) and kept in the instruments' extras of the stream (`continuous`,
`expiry_rule`, `expiry`). Config `[[instruments]]` entries and `--param SYMBOL.k=v` overrides
written with the continuous name apply to its contract.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from sq.core.symbols import Symbol
from sq.venues.base import Contract


@dataclass(frozen=True)
class Resolved:
    """The run's symbols with continuous names replaced, and contract symbol → how it was chosen."""

    symbols: list[Symbol]
    contracts: dict[str, Contract] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [s.canonical for s in self.symbols]


def resolve(env: Any, config: Any, symbols: Iterable[Symbol], *, expiry: str | None = None,
            replay_path: str | None = None) -> Resolved:
    """Resolve the continuous futures names among `symbols` (one venue) and say each choice on stderr."""
    from sq.venues import registry

    out, contracts = registry.resolve_contracts(symbols, config, expiry=expiry, replay_path=replay_path)
    for c in contracts.values():
        env.info(c.describe())
    return Resolved(out, contracts)


def config_for(config: Any, contracts: Mapping[str, Contract]) -> Any:
    """`config` with the `[[instruments]]` entries named by a continuous name renamed to its contract."""
    if not contracts or not getattr(config, "instruments", None):
        return config
    by_name = {c.continuous: c.symbol for c in contracts.values()}
    renamed = tuple(dataclasses.replace(i, symbol=by_name[i.symbol]) if i.symbol in by_name else i for i in config.instruments)
    return dataclasses.replace(config, instruments=renamed)


def params_for(params: Iterable[str], contracts: Mapping[str, Contract]) -> list[str]:
    """`--param` items with a continuous name before `.k=v` renamed to its contract."""
    by_name = {c.continuous: c.symbol for c in contracts.values()}
    out = []
    for item in params:
        key, eq, value = item.partition("=")
        sym, dot, name = key.rpartition(".")
        if eq and dot and sym.strip().upper() in by_name:
            item = f"{by_name[sym.strip().upper()]}.{name}={value}"
        out.append(item)
    return out


def to_json(contracts: Mapping[str, Contract]) -> dict[str, dict]:
    """What a journal's start record keeps: contract symbol → its `Contract` as JSON."""
    return {s: c.to_json() for s, c in contracts.items()}


def from_json(doc: Mapping[str, Any] | None) -> dict[str, Contract]:
    return {s: Contract.from_json(d) for s, d in (doc or {}).items()}
