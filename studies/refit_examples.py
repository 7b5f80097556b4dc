"""Score the shipped examples' rows again with this release's readout fit (fixed summation order).

The rows in data/examples were made by release 0.1.0, whose readout fit went through BLAS: they
reproduced as identical only on a CPU whose OpenBLAS kernel rounds like the one that made them.
``lstmsearch.extract.refit_extracted`` re-scores each folder's rows on the study's own sequences
with the fit that gives the same bits on every machine and records it in the manifest.

    python studies/refit_examples.py [--data data/examples]
"""

import argparse
from pathlib import Path

from lstmsearch.extract import refit_extracted


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/examples")
    args = ap.parse_args(argv)
    for folder in sorted(p for p in Path(args.data).iterdir() if (p / "manifest.json").exists()):
        entry = refit_extracted(folder)
        if entry:
            print(f"{folder.name}: best nmse {entry['best_nmse_before']:.4g} ({entry['from']}) -> "
                  f"{entry['best_nmse_after']:.4g} ({entry['to']})")
        else:
            print(f"{folder.name}: fitted in fixed order already")


if __name__ == "__main__":
    main()
