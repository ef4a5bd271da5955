"""docs/ stays true to the code: the generated pages are current, every config key has a
description and a row, the exit-code tables match the enum, the file layout matches
sq/core/paths.py, every environment variable sq reads is named, every `sq` command line in the
cron recipes parses against the CLI, every link between the pages resolves, and nothing a user
reads cites a document they do not have."""

from __future__ import annotations

import dataclasses
import re
import shlex
import sys
import typing
from pathlib import Path

import pytest

from sq import docgen
from sq.commands import COMMANDS
from sq.core import paths
from sq.core.config import Config, PaperTradingConfig, _f
from sq.core.exits import MEANINGS, ExitStatus
from tests.support.process import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def read(name: str) -> str:
    return (ROOT / name).read_text()


# ----------------------------------------------------------------------------------------------
# generated pages


@pytest.mark.parametrize("doc", list(docgen.GENERATED))
def test_generated_page_is_current(doc):
    assert docgen.expected(ROOT, doc) == read(doc), f"{doc} is stale: run `make docs`"


def test_a_stale_page_is_noticed(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / docgen.EXITS_DOC
    page.write_text(read(docgen.EXITS_DOC).replace("| 75 |", "| 76 |"))
    assert docgen.expected(tmp_path, docgen.EXITS_DOC) != page.read_text()


# ----------------------------------------------------------------------------------------------
# the config reference


def test_every_config_key_has_a_description():
    assert docgen.undocumented_keys(Config) == [], "give these keys a doc= in sq/core/config.py"


@dataclasses.dataclass(frozen=True)
class _Inner:
    x: float = 1.0


@dataclasses.dataclass(frozen=True)
class _Outer:
    a: int = _f(1, doc="described")
    b: int = 2
    inner: _Inner = _f(factory=_Inner, doc="a table")


def test_the_description_check_can_fail():
    assert docgen.undocumented_keys(_Outer) == ["b", "inner.x"]


def config_sections() -> dict[str, dict[str, list[str]]]:
    """docs/config.md's reference: heading → key → its row's cells."""
    text = read(docgen.CONFIG_DOC).split("## Reference", 1)[1]
    out: dict[str, dict[str, list[str]]] = {}
    for m in re.finditer(r"^### (.+?)\n(.*?)(?=^### |\Z)", text, re.S | re.M):
        rows = {}
        for line in m.group(2).splitlines():
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if cells and re.fullmatch(r"`\w+`", cells[0]):
                rows[cells[0].strip("`")] = cells
        out[m.group(1)] = rows
    return out


def test_every_key_of_every_table_has_a_row_with_its_default():
    sections = config_sections()
    tables = [("Top level", Config)] + [(f"`{written}`", cls) for _, written, cls in docgen._sections()]
    for heading, cls in tables:
        rows = sections.get(heading)
        assert rows is not None, f"docs/config.md has no section {heading}"
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name == "source" or docgen._table_class(hints[f.name]) is not None:
                continue
            assert f.name in rows, f"{heading}: no row for {f.name}"
            default = f.default
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                assert float(rows[f.name][2].strip("`")) == default, (heading, f.name, rows[f.name][2])


def test_the_fill_model_defaults_are_stated():
    rows = config_sections()["`[paper_trading]`"]
    pt = PaperTradingConfig()
    for key, unit in (("maker_fee_bps", "bps"), ("taker_fee_bps", "bps"), ("order_latency_ms", "ms")):
        assert float(rows[key][2].strip("`")) == getattr(pt, key)
        assert rows[key][3] == unit


# ----------------------------------------------------------------------------------------------
# exit codes


def exit_rows(text: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.*?) \|", text, re.M)}


def test_exit_code_page_matches_the_enum():
    table = read(docgen.EXITS_DOC).split("<!-- exit-codes:start", 1)[1].split("<!-- exit-codes:end", 1)[0]
    rows = exit_rows(table)
    assert rows == {s.value: f"`{s.name}`" for s in ExitStatus}
    assert set(MEANINGS) == set(ExitStatus)
    assert {0, 1, 2, 65, 66, 69, 70, 75, 77, 78, 130, 143} <= set(rows)


def test_readme_exit_table_matches_the_enum():
    section = read("README.md").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    assert set(exit_rows(section)) == {s.value for s in ExitStatus}


# ----------------------------------------------------------------------------------------------
# files and environment variables


FILES = read("docs/files.md")
DIRS = {"config": paths.config_dir, "state": paths.state_dir, "cache": paths.cache_dir, "data": paths.data_dir}


@pytest.mark.parametrize("name", list(DIRS))
def test_files_page_gives_each_directory_under_sq_home(name):
    assert DIRS[name]({"SQ_HOME": "/h"}) == Path("/h") / name
    assert re.search(rf"^\| {name} \| `[^`]+` \| `\$SQ_HOME/{name}` \|", FILES, re.M), name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the page gives the Linux defaults")
@pytest.mark.parametrize("name", list(DIRS))
def test_files_page_gives_each_linux_default(name, monkeypatch):
    monkeypatch.setenv("HOME", "/home/u")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    default = "~/" + str(DIRS[name]({}).relative_to("/home/u"))
    assert re.search(rf"^\| {name} \| `{re.escape(default)}` \|", FILES, re.M), (name, default)


def test_every_environment_variable_sq_reads_is_documented():
    names = set()
    for py in (ROOT / "sq").rglob("*.py"):
        names |= set(re.findall(r"""["'](SQ_[A-Z0-9_]*[A-Z0-9]|ZKITE_[A-Z_]+|BINANCE_API_[A-Z_]+)["']""", py.read_text()))
    names.discard("_SQ_COMPLETE")
    assert {"SQ_HOME", "SQ_CONFIG", "SQ_DOTENV", "SQ_CONFIRM_LIVE"} <= names
    docs = "".join(p.read_text() for p in PAGES) + read("README.md")
    missing = sorted(n for n in names if f"`{n}`" not in docs and f"`${n}`" not in docs)
    assert not missing, f"not named in docs/ or README: {missing}"


# ----------------------------------------------------------------------------------------------
# the cron recipes


def command_lines(text: str) -> list[str]:
    """Every `sq` invocation in the page's crontab and sh blocks (time fields, redirections,
    pipelines, `VAR=value` prefixes and `$(…)` removed)."""
    out = []
    for lang, block in re.findall(r"```(crontab|sh)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split(" # ")[0].strip() if lang == "sh" else line.strip()
            if not line or line.startswith("#") or re.match(r"^[A-Z_]+=\S*$", line):
                continue
            if lang == "crontab":
                line = line.split(None, 5)[5]
            line = re.sub(r"\$\([^()]*\)", "2026-01-02", line.replace("\\%", "%"))
            for part in re.split(r"\|\||&&|;|\s&(?:\s|$)|\|", line):
                part = re.sub(r"\s\d?>>?\s*\S+", "", " " + part).strip()
                argv = shlex.split(part)
                while argv and re.match(r"^[A-Z_]+=", argv[0]):
                    argv = argv[1:]
                if argv[:2] == ["flock", "-n"]:
                    argv = argv[3:]
                if argv and argv[0] == "sq":
                    out.append(shlex.join(argv[1:]))
    return out


CRON = command_lines(read("docs/cron.md"))


def test_the_cron_page_has_the_recipes():
    names = [line.split()[0] for line in CRON]
    for name in ("record", "live", "kill", "reconcile", "fetch", "auth", "paper"):
        assert name in names, name
    assert any("--rotate" in line for line in CRON if line.startswith("record"))
    assert any("--for" in line for line in CRON if line.startswith("live"))


@pytest.mark.parametrize("line", CRON)
def test_cron_command_parses_against_the_cli(line):
    from typer.main import get_command

    from sq.cli import app

    argv = shlex.split(line)
    name = argv[0]
    assert name in COMMANDS, name
    cmd = get_command(app).commands[name]
    declared = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    used = [a.split("=")[0] for a in argv[1:] if a.startswith("-")]
    assert set(used) <= declared, (line, set(used) - declared)
    ctx = cmd.make_context(name, list(argv[1:]), resilient_parsing=True)
    assert ctx.params


def test_the_cron_parser_can_fail():
    lines = command_lines("```crontab\n0 9 * * 1-5  SQ_X=1 sq record A --no-such-flag 2>> log || mail x\n```\n")
    assert lines == ["record A --no-such-flag"]


# ----------------------------------------------------------------------------------------------
# links and citations


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    s = heading.strip().lower().replace("`", "")
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_every_link_between_pages_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file) if file else page
        if not dest.exists():
            bad.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(target)
    assert not bad, f"{page.name}: broken links {bad}"


CITATIONS = re.compile(r"ARCHITECTURE|§|\.\./shared|shared/vectors|(?i:original plan)")


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_no_page_cites_what_users_do_not_have(page):
    hits = [line for line in page.read_text().splitlines() if CITATIONS.search(line)]
    assert not hits, hits


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_no_help_cites_what_users_do_not_have(name):
    from sq.devtools import help_text

    text = help_text([name] if name else [])
    assert not CITATIONS.search(text), text


@pytest.mark.parametrize("lang", ["toml", "jsonc"])
def test_the_config_pages_examples_load(lang, tmp_path):
    """The examples of docs/config.md are valid configs (unknown keys would be exit 78)."""
    from sq.core.config import parse_config, read_config_file

    block = read(docgen.CONFIG_DOC).split(f"```{lang}\n", 1)[1].split("```", 1)[0]
    path = tmp_path / ("sq.toml" if lang == "toml" else "trading.json")
    path.write_text(block)
    cfg = parse_config(read_config_file(path), name=str(path))
    assert cfg.instruments
