"""What a trial costs outside training: hptune against Optuna 5 with its SQLite storage.

    .venv/bin/python benches/store_overhead.py [--trials 40] [--hptune PATH] [--pipeline]

hptune: `hptune tune` of one small MLP parameter set, `--trials` one-epoch trials on a 3-ticker x
600-day synthetic panel, `--no-pruning`, at --jobs 1, --jobs 2 and as two worker processes on one
study. Its figure per trial is (first trial start .. last trial end, from the database) minus the
training time (the sum of `epoch_metrics.seconds`, divided by the trials running side by side),
divided by the trials. The process's own counters (`hptune --verbose`) say how many DuckDB opens
and store calls it made and where the rest of the time went. While the --jobs 2 run runs, another
process asks `hptune query` over and over: the worst answer time is reported.

Optuna: the same parameters, a trivial objective that reports one intermediate value, SQLite
storage, n_jobs 1 and 2, and two processes on one study; its figure is the optimize() wall time per
trial.

It also reports the per-date outcomes table (issue 29) of the --jobs 1 study: its rows, the dates
per trial, its size in isolation (its rows copied into a fresh DuckDB file with the same table
definition and primary key, checkpointed, less an empty file's size) and the time its appends
take per trial (`store: per-date outcomes`, part of the store calls).

--pipeline also runs the default `hptune pipeline` and reports its time outside training.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
SPACE = """
[model_type]
type = "categorical"
choices = ["mlp"]

[hidden_size]
type = "categorical"
choices = [16]

[num_layers]
type = "categorical"
choices = [1]

[batch_size]
type = "categorical"
choices = [64]

[seq_len]
type = "categorical"
choices = [10]

[learning_rate]
type = "float"
low = 1e-4
high = 1e-2
log = true
"""

OPTUNA_WORKER = r"""
import sys, time, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage, name, n, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def objective(trial):
    trial.suggest_categorical("model_type", ["mlp"])
    trial.suggest_categorical("hidden_size", [16])
    trial.suggest_categorical("num_layers", [1])
    trial.suggest_categorical("batch_size", [64])
    trial.suggest_categorical("seq_len", [10])
    trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    trial.report(0.5, 0)
    return 0.5
study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
t = time.perf_counter()
study.optimize(objective, n_trials=n, n_jobs=jobs)
print(time.perf_counter() - t)
"""


def default_hptune():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "..", "target"))
    return os.path.join(target, "release", "hptune")


def costs(stderr, longest=None):
    """`hptune --verbose`'s counters: name -> (events, seconds); `longest`, when a dict, gets
    name -> the longest event in seconds."""
    out = {}
    for line in stderr.splitlines():
        m = re.match(r"costs: (.*): (\d+) events, ([\d.]+) s, longest ([\d.]+) s$", line)
        if m:
            out[m[1]] = (int(m[2]), float(m[3]))
            if longest is not None:
                longest[m[1]] = float(m[4])
    return out


def span_and_training(db, study):
    con = duckdb.connect(db, read_only=True)
    span, n = con.execute(
        "SELECT epoch(max(finished_at) - min(started_at)), count(*) FROM trials WHERE study_name = ?", [study]
    ).fetchone()
    train = con.execute(
        "SELECT coalesce(sum(m.seconds), 0) FROM trials t JOIN epoch_metrics m ON m.run_id = t.run_id WHERE t.study_name = ?",
        [study],
    ).fetchone()[0]
    states = con.execute("SELECT state, count(*) FROM trials WHERE study_name = ? GROUP BY 1", [study]).fetchall()
    con.close()
    return span, n, train, dict(states)


def outcome_table(db, study, workdir):
    """Rows, dates per trial, and bytes of the study's outcomes in a file of their own."""
    ddl = open(os.path.join(HERE, "..", "migrations", "0012_outcomes.sql")).read()
    ddl = ddl[ddl.index("CREATE TABLE outcomes"):ddl.index(");", ddl.index("CREATE TABLE outcomes")) + 2]
    sizes = []
    for fill in (False, True):
        path = os.path.join(workdir, f"outcomes-{fill}.db")
        con = duckdb.connect(path)
        con.execute(ddl)
        if fill:
            con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
            con.execute("INSERT INTO outcomes SELECT o.* FROM src.outcomes o JOIN src.trials t ON o.source = t.run_id "
                        "WHERE t.study_name = ? ORDER BY o.source, o.date", [study])
            rows, trials = con.execute("SELECT count(*), count(DISTINCT source) FROM outcomes").fetchone()
            con.execute("DETACH src")
        con.execute("CHECKPOINT")
        con.close()
        sizes.append(os.path.getsize(path))
    return rows, trials, sizes[1] - sizes[0]


def hptune_run(exe, workdir, trials, jobs, processes, probe=False):
    db = os.path.join(workdir, "experiments.db")
    study = f"bench-j{jobs}-p{processes}"
    space = os.path.join(workdir, "space.toml")
    env = dict(os.environ)
    if jobs > 1:
        env.setdefault("RAYON_NUM_THREADS", "1")
    args = [exe, "--verbose", "--db", db, "tune", "--study", study, "--dataset", "bench", "--trials", str(trials), "--epochs", "1",
            "--jobs", str(jobs), "--no-pruning", "--space", space, "--seed", "7"]
    started = time.perf_counter()
    procs = [subprocess.Popen(args + ["--out", os.path.join(workdir, f"{study}-{i}")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(processes)]
    waits = []
    if probe:
        while procs[0].poll() is None:
            t = time.perf_counter()
            q = subprocess.run([exe, "--db", db, "query", "SELECT count(*) FROM trials", "--format", "csv"],
                               capture_output=True, text=True)
            if q.returncode == 0 and procs[0].poll() is None:
                waits.append(time.perf_counter() - t)
    outs = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - started
    for p, err in zip(procs, outs):
        if p.returncode != 0:
            sys.exit(f"hptune tune failed:\n{err}")
    span, n, train, states = span_and_training(db, study)
    total = {}
    for err in outs:
        for k, (c, s) in costs(err).items():
            a = total.get(k, (0, 0.0))
            total[k] = (a[0] + c, a[1] + s)
    side_by_side = jobs * processes
    per_trial = (span - train / side_by_side) / n
    return dict(label=f"hptune --jobs {jobs}" + (f" x {processes} processes" if processes > 1 else ""),
                wall=wall, span=span, n=n, train=train, per_trial=per_trial, costs=total, states=states, waits=waits)


def optuna_run(workdir, trials, jobs, processes):
    storage = f"sqlite:///{os.path.join(workdir, f'optuna-j{jobs}-p{processes}.db')}"
    name = "bench"
    script = os.path.join(workdir, "optuna_worker.py")
    with open(script, "w") as f:
        f.write(OPTUNA_WORKER)
    # The study exists before the workers start, as `optuna create-study` would make it.
    subprocess.run([sys.executable, script, storage, name, "0", "1"], check=True, capture_output=True)
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, script, storage, name, str(trials // processes), str(jobs)],
                              stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    loops = [float(p.communicate()[0].strip()) for p in procs]
    wall = time.perf_counter() - started
    return dict(label=f"optuna n_jobs={jobs}" + (f" x {processes} processes" if processes > 1 else ""),
                per_trial=max(loops) / trials, wall=wall)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--hptune", default=default_hptune())
    ap.add_argument("--pipeline", action="store_true")
    a = ap.parse_args()
    exe = os.path.abspath(a.hptune)
    with tempfile.TemporaryDirectory() as work:
        db = os.path.join(work, "experiments.db")
        with open(os.path.join(work, "space.toml"), "w") as f:
            f.write(SPACE)
        subprocess.run([exe, "--db", db, "data", "synth", "--tickers", "3", "--days", "600", "--seed", "1",
                        "--name", "bench"], check=True, capture_output=True)
        rows = []
        for jobs, procs in [(1, 1), (2, 1), (1, 2)]:
            rows.append(hptune_run(exe, work, a.trials, jobs, procs, probe=(jobs == 2)))
            rows.append(optuna_run(work, a.trials, jobs, procs))
        n_rows, n_trials, size = outcome_table(db, "bench-j1-p1", work)
        n, s = rows[0]["costs"].get("store: per-date outcomes (part of calls)", (0, 0.0))
        print(f"{a.trials} one-epoch trials, per trial outside training (ms):")
        for r in rows:
            line = f"  {r['label']:<34} {1000 * r['per_trial']:7.1f} ms"
            if "span" in r:
                line += (f"   (trials span {r['span']:.2f} s, training {r['train']:.2f} s, process wall {r['wall']:.2f} s,"
                         f" states {r['states']})")
            print(line)
        print(f"per-date outcomes of the --jobs 1 study: {n_rows} rows, {n_rows / max(n_trials, 1):.0f} dates a trial"
              f" over {n_trials} trials, {size / 1e6:.2f} MB in a file of their own ({size / max(n_rows, 1):.1f} bytes a row,"
              f" {size / max(n_trials, 1) / 1e3:.1f} kB a trial); appended {n} times in {1000 * s / max(n, 1):.2f} ms each")
        for r in rows:
            if "costs" not in r:
                continue
            print(f"{r['label']}: per trial")
            for name, (n, s) in r["costs"].items():
                print(f"    {name:<40} {n / r['n']:6.1f} events {1000 * s / r['n']:8.2f} ms")
            if r["waits"]:
                w = sorted(r["waits"])
                print(f"    hptune query answers while it ran: {len(w)}, median {1000 * w[len(w) // 2]:.0f} ms,"
                      f" worst {1000 * w[-1]:.0f} ms")
        if a.pipeline:
            pdir = os.path.join(work, "pipeline")
            os.makedirs(pdir)
            t = time.perf_counter()
            p = subprocess.run([exe, "--verbose", "--db", os.path.join(pdir, "experiments.db"), "pipeline"], cwd=pdir,
                               capture_output=True, text=True)
            wall = time.perf_counter() - t
            if p.returncode != 0:
                sys.exit(p.stderr)
            c = costs(p.stderr)
            train = c.get("training epochs", (0, 0.0))[1]
            print(f"hptune pipeline: wall {wall:.1f} s, training epochs {train:.1f} s (summed over threads),"
                  " outside training:")
            for name, (n, s) in c.items():
                print(f"    {name:<40} {n:6d} events {s:8.2f} s")


if __name__ == "__main__":
    main()
