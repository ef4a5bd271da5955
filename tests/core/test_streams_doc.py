"""docs/streams.md names every column of every stream schema, every metadata key and every market
`kind` code, so the page cannot fall behind sq/core/schemas.py."""

from __future__ import annotations

import re

import pytest

from sq.core import schemas as S
from tests.support.process import ROOT

DOC = (ROOT / "docs" / "streams.md").read_text()


def named(name: str) -> bool:
    return f"`{name}`" in DOC


@pytest.mark.parametrize("kind", ["market", "bars", "orders", "fills", "pnl"])
def test_every_column_of_every_canonical_schema_is_documented(kind):
    fields = S.canonical_fields(kind)
    assert fields is not None
    missing = [f.name for f in fields if not named(f.name)]
    assert not missing, f"docs/streams.md does not name {kind} columns {missing}"


def test_every_book_column_is_documented():
    names = {re.sub(r"_\d+$", "_i", f.name) for f in S.book_fields(3, stale=True)}
    missing = sorted(n for n in names if not named(n))
    assert not missing, missing


def test_every_stream_kind_metadata_key_and_kind_code_is_documented():
    assert all(f"## `{kind}`" in DOC for kind in S.STREAM_KINDS)
    keys = [v.decode() for k, v in vars(S).items() if k.startswith("META_")]
    assert keys and all(named(k) for k in keys), keys
    for code, name in S.KIND_NAMES.items():
        assert re.search(rf"\| {code} \| `{name}` \|", DOC), name
    assert all(named(e) for e in S.ORDER_EVENTS)
    assert "DIR/venue=<venue>/symbol=<url-quoted symbol>/date=YYYY-MM-DD/" in DOC


def test_the_check_can_fail():
    assert not named("no_such_column")
