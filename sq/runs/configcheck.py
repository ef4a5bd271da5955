"""Behind `sq config check`: resolve the configuration as a run would, check its venue facts, and
show every value with where it came from (README: Configuration).

The values come from `sq.core.config.config_values`, secrets already masked there, so nothing
printed here can hold one in the clear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sq.core.environment import Environment
from sq.core.exits import ConfigError, UsageError


def run_config_check(env: Environment, action: str, file: str | None = None, *, json_out: bool = False) -> None:
    """Resolve FILE (or the config sq would use: --config, $SQ_CONFIG, the platform dir), apply
    the environment and .env, check it (a bad config raises ConfigError, exit 78) and print it."""
    from sq.core.config import config_values, load_config_with_origins
    from sq.venues.registry import check_config

    if action.strip().lower() != "check":
        raise UsageError(f"sq config takes check [FILE]; got {action!r}")
    if file is not None:
        if not Path(file).expanduser().is_file():
            raise ConfigError(f"{file}: config file not found")
        env.config_path = file
    config, origins = load_config_with_origins(env)
    check_config(config)
    rows = config_values(config, origins)
    if json_out or not env.stdout_isatty:
        env.write_json({"file": config.source,
                        "values": {k: {"value": v, "source": o.kind, "path": o.path, "key": o.key} for k, v, o in rows}}, indent=2)
        return
    _table(env, config.source, rows)


def _table(env: Environment, source: str | None, rows: list) -> None:
    """key | value | from: the key it was written as in the file (the title names the file),
    `$VAR` for the environment, `.env VAR` for the .env file (the caption names it), or default."""
    from rich.table import Table

    dotenv = sorted({o.path for _, _, o in rows if o.kind == ".env"})
    table = Table(title=f"sq config: {source or 'no config file (defaults)'}", caption=f".env: {', '.join(dotenv)}" if dotenv else None)
    for col in ("key", "value", "from"):
        table.add_column(col, overflow="fold")
    for key, value, origin in rows:
        where = {"file": origin.key, "env": f"${origin.key}", ".env": f".env {origin.key}"}.get(origin.kind, "default")
        table.add_row(key, _shown(value), where)
    env.console().print(table)


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.10g}"
    return str(value)
