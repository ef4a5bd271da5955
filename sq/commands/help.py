"""`sq help [COMMAND]`: the same text as `sq COMMAND --help` (or `sq --help`), for people who type
help first (README: CLI reference)."""


from typing import Annotated, Optional

import typer

HELP = """Show the help of COMMAND, exactly as `sq COMMAND --help` prints it; without COMMAND,
the help of sq itself (as `sq --help` or a bare `sq`). An unknown COMMAND is a usage error
(exit 2) naming the commands there are."""

SUMMARY = "Show a command's help (as sq COMMAND --help)."


def complete_commands(incomplete: str) -> list[str]:
    from sq.commands import COMMANDS

    return [c for c in COMMANDS if c.startswith(incomplete)]


EPILOG = """Examples:

  sq help

  sq help record

  sq help book | less"""


def help_(
    ctx: typer.Context,
    command: Annotated[Optional[str], typer.Argument(help="The command to explain (e.g. record, book).", show_default=False, autocompletion=complete_commands)] = None,
) -> None:
    from sq.commands._options import env_of
    from sq.core.exits import UsageError

    root = ctx.find_root()
    group = root.command
    if command is None:
        text = root.get_help()
    else:
        sub = group.get_command(root, command)  # type: ignore[attr-defined]
        if sub is None:
            names = ", ".join(group.list_commands(root))  # type: ignore[attr-defined]
            raise UsageError(f"no such command: '{command}'; the commands are: {names}")
        with type(root)(sub, info_name=command, parent=root) as sub_ctx:  # the context `sq COMMAND --help` would have
            text = sub.get_help(sub_ctx)
    env = env_of(ctx)
    env.stdout.write((text + "\n").encode())
    env.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command(name="help", help=HELP, epilog=EPILOG, short_help=SUMMARY)(help_)
