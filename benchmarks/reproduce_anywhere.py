"""Does every shipped example's best row reproduce bit for bit under other BLAS kernels and thread counts?

For each study in data/examples and each environment (OPENBLAS_CORETYPE unset, Haswell, Zen,
Sandybridge, Prescott; OpenBLAS and lstmsearch threads 1 or 2), a fresh interpreter re-evaluates the best
row on the study's own sequences (the readout fitted again, as the study did) and compares the
errors with the stored ones (``reproduce``'s "identical"). Prints a markdown table (row x
environment): ``yes`` or the largest relative difference of a stored error.

    python benchmarks/reproduce_anywhere.py [--data data/examples] [--studies a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ENVIRONMENTS = {
    "default": {},
    "Haswell": {"OPENBLAS_CORETYPE": "Haswell"},
    "Zen": {"OPENBLAS_CORETYPE": "Zen"},
    "Sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge"},
    "Prescott": {"OPENBLAS_CORETYPE": "Prescott"},
    "1 thread": {"OPENBLAS_NUM_THREADS": "1", "LSTMSEARCH_THREADS": "1", "NUMBA_NUM_THREADS": "1"},
    "2 threads": {"OPENBLAS_NUM_THREADS": "2", "LSTMSEARCH_THREADS": "2", "NUMBA_NUM_THREADS": "2"},
}

CHILD = r"""
import json, sys
import numpy as np
from lstmsearch.query import best_row
from lstmsearch.reproduction import reproduce
out = {}
for study in sys.argv[2].split(","):
    row = best_row(study, sys.argv[1])
    rep = reproduce(study, row, data_dir=sys.argv[1], check=False, factors=[1])
    rel = max(abs(rep["same"][k] - a) / abs(a) if a else abs(rep["same"][k]) for k, a in rep["stored"].items())
    out[study] = {"row": row, "identical": rep["identical"], "rel": rel}
print(json.dumps(out))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/examples")
    ap.add_argument("--studies", default=None, help="comma-separated (default: every folder of --data)")
    args = ap.parse_args(argv)
    studies = args.studies.split(",") if args.studies else sorted(
        p.name for p in Path(args.data).iterdir() if (p / "manifest.json").exists())
    results = {}
    for name, extra in ENVIRONMENTS.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
        env.update(extra)
        proc = subprocess.run([sys.executable, "-c", CHILD, args.data, ",".join(studies)], env=env,
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{name}: {proc.stderr.strip().splitlines()[-1]}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    print("| study (best row) | " + " | ".join(ENVIRONMENTS) + " |")
    print("| --- |" + " --- |" * len(ENVIRONMENTS))
    for s in studies:
        cells = [("yes" if results[e][s]["identical"] else f"NO (rel {results[e][s]['rel']:.1e})") for e in ENVIRONMENTS]
        print(f"| {s} ({results['default'][s]['row']}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
