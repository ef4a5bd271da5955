"""The one base of every terminal live view (book ladder, paper dashboard): a rich `Live` on the
injected environment's stdout, refreshed by the command, drawn one last time on exit."""


class LiveView:
    """Subclasses implement `_render()`; `draw()` refreshes (the caller rate-limits)."""

    def __init__(self, env):
        from rich.live import Live

        self.env = env
        self.console = env.console()
        self.live = Live(console=self.console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False, transient=False)

    def _render(self):  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must implement _render()")

    def draw(self) -> None:
        self.live.update(self._render(), refresh=True)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.draw()
        return self.live.__exit__(*exc)
