"""How tests run sq and find the repository: `SqRunner` (sq in process through typer's CliRunner
with an injected Environment), `SQ_BIN` and `subprocess_env` for real `sq` subprocesses,
`ipc_bytes` for what a producer writes to a pipe, and the paths `ROOT` and `VECTORS`."""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from sq.core import schemas as S

ROOT = Path(__file__).resolve().parents[2]
SQ_BIN = str(Path(sys.executable).with_name("sq"))
VECTORS = ROOT / "fixtures" / "vectors"  # recorded venue messages (fixtures/vectors/README.md)


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
        stdout_ispipe: bool | None = None,
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
            stdout_ispipe=(not stdout_isatty) if stdout_ispipe is None else stdout_ispipe,  # a fake stdout is a pipe unless said
            console_width=width,
        )
        runner = CliRunner()
        r = runner.invoke(app, args, obj=env, catch_exceptions=False)
        # anything typer itself printed (help text, usage) lands in the runner's output
        return Result(r.exit_code, out.getvalue() + r.stdout_bytes, err.getvalue() + (r.stderr if r.stderr_bytes else ""))


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for real `sq` subprocesses: the test's SQ_HOME, no colour, plus extras."""
    env = dict(os.environ)
    env.pop("FORCE_COLOR", None)
    env.update(extra)
    return env


def ipc_bytes(batches, schema, trailer=True) -> bytes:
    """An Arrow IPC stream of `batches`, ended by sq's end-of-stream trailer unless `trailer` is
    False: what a producer writes to a pipe."""
    sink = io.BytesIO()
    with ipc.new_stream(sink, schema) as w:
        for b in batches:
            w.write_batch(b)
        if trailer:
            w.write_batch(pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema),
                          custom_metadata={S.META_END: b"ok"})
    return sink.getvalue()
