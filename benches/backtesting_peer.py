"""Runs backtesting.py on bars and signals from a CSV (Date,Open,High,Low,Close,Volume,Signal):
long from the open after a close with Signal 1, flat after a close with Signal 0; commission 10 bps,
fractional units, 10,000 cash. Prints its statistics as JSON (durations in days).

    .venv/bin/python benches/backtesting_peer.py bars.csv
"""
import json
import math
import sys
import warnings

import pandas as pd
from backtesting import Strategy
from backtesting.lib import FractionalBacktest

warnings.filterwarnings("ignore")
data = pd.read_csv(sys.argv[1], index_col=0, parse_dates=True)


class Signals(Strategy):
    def init(self):
        pass

    def next(self):
        signal = self.data.Signal[-1]
        if signal > 0 and not self.position:
            self.buy(size=1 - 1e-12)
        elif signal <= 0 and self.position:
            self.position.close()


bt = FractionalBacktest(data, Signals, cash=10_000, commission=0.001, fractional_unit=1e-8,
                        finalize_trades=True)
stats = bt.run()
out = {}
for name, value in stats.items():
    if name.startswith("_"):
        continue
    if isinstance(value, pd.Timedelta):
        value = value.days
    if isinstance(value, (int, float)):
        value = float(value)
        out[name] = None if math.isnan(value) else value
print(json.dumps(out))
