"""Chaos: `kill -9` at random moments of `hptune tune --jobs 2` and `hptune extend`, then resume.

    .venv/bin/python benches/chaos.py [--kills 50] [--extend-kills 10] [--seed 1] [--hptune PATH]

Reports the kills that landed, finished trials and folds lost or changed (must be 0), the
database opening after every kill, and that the budget is met exactly after the last resume.
The test `random_kills_lose_no_finished_trial_or_fold` runs the same with 5 + 2 kills.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
SPACE = """
[model_type]
type = "categorical"
choices = ["mlp", "gru"]

[hidden_size]
type = "int"
low = 8
high = 32

[seq_len]
type = "int"
low = 3
high = 8
"""


def default_hptune():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "..", "target"))
    return os.path.join(target, "release", "hptune")


def rows(db, sql):
    # A running hptune holds the file in short leases: retry while it does; any other error
    # (a file that does not open) fails loudly.
    deadline = time.perf_counter() + 30
    while True:
        try:
            con = duckdb.connect(db, read_only=True)
            break
        except duckdb.IOException as e:
            if "Could not set lock" not in str(e) or time.perf_counter() > deadline:
                raise
            time.sleep(0.01)
    try:
        return set(con.execute(sql).fetchall())
    finally:
        con.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--extend-kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hptune", default=default_hptune())
    a = ap.parse_args()
    rng = random.Random(a.seed)
    exe = os.path.abspath(a.hptune)
    with tempfile.TemporaryDirectory() as work:
        db = os.path.join(work, "experiments.db")
        run = lambda *args: subprocess.run([exe, "--db", db, *args], cwd=work, check=True, capture_output=True)
        run("data", "synth", "--tickers", "4", "--days", "600", "--seed", "5", "--name", "s")
        with open(os.path.join(work, "space.toml"), "w") as f:
            f.write(SPACE)
        trials = max(20, a.kills)
        tune = [exe, "--db", db, "tune", "--dataset", "s", "--space", "space.toml", "--study", "chaos", "--trials",
                str(trials), "--epochs", "4", "--jobs", "2"]
        finished = "SELECT number, state, value FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
        kills = lost = 0
        started = time.perf_counter()
        while kills < a.kills:
            before = rows(db, finished)
            p = subprocess.Popen(tune, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.2, 1.5))
            if p.poll() is not None:
                # The study finished: raise the budget and go on.
                trials += 10
                tune[tune.index("--trials") + 1] = str(trials)
                continue
            p.kill()
            p.wait()
            kills += 1
            lost += len(before - rows(db, finished))
        subprocess.run(tune, cwd=work, check=True, capture_output=True)
        done = rows(db, finished)
        running = rows(db, "SELECT number FROM trials WHERE state = 'RUNNING'")
        orphans = rows(db, "SELECT number FROM trials WHERE reason LIKE 'orphaned%'")
        print(f"tune --jobs 2: {kills} kills in {time.perf_counter() - started:.0f} s, finished trials lost or changed:"
              f" {lost}, after the last resume {len(done)} finished of a budget of {trials}"
              f" ({'met exactly' if len(done) == trials else 'NOT MET'}), {len(running)} RUNNING,"
              f" {len(orphans)} orphaned trials marked FAIL")

        extend = [exe, "--db", db, "extend", "--top-n", "3", "--folds", "4", "--epochs", "30", "--jobs", "2"]
        folds = "SELECT config_rank, fold, run_id, val_accuracy FROM cv_folds WHERE status = 'finished'"
        ekills = elost = 0
        p = subprocess.Popen(extend, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while ekills < a.extend_kills:
            time.sleep(rng.uniform(0.3, 1.5))
            if p.poll() is not None:
                break
            before = rows(db, folds)
            p.kill()
            p.wait()
            ekills += 1
            elost += len(before - rows(db, folds))
            (run_id,), = rows(db, "SELECT extended_run_id FROM extended_runs ORDER BY started_at DESC LIMIT 1")
            p = subprocess.Popen([exe, "--db", db, "extend", "--resume", run_id, "--jobs", "2"], cwd=work,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p.wait()
        n = len(rows(db, folds))
        # A kill after the last fold (during the export) leaves a finished run: `--resume` then
        # says so and exits 1, and `hptune export extend` writes the files.
        (status,), = rows(db, "SELECT status FROM extended_runs ORDER BY started_at DESC LIMIT 1")
        print(f"extend --jobs 2: {ekills} kills, finished folds lost or changed: {elost}, after the last resume"
              f" {n} of 12 folds finished, run {status}")
        if lost or elost or len(done) != trials or n != 12 or status != "finished":
            sys.exit(1)


if __name__ == "__main__":
    main()
