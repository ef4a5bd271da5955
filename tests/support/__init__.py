"""What the tests share — plain helpers, imported by test modules (which never import each other):

* `process` — running sq: `SqRunner` (in process, injected Environment), `SQ_BIN` and
  `subprocess_env` (real `sq` subprocesses), `ipc_bytes` (an Arrow stream as written to a pipe),
  the paths `ROOT` and `VECTORS` (fixtures/vectors).
* `marketdata` — small hand-made market batches (`market_rows`, `simple_book_batch`), random
  multi-symbol markets (`random_market`), days of data (`spread_over_days`, `write_daily_dataset`
  in the sq dataset layout, `write_market_file`) and Arrow → Python rows with integer timestamps
  (`pylist`, `pydict`).
* `barsref` — time bars computed independently with polars `group_by_dynamic`
  (`polars_time_bars`) and the comparison of a bars stream with them (`as_frame`, `assert_same_bars`).
* `indicatorsref` — what the indicator tests compare with: seeded random-walk OHLCV bars over
  several sessions (`random_ohlcv`), the opening range by a polars `group_by`
  (`polars_opening_range`), and `assert_same` (NaN rows equal, the rest within 1e-9).
* `bookstreams` — the book tests' streams: `make_batches`, `run_stream`, `random_stream` and the
  plain-dict reference book's `reference_rows`.
* `protector` — a strategy for the protective-order tests: one entry, then a stop and a
  take-profit steered by its parameters (`ctx.stop`, `ctx.take_profit`, `ctx.cancel_stop`).
* `crash` — `kill9_when`: start an `sq` process, SIGKILL it once a condition holds.
* `sourcetools` — a venue market source's `connected` flag sampled through an outage.
* `livetools` — `sq live` crash tests for any venue: `registered`, `orders_working`,
  `kill9_then_resume`, `kill_mid_burst`.
* `binancekill` — `sq kill` at the Binance fake: `binance_gateway`, `rest_orders`, `open_orders`,
  `sq_kill`.
* `kitelive` — `sq live` / `reconcile` / `kill` at the Kite fake: `start_live`, `store_session`,
  `wait_open`, `run_reconcile`, `run_kill`, `venue_agrees`, `kite_gateway`, `price_below`.
* `alertsink` — `AlertSink`: a local HTTP server taking apprise's JSON-webhook alerts
  (`json://127.0.0.1:PORT/...`), slow (`delay_s`) or failing (`status`) on demand.
* `fakes.binance`, `fakes.kite` — local servers speaking each venue's wire protocol, driven by
  the SIM matching engine, and their fixtures (`binance_fake`; `kite_fake`, `kite_env`,
  `kite_open_hours`), registered for every test by tests/conftest.py.
* `fakes.binance_archive` — Binance's public data archive (zips + CHECKSUM files built from CSV
  text, breakable) and its fixture `binance_archive`; `day_path`, `zip_of`.
"""
