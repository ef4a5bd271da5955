"""docs/streams.md documents every column of every stream schema in its kind's table, with its
type, names every metadata key, every market `kind` code and every `side` code, so the page
cannot fall behind sq/core/schemas.py. The tables are parsed: a column named only in prose does
not count."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from sq.core import schemas as S
from tests.support.process import ROOT

DOC = (ROOT / "docs" / "streams.md").read_text()


def sections(text: str) -> dict[str, str]:
    """The text of each `## \\`kind\\`` section (up to the next `## ` heading), by kind."""
    out = {}
    for m in re.finditer(r"^## `(\w+)`[^\n]*\n(.*?)(?=^## |\Z)", text, re.S | re.M):
        out[m.group(1)] = m.group(2)
    return out


def column_rows(section: str) -> dict[str, str]:
    """Column name → type cell of every `| \\`col\\`, \\`col2\\` | type | meaning |` table row."""
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([\w]+)`", cells[0]):
            rows[name] = cells[1]
    return rows


def type_text(t: pa.DataType) -> str:
    """How the page writes an Arrow type."""
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}, {t.tz}]"
    if pa.types.is_dictionary(t):
        return f"dictionary<{t.index_type}, {t.value_type}>"
    return {"double": "float64", "float": "float32"}.get(str(t), str(t))


def fields_of(kind: str) -> list[pa.Field]:
    if kind == "book":
        return S.book_fields(3, stale=True)
    fields = S.canonical_fields(kind)
    assert fields is not None, kind
    return fields


def doc_name(field: pa.Field) -> str:
    return re.sub(r"_\d+$", "_i", field.name)  # book levels: bid_px_0 … are `bid_px_i`


SECTIONS = sections(DOC)


def undocumented(kind: str, section: str) -> list[str]:
    """Columns of `kind` missing from the section's tables or listed with another type."""
    rows = column_rows(section)
    explicit_nulls = any(not f.nullable for f in fields_of(kind))  # kinds whose schema says which columns may be null
    bad = []
    for f in fields_of(kind):
        name = doc_name(f)
        cell = rows.get(name)
        if cell is None:
            bad.append(f"{name}: not in the table")
        elif not cell.startswith(type_text(f.type)):
            bad.append(f"{name}: type {cell!r}, schema {type_text(f.type)!r}")
        elif explicit_nulls and (f.nullable != cell.endswith("nullable")):
            bad.append(f"{name}: nullable is {f.nullable} in the schema")
    return bad


@pytest.mark.parametrize("kind", S.STREAM_KINDS)
def test_every_column_is_in_its_kinds_table_with_its_type(kind):
    assert kind in SECTIONS, f"docs/streams.md has no '## `{kind}`' section"
    bad = undocumented(kind, SECTIONS[kind])
    assert not bad, f"docs/streams.md, {kind}: {bad}"


def test_the_column_check_can_fail():
    section = SECTIONS["fills"]
    assert undocumented("fills", section.replace("| `fee_ccy` |", "| fee currency |")) == ["fee_ccy: not in the table"]
    assert undocumented("fills", section.replace("| `fee` | float64 |", "| `fee` | string |"))
    assert undocumented("market", SECTIONS["market"].replace("int32, nullable", "int32"))
    assert "no_such_column" not in column_rows(DOC)


def test_metadata_keys_are_documented():
    keys = [v.decode() for k, v in vars(S).items() if k.startswith("META_")]
    assert keys and all(f"`{k}`" in DOC for k in keys), keys
    assert all(f"`{e}`" in DOC for e in S.ORDER_EVENTS)
    assert "DIR/venue=<venue>/symbol=<url-quoted symbol>/date=YYYY-MM-DD/" in DOC


def test_kind_and_side_codes_are_named():
    for code, name in S.KIND_NAMES.items():
        assert re.search(rf"^\| {code} \| `{name}` \|", DOC, re.M), name
    for code, name in S.SIDE_NAMES.items():
        written = {1: r"\+1", -1: "[−-]1", 0: "0"}[code]
        assert re.search(rf"^\| {written} \| `{name}` \|", DOC, re.M), name
