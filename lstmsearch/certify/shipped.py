"""The horizons of the shipped searched rows: how long each found setting is proved to hold.

``python -m lstmsearch.certify.shipped`` recomputes them (a few minutes a row on 2 cores) and
writes ``docs/horizons.md`` (the table) and ``docs/horizons.json`` (the same rows);
:func:`horizon_rows` reads the stored rows (for the answer page), :func:`compute_horizon` computes one
(``tests/test_horizon.py`` recomputes a row and compares). Each row is :func:`lstmsearch.certify.certify`
of the study's best row for n >= its shortest trained length, in one arithmetic: in exact real
arithmetic the linear-growth induction of :mod:`.horizon`; in float32 the unrolled propagation for
:data:`FLOAT32_SECONDS`; then the counterexample search past the proved N.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

#: (study, kind of search) of the shipped LSTM and GRU rows.
SHIPPED = (("recall_first_lstm32", "gate-tied"), ("recall_first_gru32", "gate-tied"),
           ("blind_lstm32", "blind"), ("blind_gru32", "blind"))
ARITHMETICS = ("real", "float32")
DATA_DIR = "data/examples"
ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "horizons.md"
JSON = ROOT / "docs" / "horizons.json"
#: Seconds of float32 propagation past the shortest trained length.
FLOAT32_SECONDS = 60.0
#: Unrolled steps in exact arithmetic where the induction does not reach further (the blind rows):
#: past 1,000, so that blind_lstm32's failure near n = 2,100 (its float64 error grows 4.8e-7 a step
#: under constant -1 inputs after x_1 = 1) falls within 2 N + 1 of the proof.
REAL_MAX_LENGTH = 1200
COMMAND = "python -m lstmsearch.certify.shipped"
#: The fields of a row that recomputation must reproduce exactly (seconds vary).
EXACT = ("study", "row", "cell", "arithmetic", "kind", "N", "min_length", "method")


def compute_horizon(study: str, arithmetic: str, data_dir: str = DATA_DIR, float32_seconds: float = FLOAT32_SECONDS,
                    budget: int = 640, counterexample: bool = True, **kw) -> Dict:
    """One row: the certificate of ``study``'s best row in ``arithmetic`` (see the module doc);
    other keywords are :func:`lstmsearch.certify.certify`'s."""
    from ..query import best_row
    from ..reproduction import row_setting
    from . import certify

    path = str(Path(data_dir) / study)
    row = best_row(path, data_dir)
    cfg, _, setting = row_setting(path, row, data_dir=data_dir)
    n0 = int(min(cfg.task.scored_lengths))
    dist = cfg.task.dist
    start = time.perf_counter()
    c = certify(cfg.cell, setting, float(dist.low), float(dist.high), arithmetic=arithmetic, min_length=n0,
                max_seconds=float32_seconds if arithmetic == "float32" else None, budget=budget,
                counterexample=counterexample, max_length=10 ** 9 if arithmetic == "float32" else REAL_MAX_LENGTH, **kw)
    seconds = time.perf_counter() - start
    method = next((n.split(": ", 1)[1].split(" (states after")[0] for n in c.notes if n.startswith("proof for n >=")),
                  "invariant (closed boxes)" if c.kind == "all_n" else "unrolled interval propagation")
    return {"study": study, "search": dict(SHIPPED).get(study, ""), "row": int(row),
            "cell": f"{cfg.cell.kind} H={cfg.cell.hidden}", "arithmetic": arithmetic, "kind": c.kind,
            "N": int(c.N), "min_length": n0, "eps": float(c.eps), "tol": float(c.tol), "slices": int(c.slices),
            "method": method, "counterexample_length": c.counterexample_length,
            "counterexample_error": c.counterexample_error, "refuted": bool(c.refuted),
            "seconds": round(seconds, 1), "notes": list(c.notes)}


def compute_horizon_rows(studies: Sequence[str] = tuple(s for s, _ in SHIPPED), arithmetics=ARITHMETICS,
                         data_dir: str = DATA_DIR, **kw) -> List[Dict]:
    return [compute_horizon(s, a, data_dir, **kw) for s in studies for a in arithmetics]


def horizon_rows(path: Optional[Path] = None) -> List[Dict]:
    """The stored horizons of the shipped rows (``docs/horizons.json``): one dict per study and
    arithmetic with ``study, search, row, cell, arithmetic, kind, N`` (-1: every n), ``min_length``,
    ``eps, tol, method, counterexample_length, counterexample_error, refuted, seconds``."""
    p = Path(path) if path is not None else JSON
    return json.loads(p.read_text())["rows"]


def _reach(r: Dict) -> str:
    if r["kind"] == "all_n":
        return f"every n >= {r['min_length']}"
    if r["kind"] == "up_to_n":
        return f"{r['min_length']} <= n <= {r['N']:,}"
    return "not certified"


def horizon_sentence(r: Dict) -> str:
    """One line: what is proved and what the search past it found."""
    s = f"{r['study']} row {r['row']} [{r['arithmetic']}]: {_reach(r)} with eps {r['eps']:.3g}"
    if r["counterexample_error"] is not None:
        s += (f"; worst found at n = {r['counterexample_length']:,}: {r['counterexample_error']:.3g}"
              f" ({'refuted' if r['refuted'] else 'within tol'})")
    return s


def horizons_markdown(rows: List[Dict]) -> str:
    lines = ["# Horizons of the shipped searched rows", "",
             f"Generated by `{COMMAND}` (do not edit; `tests/test_horizon.py` recomputes a row and compares).", "",
             "For each shipped gate-tied and blind LSTM and GRU study, its best row is certified with "
             "`lstmsearch certify STUDY ROW` for n >= its shortest trained length, in exact real arithmetic "
             "and in the float32 arithmetic of the cpu kernel, tolerance |y - x_1| <= "
             f"{rows[0]['tol']:g} for inputs in [-1, 1]. In real arithmetic the proof is one induction "
             "(`lstmsearch.certify.horizon`: the boxes after step n1 grow by at most sum_(i<m) L^i D in m "
             "more steps); in float32 it is unrolled interval propagation within "
             f"{FLOAT32_SECONDS:g} s (unrolled to at most {REAL_MAX_LENGTH:,} steps in real arithmetic where the induction "
             "does not reach further). The counterexample search (`worst` inputs on the float32 cpu kernel) then "
             "runs at N + 1 and 2N + 1, and for a real row its worst sequence is re-simulated in the float64 "
             "reference, whose error is the one shown: an error above the tolerance there brackets the horizon "
             "within a factor 2. Where it finds none, the drift probe (x_1 on a grid, then constant or "
             "alternating inputs) runs at 4N + 3, 8N + 7, ... within 4e7 steps: its first failure (in the float64 "
             "reference for a real row) bounds the horizon from above, less tightly. An error within the "
             "tolerance means no failure was found, not that none exists.", "",
             "| study | search | row | cell | arithmetic | proved | eps | method | counterexample n | its error | "
             "seconds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ce = ("-", "-") if r["counterexample_error"] is None else (
            f"{r['counterexample_length']:,}",
            f"{r['counterexample_error']:.3g}" + (" (refuted)" if r["refuted"] else ""))
        lines.append(f"| {r['study']} | {r['search']} | {r['row']} | {r['cell']} | {r['arithmetic']} | {_reach(r)} | "
                     f"{r['eps']:.3g} | {r['method']} | {ce[0]} | {ce[1]} | {r['seconds']:g} |")
    notes = [f"- {r['study']} [{r['arithmetic']}]: {n}" for r in rows for n in r["notes"]
             if not n.startswith("proof for n >=")]
    if notes:
        lines += ["", "Notes:", ""] + notes
    return "\n".join(lines) + "\n"


def write(rows: List[Dict], doc: Path = DOC, js: Path = JSON) -> None:
    Path(doc).write_text(horizons_markdown(rows))
    Path(js).write_text(json.dumps({"command": COMMAND, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":  # pragma: no cover
    write(compute_horizon_rows())
    print(DOC.read_text())
