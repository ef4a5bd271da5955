"""How every sq command's help reads: readable metavars (sq.commands._options.METAVARS), a
usage line without typer's braces, paragraphs wrapped but indented lines and examples kept as
written (a long example broken into shell continuation lines), -o/--output shown without its
hidden --out alias. `SqCommand` is the class of every command (sq.cli registers it)."""

from typing import Any

from typer.core import TyperCommand


def format_help_text(command: Any, formatter: Any) -> None:
    """The help text as paragraphs wrapped to the terminal, except lines indented under a line
    (examples, lists) which keep their line breaks."""
    import inspect

    text = inspect.cleandoc(command.help or "")
    if not text:
        return
    formatter.write_paragraph()
    with formatter.indentation():
        _write_blocks(formatter, text)


def format_epilog(command: Any, formatter: Any) -> None:
    """The epilog (Examples:) as written: every line keeps its line break, so a command can be
    copied from it."""
    import textwrap

    if not command.epilog:
        return
    formatter.write_paragraph()
    with formatter.indentation():
        for line in textwrap.dedent(command.epilog).strip("\n").splitlines():
            if not line.strip():
                formatter.write("\n")
                continue
            for piece in continued(line, formatter.width - formatter.current_indent):
                formatter.write(f"{'':>{formatter.current_indent}}{piece}\n")


def continued(line: str, width: int) -> list[str]:
    """An example command longer than `width` as shell lines joined by `\\`, broken between
    words (never inside quotes), so it can still be copied and pasted; other lines (cron
    entries, which must stay one line; prose) as they are."""
    import shlex

    body = line.lstrip()
    if len(line) <= width or not body.startswith("sq ") or "#" in body:
        return [line]
    indent = line[: len(line) - len(body)]
    try:
        shlex.split(body)
    except ValueError:
        return [line]
    words, quoted, current = [], "", ""
    for ch in body:  # split on spaces outside quotes
        if ch in "'\"" and (not quoted or quoted == ch):
            quoted = "" if quoted else ch
        if ch == " " and not quoted:
            words.append(current)
            current = ""
        else:
            current += ch
    words.append(current)
    units = [words[0]]  # an option with its values, or a pipe and the command after it, stay together
    for w in words[1:]:
        if w.startswith("-") or w in ("|", "||", "&&") or units[-1].endswith(";"):
            units.append(w)
        else:
            units[-1] += " " + w
    out, cur = [], indent + units[0]
    for u in units[1:]:
        if len(cur) + 1 + len(u) + 2 > width:
            out.append(cur + " \\")
            cur = indent + "    " + u
        else:
            cur += " " + u
    out.append(cur)
    return out


def _write_blocks(formatter: Any, text: str) -> None:
    """Paragraphs (blocks of unindented lines) are rewrapped; indented lines are written as
    they are."""
    blocks = text.split("\n\n")
    for n, block in enumerate(blocks):
        if n:
            formatter.write("\n")
        lines = block.splitlines()
        if lines and all(ln.startswith("  ") for ln in lines):
            for ln in lines:
                formatter.write(f"{'':>{formatter.current_indent}}{ln}\n")
        else:
            formatter.write_text(block)


class SqCommand(TyperCommand):
    """Every sq command: readable metavars (sq.commands._options.METAVARS), a usage line without
    typer's braces, examples that keep their line breaks, and -o/--output shown without its
    hidden --out alias."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from sq.commands._options import OUT_ALIAS, metavar_of

        for p in self.params:
            if p.metavar is None:
                p.metavar = metavar_of(p)
            if OUT_ALIAS in p.opts and "--output" in p.opts:
                p.__class__ = _with_hidden_alias(type(p))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # type: ignore[override]
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if getattr(p, "param_type_name", "") != "argument":
                continue
            var = p.metavar or (p.name or "").upper()
            if var.startswith("["):
                pieces.append(var)
            elif p.required:
                pieces.append(var)
            else:
                pieces.append(f"[{var[:-3]}]..." if var.endswith("...") else f"[{var}]")
        return pieces

    def format_help_text(self, ctx: Any, formatter: Any) -> None:  # type: ignore[override]
        format_help_text(self, formatter)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:  # type: ignore[override]
        format_epilog(self, formatter)


_ALIASED: dict[type, type] = {}


def _with_hidden_alias(base: type) -> type:
    """`base` (an option class) whose help leaves out the alias --out."""
    if base not in _ALIASED:
        from sq.commands._options import OUT_ALIAS

        class Aliased(base):  # type: ignore[misc, valid-type]
            def get_help_record(self, ctx: Any) -> Any:
                opts = self.opts
                self.opts = [o for o in opts if o != OUT_ALIAS]
                try:
                    return super().get_help_record(ctx)
                finally:
                    self.opts = opts

        _ALIASED[base] = Aliased
    return _ALIASED[base]
