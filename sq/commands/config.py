"""`sq config check [FILE]`: the configuration sq resolves, secrets masked, each value with its source."""


from typing import Annotated, Optional

import typer

from sq.commands._options import JsonOption, complete_files, env_of

SUMMARY = "Show the resolved config and where each value comes from."

HELP = """Show the configuration sq resolves, each value with where it came from.

check reads FILE (sq.toml, or a trading.json: docs/config.md), or without FILE the
config sq would use (--config, $SQ_CONFIG, then the platform config dir), applies the
environment variables and .env on top, checks it, and prints every key with its value and its
source: the file and the key it was written as, an environment variable, the .env file, or the
default. Secrets (API secrets, passwords, TOTP seeds, access tokens) are masked. A bad config
exits 78 with a one-line error naming the file and the key. A table on a terminal, JSON
otherwise."""

EPILOG = """Examples:

  sq config check

  sq config check trading.json --json

  sq --config live.toml config check
"""


def config(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="check: resolve, validate and show the config.", metavar="check", autocompletion=lambda incomplete: [w for w in ("check",) if w.startswith(incomplete)])],
    file: Annotated[Optional[str], typer.Argument(help="The config file to check; default the one sq would use.", metavar="[FILE]", show_default=False, autocompletion=complete_files)] = None,
    json_out: JsonOption = False,
) -> None:
    from sq.runs.configcheck import run_config_check

    run_config_check(env_of(ctx), action, file, json_out=json_out)


def register(app: typer.Typer) -> None:
    app.command(name="config", help=HELP, epilog=EPILOG, short_help=SUMMARY)(config)
