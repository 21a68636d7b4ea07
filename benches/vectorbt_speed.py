"""vectorbt's Portfolio.from_signals on the prices and signals that `cargo bench --bench
backtest_speed` dumps (HPTUNE_BENCH_DUMP=DIR): a decision at the close of day t fills at the open
of day t+1, 10 bps fees, 5 bps slippage, all of each ticker's cash (1,000,000 / tickers) per entry.

    HPTUNE_BENCH_DUMP=/tmp/bt cargo bench --bench backtest_speed
    python benches/vectorbt_speed.py /tmp/bt      # in a venv with vectorbt (pip install vectorbt)

Prints the time of a cold call (numba compiles) and of warm calls, in bar-tickers per second,
and the final equity (hptune's closes open trades at the end; vectorbt's does not).
"""
import sys
import time
from pathlib import Path

import numpy as np
import vectorbt as vbt

d = Path(sys.argv[1])
days, tickers = map(int, (d / "shape.txt").read_text().split())
close = np.fromfile(d / "close.f64", dtype="<f8").reshape(days, tickers)
open_ = np.fromfile(d / "open.f64", dtype="<f8").reshape(days, tickers)
signals = np.fromfile(d / "signals.i8", dtype=np.int8).reshape(days, tickers)

# The position held from each day's open: yesterday's decision.
held = np.vstack([np.zeros((1, tickers), dtype=np.int8), signals[:-1]])
before = np.vstack([np.zeros((1, tickers), dtype=np.int8), held[:-1]])
entries = (held == 1) & (before == 0)
exits = (held == 0) & (before == 1)


def run():
    pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, fees=0.001, slippage=0.0005,
                                    init_cash=1_000_000 / tickers, size=np.inf, freq="1D")
    return pf, float(pf.value().iloc[-1].sum())


cells = days * tickers
print("call  seconds  bar-tickers/s  trades  final equity")
for i in range(4):
    start = time.perf_counter()
    pf, final = run()
    trades = int(pf.trades.count().sum())
    s = time.perf_counter() - start
    print(f"{'cold' if i == 0 else 'warm'}  {s:.3f}  {cells / s:.0f}  {trades}  {final:.2f}")
start = time.perf_counter()
stats = pf.stats(agg_func=None)
print(f"stats of every ticker: {time.perf_counter() - start:.3f} s")
