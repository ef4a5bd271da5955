"""The `sq` command-line application: global options, command registration, and the one place
where exceptions become exit statuses.

Kept light on purpose: importing this module imports typer and the thin command modules only;
numba, polars, pyarrow and venue SDKs load inside the command that needs them.
"""


import errno
import os
import signal
import sys
import threading
import traceback
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from sq import __version__
from sq.core.environment import Environment
from sq.commands._help import SqCommand, format_epilog, format_help_text
from sq.core.exits import ExitStatus, SqError, Terminated, status_after_stop, take_stopped_by, write_failure


def _is_click_exception(e: BaseException) -> bool:
    return hasattr(e, "exit_code") and hasattr(e, "format_message") and not isinstance(e, (typer.Exit, SqError))


def _installation_error(e: BaseException) -> BaseException:
    """A package sq needs that failed to import while a command ran (a venue SDK is imported only
    when used) is a broken install: the configuration error naming the package (exit 78), not an
    internal error. Anything else is returned as it is."""
    if isinstance(e, ImportError):
        from sq.venues.registry import missing_package

        return missing_package(e) or e
    return e


def exit_status_for(e: BaseException) -> ExitStatus | int:
    """The exit status of an exception (pinned by tests/core/test_exits.py)."""
    e = _installation_error(e)
    if isinstance(e, SqError):
        return e.status
    if isinstance(e, typer.Exit):
        return e.exit_code
    if isinstance(e, (KeyboardInterrupt, typer.Abort)):
        return ExitStatus.INTERRUPTED
    if isinstance(e, Terminated):
        return ExitStatus.TERMINATED
    if isinstance(e, (PipeClosed, BrokenPipeError)) or (isinstance(e, OSError) and e.errno == errno.EPIPE):
        return ExitStatus.OK
    if write_failure(e):  # a full disk is an operational event, not a bug in sq
        return ExitStatus.IO_ERR
    if _is_click_exception(e):
        return ExitStatus.USAGE if e.exit_code == 2 else e.exit_code  # type: ignore[attr-defined]
    return ExitStatus.SOFTWARE


def report_error(e: BaseException, env: Environment | None, stderr: Any) -> int:
    """Print a one-line message for `e` (a traceback too with --debug) and return its exit status."""
    original, e = e, _installation_error(e)
    status = int(exit_status_for(e))
    debug = bool(env and env.debug) or os.environ.get("SQ_DEBUG") == "1"
    if isinstance(e, typer.Exit):
        return status
    if status == ExitStatus.OK and isinstance(e, (OSError, PipeClosed)):
        _silence_stdout()
        return status
    if isinstance(e, (KeyboardInterrupt, typer.Abort)):
        print("sq: interrupted", file=stderr, flush=True)
        return status
    if isinstance(e, Terminated):
        print("sq: terminated", file=stderr, flush=True)
        return status
    if debug:
        traceback.print_exception(original, file=stderr)
    if isinstance(e, SqError):
        msg = e.message
    elif _is_click_exception(e):
        msg = e.format_message()  # type: ignore[attr-defined]
        ctx = getattr(e, "ctx", None)
        if ctx is not None and status == ExitStatus.USAGE:
            msg += f" (see '{ctx.command_path} --help')"
    elif write_failure(e):
        where = getattr(e, "filename", None)
        msg = f"{write_failure(e)}" + (f" writing {where}" if where else "") + ": stopped"
    else:
        msg = f"internal error: {type(e).__name__}: {e}" + ("" if debug else " (run with --debug for a traceback)")
    msg = " ".join(str(msg).split())  # one line, always
    print(f"sq: error: {msg}", file=stderr, flush=True)
    return status


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class PipeClosed(Exception):
    """Downstream closed the pipe (`| head`): end quietly with status 0 (README: Exit codes)."""


class SqGroup(TyperGroup):
    """Typer group whose `main` maps every exception to a clean one-line error and exit code.

    Both the console script and `typer.testing.CliRunner` go through here, so tests see exactly
    what users see.
    """

    def parse_args(self, ctx, args):  # type: ignore[override]
        """A bare `sq` prints the full help on stdout and exits 0 (as `sq --help` does); global
        options given after the command (`sq kill -q`) count as if given before it."""
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            typer.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(0)
        return super().parse_args(ctx, hoist_global_options(self, ctx, list(args)))

    def format_help_text(self, ctx, formatter):  # type: ignore[override]
        format_help_text(self, formatter)

    def format_epilog(self, ctx, formatter):  # type: ignore[override]
        format_epilog(self, formatter)

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except OSError as e:  # typer would turn EPIPE into a silent exit 1
            if e.errno == errno.EPIPE:
                raise PipeClosed() from e
            raise

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        extra.setdefault("obj", None)
        if os.environ.get("_SQ_COMPLETE"):  # shell completion: `_SQ_COMPLETE=source_bash sq`
            from typer._completion_classes import completion_init

            completion_init()
        stderr = sys.stderr
        take_stopped_by()  # a run stopped earlier in this process (tests) says nothing about this one
        try:
            with _TerminateUnwinds():
                rv = super().main(args=args, prog_name=prog_name or "sq", complete_var=complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except SystemExit as e:  # raised by --help/--version paths and shell completion
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # the one place exceptions become exit codes
            env = _current_env(e)
            code = report_error(e, env, env.stderr if env else stderr)
        stopped_by = take_stopped_by()
        if code == 0:  # a run that ended cleanly because a signal stopped it: that signal's status
            code = int(status_after_stop(stopped_by))
        if not standalone_mode:
            return code
        sys.exit(code)


GLOBAL_FLAGS = ("--debug", "--quiet", "-q")
GLOBAL_VALUE_OPTIONS = ("--config",)


def hoist_global_options(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """`args` with the global options that follow the command moved before it, so that
    `sq paper … --debug`, `sq kill -q` and `sq backtest --config F …` mean what they mean before
    the command. A word that is the value of one of the command's own options (`--param -q`),
    and everything after `--`, stays where it is; a command's own option of the same name (sq live
    --config) is left to the command."""
    i = 0
    while i < len(args):  # the global options before the command, then the command's name
        a = args[i]
        if a == "--":
            return args
        if a in GLOBAL_VALUE_OPTIONS:
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        break
    if i >= len(args):
        return args
    cmd = group.get_command(ctx, args[i])
    if cmd is None:
        return args
    own = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    takes_value = {o for p in cmd.params if getattr(p, "param_type_name", "") == "option" and not p.is_flag and not p.count for o in p.opts}
    head, rest, moved = args[: i + 1], args[i + 1:], []
    kept: list[str] = []
    j = 0
    while j < len(rest):
        a = rest[j]
        if a == "--":
            kept += rest[j:]
            break
        name = a.split("=", 1)[0]
        if name in own:
            kept.append(a)
            if a in takes_value and j + 1 < len(rest):  # its value, whatever it looks like
                kept.append(rest[j + 1])
                j += 1
        elif a in GLOBAL_FLAGS:
            moved.append(a)
        elif name in GLOBAL_VALUE_OPTIONS:
            if "=" in a:
                moved.append(a)
            elif j + 1 < len(rest):
                moved += [a, rest[j + 1]]
                j += 1
            else:
                kept.append(a)  # no value: let the parser say so
        else:
            kept.append(a)
        j += 1
    return moved + head + kept if moved else args


class _TerminateUnwinds:
    """While a command runs, SIGTERM raises `Terminated` (exit 143) where Python would die on the
    spot: a command with no run to stop (book, bars reading a pipe) unwinds as on Ctrl-C, its
    temporary files removed. Long runs install their own handlers (sq.runs.lifecycle)."""

    def __enter__(self) -> None:
        self._saved = None
        if threading.current_thread() is threading.main_thread():
            self._saved = signal.signal(signal.SIGTERM, _raise_terminated)

    def __exit__(self, *exc: Any) -> None:
        if self._saved is not None:
            signal.signal(signal.SIGTERM, self._saved)


def _raise_terminated(_signum: int, _frame: Any) -> None:
    raise Terminated()


def _current_env(e: BaseException) -> Environment | None:
    ctx = getattr(e, "ctx", None)
    obj = getattr(ctx, "obj", None) if ctx is not None else None
    if isinstance(obj, Environment):
        return obj
    return _LAST_ENV[0]


_LAST_ENV: list[Environment | None] = [None]

app = typer.Typer(
    cls=SqGroup,
    name="sq",
    help="sq — record markets, rebuild order books, paper/live trade and backtest from the terminal.\n\n"
    "Global options go before or after the command (sq --debug book …, sq book … --debug).",
    epilog="Examples:\n\n"
    "  sq subscribe SIM:DEMO --limit 10000 | sq book --depth 5 -o book.parquet\n\n"
    "  sq record SIM:DEMO -o data --for 10s | sq book\n\n"
    "  sq book data/venue=sim --format jsonl | head\n\n"
    "Shell completion: see the README (bash, zsh, fish).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"sq {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    config: Annotated[Optional[str], typer.Option("--config", metavar="FILE", help="Config file (sq.toml or JSON); default $SQ_CONFIG, then the platform config dir.", show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Global options apply to every command, before or after it: sq --debug book …, sq kill -q."""
    env = ctx.obj if isinstance(ctx.obj, Environment) else Environment()
    env.debug = env.debug or debug
    env.quiet = env.quiet or quiet
    env.config_path = config or env.config_path or os.environ.get("SQ_CONFIG") or None
    ctx.obj = env
    _LAST_ENV[0] = env


def _register() -> None:
    """Each command's module registers it (a command named by a Python keyword, `import`, lives
    in `<name>_.py`)."""
    import keyword

    from sq.commands import COMMANDS

    for name in COMMANDS:
        module_name = f"{name}_" if keyword.iskeyword(name) else name
        module = __import__(f"sq.commands.{module_name}", fromlist=["register"])
        module.register(app)
    for info in app.registered_commands:  # one command class: metavars, usage, examples (SqCommand)
        info.cls = SqCommand if info.cls in (None, TyperCommand) else info.cls


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    At exit the interpreter's last garbage collections walk every object still alive: once a
    kernel is loaded that is numba's typing and lowering registries, hundreds of thousands of
    objects, measured at 0.1-0.35 s of a 1.6-2 s `sq backtest`. `gc.freeze` as the last exit handler
    (atexit runs them last-in, first-out: after every handler a command registers, such as Ray's
    shutdown) moves them where those collections do not look. Nothing sq writes waits for a
    collection: every output, journal and lock is flushed and closed by the command itself, and
    standard output and error are flushed by the interpreter after this."""
    import atexit
    import gc

    from sq.core import arrowsetup

    arrowsetup.enable()  # this process never needs pyarrow's pandas look-up (sq.core.arrowsetup)
    atexit.register(gc.freeze)
    app(args=argv, prog_name="sq")
