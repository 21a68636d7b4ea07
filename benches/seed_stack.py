"""The seed's stack side by side: Optuna 5 (TPE, the median pruner) with PyTorch, against `hptune tune`.

The same job both ways on the shipped data (sp500_20_close: 20 tickers, closes): the features of
src/features.rs (ret_1, ret_5, ret_20, vol_20, dir_1; 20 days of warm-up), the pooled windows of
src/model/train.rs (per date and ticker, seq_len days of the ticker's scaled features and the
market's mean of them), the split of src/split.rs (latest 20% held out, the last 20% of the rest
validates), the default space of src/search/space.rs, the four models of src/model/net.rs with
PyTorch's own layers and initialisation, AdamW with PyTorch's defaults, early stopping on the
validation loss (patience 5), the learning rate halved after 2 epochs without a better one, the
trial's value the validation accuracy at its lowest-loss epoch, Optuna's MedianPruner with 5
start-up trials and 3 warm-up epochs reading the validation accuracy of each epoch. PyTorch runs
its fast path: windows built once per seq_len as one tensor, batches gathered by index, validation
in one forward pass under inference_mode, torch.set_num_threads(THREADS), oneDNN checked on.

With --same-draws Optuna does not sample: it runs the configurations hptune drew, in hptune's
order (`enqueue_trial`), so that the wall times compare the execution alone; without it each
tool's sampler draws its own, as a user runs them, and what the draws cost weighs as much as the
speed of either.

THREADS is the machine's cores each tool may use: PyTorch runs one trial at a time on THREADS
threads, hptune runs `--jobs THREADS` trials side by side on one thread each (RAYON_NUM_THREADS=1,
what `--jobs` sets itself when the variable is unset; THREADS rayon threads for each of THREADS
trials would run 4 busy threads on 2 cores).

Each run is a whole process, timed from start to end (imports, data, every trial): a fresh
`hptune tune` in an empty folder, and a fresh Python process running `--one`. Runs alternate
(hptune, then Python, per seed) so that the machine's drift falls on both.

Run: PY benches/seed_stack.py [--trials 30 100] [--seeds 1 2 3 4 5] [--threads 1 2] [--epochs 20] [--same-draws]
where PY is a Python with torch and optuna 5 (`python -m venv /tmp/torch && /tmp/torch/bin/pip
install torch optuna==5.0.0`); hptune is built into $CARGO_TARGET_DIR (default target/).
Prints one line per run and the table of medians (wall time, trials per hour, best validation
accuracy) per trial budget and thread count.
"""
import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data", "sp500_20_close.csv")
WARMUP = 20
HOLDOUT = 0.2
VAL_FRACTION = 0.2
PATIENCE = 5
PLATEAU = max(PATIENCE // 3, 2)


def rust_round(x):
    """Rust's f64::round (half away from zero), which src/split.rs uses."""
    return math.floor(x + 0.5)


def load_features(np):
    """The feature table of src/features.rs: values [dates, tickers, 5], closes [dates, tickers]."""
    closes, tickers = {}, []
    with open(DATA, newline="") as f:
        for row in csv.DictReader(f):
            if row["ticker"] not in tickers:
                tickers.append(row["ticker"])
            closes.setdefault(row["date"], {})[row["ticker"]] = float(row["close"])
    dates = sorted(d for d, bars in closes.items() if len(bars) == len(tickers))
    close = np.array([[closes[d][k] for k in tickers] for d in dates])
    logret = np.full_like(close, np.nan)
    logret[1:] = np.log(close[1:] / close[:-1])
    values = np.full(close.shape + (5,), np.nan)
    for t in range(WARMUP, len(dates)):
        r1 = np.log(close[t] / close[t - 1])
        values[t, :, 0] = r1
        values[t, :, 1] = np.log(close[t] / close[t - 5])
        values[t, :, 2] = np.log(close[t] / close[t - 20])
        values[t, :, 3] = logret[t - 19:t + 1].std(axis=0, ddof=1)
        values[t, :, 4] = np.sign(r1)
    return values.astype(np.float32), close


def split(dates, seq_len):
    """src/split.rs: (train ends, val ends) as ranges of date indices at which samples end."""
    holdout_start = dates - rust_round(dates * HOLDOUT)
    first = WARMUP + seq_len - 1
    end = holdout_start - 1
    n = end - first
    n_val = rust_round(n * VAL_FRACTION)
    return range(first, end - n_val), range(end - n_val, end)


def pooled(np, torch, values, close, seq_len):
    """Training and validation tensors of the pooled layout for one seq_len (src/model/train.rs)."""
    train, val = split(len(values), seq_len)
    fitted = values[WARMUP:train.stop].astype(np.float64)
    mean = fitted.mean(axis=0)
    var = np.maximum((fitted ** 2).mean(axis=0) - mean ** 2, 0.0)
    std = np.where(var > 1e-12, np.sqrt(var), 1.0)
    scaled = ((values - mean.astype(np.float32)) / std.astype(np.float32)).astype(np.float32)
    market = scaled.mean(axis=1, keepdims=True)
    rows = np.concatenate([scaled, np.broadcast_to(market, scaled.shape)], axis=2)  # [D, K, 10]
    labels = (close[1:] > close[:-1]).astype(np.float32)  # label of date t at t

    def windows(ends):
        # [dates, K, seq, 10] -> [dates * K, seq, 10], date-major as hptune's samples are.
        x = np.stack([rows[t + 1 - seq_len:t + 1].transpose(1, 0, 2) for t in ends])
        return torch.from_numpy(np.ascontiguousarray(x.reshape(-1, seq_len, rows.shape[2]))), \
            torch.from_numpy(labels[ends.start:ends.stop].reshape(-1, 1).copy())

    return windows(train), windows(val)


def build_model(torch, params, inputs):
    nn = torch.nn
    kind, h, layers, p = params["model_type"], params["hidden_size"], params["num_layers"], params["dropout"]
    seq = params["seq_len"]
    if kind in ("linear", "mlp"):
        mods, fan_in = [nn.Flatten()], seq * inputs
        for _ in range(0 if kind == "linear" else layers):
            mods += [nn.Linear(fan_in, h), nn.ReLU(), nn.Dropout(p)]
            fan_in = h
        mods.append(nn.Linear(fan_in, 1))
        return nn.Sequential(*mods)

    class Rnn(nn.Module):
        def __init__(self):
            super().__init__()
            cell = nn.LSTM if kind == "lstm" else nn.GRU
            self.rnn = cell(inputs, h, num_layers=layers, batch_first=True, dropout=p if layers > 1 else 0.0)
            self.drop = nn.Dropout(p)
            self.head = nn.Linear(h, 1)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(self.drop(out[:, -1, :]))

    return Rnn()


def one(args):
    """One Optuna study in this process; prints its wall time and best value as JSON."""
    started = time.perf_counter()
    import numpy as np
    import optuna
    import torch

    torch.set_num_threads(args.threads)
    assert torch.backends.mkldnn.is_available(), "PyTorch without oneDNN is not its fast path"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    values, close = load_features(np)
    cache = {}
    epochs_run = [0]
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def objective(trial):
        params = {
            "model_type": trial.suggest_categorical("model_type", ["linear", "mlp", "lstm", "gru"]),
            "layout": trial.suggest_categorical("layout", ["pooled"]),
            "hidden_size": trial.suggest_int("hidden_size", 16, 128, step=16),
            "num_layers": trial.suggest_int("num_layers", 1, 3),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
            "seq_len": trial.suggest_int("seq_len", 5, 20, step=5),
        }
        seq = params["seq_len"]
        if seq not in cache:
            cache[seq] = pooled(np, torch, values, close, seq)
        (xt, yt), (xv, yv) = cache[seq]
        torch.manual_seed(args.seed * 1_000_003 + trial.number)
        model = build_model(torch, params, xt.shape[2])
        opt = torch.optim.AdamW(model.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"])
        best_loss, best_acc, since_best, since_lowered = math.inf, 0.0, 0, 0
        bs = params["batch_size"]
        for epoch in range(1, args.epochs + 1):
            epochs_run[0] += 1
            model.train()
            perm = torch.randperm(len(xt))
            for i in range(0, len(xt), bs):
                idx = perm[i:i + bs]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
            model.eval()
            with torch.inference_mode():
                z = model(xv)
                val_loss = loss_fn(z, yv).item()
                acc = ((z > 0) == (yv > 0.5)).float().mean().item()
            if not math.isfinite(val_loss):
                raise optuna.TrialPruned("diverged")
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
            if val_loss < best_loss:
                best_loss, best_acc, since_best, since_lowered = val_loss, acc, 0, 0
            else:
                since_best += 1
                since_lowered += 1
                if since_best >= PATIENCE:
                    break
                if since_lowered >= PLATEAU:
                    for g in opt.param_groups:
                        g["lr"] *= 0.5
                    since_lowered = 0
        return best_acc

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3))
    if args.draws:
        with open(args.draws) as f:
            for params in json.load(f):
                study.enqueue_trial(params)
    study.optimize(objective, n_trials=args.trials)
    states = [t.state.name for t in study.trials]
    print(json.dumps({"wall_s": time.perf_counter() - started, "best": study.best_value,
                      "pruned": states.count("PRUNED"), "complete": states.count("COMPLETE"),
                      "epochs": epochs_run[0]}))


def hptune(bin_path, trials, seed, threads, epochs):
    with tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, RAYON_NUM_THREADS="1")
        started = time.perf_counter()
        subprocess.run([bin_path, "tune", "--trials", str(trials), "--seed", str(seed), "--jobs", str(threads),
                        "--epochs", str(epochs)], cwd=work, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - started
        out = subprocess.run([bin_path, "query", "SELECT max(value) FILTER (state = 'COMPLETE') AS best, "
                              "count(*) FILTER (state = 'PRUNED') AS pruned, "
                              "count(*) FILTER (state = 'COMPLETE') AS complete, "
                              "(SELECT count(*) FROM epoch_metrics) AS epochs FROM trials", "--format", "json"],
                             cwd=work, check=True, capture_output=True, text=True).stdout
        row = json.loads(out)[0]
        out = subprocess.run([bin_path, "query", "SELECT number, name, value_json FROM trial_params ORDER BY number",
                              "--format", "json"], cwd=work, check=True, capture_output=True, text=True).stdout
        draws = {}
        for p in json.loads(out):
            draws.setdefault(p["number"], {})[p["name"]] = json.loads(p["value_json"])
        return {"wall_s": wall, "best": row["best"], "pruned": row["pruned"], "complete": row["complete"],
                "epochs": row["epochs"], "draws": [draws[n] for n in sorted(draws)]}


def python(trials, seed, threads, epochs, draws=None):
    """One Optuna study in a fresh process; with `draws`, hptune's configurations, in its order."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        cmd = [sys.executable, __file__, "--one", "--trials", str(trials), "--seed", str(seed),
               "--threads", str(threads), "--epochs", str(epochs)]
        if draws is not None:
            json.dump(draws, f)
            f.flush()
            cmd += ["--draws", f.name]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[30, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--same-draws", action="store_true",
                    help="Optuna runs the configurations hptune drew, in its order (execution alone compared)")
    ap.add_argument("--one", action="store_true", help="run one Optuna study in this process (internal)")
    ap.add_argument("--draws", help="with --one: a JSON list of parameter sets to enqueue (internal)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.one:
        args.trials, args.threads = args.trials[0], args.threads[0]
        return one(args)
    import optuna
    import torch

    print(f"torch {torch.__version__} (oneDNN {torch.backends.mkldnn.is_available()}), optuna {optuna.__version__}")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    bin_path = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "hptune")
    results = {}
    for threads in args.threads:
        for trials in args.trials:
            for seed in args.seeds:
                ours = hptune(bin_path, trials, seed, threads, args.epochs)
                theirs = python(trials, seed, threads, args.epochs, ours["draws"] if args.same_draws else None)
                for tool, r in (("hptune", ours), ("optuna+torch", theirs)):
                    results.setdefault((threads, trials, tool), []).append(r)
                    print(f"threads {threads} trials {trials:>3} seed {seed} {tool:<13} {r['wall_s']:8.1f} s "
                          f"best {r['best']:.4f} ({r['complete']} complete, {r['pruned']} pruned, {r['epochs']} epochs)", flush=True)
    print()
    print("| threads | trials | tool | runs | wall time (median) | trials per hour | epochs per hour | best val. accuracy (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for threads in args.threads:
        for trials in args.trials:
            for tool in ("hptune", "optuna+torch"):
                runs = results[(threads, trials, tool)]
                wall = statistics.median(r["wall_s"] for r in runs)
                epochs = statistics.median(r["epochs"] * 3600 / r["wall_s"] for r in runs)
                best = statistics.median(r["best"] for r in runs)
                print(f"| {threads} | {trials} | {tool} | {len(runs)} | {wall:.0f} s | {trials * 3600 / wall:.0f} | "
                      f"{epochs:.0f} | {best:.4f} |")


if __name__ == "__main__":
    main()
