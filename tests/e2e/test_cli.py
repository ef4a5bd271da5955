"""The CLI as a whole: global options, help with examples for every command, the generated
README reference and completion scripts are current, and startup stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sq.commands import COMMANDS
from sq.devtools import REF_END, REF_START, SHELLS, cli_reference, completion_script, help_text
from tests.support.process import ROOT, SQ_BIN


def test_version(sq):
    r = sq(["--version"])
    assert r.exit_code == 0 and r.stdout.decode().startswith("sq ")


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flags_print_sq_and_the_version(sq, flag):
    from sq import __version__

    r = sq([flag])
    assert r.exit_code == 0 and r.stdout.decode() == f"sq {__version__}\n"


def test_bare_sq_prints_the_full_help_and_exits_0():
    bare = subprocess.run([SQ_BIN], capture_output=True, text=True, timeout=60)
    helped = subprocess.run([SQ_BIN, "--help"], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout == helped.stdout and bare.stderr == ""
    assert "Commands:" in bare.stdout and len(bare.stdout.splitlines()) > 10  # formatted, not one line


def test_help_alone_is_the_top_level_help(sq):
    assert sq(["help"]).stdout == sq(["--help"]).stdout
    assert sq(["help"]).exit_code == 0


@pytest.mark.parametrize("name", ["record", "book", "kill"])
def test_help_command_prints_that_commands_help(sq, name):
    r = sq(["help", name])
    assert r.exit_code == 0
    assert r.stdout == sq([name, "--help"]).stdout
    assert r.stdout.decode().startswith(f"Usage: sq {name} ")


def test_help_for_an_unknown_command_is_usage_error_listing_commands(sq):
    r = sq(["help", "nosuch"])
    assert r.exit_code == 2 and r.stdout == b""
    assert len(r.stderr_lines) == 1 and "nosuch" in r.stderr
    assert all(name in r.stderr for name in COMMANDS)


def test_unknown_option_is_usage_error_on_one_line(sq):
    r = sq(["--bogus"])
    assert r.exit_code == 2
    assert len(r.stderr_lines) == 1 and "--bogus" in r.stderr


def test_unknown_command_is_usage_error(sq):
    r = sq(["frobnicate"])
    assert r.exit_code == 2 and "frobnicate" in r.stderr


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_examples(name):
    text = help_text([name])
    assert "Examples:" in text, f"sq {name} --help lacks examples"
    assert f"sq {name}" in text.split("Examples:", 1)[1], f"sq {name} examples do not show the command"


def test_readme_cli_reference_is_current():
    readme = (ROOT / "README.md").read_text()
    assert REF_START in readme and REF_END in readme
    current = readme.split(REF_START, 1)[1].split(REF_END, 1)[0]
    assert REF_START + current + REF_END == cli_reference(), "README CLI reference is stale: run `make readme`"


def test_readme_starts_with_demo_and_test_commands():
    text = (ROOT / "README.md").read_text()
    head = text[:1500]
    assert "make demo" in head and "make test" in head
    assert head.index("make demo") < head.index("make test")


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_scripts_are_current(shell):
    committed = (ROOT / "completions" / SHELLS[shell]).read_text()
    assert committed == completion_script(shell), f"completions/{SHELLS[shell]} is stale: run `make completions`"


@pytest.mark.parametrize("args", [["--help"], *[[c, "--help"] for c in COMMANDS]])
def test_help_imports_no_heavy_modules(args):
    probe = (
        "import sys\n"
        "from sq.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numba', 'polars', 'pyarrow', 'kiteconnect', 'binance', 'websockets', 'prometheus_client', 'apprise', 'optuna', 'ray', 'plotly') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
    assert "HEAVY=\n" in r.stderr, f"sq {' '.join(args)} imported {r.stderr}"


def test_console_script_and_module_agree():
    a = subprocess.run([SQ_BIN, "--help"], capture_output=True, text=True, timeout=60)
    b = subprocess.run([sys.executable, "-m", "sq", "--help"], capture_output=True, text=True, timeout=60)
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout


def test_debug_flag_shows_traceback_for_errors(tmp_path, sq):
    missing = str(tmp_path / "missing.parquet")
    plain = sq(["book", missing])
    debug = sq(["--debug", "book", missing])
    assert plain.exit_code == debug.exit_code == 66
    assert "Traceback" not in plain.stderr and len(plain.stderr_lines) == 1
    assert "Traceback" in debug.stderr
