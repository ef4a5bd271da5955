"""Applications: one module per long-running or account-touching job, built on `sq.core`'s primitives.

    record     `sq record`     market stream → sealed, hive-partitioned Parquet dataset
    paper      `sq paper`      the engine on live or replayed data, orders on a simulated venue
    live       `sq live`       the engine trading through a venue gateway (guards, journal, reconcile)
    backtest   `sq backtest`   the engine over recorded data, as fast as possible
    sweep      `--sweep`       a parameter grid of backtests on a process pool
    report     `--report`      a self-contained HTML report of a run or a sweep
    marketprep `--adjust`, `--clean`: recorded market data made ready for a replay
    reconcile  `sq reconcile`  a journal against its venue's truth
    kill       `sq kill`       halt every registered process, cancel everything at every venue
    auth       `sq auth`       a venue's login flow and credential status
    lifecycle  what every long-running run shares: signals, registration, seal-on-error

The dependency rule (checked by import-linter in `make test`): `sq.runs` uses `sq.core` and,
for venues, only `sq.venues.registry` and `sq.venues.base` — never a venue package. Commands
(`sq.commands`) parse flags, call one function here and render what it returns.
"""
