"""The progress bar of a command over files: rows done, %, rows/s and ETA on stderr — only when
stderr is a terminal and not --quiet, so a pipe, a cron log or a CI job gets nothing extra.

It is called once per batch (never per event) and rich redraws it from its own thread at most
10 times a second; on exit it disappears (transient), leaving the command's own output."""

from __future__ import annotations

from typing import Any

REFRESH_PER_SECOND = 10


class RowProgress:
    """`with RowProgress(env, "backtest", total) as p: … p(n) …` advances by n rows; `set_total`
    gives the total when it is known only later (None: a count and rate without a bar)."""

    def __init__(self, env: Any, label: str, total: int | None = None, *, unit: str = "rows", enabled: bool = True,
                 full_at_end: bool = True):
        self.env = env
        self.label = label
        self.unit = unit
        self.total = total
        self.enabled = enabled and env.stderr_isatty and not env.quiet
        self.full_at_end = full_at_end  # the whole input is read when the work ends (not so for a run stopped early)
        self.bar = None
        self.task = None
        self._stderr = None  # the environment's stderr while warnings go through the bar's console
        self.console = None

    def __enter__(self) -> "RowProgress":
        if self.enabled and self.total is not None:  # else it starts at set_total or the first rows
            self._start()
        return self

    def _start(self) -> None:
        from rich.file_proxy import FileProxy
        from rich.progress import Progress

        if self.console is None:
            self.console = self.env.console(stderr=True)
        console = self.console
        if self._stderr is None and not isinstance(self.env.stderr, FileProxy):  # sq's own warnings print above the bar, not through it
            self._stderr = self.env.stderr
            self.env.stderr = FileProxy(console, self.env.stderr)
        self.bar = Progress(*self._columns(), console=console, redirect_stdout=False, redirect_stderr=False,
                            transient=True, refresh_per_second=REFRESH_PER_SECOND)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=self.total)

    def _columns(self) -> list:
        from rich.progress import BarColumn, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        count = TextColumn(f"{{task.completed:,.0f}} {self.unit}")
        rate = _rate_column(self.unit)
        if self.total is None:
            return [SpinnerColumn(), TextColumn("{task.description}"), count, rate, TimeElapsedColumn()]
        return [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), count, rate, TextColumn("ETA"), TimeRemainingColumn()]

    def set_total(self, total: int | None) -> None:
        """The input's row count (known once it is opened); switches the spinner to a bar."""
        if not self.enabled or (total == self.total and self.bar is not None):
            self.total = total
            return
        self.total = total
        done = 0.0
        if self.bar is not None:
            done = self.bar.tasks[0].completed
            self.bar.stop()
        self._start()
        self.bar.update(self.task, completed=done)

    def __call__(self, n: int) -> None:
        if self.bar is None and self.enabled:
            self._start()
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            if exc[0] is None and self.total is not None and self.full_at_end:
                self.bar.update(self.task, completed=self.total)  # the last frame says 100%
            self.bar.stop()
            self.bar = None
        if self._stderr is not None:
            self.env.stderr.flush()
            self.env.stderr = self._stderr
            self._stderr = None


def _rate_column(unit: str):
    """A rich column of rows per second (rich's own speed column counts bytes); rich is imported
    only when a bar is shown (sq's start-up stays light)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} {unit}/s")

    return Rate()
