"""Time to solution with and without racing (``[eval] racing``), side by side in one process.

For each blind study (every weight free, sep-CMA-ES, population 1024, readout fitted on 128
sequences and scored on 128 held-out ones at n = 20 and 21, the worst of the two) the same seed
is run twice, without racing and with it, one generation per ``run`` (continuations are
bit-identical to one run) until a full-fidelity row is solved at every checked length, or the cap
of loop wall time is spent. Reported per run: the settings and the wall time (summed loop wall
time of the runs up to the generation that wrote the row) until (a) the first full-fidelity row with
held-out nmse <= 1e-5 at both trained lengths and (b) the first row solved at every checked length
(its verdict: re-scored on 256 fresh held-out sequences at n, n+1, 2n+1, 10n+3, 100n+3), and the
rows stored. The machine is shared: compare the ratios within one run of this script only.

Run:  ``python benchmarks/racing.py [--cap 300] [--studies lstm8,gru8] [--rungs 32x10] [--keep 0.25]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import lstmsearch  # noqa: E402
from lstmsearch.analysis.verdict import row_verdicts  # noqa: E402
from lstmsearch.config import study_toml  # noqa: E402
from lstmsearch.query import load_results  # noqa: E402
from lstmsearch.store import Store  # noqa: E402

POP = 1024
SOLVED = 1e-5


def study(kind: str, hidden: int, racing) -> dict:
    ev = {"sequences": 128, "heldout": 128, "seed": 0, "backend": "cpu", "readout": "fit", "solved": SOLVED}
    if racing:
        ev["racing"] = racing
    return {"study": {"name": f"blind_{kind}{hidden}" + ("_racing" if racing else "")},
            "cell": {"kind": kind, "hidden": hidden, "inputs": 1, "outputs": 1},
            "task": {"kind": "recall_first", "lengths": [20, 21], "dist": {"kind": "uniform", "low": -1.0, "high": 1.0}},
            "eval": ev, "space": {"kind": "full", "scale": 30.0, "bias_scale": 30.0},
            "strategy": {"kind": "cmaes", "variant": "sep", "popsize": POP, "sigma": 0.3, "seed": 0},
            "budget": {"settings": 10 * POP}, "store": {"keep_weights": 10}}


def first_solutions(out: Path, racing: bool, checked: set):
    """(row, settings) of the first full-fidelity row with held-out nmse <= SOLVED at the trained
    lengths, and of the first whose verdict is solved at every checked length (None if none yet).
    ``checked`` caches the verdicts already computed (row -> solved)."""
    t = load_results(str(out), columns=["row", "nmse"] + (["fidelity"] if racing else []))
    fid = t.column("fidelity").to_numpy() if racing else np.zeros(t.num_rows, int)
    rows, nmse = t.column("row").to_numpy(), t.column("nmse").to_numpy()
    full = fid == (fid.max() if fid.size else 0)
    hits = rows[full & (nmse <= SOLVED)]
    todo = [int(r) for r in hits[:64] if int(r) not in checked]
    if todo:
        checked.update({r: v.solved for r, v in row_verdicts(str(out), todo).items()})
    settings = (lambda row: int(np.sum((fid == 0) & (rows <= row))))  # every setting is a rung-0 row
    first = int(hits[0]) if hits.size else None
    every = next((int(r) for r in hits[:64] if checked.get(int(r))), None)
    return [(r, settings(r)) if r is not None else None for r in (first, every)]


def race_one(doc: dict, tmp: Path, cap: float, echo):
    """One study, one generation per run (continuations are bit-identical to one run), until a row is
    solved at every checked length or ``cap`` seconds of loop wall time are spent. The wall time to a
    solution is the summed wall time of the runs up to the generation that wrote it."""
    p = tmp / f"{doc['study']['name']}.toml"
    p.write_text(study_toml(doc))
    out = tmp / doc["study"]["name"]
    racing = "racing" in doc["eval"]
    budget, wall, checked, found = 0, 0.0, {}, [None, None]
    while wall < cap and found[1] is None:
        budget += POP
        rep = lstmsearch.run_study(str(p), out=str(out), budget=budget, progress=False)
        wall += rep.wall_s
        now = first_solutions(out, racing, checked)
        found = [f if f is not None else (None if n is None else (*n, wall)) for f, n in zip(found, now)]
        if budget % (10 * POP) == 0:
            echo(f"  {doc['study']['name']}: {budget} settings, {wall:.1f} s, best {rep.best_nmse:.3g}")
    return found, Store(out).count()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cap", type=float, default=300.0, help="seconds per run before giving up")
    ap.add_argument("--studies", default="lstm8,gru8", help="cell kind and H: lstm8,gru8,lstm32,gru32")
    ap.add_argument("--rungs", default="32x10", help="low rungs SEQUENCESxLENGTH, comma-separated")
    ap.add_argument("--keep", type=float, default=0.25, help="fraction promoted at each rung")
    a = ap.parse_args(argv)
    rungs = [[int(v) for v in r.split("x")] for r in a.rungs.split(",")]
    racing = {"rungs": rungs, "keep": a.keep}
    print(f"racing = {{ rungs = {rungs}, keep = {a.keep} }}; population {POP}; NUMBA_NUM_THREADS="
          f"{os.environ.get('NUMBA_NUM_THREADS', 'default')}; cap {a.cap:.0f} s per run")
    lines = ["| study | racing | settings to nmse <= 1e-5 at n = 20, 21 | wall | settings to solved at every "
             "checked length | wall | rows stored |", "|---|---|---|---|---|---|---|"]
    fmt = (lambda f, i: "-" if f is None else (f"{f[1]:,}" if i == 1 else f"{f[2]:.1f} s"))
    for name in a.studies.split(","):
        kind, hidden = name.rstrip("0123456789"), int(name[len(name.rstrip("0123456789")):])
        res = {}
        with tempfile.TemporaryDirectory() as tmp:
            for on in (False, True):
                res[on], rows = race_one(study(kind, hidden, racing if on else None), Path(tmp), a.cap, print)
                lines.append(f"| {kind} H={hidden} | {'on' if on else 'off'} | {fmt(res[on][0], 1)} | "
                             f"{fmt(res[on][0], 2)} | {fmt(res[on][1], 1)} | {fmt(res[on][1], 2)} | {rows:,} |")
        ratio = [f"{res[False][k][i] / res[True][k][i]:.2f}x" if res[False][k] and res[True][k] else "-"
                 for k in (0, 1) for i in (1, 2)]
        lines.append(f"| {kind} H={hidden} | ratio off/on | {' | '.join(ratio)} | |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
