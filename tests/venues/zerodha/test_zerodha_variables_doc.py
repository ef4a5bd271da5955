"""README names every Zerodha environment variable sq reads (`ZKITE_*`, `SQ_KITE_*`), each in its
table with what it does."""

from __future__ import annotations

import re

from tests.support.process import ROOT

NAME = re.compile(r"\b((?:ZKITE|SQ_KITE)_[A-Z][A-Z0-9_]*)\b")


def names_in_code() -> set[str]:
    return {m for path in (ROOT / "sq").rglob("*.py") for m in NAME.findall(path.read_text(encoding="utf-8"))}


def test_every_zkite_variable_is_in_the_readme_table():
    used = names_in_code()
    assert {"ZKITE_API_KEY", "ZKITE_API_SECRET", "ZKITE_USER_ID", "ZKITE_PWD", "ZKITE_TOTP_SECRET", "ZKITE_ACCESS_TOKEN",
            "SQ_KITE_REDIRECT_TIMEOUT"} <= used  # the scan finds them
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Zerodha (Kite) variables"):]
    section = section[: section.index("\n## ")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {name: row for row in rows for name in NAME.findall(row.split("|")[1])}
    missing = sorted(used - set(documented))
    assert not missing, f"README's Zerodha variables table lacks {missing}"
    for name in used:
        what = documented[name].rstrip(" |").split("|")[-1].strip()
        assert len(what) > 10, f"{name}: no description in README"
