"""Share of 2,560 adding-problem sequences with |error| < 0.04 (Hochreiter & Schmidhuber 1997) at T = 100, 500, 1000,
for a stored study row (its own, fitted readout) and for the hand-built adding_lstm construction.

    python benchmarks/adding_share.py STUDY_FOLDER_OR_NAME ROW
"""
import sys, numpy as np, lstmsearch as ls
from lstmsearch.reproduction import row_setting
from lstmsearch.evaluate import sequence_errors
from lstmsearch.analysis.constructions import adding_lstm
cfg, r, best = row_setting(sys.argv[1], int(sys.argv[2]))
cons = ls.Cell("lstm", 1, inputs=2), adding_lstm()
for name, cell, p in [("searched (row %s)" % sys.argv[2], cfg.cell, best), ("construction", *cons)]:
    for T in (100, 500, 1000):
        e = sequence_errors(cell, p[None], ls.make_task("adding", length=T, scaled=True), n_sequences=2560, seed=0)[0]
        print(f"{name:22s} T={T:5d}  share |err|<0.04: {(e < 0.04).mean():.4f}  ({int((e >= 0.04).sum())} wrong)  max |err| {e.max():.3g}")
