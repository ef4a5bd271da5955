"""The thin CLI layer: one module per subcommand. Each parses flags, makes one call into
`sq.core` / `sq.venues`, and renders. Modules import only typer at top level; anything heavy
is imported inside the command function so `sq --help` stays fast.
"""

# registration order = order in `sq --help`
COMMANDS: list[str] = ["config", "auth", "subscribe", "record", "fetch", "import", "book", "bars", "paper", "backtest", "strategies", "live", "reconcile", "order", "orders", "positions", "kill", "status", "doctor", "report", "help"]
