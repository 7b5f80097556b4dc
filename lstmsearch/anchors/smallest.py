r"""The smallest network that remembers: the fewest hidden units at which blind search finds a solution.

For each cell (LSTM, GRU, tanh RNN, ReLU RNN; on recall-first also MGU, minGRU, minLSTM and
IndRNN: :data:`CELLS_BY_TASK`) and task -- ``recall_first`` (output x_1 at step
n) and ``recall_lag`` with k = 5 (output x_{n-5} at step n) -- a blind search runs at H = 1, 2,
3, ... and the cell stops at its first H where some seed finds a **solved** row, or at the cap.
"Blind" means the full weight space (every weight and bias free, no tying, no masks, no
hand-made start: :class:`~lstmsearch.search.spaces.MaskedSpace` with ``kind = "full"``),
searched by full-covariance CMA-ES (``variant = "full"`` up to 100 dimensions, ``"sep"`` above)
with IPOP restarts from the middle of the bounds; the linear readout is fitted in closed form.
Every study is scored at ``lengths = [20, 21]`` (the worst of the two), and a row counts as
solved only by the verdict (:mod:`lstmsearch.analysis.verdict`: held-out nmse < 1e-5 with its
stored readout at 20, 21, 43, 213 and 2103 steps), never by its nmse at n alone.

Bounds and step size (why). Each task gets the bounds its construction lives in
(:mod:`lstmsearch.analysis.constructions`). Recall-first with a gated cell (one whose equations
have a sigmoid gate: :func:`gated`): weights and biases
in [-30, 30] (as the blind H = 32 studies that solved): the flag must shut the memory's gate
after step 1, which takes recurrent weights of tens (the LSTM construction uses -3 big / tanh(1),
the GRU's 2 big). Everything else -- the ungated cells, and every cell on recall-lag: weights in
[-3, 3], biases in [-30, 30]. The delay line runs in the linear regime (weights of 1 and a small
input gain, gates held by biases of +-20); for the tanh RNN, wide bounds with a large step
stalled (the blind H = 32 study) while tight weights with large biases did better, and a ReLU
unit with a recurrent weight much above 1 explodes. A probe (LSTM, H = 6, recall-lag, 80,000
settings) reached nmse 5e-4 with tight bounds and stalled at 0.65 with the wide ones. ``sigma``
is set so that the initial step is :data:`STEP` in absolute units whatever H is (the strategy's
``sigma`` is a fraction of the *mean* bound width, which moves with the share of biases): a third
of a wide bound, one unit inside the tight ones.

The stopping rule is the budget: each (cell, task, H, seed) study has the same budget of
settings (:data:`BUDGET`), run in chunks (:data:`CHUNK`); after each chunk the new rows with
nmse under the threshold are checked in row order (at most :data:`MAX_CHECKS` per chunk) and the
study stops at its first solved row. The budget it took is that row's position (settings
evaluated up to and including it) and the kernel seconds up to it (the rows' ``wall_s``).

:func:`study_text` writes one study file, :func:`write_studies` all of them (the committed files
under ``studies/smallest/``), :func:`run_grid` runs the grid and returns one table row per
(task, cell, H, seed), :func:`smallest_table` reduces it to the smallest solved H per (task,
cell), and :func:`format_table` writes it beside the constructions' unit counts
(:data:`CONSTRUCTION_UNITS`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional, Sequence

import numpy as np
import pyarrow as pa

from ..cells import Cell
from ..config import study_toml
from ..errors import require

#: cell kind -> label (the kind's own short label)
CELLS: Dict[str, str] = {k: Cell(k, 1).spec.label
                         for k in ("lstm", "gru", "rnn_tanh", "rnn_relu", "mgu", "mingru", "minlstm", "indrnn")}

#: task kind -> (extra [task] keys, label)
TASKS: Dict[str, tuple] = {
    "recall_first": ({}, "recall-first"),
    "recall_lag": ({"lag": 5}, "recall-lag k = 5"),
}

#: The cells of each task's grid: the four new kinds (issue 22) on recall-first only.
CELLS_BY_TASK: Dict[str, tuple] = {
    "recall_first": tuple(CELLS),
    "recall_lag": ("lstm", "gru", "rnn_tanh", "rnn_relu"),
}

#: Scored lengths of every study (the worst of the two).
LENGTHS = (20, 21)
#: Settings per (cell, task, H, seed) study.
BUDGET = 50_000
#: Settings per chunk between two solved checks.
CHUNK = 8192
#: Candidate rows (nmse under the threshold at n) checked by the verdict per chunk, in row order.
MAX_CHECKS = 512
#: Largest H tried: every construction's unit count (2, 3, 4 for recall-first, 6 for the delay line).
CAP = 6
SEEDS = (0, 1, 2)
SEQUENCES = 128
#: Initial population of CMA-ES (IPOP doubles it at each restart); smaller ones spend most of
#: the wall time writing one part file per generation.
POPSIZE = 256

#: Bounds (weights, biases) and the initial absolute step, "wide" and "tight" (see module doc).
BOUNDS = {"wide": (30.0, 30.0), "tight": (3.0, 30.0)}
STEP = {"wide": 10.0, "tight": 1.0}

#: Hidden units of the hand-built constructions (lstmsearch.analysis.constructions):
#: flag_memory for recall_first; delay_line for recall_lag k = 5 (unit j holds x_{n-j}: 6 units;
#: no ReLU delay line is shipped).
CONSTRUCTION_UNITS: Dict[str, Dict[str, Optional[int]]] = {
    "recall_first": {"lstm": 2, "gru": 2, "rnn_tanh": 4, "rnn_relu": 3, "mgu": 2, "mingru": None, "minlstm": None,
                     "indrnn": None},
    "recall_lag": {"lstm": 6, "gru": 6, "rnn_tanh": 6, "rnn_relu": None},
}
#: What the table says instead of "none shipped" where no construction can exist (docs/theorems.md).
NO_CONSTRUCTION: Dict[str, Dict[str, str]] = {
    "recall_first": {"mingru": "none can exist (theorem)", "minlstm": "none can exist (theorem)"},
}
#: The construction of each task (the key of ``constructions.CONSTRUCTIONS``).
CONSTRUCTION = {"recall_first": "flag_memory", "recall_lag": "delay_line"}


def gated(kind: str) -> bool:
    """Whether the kind's equations have a sigmoid gate (LSTM, GRU, MGU, minGRU, minLSTM; not the
    tanh, ReLU and Ind RNNs): read from its traced equations, not from its name."""
    return any(n.op == "sigmoid" for n in Cell(kind, 1).spec.graph.nodes())


def regime(task: str, kind: str) -> str:
    """"wide" (recall_first with a gated cell) or "tight" (everything else): the key of :data:`BOUNDS`."""
    require(task in TASKS, f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    require(kind in CELLS, f"unknown cell {kind!r}; expected one of {', '.join(CELLS)}")
    return "wide" if task == "recall_first" and gated(kind) else "tight"


def weight_counts(kind: str, hidden: int) -> tuple:
    """(weights, biases) of the recurrent part of a 1-input cell: the full space's dimensions."""
    cell = Cell(kind, hidden)
    n_b = sum(b.size for b in cell.blocks if b.name in ("bias_ih_l0", "bias_hh_l0"))
    return cell.n_recurrent - n_b, n_b


def sigma_fraction(task: str, kind: str, hidden: int) -> float:
    """The strategy's ``sigma`` (a fraction of the mean bound width) that makes the step :data:`STEP`."""
    n_w, n_b = weight_counts(kind, hidden)
    reg = regime(task, kind)
    w, b = BOUNDS[reg]
    mean_width = (2 * w * n_w + 2 * b * n_b) / (n_w + n_b)
    return round(STEP[reg] / mean_width, 4)


def study_name(task: str, kind: str, hidden: int, seed: int) -> str:
    return f"smallest_{task}_{kind}_h{hidden}_s{seed}"


def study_text(task: str, kind: str, hidden: int, seed: int = 0, budget: int = BUDGET,
               sequences: int = SEQUENCES, popsize: int = POPSIZE, lengths: Sequence[int] = LENGTHS) -> str:
    """The study file (TOML text) of one (task, cell, H, seed)."""
    reg = regime(task, kind)
    extra, task_label = TASKS[task]
    w, b = BOUNDS[reg]
    dim = sum(weight_counts(kind, hidden))
    name = study_name(task, kind, hidden, seed)
    comments = {
        "": f"The smallest network that remembers (written by studies/smallest.py --write; see\n"
            f"lstmsearch/anchors/smallest.py): blind search, {CELLS[kind]} with H = {hidden}, {task_label},\n"
            f"scored at n = {', '.join(map(str, lengths))}; strategy seed {seed}.\n"
            f"  lstmsearch run studies/smallest/{name[len('smallest_'):]}.toml",
        "space": f"Every weight and bias free ({dim} dimensions): weights in [-{w:g}, {w:g}], biases in [-{b:g}, {b:g}].",
        "strategy": f"CMA-ES from the middle of the bounds, IPOP restarts; sigma = {STEP[reg]:g} / mean bound width.",
    }
    doc = {
        "study": {"name": name,
                  "description": f"smallest: {kind}, {hidden} hidden units, full weight space, CMA-ES; {task_label}"},
        "cell": {"kind": kind, "hidden": hidden, "inputs": 1, "outputs": 1},
        "task": {"kind": task, **extra, "lengths": [int(n) for n in lengths],
                 "dist": {"kind": "uniform", "low": -1.0, "high": 1.0}},
        "eval": {"sequences": sequences, "heldout": sequences, "seed": 0, "backend": "cpu", "readout": "fit",
                 "solved": 1e-5},
        "space": {"kind": "full", "scale": w, "bias_scale": b},
        "strategy": {"kind": "cmaes", "variant": "full" if dim <= 100 else "sep", "popsize": popsize,
                     "sigma": sigma_fraction(task, kind, hidden), "restarts": "ipop", "seed": seed},
        "budget": {"settings": budget},
        "store": {"keep_weights": 10},
    }
    return study_toml(doc, comments)


def study_file(folder, task: str, kind: str, hidden: int, seed: int) -> Path:
    return Path(folder) / f"{study_name(task, kind, hidden, seed)[len('smallest_'):]}.toml"


def write_studies(folder, tasks: Iterable[str] = TASKS, cells: Optional[Iterable[str]] = None,
                  hidden: Iterable[int] = range(1, CAP + 1), seeds: Iterable[int] = SEEDS, **options) -> list:
    """Write ``<task>_<cell>_h<H>_s<seed>.toml`` for every grid point into ``folder`` (``cells``
    default: each task's :data:`CELLS_BY_TASK`); returns the paths."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for t in tasks:
        for k in (CELLS_BY_TASK[t] if cells is None else [c for c in cells if c in CELLS_BY_TASK[t]]):
            for h in hidden:
                for s in seeds:
                    p = study_file(folder, t, k, h, s)
                    p.write_text(study_text(t, k, h, s, **options))
                    paths.append(p)
    return paths


SCHEMA = pa.schema([
    ("task", pa.string()),
    ("cell", pa.string()),
    ("hidden", pa.int64()),
    ("seed", pa.int64()),
    ("dim", pa.int64()),
    ("settings", pa.int64()),
    ("solved", pa.bool_()),
    ("solved_row", pa.int64()),
    ("settings_to_solve", pa.int64()),
    ("evaluate_s_to_solve", pa.float64()),
    ("best_nmse", pa.float64()),
    ("best_row", pa.int64()),
    ("rejected", pa.int64()),
    ("wall_s", pa.float64()),
])


def first_solved(out, rows_from: int = 0, max_checks: int = MAX_CHECKS, threshold: Optional[float] = None,
                 rows_to: Optional[int] = None):
    """(first solved row or None, rows rejected): the verdict of the rows in [rows_from, rows_to) under the threshold.

    Candidates are the rows with stored nmse under the study's ``[eval] solved`` (or ``threshold``),
    checked in row order, in batches, at most ``max_checks`` of them; the first whose verdict is
    "solved at every checked length" is returned, with the number of candidates before it
    (rows under the threshold at the trained lengths that the verdict rejected).
    """
    import pyarrow.compute as pc

    from ..analysis.verdict import ALL, row_verdicts
    from ..query import open_study

    cfg, store = open_study(out)
    thr = cfg.eval.solved if threshold is None else threshold
    where = pc.field("row") >= rows_from
    if rows_to is not None:
        where = where & (pc.field("row") < rows_to)
    t = store.read(columns=["row", "nmse"], filter=where)
    rows = np.sort(t.column("row").to_numpy()[t.column("nmse").to_numpy() < thr])[:max_checks]
    for i in range(0, len(rows), 128):
        batch = [int(r) for r in rows[i:i + 128]]
        vs = row_verdicts(out, batch)
        hit = [r for r in batch if vs[r].status == ALL]
        if hit:
            return min(hit), i + batch.index(min(hit))
    return None, len(rows)


def run_one(path, data_dir="data/smallest", budget: Optional[int] = None, chunk: int = CHUNK,
            max_checks: int = MAX_CHECKS) -> dict:
    """Run one study file in chunks until its first solved row or its budget; returns its table row.

    A study run before is continued, and its stored rows are checked again from the first one,
    chunk by chunk as the run checked them (so a re-read gives the run's table).
    Keys: the :data:`SCHEMA` fields; ``wall_s`` is this call's wall time (runs and checks).
    """
    from ..config import load_study
    from ..run import run_study

    cfg = load_study(path)
    target = cfg.budget_settings if budget is None else int(budget)
    out = Path(data_dir) / cfg.name
    t0 = time.perf_counter()
    solved, rejected, checked_to = None, 0, 0
    while True:
        done = _count(out) if (out / "manifest.json").exists() else 0
        while solved is None and checked_to < min(done, target):  # chunk by chunk, as the run checked them
            upto = min(checked_to + chunk, done, target)
            solved, n = first_solved(out, checked_to, max_checks, rows_to=upto)
            rejected, checked_to = rejected + n, upto
        if solved is not None or done >= target:
            break
        run_study(cfg, budget=min(done + chunk, target), out=out)
        if _count(out) == done:  # the next generation does not fit the budget
            break
    row = study_row(out, solved, target)
    row.update(rejected=rejected, wall_s=time.perf_counter() - t0)
    return row


def _count(out) -> int:
    from ..query import open_study

    return open_study(out)[1].count()


def study_row(out, solved: Optional[int], budget: Optional[int] = None) -> dict:
    """The table row of a study folder whose first solved row is ``solved`` (None: none found),
    from its first ``budget`` rows (default all: a store run further counts as run to ``budget``).

    Everything but ``rejected`` and ``wall_s`` (left 0) is read from the store: settings (rows
    stored), settings_to_solve (rows up to and including the solved one), evaluate_s_to_solve
    (their summed ``wall_s``: kernel, readout and sampling seconds), best_nmse and best_row.
    """
    import pyarrow.compute as pc

    from ..query import open_study

    cfg, store = open_study(out)
    t = store.read(columns=["row", "nmse", "wall_s"])
    if budget is not None:
        t = t.filter(pc.less(t.column("row"), budget))
    rows = t.column("row").to_numpy()
    nmse = t.column("nmse").to_numpy()
    nmse = np.where(np.isfinite(nmse), nmse, np.inf)
    best = int(np.argmin(nmse))
    upto = rows <= solved if solved is not None else np.zeros(len(rows), bool)
    cell = cfg.cell
    return dict(task=cfg.task.name, cell=cell.kind, hidden=cell.hidden, seed=int(cfg.strategy["seed"]),
                dim=int(cell.n_params - cell.n_readout), settings=int(len(rows)),
                solved=solved is not None, solved_row=solved,
                settings_to_solve=int(upto.sum()) if solved is not None else None,
                evaluate_s_to_solve=float(t.column("wall_s").to_numpy()[upto].sum()) if solved is not None else None,
                best_nmse=float(nmse[best]), best_row=int(rows[best]), rejected=0, wall_s=0.0)


def run_grid(folder, tasks: Iterable[str] = TASKS, cells: Optional[Iterable[str]] = None, cap: int = CAP,
             seeds: Sequence[int] = SEEDS, data_dir="data/smallest", budget: Optional[int] = None,
             chunk: int = CHUNK, start: int = 1, max_checks: int = MAX_CHECKS, echo: Callable[[str], None] = print) -> pa.Table:
    """Run the grid from the study files in ``folder``; one :data:`SCHEMA` row per study run.

    For each (task, cell), H = ``start``, ... ``cap``: every seed's study runs (:func:`run_one`);
    the cell stops after the first H at which some seed found a solved row. ``budget``
    overrides the files' ``[budget] settings``; ``cells`` (default: each task's
    :data:`CELLS_BY_TASK`) is narrowed to the task's grid.
    """
    rows = []
    for task in tasks:
        for kind in (CELLS_BY_TASK[task] if cells is None else [c for c in cells if c in CELLS_BY_TASK[task]]):
            for h in range(start, cap + 1):
                found = False
                for seed in seeds:
                    path = study_file(folder, task, kind, h, seed)
                    require(path.is_file(), f"no study file {path}; write them with studies/smallest.py --write")
                    r = run_one(path, data_dir, budget, chunk, max_checks)
                    rows.append(r)
                    found |= r["solved"]
                    echo(f"{task:<13} {kind:<9} H={h} seed {seed}: "
                         + (f"solved at row {r['solved_row']} ({r['settings_to_solve']:,} settings, "
                            f"{r['evaluate_s_to_solve']:.1f} s)" if r["solved"] else
                            f"not solved in {r['settings']:,} settings (best nmse at n {r['best_nmse']:.2g}, "
                            f"{r['rejected']} rows under the threshold at n rejected by the verdict)")
                         + f"  [{r['wall_s']:.0f} s]")
                if found:
                    break
    return pa.Table.from_pylist(rows, schema=SCHEMA)


SUMMARY = pa.schema([
    ("task", pa.string()),
    ("cell", pa.string()),
    ("smallest", pa.int64()),
    ("tried", pa.int64()),
    ("seeds_solved", pa.int64()),
    ("seeds", pa.int64()),
    ("settings_to_solve", pa.string()),
    ("evaluate_s_to_solve", pa.string()),
    ("budget", pa.int64()),
    ("construction", pa.int64()),
])


def smallest_table(runs: pa.Table) -> pa.Table:
    """Per (task, cell): the smallest H with a solved seed (null: none up to ``tried``), seeds
    solved there, settings and kernel seconds to the first solved row per seed ("-": none), the
    largest budget of a study, and the construction's unit count (null: none shipped)."""
    d = runs.to_pylist()
    out = []
    for task, kind in dict.fromkeys((r["task"], r["cell"]) for r in d):
        mine = [r for r in d if r["task"] == task and r["cell"] == kind]
        hs = sorted({r["hidden"] for r in mine if r["solved"]})
        h = hs[0] if hs else None
        at = sorted((r for r in mine if r["hidden"] == (h if h is not None else max(x["hidden"] for x in mine))),
                    key=lambda r: r["seed"])
        out.append(dict(task=task, cell=kind, smallest=h, tried=max(r["hidden"] for r in mine),
                        seeds_solved=sum(r["solved"] for r in at), seeds=len(at),
                        settings_to_solve=", ".join(f"{r['settings_to_solve']:,}" if r["solved"] else "-" for r in at),
                        evaluate_s_to_solve=", ".join(f"{r['evaluate_s_to_solve']:.1f}" if r["solved"] else "-"
                                                      for r in at),
                        budget=max(r["settings"] for r in mine),
                        construction=CONSTRUCTION_UNITS.get(task, {}).get(kind)))
    return pa.Table.from_pylist(out, schema=SUMMARY)


def format_table(runs: pa.Table) -> str:
    """Markdown: the smallest solved H per (task, cell) beside the construction's units."""
    lines = ["| task | cell | smallest H found | seeds solved there | settings to the first solved row, per seed "
             "| kernel s to it, per seed | construction's units |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in smallest_table(runs).to_pylist():
        found = (f"**{r['smallest']}**" if r["smallest"] is not None
                 else f"none up to H = {r['tried']} ({r['budget']:,} settings per seed and H)")
        cons = (NO_CONSTRUCTION.get(r["task"], {}).get(r["cell"], "none shipped") if r["construction"] is None
                else f"{r['construction']} ({CONSTRUCTION[r['task']]})")
        lines.append(f"| {TASKS[r['task']][1]} | {CELLS[r['cell']]} | {found} | {r['seeds_solved']}/{r['seeds']} "
                     f"| {r['settings_to_solve']} | {r['evaluate_s_to_solve']} | {cons} |")
    return "\n".join(lines)


def format_runs(runs: pa.Table) -> str:
    """Markdown: one line per study run (task, cell, H, seed)."""
    lines = ["| task | cell | H | dims | seed | settings | solved (verdict) | first solved row | best nmse at n "
             "| rows under 1e-5 at n that failed the verdict | wall s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs.to_pylist():
        lines.append(f"| {TASKS[r['task']][1]} | {CELLS[r['cell']]} | {r['hidden']} | {r['dim']} | {r['seed']} "
                     f"| {r['settings']:,} | {'yes' if r['solved'] else 'no'} "
                     f"| {'' if r['solved_row'] is None else r['solved_row']} | {r['best_nmse']:.2g} | {r['rejected']} "
                     f"| {r['wall_s']:.0f} |")
    return "\n".join(lines)


def first_solved_runs(runs: pa.Table) -> list:
    """Per (task, cell), the run that shows the smallest H: the solved seed with the fewest settings to it."""
    d = [r for r in runs.to_pylist() if r["solved"]]
    out = []
    for task, kind in dict.fromkeys((r["task"], r["cell"]) for r in d):
        mine = [r for r in d if r["task"] == task and r["cell"] == kind]
        h = min(r["hidden"] for r in mine)
        out.append(min((r for r in mine if r["hidden"] == h), key=lambda r: (r["settings_to_solve"], r["seed"])))
    return out


def format_ladder(runs: pa.Table) -> str:
    """Markdown: per (task, cell) and H, "solved k/s" or the best held-out nmse at n over the seeds
    (with "n only" when some row under the threshold at n was rejected by the verdict)."""
    d = runs.to_pylist()
    hs = sorted({r["hidden"] for r in d})
    lines = ["| task | cell | " + " | ".join(f"H = {h}" for h in hs) + " |", "|" + " --- |" * (len(hs) + 2)]
    for task, kind in dict.fromkeys((r["task"], r["cell"]) for r in d):
        cells = []
        for h in hs:
            at = [r for r in d if r["task"] == task and r["cell"] == kind and r["hidden"] == h]
            if not at:
                cells.append("")
            elif any(r["solved"] for r in at):
                cells.append(f"**solved {sum(r['solved'] for r in at)}/{len(at)}**")
            else:
                rej = sum(r["rejected"] > 0 for r in at)
                cells.append(f"{min(r['best_nmse'] for r in at):.2g}" + (f" (n only: {rej}/{len(at)})" if rej else ""))
        lines.append(f"| {TASKS[task][1]} | {CELLS[kind]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
