"""What `sq order`, `sq orders` and `sq positions` share: their tables (columns that give way on
a narrow terminal) and the venue views' rendering (a table, JSON or an Arrow stream)."""

from __future__ import annotations

from typing import Any

ORDER_COLS = (("client_order_id", "id", 1000), ("symbol", "symbol", 1000), ("side", "side", 1000), ("qty", "qty", 1000),
              ("price", "price", 1000), ("filled_qty", "filled", 60), ("status", "status", 1000), ("type", "type", 50),
              ("trigger_price", "trigger", 40), ("venue", "venue", 30), ("venue_order_id", "venue id", 20), ("reason", "reason", 10))
POSITION_COLS = (("venue", "venue", 30), ("symbol", "symbol", 1000), ("qty", "qty", 1000), ("avg_price", "avg price", 1000),
                 ("realized", "realized", 40), ("unrealized", "unrealized", 50), ("mark_price", "mark", 45))
NUMERIC = {"qty", "price", "filled_qty", "avg_price", "realized", "unrealized", "mark_price", "trigger_price"}


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if v != v else f"{v:g}"
    return str(v)


def rows_table(env: Any, title: str, rows: list[dict], cols) -> None:
    """`rows` as a table on stdout that fits the terminal."""
    from sq.commands._tables import Col, fitted_table

    console = env.console()
    if not rows:
        console.print(f"{title}: nothing")
        return
    columns = [Col(header, keep, "right" if key in NUMERIC else "left") for key, header, keep in cols]
    console.print(fitted_table(console, columns, [[_cell(r.get(key)) for key, _, _ in cols] for r in rows], title=title, show_edge=False))
    console.file.flush()


def venue_view(env: Any, what: str, symbols, venue, fmt: str, json_: bool) -> None:
    """`sq orders` / `sq positions`: read the venue(s), render; a venue that could not be asked is
    named on stderr (exit 69 when nothing could be read, 1 when some could)."""
    import typer

    from sq.core.config import load_config
    from sq.core.exits import UsageError
    from sq.runs import order as R

    if venue:
        from sq.venues.registry import check_venue

        venue = check_venue(venue)
    fmt = "json" if json_ else fmt.strip().lower()
    if fmt not in ("auto", "table", "json", "arrow"):
        raise UsageError(f"--format must be auto, table, json or arrow; got {fmt!r}")
    result = R.view(env, load_config(env), what, symbols=list(symbols or []), venue=venue)
    if fmt == "auto":
        fmt = "table" if env.stdout_isatty else "json"
    if fmt == "arrow":
        import pyarrow.ipc as ipc

        table = R.orders_table(result.rows) if what == "orders" else R.positions_table(result.rows)
        with ipc.new_stream(env.stdout, table.schema) as writer:
            writer.write_table(table)
        env.stdout.flush()
    elif fmt == "json":
        env.write_json({what: result.rows, "errors": result.errors})
    else:
        rows_table(env, f"sq {what}", result.rows, ORDER_COLS if what == "orders" else POSITION_COLS)
    for v, message in result.errors.items():
        env.warn(f"{what}: {v}: {message}")
    if result.errors:
        raise typer.Exit(69 if not result.rows else 1)
