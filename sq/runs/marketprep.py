"""Recorded market data made ready for a replay (`sq backtest`, `sq paper --from`): corporate
actions applied (`--adjust FILE`), then the bad-tick filter (`--clean`, or `[clean] enabled`).

Adjustment comes first, so that a split's price step is not mistaken for a bad tick. The run's
summary gets `cleaned` (rows dropped by reason, rows kept, locked/crossed messages) and
`adjusted` (the file and its symbols); anything dropped is also told on stderr in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from sq.core.clean import Cleaner
from sq.core.corporate import CorporateActions, adjust_stream, load_actions


def load_adjustments(path: str | None) -> CorporateActions | None:
    """The `--adjust` file, parsed and checked against the venue registry (which prefixes have
    corporate actions); None without one. Read before any market data, so a bad file fails first."""
    if not path:
        return None
    from sq.venues.registry import corporate_action_markets

    return load_actions(path, corporate_action_markets)


def clean_settings(config: Any, flag: bool | None, settings: Any = None) -> Any | None:
    """The `[clean]` settings (with `enabled` true) when the run cleans — `--clean/--no-clean`,
    else the table's `enabled` — or None."""
    from dataclasses import replace

    settings = config.clean if settings is None else settings
    enabled = settings.enabled if flag is None else flag
    return replace(settings, enabled=True) if enabled else None


@dataclass
class Prepared:
    """The market stream a run consumes, and what was done to it."""

    instruments: dict
    batches: Iterator
    cleaner: Cleaner | None = None
    actions: CorporateActions | None = None

    def report(self, env: Any, summary: dict) -> None:
        """Add `cleaned` / `adjusted` to the run's summary; one stderr line if rows were dropped."""
        if self.cleaner is not None:
            summary["cleaned"] = self.cleaner.summary()
            notice = self.cleaner.notice()
            if notice:
                env.info(notice)
        if self.actions is not None:
            summary["adjusted"] = {"file": self.actions.source, "symbols": self.actions.symbols}


def prepare(instruments: Mapping, batches: Iterable, *, settings: Any | None = None,
            actions: CorporateActions | None = None) -> Prepared:
    """Wrap a market source's batches: adjusted by `actions`, then cleaned with `settings`."""
    instruments = dict(instruments)
    stream: Iterator = iter(batches)
    if actions is not None:
        instruments, stream = adjust_stream(stream, actions, instruments)
    cleaner = Cleaner(settings, instruments) if settings is not None else None
    if cleaner is not None:
        stream = cleaner.stream(stream)
    return Prepared(instruments, stream, cleaner, actions)
