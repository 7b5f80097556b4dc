r"""The answer to the canonical question for one study, in the words a teacher needs.

For the best row of a ``recall_first`` study (read x_1..x_n, output x_1 at step n), an
:class:`Answer` gathers what the report's first section says, per cell:

- **solved or not** at every checked length (:mod:`lstmsearch.analysis.verdict`: the trained
  lengths, then n+1, 2n+1, 10n+3, 100n+3 beyond the longest), with the stored readout on fresh
  sequences, and the held-out nmse at each;
- **the mechanism**: the roles of the units (:func:`lstmsearch.analysis.explain.unit_roles`:
  flag, relay, memory, silent, ...) counted over the hidden units;
- **the searched numbers by name**: the values the strategy searched (``z``, named by the
  search space: ``weight_hh.f`` = the forget gate's tied diagonal weight, ...), when the space
  has at most :data:`MAX_NAMED` of them; a full-space study has thousands, and the pruned form of
  the report's later sections lists the weights that matter;
- **the construction beside it**: the hand-built flag/memory setting of the same cell
  (:mod:`lstmsearch.analysis.constructions`), its verdict and, with ``certify``, its certificate;
- **the certificate** of the best row (:func:`lstmsearch.certify.certify`, float32 semantics of the
  ``cpu`` kernel): for every n, for n <= N, or not certified with a counterexample;
- **the worst input found** (:func:`lstmsearch.analysis.adversary.worst_inputs`): max |y_n - x_1|
  over the input box at each trained length and one past the longest, beside the random sample's max;
- **precision and export**: nmse at the longest checked length in float64 (the reference
  backend) and through PyTorch (``nn.LSTM/GRU/RNN`` after export), and whether the answer rests on
  float32 saturation or drifts under PyTorch's kernels.

Everything is computed from what the store holds (the stored weights and readout), on fresh
sequences (:data:`lstmsearch.analysis.verdict.FRESH_SEED`). Nothing here prints.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from .analysis.adversary import worst_inputs
from .analysis.constructions import CONSTRUCTIONS, construct
from .analysis.explain import traces, unit_roles
from .analysis.verdict import CHECK_SEQUENCES, FRESH_SEED, precision_check, task_check_lengths, verdict
from .cells import Cell
from .certify import certify, certify_trained
from .errors import require
from .reproduction import row_setting

#: Searched values listed by name when the space has at most this many.
MAX_NAMED = 24
#: Units of the hand-built flag/memory construction, per cell kind, and how it works in a few words.
CONSTRUCTION_UNITS = {"lstm": 2, "gru": 2, "mgu": 2, "rnn_relu": 3, "rnn_tanh": 4}
MECHANISMS = {
    "lstm": "flag + memory cell: the flag shuts the memory's input gate after step 1; the forget gate stays open",
    "gru": ("flag + memory: the flag shuts the memory's update gate (z = 1) after step 1; the memory's candidate "
            "is offset so that float32 keeps it exactly"),
    "mgu": ("flag + memory: the flag shuts the memory's one gate (f = 0.0f in float32) after step 1, "
            "so h + f (n - h) keeps the memory bit for bit"),
    "rnn_relu": "flag + relay + integrator: the flag's inhibition cuts the relay at 0 after step 1",
    "rnn_tanh": "flag + relay pair + memory: saturation is the only gate; the relays pass x_1 once",
}
#: Worst-input search budget per length (children of the evolution), kept small for a report.
WORST_BUDGET = 1024
#: Steps of interval propagation for a searched row's certificate (the construction gets more).
CERTIFY_LENGTH = 25


@dataclass
class Answer:
    """The answer page's facts about one study's best row (see the module doc)."""

    study: str
    cell: str                                   # "lstm H=32"
    row: int
    verdict: object                             # Verdict of the best row
    roles: Dict[str, int]                       # role -> number of units
    named: Optional[List[tuple]] = None         # [(name, value)] of the searched values, or None
    n_searched: int = 0                         # how many values the strategy searched
    construction: Optional[object] = None       # Verdict of the construction (None: none for this cell)
    construction_units: int = 0
    construction_certificate: Optional[object] = None
    certificate: Optional[object] = None        # Certificate of the best row (None: not asked)
    worst: List[object] = field(default_factory=list)   # WorstCase per trained length
    precision: Optional[object] = None          # PrecisionCheck at the longest checked length
    notes: List[str] = field(default_factory=list)

    @property
    def mechanism(self) -> str:
        """The unit roles in a few words: ``memory 5, flag 2, silent 25``."""
        return ", ".join(f"{k} {v}" for k, v in sorted(self.roles.items(), key=lambda kv: -kv[1]))

    @property
    def worst_error(self) -> Optional[float]:
        return max((w.worst for w in self.worst), default=None)

    @property
    def random_error(self) -> Optional[float]:
        return max((w.random_max for w in self.worst), default=None)


def role_counts(cell, setting, task, n_sequences: int = 64, seed: int = FRESH_SEED) -> Dict[str, int]:
    """{role: units} of one setting, from its traces at the longest trained length (the role's
    first word: flag, relay, memory, input, mixed, silent, diverges)."""
    x, _ = task.sample(n_sequences, seed)
    roles = unit_roles(traces(cell, setting, x)["h"], x)
    return dict(Counter(r.split(":")[0].strip() for r in roles))


def named_values(cfg, row: Dict) -> Optional[List[tuple]]:
    """[(name, value)] of the searched values ``z`` of a stored row, named by the study's space;
    None when the row has no z or the space has more than :data:`MAX_NAMED` values."""
    z = row.get("z")
    space = cfg.space_obj
    if z is None or len(z) != space.dim or space.dim > MAX_NAMED:
        return None
    return [(name, float(v)) for name, v in zip(space.names, z)]


def answer(study, row: Optional[int] = None, data_dir="data", n_sequences: int = CHECK_SEQUENCES,
           with_certificate: bool = True,
           with_torch: bool = True, certify_length: int = CERTIFY_LENGTH, worst_budget: int = WORST_BUDGET,
           verdict_of=None) -> Answer:
    """The :class:`Answer` for one stored row (default: the study's best row) of a recall_first study.

    ``verdict_of``: the row's verdict when already computed (the report checks the top rows in
    one batch). ``with_certificate``: run :func:`lstmsearch.certify.certify` on the row (float32,
    ``certify_length`` steps of propagation, a counterexample search past the N it proves; how far
    the shipped rows hold is :mod:`lstmsearch.certify.shipped`'s horizons) and on the
    construction; ``with_torch``: the PyTorch score (skipped, with a note, without torch).
    """
    from .query import top_rows

    if row is None:
        row = int(top_rows(study, 1, data_dir=data_dir, columns=["row", "nmse"]).column("row")[0].as_py())
    cfg, stored, setting = row_setting(study, int(row), data_dir)
    cell, task = cfg.cell, cfg.task
    require(task.name == "recall_first" and cell.inputs == 1 and cell.outputs == 1,
            f"the answer page is for recall_first with 1 input and 1 output; study {cfg.name} has task "
            f"{task.name}, inputs={cell.inputs}, outputs={cell.outputs}")
    threshold = cfg.eval.solved
    v = verdict_of or verdict(cell, setting, task, threshold, n_sequences=n_sequences)
    trained = list(task.lengths or (task.length,))
    out = Answer(study=cfg.name, cell=f"{cell.kind} H={cell.hidden}", row=int(row), verdict=v,
                 roles=role_counts(cell, setting, task), named=named_values(cfg, stored),
                 n_searched=int(cfg.space_obj.dim))
    out.worst = worst_inputs(cell, setting, task, lengths=sorted(set(trained) | {max(trained) + 1}), budget=worst_budget)
    out.precision = precision_check(cell, setting, task, threshold, n_sequences=n_sequences, with_torch=with_torch)
    low, high = getattr(task.dist, "low", None), getattr(task.dist, "high", None)
    box = low is not None and high is not None
    if with_certificate and box:
        n0 = min(trained)  # every n >= 1 where the proof covers it, else n >= n0 (as lstmsearch certify)
        out.certificate = certify_trained(cell, setting, low, high, trained_length=n0,
                                          max_length=max(certify_length, n0 + 4), task=task)
    elif with_certificate:
        out.notes.append("no certificate: the input distribution has no bounded box")
    units = CONSTRUCTION_UNITS.get(cell.kind)
    if units is not None and ("flag_memory", cell.kind) in CONSTRUCTIONS and units <= cell.hidden:
        out.construction_units = units
        out.construction, out.construction_certificate = construction_facts(
            cell.kind, task, threshold, n_sequences, with_certificate and box)
    return out


@functools.lru_cache(maxsize=16)
def construction_facts(kind: str, task, threshold: float, n_sequences: int, with_certificate: bool):
    """(verdict, certificate or None) of the hand-built construction of ``kind`` on ``task``; kept
    per process, so a report of several studies of one cell kind checks and certifies it once. The
    certificate is ``lstmsearch certify --cell KIND``'s, with its defaults (propagation up to n = 1000)."""
    c_cell, c_params = construct(kind, CONSTRUCTION_UNITS[kind])
    v = verdict(c_cell, c_params, task, threshold, n_sequences=n_sequences)
    cert = certify(c_cell, c_params, task.dist.low, task.dist.high, task=task) \
        if with_certificate else None
    return v, cert


def answer_row(a: Answer) -> List:
    """The answer table's row of one study (the header is :data:`ANSWER_HEADER`)."""
    v, pc = a.verdict, a.precision
    per_length = ", ".join(f"{L}: {e:.2g}" for L, e in zip(v.lengths, v.nmse))
    cert = "" if a.certificate is None else _certificate_short(a.certificate)
    worst = "" if a.worst_error is None else f"{a.worst_error:.2g} (random {a.random_error:.2g})"
    built = NO_CONSTRUCTION_SHORT.get(a.cell.split()[0], "") if a.construction is None else (
        f"{a.construction_units} units: {'solved' if a.construction.solved else 'not solved'}, worst nmse "
        f"{max(a.construction.nmse):.2g}"
        + ("" if a.construction_certificate is None else f"; {_certificate_short(a.construction_certificate)}"))
    torch = ("skipped" if pc.torch is None else f"{pc.torch:.2g}") if pc is not None else ""
    return [a.cell, f"{a.study} row {a.row}", "yes" if v.solved else ("no" if v.short == "no" else f"no ({v.short})"), per_length, a.mechanism,
            built, cert, worst, "" if pc is None else f"{pc.float64:.2g}", torch]


#: Header of :func:`answer_row`.
ANSWER_HEADER = ["cell", "best row", "solved at every checked length", "nmse per checked length (stored readout)",
                 "unit roles", "construction beside it", "certificate (float32 cpu)", "worst |y - x_1| found",
                 "float64 nmse (longest)", "PyTorch nmse (longest)"]


def _certificate_short(c) -> str:
    if c.kind == "all_n":
        return f"every n >= {c.min_length}: |y - x_1| <= {c.eps:.2g}"
    if c.kind == "up_to_n":
        return f"{f'{c.min_length} <= ' if c.min_length > 1 else ''}n <= {c.N}: |y - x_1| <= {c.eps:.2g}"
    if c.counterexample_error is not None:
        return f"not certified; counterexample |y - x_1| = {c.counterexample_error:.2g} at n = {c.counterexample_length}"
    return "not certified"


def answer_lines(a: Answer) -> List[str]:
    """The sentences under the answer table for one study: the verdict, the searched values, the
    certificates' statements, precision and export."""
    v, pc = a.verdict, a.precision
    lines = [f"**{a.cell}** (`{a.study}`, row {a.row}): {v.text} (checked: {v.describe()})."]
    if a.named is not None:
        lines.append(f"The {a.n_searched} searched values: " + ", ".join(f"`{n}` = {x:.4g}" for n, x in a.named) + ".")
    else:
        lines.append(f"The strategy searched {a.n_searched:,} values (the weights that matter are in the pruned "
                     "form below).")
    lines.append(f"Unit roles: {a.mechanism}.")
    if a.construction is not None:
        lines.append(f"Beside it, the hand-built construction ({a.construction_units} units; "
                     f"{MECHANISMS.get(a.cell.split()[0], '')}): {a.construction.text}.")
    elif a.cell.split()[0] in NO_CONSTRUCTION:
        lines.append("Construction: " + NO_CONSTRUCTION[a.cell.split()[0]].replace("](docs/", "](") + ".")
    for what, c in (("the best row", a.certificate), ("the construction", a.construction_certificate)):
        if c is not None:
            lines.append(f"Certificate of {what}: {c.statement}")
    for w in a.worst:
        lines.append(f"Worst input found at n = {w.length}: |y - x_1| = {w.worst:.3g} ({w.family}); the random "
                     f"sample's max {w.random_max:.3g} over {w.n_random} sequences.")
    if pc is not None:
        s = (f"At n = {pc.length} ({pc.n_sequences} fresh sequences): nmse {pc.float32:.3g} in float32 (cpu), "
             f"{pc.float64:.3g} in float64 (reference)"
             + ("" if pc.torch is None else f", {pc.torch:.3g} in PyTorch {pc.torch_version}") + ".")
        if pc.saturation:
            s += " It rests on float32 saturation: solved in float32, not in float64."
        if pc.torch_drift:
            s += " It drifts under PyTorch's kernels: solved in ours, not in PyTorch's."
        if pc.torch is None and pc.torch_skipped:
            s += f" (PyTorch: {pc.torch_skipped}.)"
        lines.append(s)
    lines += a.notes
    return lines


# ----------------------------------------------------------------- the README's answer table
#: Rows of the README's answer table that are written from the data (``python
#: docs/make_answer_rows.py``) and checked equal to it (tests/test_doc_figures.py): label ->
#: (cell kind, gate-tied study, blind study), both shipped in data/examples. The LSTM, GRU and tanh
#: RNN rows above them are older and checked figure by figure.
README_CELLS = {Cell(k, 1).spec.label: (k, f"recall_first_{k}32", f"blind_{k}32")
                for k in ("mgu", "mingru", "minlstm", "indrnn")}
#: The construction column of a cell without a flag/memory construction: what is known instead.
NO_CONSTRUCTION = {
    "mingru": ("**none exists**: no setting recalls x_1 at every n in exact arithmetic, at any H "
               "([theorem](docs/theorems.md)); one length alone can be fitted (H >= n)"),
    "minlstm": ("**none exists**: no setting recalls x_1 at every n in exact arithmetic, at any H "
                "([theorem](docs/theorems.md))"),
    "indrnn": ("**none known**, and none proven impossible except for settings with every recurrent weight "
               "in (-1, 1), or with no unit ever clipped "
               "([what is proven](docs/theorems.md#indrnn-what-is-proven-and-what-is-not))"),
}


#: The answer page's construction column where none exists (a short form of :data:`NO_CONSTRUCTION`).
NO_CONSTRUCTION_SHORT = {"mingru": "none can exist (docs/theorems.md)", "minlstm": "none can exist (docs/theorems.md)",
                         "indrnn": "none known"}


def sci(v: float) -> str:
    """2 significant digits as the README writes them: 6.1e-11, 3.0e-9, 1.7e-2, 2.6e5, inf."""
    if not np.isfinite(v):
        return "inf" if v > 0 else "nan"
    m, e = f"{v:.1e}".split("e")
    return f"{m}e{int(e)}"


def span(values) -> str:
    """'lo to hi' of nmse values in :func:`sci` form ('X at every length' when they round alike)."""
    values = [float(v) if np.isfinite(v) else np.inf for v in values]
    lo, hi = sci(min(values)), sci(max(values))
    return f"{lo} at every length" if lo == hi else f"{lo} to {hi}"


def search_column(rep: Dict, settings: Optional[int] = None) -> str:
    """The README's column of one searched study from its :func:`lstmsearch.reproduction.reproduce`
    dict: ``**solved**: lo to hi`` (``settings``: the source study's size, said when given)."""
    word = "**solved**" if rep["verdict"]["solved"] else "**not solved**"
    size = "" if settings is None else f" ({settings:,} settings)"
    return f"{word}{size}: {span([f['nmse'] for f in rep['fresh']])}"


def construction_column(kind: str, task, certificate=None) -> str:
    """The README's construction column of a cell kind: the flag/memory construction's worst nmse
    over the checked lengths of ``task`` and its certificate (``lstmsearch certify --cell KIND``),
    or :data:`NO_CONSTRUCTION`'s sentence."""
    if kind not in CONSTRUCTION_UNITS:
        return NO_CONSTRUCTION[kind]
    units = CONSTRUCTION_UNITS[kind]
    v, cert = construction_facts(kind, task, 1e-5, CHECK_SEQUENCES, certificate is None)
    cert = cert if certificate is None else certificate
    word = "**solved**" if v.solved else "**not solved**"
    if cert.kind == "all_n":
        claim = f"certified for every n >= {cert.min_length} in {cert.arithmetic} (error <= {sci(cert.eps)})"
    elif cert.kind == "up_to_n":
        claim = f"certified for n <= {cert.N} in {cert.arithmetic} (error <= {sci(cert.eps)})"
    else:
        claim = "not certified"
    return f"{word}, {units} units: {sci(max(v.nmse))}; {claim}"


def readme_row(label: str, data_dir="data/examples", reproduced=None) -> str:
    """One line of the README's answer table for a :data:`README_CELLS` label, from the shipped rows.
    ``reproduced(study)``: the :func:`lstmsearch.reproduction.reproduce` dict of a study's best row
    (default: computed here; a caller that needs it twice passes its own cache)."""
    from .query import best_row, open_study
    from .reproduction import reproduce

    if reproduced is None:
        def reproduced(study):
            return reproduce(study, best_row(study, data_dir), data_dir=data_dir, check=True)
    kind, tied, blind = README_CELLS[label]
    cols, task = [label], None
    for study, with_size in ((tied, False), (blind, True)):
        rep = reproduced(study)
        cfg, store = open_study(study, data_dir)
        task = task or cfg.task
        size = (store.read_manifest().get("extracted_from") or {}).get("source_rows") if with_size else None
        cols.append(search_column(rep, size))
    cols.append(construction_column(kind, task))
    return "| " + " | ".join(cols) + " |"
