"""The share of a blind study's wall time outside ``evaluate``, with small batches gathered into
parts (what ``lstmsearch run`` does) and with one part per batch, one after the other in one
session. Compare the shares (ratios within a run), not the seconds, on a shared machine.

    NUMBA_NUM_THREADS=2 python benchmarks/gather_ab.py [--study benchmarks/studies/blind_lstm8_sep.toml]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from lstmsearch import run_study
from lstmsearch.run import writer

FIELDS = ("wall_s", "evaluate_s", "strategy_s", "io_s", "writer_s", "outside_share")


def one_run(study: str, min_part_rows: int) -> dict:
    writer.MIN_PART_ROWS = min_part_rows
    out = Path(tempfile.mkdtemp(prefix="lstmsearch-gather-"))
    try:
        run_study(study, out=str(out), progress=False)
        run = json.loads((out / "manifest.json").read_text())["runs"][-1]
        return {**{k: run[k] for k in FIELDS}, "parts": len(list((out / "rows").glob("*.parquet"))),
                "row_bytes": sum(p.stat().st_size for p in (out / "rows").glob("*.parquet")) / run["settings"]}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="benchmarks/studies/blind_lstm8_sep.toml")
    args = ap.parse_args(argv)
    gathered = writer.MIN_PART_ROWS
    for name, rows in (("gathered", gathered), ("a part per batch", 1)):
        r = one_run(args.study, rows)
        print(f"{name:<17} outside evaluate {100 * r['outside_share']:.1f}%  wall {r['wall_s']:.1f} s  evaluate "
              f"{r['evaluate_s']:.1f} s  strategy {r['strategy_s']:.1f} s  I/O {r['io_s']:.2f} s  writer busy "
              f"{r['writer_s']:.1f} s  {r['parts']} parts, {r['row_bytes']:.0f} B per row", flush=True)


if __name__ == "__main__":
    main()
