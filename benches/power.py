"""Power: does the default pipeline find a planted signal, and stay at chance without one?

    .venv/bin/python benches/power.py [--signals 0,0.1,0.25,0.5] [--tickers 5,20] [--days 1000,3000]
                                      [--seeds 5] [--hptune PATH] [-- PIPELINE FLAGS...]

Per cell (signal, tickers, days) and seed, in a fresh folder: `hptune data synth --signal X`,
then `hptune pipeline` with its defaults (plus any flags after `--`). Reports per cell, as the
median over seeds: the ceiling Phi(signal); the repeat-today rule's direction accuracy on the
backtest's own out-of-sample days; the pipeline's cross-validated accuracy, final validation and
backtest accuracy; the share of the edge the backtest captured, (accuracy - 50%) / (rule - 50%);
the selection's probability of chance and PBO, with the seeds whose selection chance explains
(p >= 0.05) and whose PBO is 0.5 or more; and the wall time of the pipeline.
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))


def default_hptune():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "..", "target"))
    return os.path.join(target, "release", "hptune")


def phi(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


def one(hptune, signal, tickers, days, seed, extra):
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "experiments.db")
        run = lambda *a: subprocess.run([hptune, "--db", db, "-q", *a], cwd=d, check=True, capture_output=True, text=True)
        run("data", "synth", "--tickers", str(tickers), "--days", str(days), "--seed", str(seed),
            "--signal", str(signal), "--name", "p")
        start = time.perf_counter()
        run("pipeline", "--dataset", "p", "--seed", str(seed), *extra)
        wall = time.perf_counter() - start
        c = duckdb.connect(db, read_only=True)
        cv, final, backtest_id = c.execute(
            "SELECT cv_mean, final_val_accuracy, backtest_id FROM pipeline_history LIMIT 1").fetchone()
        model, start, end, dataset_id = c.execute(
            "SELECT accuracy, start_date, end_date, dataset_id FROM backtests WHERE backtest_id = ?",
            [backtest_id]).fetchone()
        # The repeat-today rule on the backtest's own decision days, from the prices (an older
        # hptune, measured for the "before" table, does not simulate it).
        rule = c.execute(
            "WITH p AS (SELECT date, close, lag(close) OVER w AS prev, lead(close) OVER w AS next FROM prices "
            "WHERE dataset_id = ? WINDOW w AS (PARTITION BY ticker ORDER BY date)) "
            "SELECT avg(CASE WHEN (close > prev) = (next > close) THEN 1.0 ELSE 0.0 END) FROM p "
            "WHERE date >= ? AND date < ? AND prev IS NOT NULL AND next IS NOT NULL",
            [dataset_id, start, end]).fetchone()[0]
        try:
            p_chance, pbo = c.execute("SELECT p_chance, pbo FROM study_validity LIMIT 1").fetchone()
        except duckdb.Error:
            p_chance, pbo = None, None
        model_type = c.execute("SELECT model_type || '/' || coalesce(config_json::JSON->>'layout', 'joint') "
                               "FROM training_runs WHERE stage = 'train' ORDER BY started_at DESC LIMIT 1").fetchone()[0]
        c.close()
        return dict(cv=cv, final=final, backtest=model, rule=float(rule), p_chance=p_chance, pbo=pbo, wall=wall,
                    model=model_type)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--signals", default="0,0.1,0.25,0.5")
    ap.add_argument("--tickers", default="5,20")
    ap.add_argument("--days", default="1000,3000")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--hptune", default=default_hptune())
    ap.add_argument("extra", nargs="*", help="flags passed to hptune pipeline (after --)")
    a = ap.parse_args()
    nums = lambda s, f: [f(x) for x in s.split(",")]
    print("| signal | tickers | days | ceiling | rule | cv | final val | backtest | edge captured | p chance | PBO "
          "| p >= 0.05 | PBO >= 0.5 | wall s | models |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for signal in nums(a.signals, float):
        for tickers in nums(a.tickers, int):
            for days in nums(a.days, int):
                rows = [one(a.hptune, signal, tickers, days, seed, a.extra) for seed in range(1, a.seeds + 1)]
                med = lambda k: statistics.median(r[k] for r in rows if r[k] is not None) \
                    if any(r[k] is not None for r in rows) else float("nan")
                rule, bt = med("rule"), med("backtest")
                edge = statistics.median((r["backtest"] - 0.5) / (r["rule"] - 0.5) for r in rows) if signal > 0 else float("nan")
                models = ",".join(sorted(set(r["model"] for r in rows)))
                share = lambda test: f"{sum(1 for r in rows if r['pbo'] is not None and test(r))}/{len(rows)}"
                chance, overfit = share(lambda r: r["p_chance"] >= 0.05), share(lambda r: r["pbo"] >= 0.5)
                print(f"| {signal} | {tickers} | {days} | {phi(signal):.1%} | {rule:.1%} | {med('cv'):.1%} "
                      f"| {med('final'):.1%} | {bt:.1%} | {edge:.0%} | {med('p_chance'):.2f} | {med('pbo'):.2f} "
                      f"| {chance} | {overfit} | {med('wall'):.0f} | {models} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
