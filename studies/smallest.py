"""The smallest network that remembers: blind search at H = 1, 2, ... per cell and task.

    python studies/smallest.py --write        # (re)write studies/smallest/*.toml
    python studies/smallest.py                # run the grid; data/smallest/{table.md,runs.csv,summary.csv}
    python studies/smallest.py --tasks recall_first --cells lstm --budget 20000   # a quick look
    python studies/smallest.py --extract      # also copy each first solved row to data/examples/

Each (task, cell) stops at its first H where some seed finds a row solved at every checked
length (the verdict), or at --cap. Running again continues each study up to its budget
(nothing is evaluated twice). See lstmsearch/anchors/smallest.py for the design.
"""

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lstmsearch.anchors import smallest as sm  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(sm.TASKS))
    ap.add_argument("--cells", default=",".join(sm.CELLS))
    ap.add_argument("--start", type=int, default=1, help="first H tried (default 1)")
    ap.add_argument("--cap", type=int, default=sm.CAP, help="largest H tried")
    ap.add_argument("--seeds", default=",".join(map(str, sm.SEEDS)))
    ap.add_argument("--budget", type=int, default=None, help="override [budget] settings of every study")
    ap.add_argument("--write", action="store_true", help="write the study files and stop")
    ap.add_argument("--studies", default=str(ROOT / "studies" / "smallest"), help="folder of the study files")
    ap.add_argument("--data", default="data/smallest", help="result folder (one study folder per run)")
    ap.add_argument("--extract", action="store_true",
                    help="copy the first solved row at each smallest H into data/examples/smallest_<task>_<cell>")
    args = ap.parse_args(argv)
    tasks, cells = args.tasks.split(","), args.cells.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.write:
        for p in sm.write_studies(args.studies, tasks, cells, range(1, args.cap + 1), seeds):
            print(p)
        return 0
    runs = sm.run_grid(args.studies, tasks, cells, args.cap, seeds, data_dir=args.data, budget=args.budget,
                       start=args.start)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    import pyarrow.csv as pacsv

    pacsv.write_csv(runs, data / "runs.csv")
    pacsv.write_csv(sm.smallest_table(runs), data / "summary.csv")
    md = "\n\n".join([sm.format_table(runs), sm.format_ladder(runs), sm.format_runs(runs)])
    (data / "table.md").write_text(md + "\n")
    print(md)
    print("total wall", f"{sum(runs.column('wall_s').to_pylist()):.0f} s")
    if args.extract:
        from lstmsearch.extract import extract

        for r in sm.first_solved_runs(runs):
            name = f"smallest_{r['task']}_{r['cell']}"
            dest = ROOT / "data" / "examples"
            shutil.rmtree(dest / name, ignore_errors=True)
            src = data / sm.study_name(r["task"], r["cell"], r["hidden"], r["seed"])
            print("extracted:", extract(src, dest, rows=[r["solved_row"]], name=name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
