"""Why gates: run the LSTM / NIG / NFG / NOG / GRU / tanh-RNN / MGU / minGRU / minLSTM / IndRNN grid at n = 10, 100, 1000.

    python studies/why_gates.py --write          # (re)write studies/why_gates/*.toml
    python studies/why_gates.py                  # run them all; table + plot under data/why_gates/
    python studies/why_gates.py --budget 512 --lengths 10 --variants lstm,rnn_tanh   # a quick look

Running again continues each study up to its budget (nothing is evaluated twice) and
re-reads the table from the stores. See lstmsearch/anchors/why_gates.py for the design.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lstmsearch.anchors import why_gates as wg  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the study files and stop")
    ap.add_argument("--studies", default=str(ROOT / "studies" / "why_gates"), help="folder of the study files")
    ap.add_argument("--data", default="data/why_gates", help="result folder (one study folder per grid point)")
    ap.add_argument("--variants", default=",".join(wg.VARIANTS))
    ap.add_argument("--lengths", default=",".join(map(str, wg.LENGTHS)))
    ap.add_argument("--budget", type=int, default=None, help="override [budget] settings of every study")
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    lengths = [int(n) for n in args.lengths.split(",")]
    if args.write:
        for p in wg.write_studies(args.studies, variants, lengths):
            print(p)
        return 0
    files = [Path(args.studies) / f"{v}_n{n}.toml" for v in variants for n in lengths]
    table = wg.run_grid(files, data_dir=args.data, budget=args.budget)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    md = wg.format_table(table)
    (data / "table.md").write_text(md + "\n")
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, data / "table.csv")
    print(md)
    try:
        print("plot:", wg.plot_grid(table, data / "why_gates.png"))
    except Exception as exc:  # matplotlib missing: the table is still written
        print("no plot:", exc)
    print("total wall", f"{sum(table.column('wall_s').to_pylist()):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
