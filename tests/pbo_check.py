"""PBO by combinatorially symmetric cross-validation, written from the paper (Bailey, Borwein,
López de Prado and Zhu 2017), not from hptune's code: the test compares hptune's figure with it.

    python tests/pbo_check.py DB STUDY BLOCKS   -> prints PBO

The T x N matrix is each complete trial's per-date hit share (the `trial_outcomes` view) on the
dates every trial has; blocks are numpy.array_split's; the in-sample best is the first of equal
means; its out-of-sample rank is the average rank among all trials (1 = worst).
"""
import itertools
import sys

import duckdb
import numpy as np

db, study, S = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = duckdb.connect(db, read_only=True)
rows = c.execute("SELECT number, date, hit FROM trial_outcomes WHERE study_name = ? ORDER BY number, date",
                 [study]).fetchall()
series = {}
for number, date, hit in rows:
    series.setdefault(number, {})[date] = hit
common = sorted(set.intersection(*(set(s) for s in series.values())))
M = np.array([[series[n][d] for n in sorted(series)] for d in common], dtype=np.float64)
T, N = M.shape
blocks = np.array_split(np.arange(T), S)
logits = []
for combo in itertools.combinations(range(S), S // 2):
    inside = np.concatenate([blocks[b] for b in combo])
    outside = np.concatenate([blocks[b] for b in range(S) if b not in combo])
    is_perf, oos_perf = M[inside].mean(axis=0), M[outside].mean(axis=0)
    star = int(np.argmax(is_perf))
    rank = 1 + np.sum(oos_perf < oos_perf[star]) + (np.sum(oos_perf == oos_perf[star]) - 1) / 2
    w = rank / (N + 1)
    logits.append(np.log(w / (1 - w)))
print(repr(float(np.mean(np.array(logits) <= 0))))
