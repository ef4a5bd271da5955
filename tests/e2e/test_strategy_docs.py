"""docs/strategies.md stays true: every code block in it is executed, in order, in one empty
directory, so the tutorial and the reference cannot rot.

The convention (anything else in a fence is an error, so nothing is silently skipped):

    ```python file=NAME.py   a file the tutorial writes (a later block with the same file= replaces it)
    ```sh                    shell commands, one per line (`#` comments allowed), each run with
                             bash `set -euo pipefail`; exit status 0, or exactly N when the line
                             ends with `# exits N`
    ```python                a snippet run with the venv's python in that directory (must exit 0)
    ```toml file=sq.toml     a config written to sq.toml in that directory
    ```toml                  a config example, only parsed (must be valid TOML)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.support.process import ROOT, subprocess_env

DOC = ROOT / "docs" / "strategies.md"
CONTEXT_SOURCE = ROOT / "sq" / "core" / "engine" / "context.py"
EVENTS = ("on_book", "on_trade", "on_fill", "on_timer")
TIMEOUT_S = 600  # per command: the first numba compile of the engine can take a minute on a busy machine

FENCE = re.compile(r"^```(?P<info>[^`\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
EXITS = re.compile(r"#\s*exits\s+(\d+)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: kind is file, sh, python, toml-file or toml."""

    kind: str
    body: str
    line: int  # 1-based line of the opening fence in the markdown
    name: str = ""  # the file= target (file, toml-file)


@dataclass(frozen=True)
class Command:
    text: str
    expect: int
    line: int  # line in the markdown


def parse(markdown: str) -> list[Block]:
    """Every fenced block of `markdown`, classified by the convention; an unknown fence is an error."""
    blocks = []
    for m in FENCE.finditer(markdown):
        line = markdown.count("\n", 0, m.start()) + 1
        words = m.group("info").split()
        lang = words[0] if words else ""
        attrs = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        extra = [w for w in words[1:] if "=" not in w] + [k for k in attrs if k != "file"]
        if extra:
            raise ValueError(f"line {line}: unknown fence attributes {extra} in {m.group('info')!r}")
        body = m.group("body")
        name = attrs.get("file", "")
        if lang == "python":
            blocks.append(Block("file" if name else "python", body, line, name))
        elif lang == "sh" and not name:
            blocks.append(Block("sh", body, line))
        elif lang == "toml":
            if name and name != "sq.toml":
                raise ValueError(f"line {line}: a toml block may only be written to sq.toml, not {name!r}")
            blocks.append(Block("toml-file" if name else "toml", body, line, name))
        else:
            raise ValueError(f"line {line}: fence {m.group('info')!r} is not part of the convention "
                             "(python file=NAME.py, sh, python, toml file=sq.toml, toml)")
        if name and ("/" in name or name.startswith(".")):
            raise ValueError(f"line {line}: file={name!r} must be a plain file name")
    return blocks


def commands(block: Block) -> list[Command]:
    """The shell lines of an sh block with their expected exit status."""
    out = []
    for i, raw in enumerate(block.body.splitlines()):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if text.endswith("\\"):
            raise ValueError(f"line {block.line + 1 + i}: one command per line (no continuation lines)")
        m = EXITS.search(text)
        out.append(Command(text, int(m.group(1)) if m else 0, block.line + 1 + i))
    return out


def environment() -> dict[str, str]:
    """The tests' isolated environment (SQ_HOME, no colour) with the venv's bin dir first on PATH."""
    env = subprocess_env()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("SQ_CONFIG", None)
    env.pop("PYTHONPATH", None)
    return env


def _shown(result: subprocess.CompletedProcess) -> str:
    def tail(data: bytes | str) -> str:
        return (data.decode(errors="replace") if isinstance(data, bytes) else data)[-3000:]

    return f"--- stdout (tail)\n{tail(result.stdout)}\n--- stderr (tail)\n{tail(result.stderr)}"


def run(blocks: list[Block], cwd: Path, env: dict[str, str]) -> int:
    """Execute `blocks` in `cwd` as the convention says; returns how many blocks ran. A failure is
    an AssertionError naming the markdown line."""
    for block in blocks:
        if block.kind in ("file", "toml-file"):
            (cwd / block.name).write_text(block.body)
            if block.kind == "toml-file":
                tomllib.loads(block.body)
        elif block.kind == "toml":
            try:
                tomllib.loads(block.body)
            except tomllib.TOMLDecodeError as e:
                raise AssertionError(f"line {block.line}: invalid TOML: {e}") from None
        elif block.kind == "python":
            r = subprocess.run([sys.executable, "-c", block.body], cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=TIMEOUT_S)
            assert r.returncode == 0, f"line {block.line}: python snippet exited {r.returncode}\n{_shown(r)}"
        elif block.kind == "sh":
            for cmd in commands(block):
                r = subprocess.run(["bash", "-c", f"set -euo pipefail\n{cmd.text}"], cwd=cwd, env=env,
                                   capture_output=True, timeout=TIMEOUT_S)  # bytes: stdout may be Arrow
                assert r.returncode == cmd.expect, (f"line {cmd.line}: `{cmd.text}` exited {r.returncode}, "
                                                    f"expected {cmd.expect}\n{_shown(r)}")
        else:  # pragma: no cover - parse() only makes the kinds above
            raise AssertionError(block.kind)
    return len(blocks)


def doc_blocks() -> list[Block]:
    return parse(DOC.read_text())


# ---------------------------------------------------------------------------------------------- tests


CANDLE_DAYS = (dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6))


def walk_klines(day: dt.date, seed: int) -> str:
    """A day of Binance spot 1m klines as the archive writes them, on a trending random walk."""
    rng = np.random.default_rng(seed)
    t0 = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
    drift = np.repeat(rng.normal(0, 0.0005, 24), 60)
    close = 60_000 * np.exp(np.cumsum(drift + rng.normal(0, 0.0008, 1440)))
    lines = []
    for i, c in enumerate(close):
        o = close[i - 1] if i else c
        h, lo = max(o, c) * (1 + abs(rng.normal(0, 0.0004))), min(o, c) * (1 - abs(rng.normal(0, 0.0004)))
        vol = float(rng.integers(1, 100_000)) / 1000
        lines.append(f"{t0 + i * 60_000},{o:.8f},{h:.8f},{lo:.8f},{c:.8f},{vol:.8f},{t0 + (i + 1) * 60_000 - 1},"
                     f"{vol * c:.8f},{int(rng.integers(1, 900))},{vol / 2:.8f},{vol * c / 2:.8f},0")
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(3600)
def test_every_block_of_the_strategy_guide_runs(tmp_path, binance_fake, binance_archive):
    """The whole page, top to bottom, in one empty directory (`sq fetch` served by a local
    Binance and a local copy of its archive); the tutorials' backtests trade."""
    from tests.support.fakes.binance_archive import day_path

    binance_fake(credentials=False)  # exchange info for the instruments; sets its environment
    archive = binance_archive()
    for k, day in enumerate(CANDLE_DAYS):
        archive.put_day(day_path("spot", "klines", "BTCUSDT", day, "1m"), walk_klines(day, k))
    blocks = doc_blocks()
    env = environment()
    env["SQ_BINANCE_DATA_URL"] = archive.url
    assert run(blocks, tmp_path, env) == len(blocks)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["fills"] > 0, result
    assert result["strategy"] == "lean"


def test_the_guide_names_the_whole_sdk():
    """Every ctx method (the `@_method("…")` overloads of the context), every public name of
    sq.strategy and every event appear in the guide."""
    import sq.strategy

    text = DOC.read_text()
    methods = re.findall(r'@_method\("(\w+)"\)', CONTEXT_SOURCE.read_text())
    assert len(methods) >= 20, methods
    missing = [m for m in methods if f"ctx.{m}(" not in text]
    assert not missing, f"ctx methods not documented in {DOC.name}: {missing}"
    missing = [n for n in sq.strategy.__all__ if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert not missing, f"sq.strategy names not documented: {missing}"
    missing = [e for e in EVENTS if e not in text]
    assert not missing, f"events not documented: {missing}"


SAMPLE = '''# sample

```python file=hello.py
print("hello")
```

Some text with `inline code` and a table | a | b |.

```sh
# a comment line
python hello.py > out.txt
grep -q hello out.txt
false  # exits 1
test -f nothing-here  # exits 1
```

```python
assert open("out.txt").read() == "hello\\n"
```

```toml file=sq.toml
[[instruments]]
symbol = "SIM:DEMO"
```

```toml
[project.entry-points."sq.strategies"]
mine = "mypkg.mine:strategy"
```
'''


def test_the_parser_and_runner_on_a_sample(tmp_path):
    """The parser finds each kind of block with its exit expectations, the runner runs them, and
    a wrong exit status, an unknown fence or bad TOML fails instead of being skipped."""
    blocks = parse(SAMPLE)
    assert [b.kind for b in blocks] == ["file", "sh", "python", "toml-file", "toml"]
    assert blocks[0].name == "hello.py" and blocks[3].name == "sq.toml"
    cmds = commands(blocks[1])
    assert [(c.text.split()[0], c.expect) for c in cmds] == [("python", 0), ("grep", 0), ("false", 1), ("test", 1)]
    assert cmds[0].line == SAMPLE.splitlines().index("python hello.py > out.txt") + 1

    env = environment()
    assert run(blocks, tmp_path, env) == 5
    assert (tmp_path / "hello.py").exists() and (tmp_path / "sq.toml").exists()

    with pytest.raises(AssertionError, match="exited 1, expected 0"):
        run(parse("```sh\nfalse\n```\n"), tmp_path, env)
    with pytest.raises(AssertionError, match="exited 0, expected 3"):
        run(parse("```sh\ntrue  # exits 3\n```\n"), tmp_path, env)
    with pytest.raises(AssertionError, match="python snippet exited 1"):
        run(parse("```python\nraise SystemExit(1)\n```\n"), tmp_path, env)
    with pytest.raises(AssertionError, match="invalid TOML"):
        run(parse("```toml\n[broken\n```\n"), tmp_path, env)
    for fence in ("```console\n$ sq\n```\n", "```\nplain\n```\n", "```python run=no\nx\n```\n",
                  "```toml file=other.toml\nx = 1\n```\n"):
        with pytest.raises(ValueError):
            parse(fence)


def test_the_guide_has_every_kind_of_block():
    """The page itself parses to enough blocks of every kind (the runner cannot run nothing)."""
    blocks = doc_blocks()
    assert len(blocks) >= 8
    kinds = {b.kind for b in blocks}
    assert kinds == {"file", "sh", "python", "toml-file", "toml"}, kinds
    expects = {c.expect for b in blocks if b.kind == "sh" for c in commands(b)}
    assert {0, 2, 70} <= expects, expects
    assert any("--json > result.json" in c.text for b in blocks if b.kind == "sh" for c in commands(b))
