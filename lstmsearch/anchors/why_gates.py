r"""Why gates: the same search on the LSTM, the LSTM with one gate held open, the GRU, the tanh RNN,
and the newer cells (MGU, minGRU, minLSTM, IndRNN).

Greff et al. 2017 ("LSTM: A Search Space Odyssey") remove one LSTM gate at a time: NIG (no
input gate), NFG (no forget gate), NOG (no output gate). Here a gate is removed by holding it
*open* inside a masked search space (:class:`lstmsearch.search.spaces.MaskedSpace`): its input
and recurrent weights are fixed at 0 and its bias at ``HELD_BIAS`` = +20, so the gate is

.. math::  \sigma(20) = 1 - 2.1 \cdot 10^{-9}

(1 to float32 precision: the kernels give exactly 1.0f from 17 on). Then, for the LSTM,

- NIG: :math:`c_t = f_t c_{t-1} + g_t` -- every input is written;
- NFG: :math:`c_t = c_{t-1} + i_t g_t` -- nothing is ever forgotten;
- NOG: :math:`h_t = \tanh(c_t)` -- the memory is always shown.

Every variant gets the same space as the shipped studies (``studies/recall_first_*.toml``):
per gate one input weight, one diagonal recurrent weight and one bias (tied over the units;
the region jitter makes the units differ), minus the held gate; a cell whose gates see only
x_t (minGRU, minLSTM: ``recurrence = "none"``) has no recurrent weight to search, and the
IndRNN's element-wise recurrence is its diagonal (:func:`space_rules`); the same Optuna CMA-ES
strategy and the same budget of settings. The task is ``recall_first`` (x_t ~ U[-1, 1],
output x_1 at step n) at n = 10, 100, 1000, each scored at n and n + 1 (``lengths = [n, n + 1]``,
the worst of the two: a setting that only works at even n, or only at one n, scores badly), and
a grid point counts as solved only when its best row is solved at every checked length
(:mod:`lstmsearch.analysis.verdict`: n, n + 1, then 2n + 1, 10n + 3, 100n + 3 beyond the longest
trained length) with its stored readout.

:func:`study_text` writes one study file per (variant, n) (the committed files under
``studies/why_gates/`` are its output, :func:`write_studies`); :func:`run_grid` runs them and
:func:`grid_table` collects variant x n -> best held-out nmse, settings evaluated, solved.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa

from ..cells import Cell
from ..config import study_toml
from ..errors import require

#: Bias that holds a removed gate open: sigma(20) = 1 - 2.1e-9.
HELD_BIAS = 20.0

#: variant -> (cell kind, held-open gate or None, label for tables and plots)
VARIANTS: Dict[str, Tuple[str, Optional[str], str]] = {
    "lstm": ("lstm", None, "LSTM (all gates)"),
    "lstm_nig": ("lstm", "i", "LSTM NIG (input gate = 1)"),
    "lstm_nfg": ("lstm", "f", "LSTM NFG (forget gate = 1)"),
    "lstm_nog": ("lstm", "o", "LSTM NOG (output gate = 1)"),
    "gru": ("gru", None, "GRU"),
    "rnn_tanh": ("rnn_tanh", None, "RNN (tanh, no gates)"),
    "mgu": ("mgu", None, "MGU (one gate)"),
    "mingru": ("mingru", None, "minGRU (gates see only x_t)"),
    "minlstm": ("minlstm", None, "minLSTM (gates see only x_t)"),
    "indrnn": ("indrnn", None, "IndRNN (element-wise recurrence, ReLU)"),
}

LENGTHS = (10, 100, 1000)
#: Hidden units: 2 suffice for the flag/memory construction; 8 give the fitted readout
#: jittered copies to combine and cost ~1/10 of H = 32, so that n = 1000 fits the budget.
HIDDEN = 8
BUDGET = 16384
SEQUENCES = 128


def study_name(variant: str, length: int) -> str:
    return f"why_gates_{variant}_n{length}"


def space_rules(kind: str) -> list:
    """The gate-tied rules of a kind: input weight, diagonal recurrent weight (a dense recurrence's
    diagonal; an element-wise one's vector; none without a recurrence) and bias, each tied by gate."""
    recurrence = Cell(kind, 1).spec.recurrence
    rules = [{"block": "weight_ih", "tie": "gate", "low": -3.0, "high": 3.0}]
    if recurrence != "none":
        rules.append({"block": "weight_hh", **({"part": "diagonal"} if recurrence == "dense" else {}),
                      "tie": "gate", "low": -60.0, "high": 60.0})
    return rules + [{"block": "bias_ih", "tie": "gate", "low": -30.0, "high": 30.0}]


#: The [space] comment per recurrence of the kind.
SPACE_COMMENTS = {
    "dense": "Gate-tied space of the shipped studies: per gate one input weight, one diagonal\n"
             "recurrent weight, one bias; off-diagonal recurrence and bias_hh fixed at 0.",
    "diagonal": "Gate-tied space of the shipped studies: per gate one input weight, one recurrent\n"
                "weight (the recurrence is element-wise: its diagonal), one bias; bias_hh fixed at 0.",
    "none": "Gate-tied space of the shipped studies: per gate one input weight and one bias\n"
            "(the gates see only x_t: no recurrent weights).",
}


def study_text(variant: str, length: int, hidden: int = HIDDEN, budget: int = BUDGET,
               sequences: int = SEQUENCES, region: int = 32, seed: int = 0) -> str:
    """The study file (TOML text) of one grid point."""
    require(variant in VARIANTS, f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    kind, held, label = VARIANTS[variant]
    rules = space_rules(kind)
    comments = {
        "": f"Why gates (written by studies/why_gates.py --write; see lstmsearch/analysis/why_gates.py):\n"
            f"{label}, H = {hidden}, recall x_1 after {length} (and {length + 1}) numbers uniform in [-1, 1].\n"
            f"  lstmsearch run studies/why_gates/{variant}_n{length}.toml",
        "space": SPACE_COMMENTS[Cell(kind, 1).spec.recurrence],
    }
    if held is not None:
        comments[f"space.rule[{len(rules)}]"] = (
            f"{label}: the gate is held open -- input and recurrent weights 0, bias {HELD_BIAS:g}\n"
            f"(sigmoid({HELD_BIAS:g}) = 1 - 2.1e-9). These rules come last, so they win over the ones above.")
        rules += [{"block": ["weight_ih", "weight_hh"], "gate": held, "mode": "fixed", "value": 0.0},
                  {"block": "bias_ih", "gate": held, "mode": "fixed", "value": float(HELD_BIAS)}]
    doc = {
        "study": {"name": study_name(variant, length),
                  "description": f"why gates: {label}, H={hidden}, recall_first n={length}"},
        "cell": {"kind": kind, "hidden": hidden},
        "task": {"kind": "recall_first", "lengths": [length, length + 1], "dist": {"kind": "uniform", "low": -1.0, "high": 1.0}},
        "eval": {"sequences": sequences, "heldout": sequences, "seed": seed, "readout": "fit", "solved": 1e-5},
        "space": {"kind": "masked", "default": "fixed", "value": 0.0, "rule": rules},
        "strategy": {"kind": "optuna", "sampler": "cmaes", "batch": 16, "objectives": ["nmse"],
                     "region": {"size": region, "scale": [0.01, 1.0]}, "sampler_options": {"popsize": 16},
                     "seed": seed},
        "budget": {"settings": budget},
        "store": {"keep_weights": 10},
    }
    return study_toml(doc, comments)


def write_studies(folder, variants: Iterable[str] = VARIANTS, lengths: Iterable[int] = LENGTHS,
                  **options) -> list:
    """Write ``<variant>_n<length>.toml`` for every grid point into ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for v in variants:
        for n in lengths:
            p = folder / f"{v}_n{n}.toml"
            p.write_text(study_text(v, n, **options))
            paths.append(p)
    return paths


SCHEMA = pa.schema([
    ("variant", pa.string()),
    ("label", pa.string()),
    ("length", pa.int64()),
    ("nmse", pa.float64()),
    ("settings", pa.int64()),
    ("solved", pa.bool_()),
    ("verdict", pa.string()),
    ("best_row", pa.int64()),
    ("wall_s", pa.float64()),
])


def run_grid(study_files: Sequence, data_dir="data/why_gates", budget: Optional[int] = None,
             echo: Callable[[str], None] = print) -> pa.Table:
    """Run every study file (continuing any that were run before) and return the grid table.

    Each study's results go to ``data_dir/<study name>``. ``budget`` overrides the files'
    ``[budget] settings``. Columns: variant, label, length, nmse (best held-out), settings
    (rows in the store), solved (the best row is solved at every checked length with its stored
    readout: :func:`lstmsearch.analysis.verdict.row_verdicts`), verdict (its short form: "every
    length", "n only", "some lengths", "no"), best_row, wall_s (this run's wall time).
    """
    from ..analysis.verdict import ALL, SHORT, row_verdicts
    from ..config import load_study
    from ..query import load_results
    from ..run import run_study

    rows = []
    for path in study_files:
        cfg = load_study(path)
        out = Path(data_dir) / cfg.name
        t0 = time.perf_counter()
        run_study(cfg, budget=budget, out=out)
        wall = time.perf_counter() - t0
        t = load_results(out, columns=["row", "nmse"])
        nmse = t.column("nmse").to_numpy()
        best = int(np.argmin(nmse))
        variant = cfg.name[len("why_gates_"):].rsplit("_n", 1)[0]
        label = VARIANTS.get(variant, (None, None, variant))[2]
        best_row = int(t.column("row")[best].as_py())
        v = row_verdicts(out, [best_row])[best_row]
        n = cfg.task.lengths[0] if cfg.task.lengths else cfg.task.length
        rows.append(dict(variant=variant, label=label, length=n, nmse=float(nmse[best]),
                         settings=t.num_rows, solved=v.status == ALL, verdict=SHORT[v.status],
                         best_row=best_row, wall_s=wall))
        echo(f"{cfg.name:<28} nmse {nmse[best]:.3g}  settings {t.num_rows}  {SHORT[v.status]}  {wall:.1f} s")
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def format_table(table: pa.Table) -> str:
    """Markdown: one row per variant, per n 'best nmse / settings / solved at every checked length'."""
    d = table.to_pylist()
    lengths = sorted({r["length"] for r in d})
    variants = list(dict.fromkeys(r["variant"] for r in d))
    head = "| variant | " + " | ".join(f"n = {n}" for n in lengths) + " |"
    lines = [head, "|" + " --- |" * (len(lengths) + 1)]
    for v in variants:
        cells = []
        for n in lengths:
            r = next((r for r in d if r["variant"] == v and r["length"] == n), None)
            cells.append("" if r is None else
                         f"{r['nmse']:.2g} / {r['settings']:,} / {'yes' if r['solved'] else 'no'}")
        label = next(r["label"] for r in d if r["variant"] == v)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_grid(table: pa.Table, path) -> Path:
    """Best nmse against n, one line per variant, log-log (reuses ``plot_length_curve``)."""
    from ..analysis.plots import plot_length_curve

    return plot_length_curve(table.select(["length", "nmse", "label"]), path, label="label",
                             title="why gates: best nmse after the same search, recall_first")
