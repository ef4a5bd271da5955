"""`sq backtest --wfo/--cv`: the output side (one call into sq.runs.research)."""

from __future__ import annotations


def research(env, inputs, strategy, params, sweep, fill, seed, jobs, output, fmt, json_out, rows_out, clean, adjust, window, *,
             search, objective, requires, study, wfo, cv, journal, report, executor=None) -> None:
    from sq.commands._progress import RowProgress
    from sq.core.exits import UsageError
    from sq.runs.research import run_research

    if wfo and cv:
        raise UsageError("--wfo and --cv are two ways to validate a search; give one")
    if journal:
        raise UsageError(f"--journal writes one run's orders and fills; it does not combine with {'--wfo' if wfo else '--cv'}")
    if report:
        raise UsageError(f"--report draws one run or a sweep; for {'--wfo' if wfo else '--cv'} write -o FILE.parquet and read it with sq report")
    mode = "wfo" if wfo else "cv"
    with RowProgress(env, mode, unit="runs") as progress:
        doc = run_research(env, inputs, strategy, mode=mode, spec=wfo or cv, params=params, sweeps=sweep, fill=fill, seed=seed, jobs=jobs,
                           search=search, objective=objective, requires=requires, study=study, clean=clean, adjust=adjust, window=window,
                           executor=executor, progress=progress)
    error = doc.pop("_error", None)
    if json_out:
        env.write_json(doc)
    elif rows_out or not env.stdout_isatty:
        from sq.core.streams import StreamWriter
        from sq.runs.research import results_table

        table = results_table(doc)
        with StreamWriter(env, table.schema, output=output, fmt=fmt) as w:
            for b in table.to_batches():
                w.write(b)
    else:
        _table(env, doc)
    if "study" in doc:
        st = doc["study"]
        env.info(f"study {st['file']}: {st['trials_before']:,} earlier trials found, {st['trials']:,} now")
    if error is not None:
        raise error


def _ts(ns: int) -> str:
    import numpy as np

    text = str(np.datetime64(int(ns), "ns").astype("datetime64[ms]")).replace("T", " ")
    return text[:-4] if text.endswith(".000") else text


def _table(env, doc: dict) -> None:
    from rich import box

    from sq.commands._tables import Col, fitted_table
    from sq.core import formatting as F

    keys = list(doc["sweep"])
    cv = doc["mode"] == "cv"
    columns = [Col("split" if cv else "fold"), Col("train", 40, "left"), Col("test", 50, "left")] + [Col(k) for k in keys]
    columns += [Col("IS " + doc["objective"][:20]), Col("OOS " + doc["objective"][:20]), Col("OOS PnL", 60), Col("OOS fills", 45)]

    def num(v):
        return F.UNKNOWN if v is None else f"{v:.6g}"

    rows = []
    for r in doc["folds"]:
        train = f"{_ts(r['train_start'])} → {_ts(r['train_end'])}" + (f" ({r['train_windows']} windows)" if r["train_windows"] > 1 else "")
        test = f"groups {r['test_groups']}" if cv else f"{_ts(r['test_start'])} → {_ts(r['test_end'])}"
        pts = [F.UNKNOWN if r["params"] is None else f"{r['params'][k]:g}" for k in keys]
        rows.append([str(r["fold"]), train, test, *pts, num(r["is_objective"]), num(r["oos_objective"]),
                     F.UNKNOWN if r["oos_pnl_total"] is None else F.format_pnl(r["oos_pnl_total"]),
                     F.UNKNOWN if r["oos_fills"] is None else F.format_count(r["oos_fills"])])
    console = env.console()
    title = (f"sq backtest {'--cv' if cv else '--wfo'} {doc['spec']} — {doc['strategy']}: {len(doc['folds'])} "
             f"{'splits' if cv else 'folds'}, search {doc['search']}, objective {doc['objective']}, {doc['wall_s']:.1f}s")
    console.print(fitted_table(console, columns, rows, title=title, box=box.SIMPLE_HEAD, pad_edge=False))
    eff = doc["efficiency"]
    console.print(f"walk-forward efficiency (OOS/IS): {F.UNKNOWN if eff is None else f'{eff:.3f}'}")
    stab = ", ".join(f"{k} {F.UNKNOWN if v is None else f'{v:.3f}'}" for k, v in doc["stability"].items())
    console.print(f"parameter stability (CV of a range, modal share of a list): {stab}")
    if cv:
        d = doc["oos_distribution"]
        pbo = doc["pbo"]
        if d["count"]:
            console.print(f"OOS {doc['objective']} over {d['count']} splits: mean {d['mean']:.6g}, median {d['median']:.6g}, "
                          f"min {d['min']:.6g}, max {d['max']:.6g}, ≤ 0 in {d['negative_fraction']:.0%}")
        console.print(f"probability of backtest overfitting (PBO): {F.UNKNOWN if pbo is None else f'{pbo:.2f}'}")
    if doc["oos_equity"]["equity"]:
        console.print(f"stitched out-of-sample equity: {F.format_pnl(doc['oos_equity']['equity'][-1])} at the end")
