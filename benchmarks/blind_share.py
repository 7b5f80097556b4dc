"""Where a blind study's wall time goes: the shipped blind studies (full weight space, sep-CMA-ES,
population 1024, n = 20 and 21) run for a few generations each, with the share of wall time
outside ``evaluate`` (the kernels, the readout fit and the sequences), the time split as
``lstmsearch run`` records it in the manifest, and the bytes per row on disk: the row parts, the
best rows' weights (``best/``) and the generation state.

    NUMBA_NUM_THREADS=2 python benchmarks/blind_share.py [--generations 40] [--studies lstm32,gru32,rnn32]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from lstmsearch import run_study
from lstmsearch.store.generations import GenerationStore

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=40)
    ap.add_argument("--studies", default="lstm32,gru32,rnn32")
    args = ap.parse_args(argv)
    print(f"{'study':<14}{'settings':>9}{'wall s':>8}{'evaluate':>9}{'strategy':>9}{'I/O':>6}{'outside':>9}"
          f"{'row B':>7}{'best B':>7}{'state B':>8}")
    for name in args.studies.split(","):
        study = ROOT / "studies" / f"blind_{name}.toml"
        out = Path(tempfile.mkdtemp(prefix=f"lstmsearch-blind-{name}-"))
        try:
            run_study(str(study), out=str(out), budget=1024 * args.generations, progress=False)
            run = json.loads((out / "manifest.json").read_text())["runs"][-1]
            n = run["settings"]
            rows = sum(p.stat().st_size for p in (out / "rows").glob("*.parquet")) / n
            best = sum(p.stat().st_size for p in (out / "best").glob("*.parquet")) / n
            state = sum(p.stat().st_size for p in GenerationStore(out).files()) / n
            print(f"{'blind_' + name:<14}{n:>9,}{run['wall_s']:>8.1f}{run['evaluate_s']:>9.1f}{run['strategy_s']:>9.2f}"
                  f"{run['io_s']:>6.2f}{100 * run['outside_share']:>8.1f}%{rows:>7.0f}{best:>7.0f}{state:>8.0f}", flush=True)
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
