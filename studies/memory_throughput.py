"""Memory throughput: how many of the k = 2H + 2 most recent inputs a cell of H units recalls.

    python studies/memory_throughput.py                       # H = 1, 2, 4, 8, 16; lstm, gru, rnn_tanh
    python studies/memory_throughput.py --hidden 1,2 --budget 2000    # a quick look (60,000 settings per search by default)

For every (cell kind, H): a short CMA-ES search over all recurrent weights on recall_window
(n = 40, readout fitted; results in data/memory/<study>), then the best setting is re-scored
per lag on 4096 fresh sequences (readout refitted); the table gives "lags recalled (nmse < 0.01)
/ capacity (explained variance summed over lags)";
beside it the hand-built delay line (constructions.delay_line, readout as built). Writes
data/memory/table.md and table.csv. See lstmsearch/anchors/memory.py.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from lstmsearch import load_results, make_task, run_study  # noqa: E402
from lstmsearch.anchors import memory  # noqa: E402
from lstmsearch.analysis.constructions import construct  # noqa: E402
from lstmsearch.config import parse_study  # noqa: E402
from lstmsearch.reproduction import row_setting  # noqa: E402

KINDS = ("lstm", "gru", "rnn_tanh")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", default="1,2,4,8,16")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--length", type=int, default=40)
    ap.add_argument("--budget", type=int, default=60000, help="settings per search")
    ap.add_argument("--sequences", type=int, default=4096, help="fresh sequences for the per-lag scores")
    ap.add_argument("--data", default="data/memory")
    args = ap.parse_args(argv)
    kinds = args.kinds.split(",")
    data = Path(args.data)
    rows = []
    for H in [int(h) for h in args.hidden.split(",")]:
        k = memory.window(H)
        task = make_task("recall_window", length=args.length, k=k)
        row = {"hidden": H, "k": k, "paper": H}
        cell, p = construct(kinds[0], H, "delay_line", outputs=k)
        nmse = memory.per_output_nmse(cell, p, task, args.sequences, readout="given")
        row["delay_line"] = int(memory.lags_recalled(nmse)[0])
        row["delay_line_capacity"] = float(memory.capacity(nmse)[0])
        for kind in kinds:
            cfg = parse_study(memory.study_text(kind, H, args.length, args.budget))
            out = data / cfg.name
            t0 = time.perf_counter()
            run_study(cfg, out=out)
            t = load_results(out, columns=["row", "nmse"])
            best = t.sort_by("nmse").slice(0, 1).to_pylist()[0]
            _, _, setting = row_setting(out, best["row"])
            nmse = memory.per_output_nmse(cfg.cell, setting[None], task, args.sequences, readout="fit")[0]
            row[kind] = int(memory.lags_recalled(nmse))
            row[f"{kind}_nmse"] = float(best["nmse"])
            row[f"{kind}_capacity"] = float(memory.capacity(nmse))
            row[f"{kind}_lag_nmse"] = " ".join(f"{v:.1e}" for v in nmse[:H + 2])
            print(f"H={H:<3} {kind:<9} search best mean nmse {best['nmse']:.3g}, lags recalled {row[kind]}, "
                  f"capacity {row[f'{kind}_capacity']:.2f}, "
                  f"per-lag nmse {row[f'{kind}_lag_nmse']}  ({time.perf_counter() - t0:.1f} s)", flush=True)
        rows.append(row)
    table = pa.Table.from_pylist(rows)
    data.mkdir(parents=True, exist_ok=True)
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, data / "table.csv")
    head = ("| H | k | about H (Collins et al. 2017) | delay line (hand-built) | "
            + " | ".join(f"{k} (search)" for k in kinds) + " |")
    lines = [head, "|" + " --- |" * (4 + len(kinds))]
    for r in rows:
        lines.append(f"| {r['hidden']} | {r['k']} | {r['paper']} | {r['delay_line']} / {r['delay_line_capacity']:.2f} | "
                     + " | ".join(f"{r[k]} / {r[k + '_capacity']:.2f}" for k in kinds) + " |")
    md = "\n".join(lines)
    (data / "table.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
