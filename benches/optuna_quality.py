"""Optuna's side of the sampler comparison (../shared/ref/FUNCTIONS.md protocol, as
benches/sampler_quality.rs runs it): each function plain and noisy, 100 trials per seed, the
median [q25, q75] best value after 50 and 100 trials (on a noisy function the true value of the
trial with the best noisy value), and time per suggestion.

Run: python benches/optuna_quality.py [--seeds 20] [--sampler tpe|gp|tpe_uni|random] [--jobs 2] [--overhead]
Needs `pip install optuna==5.0.0 numpy` (and torch, scipy, greenlet for gp).
"""
import argparse
import math
import multiprocessing
import time

import numpy as np
import optuna

PI, E = math.pi, math.e


def branin(t):
    x0, x1 = t.suggest_float("x0", -5, 10), t.suggest_float("x1", 0, 15)
    a, b, c, r, s, tt = 1, 5.1 / (4 * PI ** 2), 5 / PI, 6, 10, 1 / (8 * PI)
    return a * (x1 - b * x0 ** 2 + c * x0 - r) ** 2 + s * (1 - tt) * math.cos(x0) + s


A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
ALPHA = [1.0, 1.2, 3.0, 3.2]


def xs(t, d, lo, hi):
    return [t.suggest_float(f"x{i}", lo, hi) for i in range(d)]


def hartmann6(t):
    x = xs(t, 6, 0, 1)
    return -sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6))) for i in range(4))


def rosenbrock(t):
    x = xs(t, 4, -5, 10)
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (x[i] - 1) ** 2 for i in range(3))


def ackley(t):
    x = xs(t, 5, -32.768, 32.768)
    d = 5
    return -20 * math.exp(-0.2 * math.sqrt(sum(v * v for v in x) / d)) - math.exp(sum(math.cos(2 * PI * v) for v in x) / d) + 20 + E


def styblinski_tang(t):
    x = xs(t, 5, -5, 5)
    return 0.5 * sum(v ** 4 - 16 * v ** 2 + 5 * v for v in x)


def mixed(t):
    lr = t.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = t.suggest_int("layers", 1, 4)
    model = t.suggest_categorical("model", ["lstm", "gru", "mlp"])
    dropout = t.suggest_float("dropout", 0.0, 0.5)
    return (math.log10(lr) + 3) ** 2 + 0.5 * (layers - 2) ** 2 + {"lstm": 0.0, "gru": 0.3, "mlp": 1.0}[model] + 4 * (dropout - 0.1) ** 2


# Function, standard deviation of the noisy variant's noise (benches/functions/mod.rs).
FUNCS = [("branin", branin, 0.1), ("hartmann6", hartmann6, 0.05), ("rosenbrock", rosenbrock, 5.0),
         ("ackley", ackley, 0.3), ("styblinski_tang", styblinski_tang, 3.0), ("mixed", mixed, 0.05)]
M64 = (1 << 64) - 1


def standard_normal(seed, number):
    """SplitMix64 seeded with seed * 1,000,003 + number, two uniforms, Box-Muller (as the Rust bench)."""
    state = (seed * 1_000_003 + number) & M64
    out = []
    for _ in range(2):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out.append(z ^ (z >> 31))
    u1 = ((out[0] >> 11) + 1.0) / float(1 << 53)
    u2 = (out[1] >> 11) / float(1 << 53)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * PI * u2)


def sampler(kind, seed):
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if kind == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if kind == "tpe_uni":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False, constant_liar=False)
    return optuna.samplers.RandomSampler(seed=seed)


def one_thread():
    try:
        import torch  # GPSampler's
        torch.set_num_threads(1)
    except ImportError:
        pass


def run(job):
    """One 100-trial study: the best (true) value after 50 and after 100 trials."""
    kind, fi, noisy, seed = job
    one_thread()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _, fn, noise = FUNCS[fi]

    def objective(t):
        truth = fn(t)
        t.set_user_attr("truth", truth)
        return truth + noise * standard_normal(seed, t.number) if noisy else truth

    study = optuna.create_study(sampler=sampler(kind, seed))
    study.optimize(objective, n_trials=100)
    out = []
    for k in (50, 100):
        best = min(study.trials[:k], key=lambda t: t.value)
        out.append(best.user_attrs["truth"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--sampler", default="tpe")
    ap.add_argument("--jobs", type=int, default=1, help="studies at once (processes of one thread each)")
    ap.add_argument("--only", help="functions, comma-separated")
    ap.add_argument("--overhead", action="store_true",
                    help="also time suggestions (TPE: 100/300/1000/3000/10000 trials, GP: 100/300/1000)")
    ap.add_argument("--sizes", help="trial counts for --overhead, comma-separated")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{args.seeds} seeds; median [q25, q75] of the best value")
    print(f"{'function':<22} {'sampler':<10} {'budget 50':>34} {'budget 100':>34}", flush=True)
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for fi, (name, _, _) in enumerate(FUNCS):
            if args.only and name not in args.only.split(","):
                continue
            for noisy in (False, True):
                jobs = [(args.sampler, fi, noisy, seed) for seed in range(args.seeds)]
                c = np.array(pool.map(run, jobs))
                cells = []
                for k in range(2):
                    m = f"{np.percentile(c[:, k], 50):.4f}"
                    cell = f"{m:>10} [{np.percentile(c[:, k], 25):.4f}, {np.percentile(c[:, k], 75):.4f}]"
                    cells.append(f"{cell:>34}")
                label = f"{name} (noisy)" if noisy else name
                print(f"{label:<22} {args.sampler:<10} {' '.join(cells)}", flush=True)
    if args.overhead:
        one_thread()
        print("\nsampler overhead (mixed space): mean time per suggestion, one thread")
        default = (100, 300, 1000) if args.sampler == "gp" else (100, 300, 1000, 3000, 10000)
        for n in (tuple(int(x) for x in args.sizes.split(",")) if args.sizes else default):
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
            study.optimize(mixed, n_trials=n)
            study.sampler = sampler(args.sampler, 1)
            reps = 3 if n >= 1000 or args.sampler == "gp" else 20
            start = time.perf_counter()
            for _ in range(reps):
                t = study.ask()
                study.tell(t, mixed(t))
            print(f"{args.sampler:<4} {n:>6} trials: {(time.perf_counter() - start) * 1e3 / reps:>9.3f} ms", flush=True)


if __name__ == "__main__":
    main()
