"""hptune's training bench against PyTorch's, side by side: alternating rounds, medians, ratios.

A shared 2-core VM varies by a third from one run to the next, so one run of each proves nothing;
this runs `cargo bench --bench train_speed` and `benches/torch_speed.py` in turn, ROUNDS times for
each thread count, and prints the median samples/s of each and their ratio.

Run: python benches/train_vs_torch.py [--rounds 5] [--threads 1 2]   (cargo builds into $CARGO_TARGET_DIR)
(with a Python that has torch, e.g. `python -m venv /tmp/torch && /tmp/torch/bin/pip install torch`)
"""
import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rows(cmd, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] in ("mlp", "lstm", "gru"):
            table[parts[0]] = (float(parts[2]), float(parts[3]))
    return table


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, oneDNN available: {torch.backends.mkldnn.is_available()}")
    subprocess.run(["cargo", "bench", "--bench", "train_speed", "--no-run"], cwd=ROOT, check=True,
                   capture_output=True)
    ours_cmd = ["cargo", "bench", "--quiet", "--bench", "train_speed"]
    torch_cmd = [sys.executable, "benches/torch_speed.py", "--threads"]
    print("model  threads  what   hptune median (min-max)     torch median (min-max)      ratio")
    for threads in args.threads:
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(rows(ours_cmd, threads))
            theirs.append(rows(torch_cmd + [str(threads)], threads))
        for model in ("mlp", "lstm", "gru"):
            for k, what in enumerate(("train", "infer")):
                a = [r[model][k] for r in ours]
                b = [r[model][k] for r in theirs]
                ma, mb = statistics.median(a), statistics.median(b)
                print(f"{model:<6} {threads:>7}  {what:<5}  {ma:>8.0f} ({min(a):>6.0f}-{max(a):<6.0f})    "
                      f"{mb:>8.0f} ({min(b):>6.0f}-{max(b):<6.0f})    {ma / mb:5.2f}x")


if __name__ == "__main__":
    main()
