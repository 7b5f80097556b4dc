"""Time to solution with and without racing (``[eval] racing``), side by side in one process.

For each blind study (every weight free, sep-CMA-ES, population 1024, readout fitted on 128
sequences and scored on 128 held-out ones at n = 20 and 21, the worst of the two) the same seed
is run twice in one process, without racing and with it, for the same number of generations.
Reported per run: the settings and the wall time until (a) the first full-fidelity row with
held-out nmse <= 1e-5 at both trained lengths and (b) the first row solved at every checked
length (its verdict: re-scored on 256 fresh held-out sequences at n, n+1, 2n+1, 10n+3, 100n+3),
from the rows' write times; and the rows stored. The machine is shared: compare the ratios
within one run of this script only.

Run:  ``python benchmarks/racing.py [--generations 80] [--studies lstm8,gru8] [--rungs 32x10] [--keep 0.25]``
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


def study(kind: str, hidden: int, racing, generations: int) -> dict:
    ev = {"sequences": 128, "heldout": 128, "seed": 0, "backend": "cpu", "readout": "fit", "solved": SOLVED}
    if racing:
        ev["racing"] = racing
    return {"study": {"name": f"blind_{kind}{hidden}" + ("_racing" if racing else "")},
            "cell": {"kind": kind, "hidden": hidden, "inputs": 1, "outputs": 1},
            "task": {"kind": "recall_first", "lengths": [20, 21], "dist": {"kind": "uniform", "low": -1.0, "high": 1.0}},
            "eval": ev, "space": {"kind": "full", "scale": 30.0, "bias_scale": 30.0},
            "strategy": {"kind": "cmaes", "variant": "sep", "popsize": POP, "sigma": 0.3, "seed": 0},
            "budget": {"settings": generations * POP}, "store": {"keep_weights": 10}}


def first_solutions(out: Path, racing: bool):
    """(row, settings, seconds) of the first full-fidelity row with held-out nmse <= SOLVED at the
    trained lengths, and of the first solved at every checked length (its verdict), or None.

    Seconds: the row's write time minus the first row's, plus the first batch's evaluate time (the
    rows' ``time`` is when the writer thread took their batch, in ms)."""
    t = load_results(str(out), columns=["row", "nmse", "time", "wall_s"] + (["fidelity"] if racing else []))
    fid = t.column("fidelity").to_numpy() if racing else np.zeros(t.num_rows, int)
    rows, nmse = t.column("row").to_numpy(), t.column("nmse").to_numpy()
    times = t.column("time").to_numpy(zero_copy_only=False).astype("datetime64[ms]").astype(np.int64) / 1e3
    wall = t.column("wall_s").to_numpy()
    t0 = times[0] - wall[times == times[0]].sum()  # the first batch's rows share its write time
    hits = [int(r) for r in rows[(fid == fid.max()) & (nmse <= SOLVED)][:256]]
    ok = row_verdicts(str(out), hits) if hits else {}
    first = hits[0] if hits else None
    every = next((r for r in hits if ok[r].solved), None)
    out = []
    for r in (first, every):
        k = int(np.searchsorted(rows, r)) if r is not None else None
        out.append(None if r is None else (r, int(np.sum((fid == 0) & (rows <= r))), float(times[k] - t0)))
    return out


def race_one(doc: dict, tmp: Path, echo):
    """One run of a study; the solutions found in it (see :func:`first_solutions`)."""
    p = tmp / f"{doc['study']['name']}.toml"
    p.write_text(study_toml(doc))
    out = tmp / doc["study"]["name"]
    rep = lstmsearch.run_study(str(p), out=str(out), progress=False)
    echo(f"  {doc['study']['name']}: {rep.settings} settings, {rep.wall_s:.1f} s, best {rep.best_nmse:.3g}")
    return first_solutions(out, "racing" in doc["eval"]), Store(out).count(), rep.wall_s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=80, help="generations of 1024 per run")
    ap.add_argument("--studies", default="lstm8,gru8", help="cell kind and H: lstm8,gru8,lstm32,gru32")
    ap.add_argument("--rungs", default="32x10", help="low rungs SEQUENCESxLENGTH, comma-separated")
    ap.add_argument("--keep", type=float, default=0.25, help="fraction promoted at each rung")
    a = ap.parse_args(argv)
    rungs = [[int(v) for v in r.split("x")] for r in a.rungs.split(",")]
    racing = {"rungs": rungs, "keep": a.keep}
    print(f"racing = {{ rungs = {rungs}, keep = {a.keep} }}; population {POP}; NUMBA_NUM_THREADS="
          f"{os.environ.get('NUMBA_NUM_THREADS', 'default')}; {a.generations} generations per run")
    lines = ["| study | racing | settings to nmse <= 1e-5 at n = 20, 21 | wall | settings to solved at every "
             "checked length | wall | rows stored |", "|---|---|---|---|---|---|---|"]
    fmt = (lambda f, i: "-" if f is None else (f"{f[1]:,}" if i == 1 else f"{f[2]:.1f} s"))
    for name in a.studies.split(","):
        kind, hidden = name.rstrip("0123456789"), int(name[len(name.rstrip("0123456789")):])
        res = {}
        with tempfile.TemporaryDirectory() as tmp:
            for on in (False, True):
                res[on], rows, _ = race_one(study(kind, hidden, racing if on else None, a.generations), Path(tmp),
                                            print)
                lines.append(f"| {kind} H={hidden} | {'on' if on else 'off'} | {fmt(res[on][0], 1)} | "
                             f"{fmt(res[on][0], 2)} | {fmt(res[on][1], 1)} | {fmt(res[on][1], 2)} | {rows:,} |")
        ratio = [f"{res[False][k][i] / res[True][k][i]:.2f}x" if res[False][k] and res[True][k] else "-"
                 for k in (0, 1) for i in (1, 2)]
        lines.append(f"| {kind} H={hidden} | ratio off/on | {' | '.join(ratio)} | |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
