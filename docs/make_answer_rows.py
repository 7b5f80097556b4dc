"""Write the README answer-table rows of the newer cells, and their data/README.md rows, from the data.

    python docs/make_answer_rows.py          # rewrites those rows in README.md and data/README.md
    python docs/make_answer_rows.py --check  # exit 1 if a row differs from what it would write

The rows of ``lstmsearch.answer.README_CELLS`` (MGU, minGRU, minLSTM, IndRNN) are made by
``lstmsearch.answer.readme_row``: each study's best shipped row is reproduced on 1,024 fresh
sequences at every checked length (``lstmsearch reproduce STUDY best --data data/examples``), and
the construction column is the flag/memory construction's verdict and ``lstmsearch certify``'s
claim, or what is known instead (docs/theorems.md). A row already in the table is replaced in
place; a new one goes after the table's last row. tests/test_doc_figures.py checks the rows equal
what this writes. About 5 minutes on 2 cores (eight reproductions at up to 2,103 steps).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functools import lru_cache  # noqa: E402

from lstmsearch.answer import README_CELLS, readme_row, sci  # noqa: E402

EXAMPLES = ROOT / "data" / "examples"
#: data/README.md's examples table: shipped studies written from the data, in this order
#: (README_CELLS' studies, then the fixed-length demonstration of docs/theorems.md).
DATA_STUDIES = [s for _, tied, blind in README_CELLS.values() for s in (tied, blind)] + ["fixed_length_mingru32"]


@lru_cache(maxsize=None)
def reproduced(study: str) -> dict:
    """``lstmsearch reproduce STUDY best --data data/examples``, once per study."""
    from lstmsearch.query import best_row
    from lstmsearch.reproduction import reproduce

    return reproduce(study, best_row(study, EXAMPLES), data_dir=EXAMPLES, check=True)


def data_row(study: str) -> str:
    """data/README.md's line of one shipped study: folder, cell, search, settings, best row,
    nmse at the first and last checked length, solved."""
    from lstmsearch.query import open_study

    cfg, store = open_study(study, EXAMPLES)
    rep = reproduced(study)
    row = rep["row"]
    space, strat = cfg.space_obj, cfg.strategy
    if strat["kind"] == "cmaes":
        search = (f"full weight space ({space.dim:,} values), {strat.get('variant', 'full')}-CMA-ES, "
                  f"population {strat['popsize']:,}")
    else:
        search = f"gate-tied space ({space.dim} values), Optuna CMA-ES"
    lengths = list(cfg.task.lengths or (cfg.task.length,))
    if len(lengths) == 1:
        search += f", scored at n = {lengths[0]} only"
    m = store.read_manifest()
    at = {f["length"]: f["nmse"] for f in rep["fresh"]}
    first, last = rep["fresh"][0]["length"], rep["fresh"][-1]["length"]
    cells = [f"`examples/{study}/`", cfg.cell.spec.label, search,
             f"{m['extracted_from']['source_rows']:,}", str(row), f"{sci(at[first])} / {sci(at[last])}",
             "yes" if rep["verdict"]["solved"] else "no"]
    return "| " + " | ".join(cells) + " |"


def place(text: str, rows: dict, after: str) -> str:
    """``text`` with each ``rows[key]`` replacing the line that starts with ``key``, or inserted
    after the table row that starts with ``after`` (and after the rows inserted before it)."""
    lines = text.splitlines()
    anchor = next(i for i, ln in enumerate(lines) if ln.startswith(after))
    for key, row in rows.items():
        at = next((i for i, ln in enumerate(lines) if ln.startswith(key)), None)
        if at is None:
            anchor += 1
            lines.insert(anchor, row)
        else:
            lines[at] = row
            anchor = max(anchor, at)
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = ap.parse_args(argv)
    readme, data_readme = ROOT / "README.md", ROOT / "data" / "README.md"
    rows = {f"| {label} |": readme_row(label, EXAMPLES, reproduced) for label in README_CELLS}
    data_rows = {f"| `examples/{s}/` |": data_row(s) for s in DATA_STUDIES}
    # the pages are read after the minutes of computing, so that edits made meanwhile are kept
    new_readme = place(readme.read_text(), rows, after="| tanh RNN |")
    new_data = place(data_readme.read_text(), data_rows, after="| `examples/blind_rnn32/` |")
    stale = [p for p, new in ((readme, new_readme), (data_readme, new_data)) if p.read_text() != new]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} differs from the data: run python docs/make_answer_rows.py")
        return 1 if stale else 0
    for p, new in ((readme, new_readme), (data_readme, new_data)):
        p.write_text(new)
    print("wrote", ", ".join(str(p.relative_to(ROOT)) for p in stale) or "nothing (up to date)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
