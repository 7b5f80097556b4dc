"""A gradient-descent baseline: Adam on nn.LSTM/GRU/RNN (H = 32) for recall_first at n = 20,
scored with our evaluator at n, 10n and 100n (readout as trained, 1024 fresh sequences).

    python studies/gradient_baseline.py                  # 4000 steps per cell, batch 128, lr 3e-3
    python studies/gradient_baseline.py --steps 500 --kinds gru   # a quick look

Writes data/gradient/table.md and table.csv. See lstmsearch/anchors/gradient.py.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from lstmsearch import make_task  # noqa: E402
from lstmsearch.anchors import gradient  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default="lstm,gru,rnn_tanh")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--length", type=int, default=20)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forget-bias", type=float, default=None, help="LSTM: initial forget-gate bias (PyTorch: ~0)")
    ap.add_argument("--data", default="data/gradient")
    args = ap.parse_args(argv)
    task = make_task("recall_first", length=args.length)
    rows = []
    for kind in args.kinds.split(","):
        fb = args.forget_bias if kind == "lstm" else None
        tr = gradient.train(kind, task, args.hidden, args.steps, args.batch, args.lr, seed=args.seed, forget_bias=fb)
        at_n, at_10n, at_100n = gradient.score(tr, task, (1, 10, 100))
        own = gradient.torch_nmse(tr.model, task)
        rows.append(dict(kind=kind if fb is None else f"{kind} (forget bias {fb:g})", steps=args.steps, seconds=tr.seconds,
                         final_train_nmse=float(np.mean(tr.losses[-100:])), torch_nmse=own,
                         nmse_n=at_n, nmse_10n=at_10n, nmse_100n=at_100n))
        print(f"{kind:<9} {tr.seconds:6.1f} s  train nmse (last 100 steps) {rows[-1]['final_train_nmse']:.3g}  "
              f"torch {own:.4g}  ours: n {at_n:.4g}  10n {at_10n:.4g}  100n {at_100n:.4g}", flush=True)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    import pyarrow.csv as pacsv

    pacsv.write_csv(pa.Table.from_pylist(rows), data / "table.csv")
    lines = [f"| cell (H = {args.hidden}) | Adam steps | train time | nmse at n = {args.length} | 10n | 100n |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['steps']} | {r['seconds']:.0f} s | {r['nmse_n']:.2g} | "
                     f"{r['nmse_10n']:.2g} | {r['nmse_100n']:.2g} |")
    md = "\n".join(lines)
    (data / "table.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
