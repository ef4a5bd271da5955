"""The original plan's example `trading.json` (SiriQuantum development plan §7.2, kept verbatim in
`plan_trading.json` next to this file) and `plan_text`, the same text with its two paper
fill-model values replaced (verbatim by default)."""

from __future__ import annotations

from pathlib import Path

PLAN = Path(__file__).resolve().with_name("plan_trading.json")
PLAN_SECRETS = ("your_api_secret", "your_totp_secret")


def plan_text(fill_probability: str = "0.9", slippage_model: str = '"NORMAL"') -> str:
    """The plan's example, verbatim by default, or with `fill_probability` / `slippage_model`
    (JSON text) replaced; fails when the fixture no longer holds the plan's values."""
    text = PLAN.read_text()
    for old, new in (('"fill_probability": 0.9', f'"fill_probability": {fill_probability}'),
                     ('"slippage_model": "NORMAL"', f'"slippage_model": {slippage_model}')):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text
