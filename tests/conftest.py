"""Shared test fixtures: fake terminals and pipes (the injected Environment), an isolated sq
home, the real `sq` executable for subprocess pipelines, and small market-stream builders."""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SQ_BIN = str(Path(sys.executable).with_name("sq"))


@dataclass
class Result:
    """What one `sq` invocation did: exit code, stdout bytes, stderr text."""

    exit_code: int
    stdout: bytes
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


class SqRunner:
    """Runs `sq` in process through typer's CliRunner with an injected Environment."""

    def __call__(
        self,
        args: list[str],
        *,
        stdin: bytes = b"",
        stdin_isatty: bool = False,
        stdout_isatty: bool = False,
        stderr_isatty: bool = False,
        width: int = 100,
    ) -> Result:
        from typer.testing import CliRunner

        from sq.cli import app
        from sq.core.environment import Environment

        out = io.BytesIO()
        err = io.StringIO()
        env = Environment(
            stdin=io.BufferedReader(io.BytesIO(stdin)),
            stdout=out,
            stderr=err,
            stdin_isatty=stdin_isatty,
            stdout_isatty=stdout_isatty,
            stderr_isatty=stderr_isatty,
            console_width=width,
        )
        runner = CliRunner()
        r = runner.invoke(app, args, obj=env, catch_exceptions=False)
        # anything typer itself printed (help text, usage) lands in the runner's output
        return Result(r.exit_code, out.getvalue() + r.stdout_bytes, err.getvalue() + (r.stderr if r.stderr_bytes else ""))


@pytest.fixture
def sq() -> SqRunner:
    return SqRunner()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own SQ_HOME (config, state, cache) and no ambient sq settings."""
    home = tmp_path_factory.mktemp("sqhome")
    monkeypatch.setenv("SQ_HOME", str(home))
    for var in list(os.environ):
        if var.startswith(("ZKITE_", "BINANCE_", "SQ_BINANCE", "SQ_KITE")) or var in ("SQ_CONFIG", "SQ_CONFIRM_LIVE", "SQ_DEBUG"):
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def sq_bin() -> str:
    return SQ_BIN


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for real `sq` subprocesses: the test's SQ_HOME, no colour, plus extras."""
    env = dict(os.environ)
    env.pop("FORCE_COLOR", None)
    env.update(extra)
    return env
