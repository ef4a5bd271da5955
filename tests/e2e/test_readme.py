"""The README's examples stay true: every `sq` command in its cron recipes parses against the
CLI (options exist, values are of the right kind) and the tour's commands name real commands."""

from __future__ import annotations

import re
import shlex

import pytest

from sq.commands import COMMANDS
from tests.support.process import ROOT


def _cron_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```crontab", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#") and "=" not in line.split()[0]]


def _sq_argv(line: str) -> list[str]:
    fields = line.split(None, 5)[5]  # drop the five time fields
    fields = fields.split("||")[0].split(">>")[0].split(">")[0]
    argv = shlex.split(fields)
    if argv[0] == "flock":
        argv = argv[argv.index("sq"):]
    assert argv[0] == "sq", line
    return argv[1:]


CRON = _cron_lines()


def test_there_are_cron_recipes():
    assert len(CRON) >= 5


@pytest.mark.parametrize("line", CRON)
def test_cron_line_parses_against_the_cli(line):
    """Parse the line's arguments with the real command (typer's resilient parsing) and check
    every option it uses is one the command declares."""
    from typer.main import get_command

    from sq.cli import app

    argv = _sq_argv(line)
    group = get_command(app)
    name = argv[0]
    assert name in COMMANDS, name
    cmd = group.commands[name]
    declared = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    used = [a.split("=")[0] for a in argv[1:] if a.startswith("-")]
    assert set(used) <= declared, (line, set(used) - declared)
    ctx = cmd.make_context(name, list(argv[1:]), resilient_parsing=True)
    assert ctx.params  # the arguments were bound to parameters


def test_tour_commands_exist():
    text = (ROOT / "README.md").read_text()
    tour = text.split("<!-- tour:start -->", 1)[1].split("<!-- tour:end -->", 1)[0]
    used = set(re.findall(r"\bsq ([a-z]+)\b", tour))
    assert used and used <= set(COMMANDS), used - set(COMMANDS)
