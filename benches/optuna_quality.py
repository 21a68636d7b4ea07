"""Optuna's side of the sampler comparison (../shared/ref/FUNCTIONS.md protocol).

Run: python benches/optuna_quality.py [--seeds 20] [--sampler tpe|tpe_uni|random]
Needs `pip install optuna==5.0.0 numpy`.
"""
import argparse
import math
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


FUNCS = [("branin", branin), ("hartmann6", hartmann6), ("rosenbrock", rosenbrock), ("ackley", ackley),
         ("styblinski_tang", styblinski_tang), ("mixed", mixed)]


def sampler(kind, seed):
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if kind == "tpe_uni":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False, constant_liar=False)
    return optuna.samplers.RandomSampler(seed=seed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--sampler", default="tpe")
    ap.add_argument("--overhead", action="store_true", help="also time suggestions at 100/1000/10000 trials")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("function          best@10     best@25     best@50    best@100 (median)   q25@100     q75@100")
    for name, fn in FUNCS:
        curves = []
        for seed in range(args.seeds):
            study = optuna.create_study(sampler=sampler(args.sampler, seed))
            study.optimize(fn, n_trials=100)
            vals = np.minimum.accumulate([t.value for t in study.trials])
            curves.append([vals[k - 1] for k in (10, 25, 50, 100)])
        c = np.array(curves)
        med = np.percentile(c, 50, axis=0)
        print(f"{name:<16} {med[0]:>10.4f}  {med[1]:>10.4f}  {med[2]:>10.4f}  {med[3]:>10.4f}          "
              f"{np.percentile(c[:, 3], 25):>10.4f}  {np.percentile(c[:, 3], 75):>10.4f}")
    if args.overhead:
        print("\nsampler overhead (mixed space): mean time per suggestion")
        for n in (100, 1000, 10000):
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
            study.optimize(mixed, n_trials=n)
            study.sampler = sampler(args.sampler, 1)
            reps = 5 if n >= 10000 else 20
            start = time.perf_counter()
            for _ in range(reps):
                t = study.ask()
                study.tell(t, mixed(t))
            print(f"{n:>6} trials: {(time.perf_counter() - start) * 1e3 / reps:>9.3f} ms")


if __name__ == "__main__":
    main()
