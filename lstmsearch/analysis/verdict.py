r"""Solved means solved: the one definition of a solved setting, and its precision checks.

A setting (a stored row, a construction) is **solved** only when its held-out nmse, with its
*stored* readout (``readout="given"``: the weights found at length n, unchanged), is under the
study's threshold (``[eval] solved``, default 1e-5) at the trained length n **and** at every
length of :data:`CHECK_LENGTHS`:

=========  =======================================================================
n          the trained length
n + 1      not a multiple of n: a setting that decodes the parity of n fails here
2n + 1     odd multiple-plus-one
10n + 3    long, not a multiple of n
100n + 3   very long (2003 steps at n = 20), not a multiple of n
=========  =======================================================================

A task trained at several lengths (``lengths = [20, 21]``, :mod:`lstmsearch.tasks`) is checked
at every trained length, then at the lengths above computed from the longest trained one
(n = max of them): :func:`task_check_lengths`. "At n" then reads "at every trained length".

An offset k that would make ``m n + k`` a multiple of n (n = 3: 10n + 3 = 33) is raised to the
next length that is not (34). The sequences are fresh: seed :data:`FRESH_SEED`, never the
study's, held-out stream; by default :data:`CHECK_SEQUENCES` (1,024) of them per length -- the one
number of every command that judges a row (``reproduce``, ``top``'s solved column, ``report``, the
run summary, the answer page), so that they all print the same digits -- and each of them says how
many it used. (100n + 3 at n = 20 is 2003 steps x 1,024 sequences per setting: 2.2 s for five rows
of a 32-unit LSTM on 2 cores, 0.5 s of a 32-unit tanh RNN; 0.7 s and 0.1 s with 256.) The
simulation is float32 on the ``cpu`` backend: what users run.

The verdict (:class:`Verdict`) is one of

``solved at every checked length``
    under the threshold at n and at every checked length;
``solved at n only``
    under it at n (at every trained length), over it at every other checked length;
``solved at some lengths``
    under it at n (at every trained length) and some (not all) other lengths;
``not solved``
    over it at n (at some trained length) -- whatever the other lengths give.

:func:`precision_check` scores a setting at one (long) length three ways -- float32 on our
kernels, float64 on the NumPy reference backend, and PyTorch's own ``nn.LSTM/GRU/RNN`` after
export (torch is optional: without it that part is skipped with a one-line reason) -- and says
when a solution **depends on float32 saturation** (under the threshold in float32, over it in
float64) or **drifts under PyTorch's kernels** (under it in ours, over it in PyTorch; PyTorch's
GRU computes h' = (h - n) * z + n, ours n + z (h - n) with the multiply-add fused where LLVM
contracts it: the two can round differently).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..cells import Cell
from ..config import CHECK_SEQUENCES as _CHECK_SEQUENCES
from ..errors import LstmsearchError, import_optional, require
from ..query import open_study, settings_of
from ..tasks import HELDOUT_STREAM, Task
from .length import length_curve

#: Seed of the fresh sequences of every check (far from the seeds studies use); ``reproduce``'s
#: fresh sequences too.
FRESH_SEED = 1_000_003

#: The checked lengths, as (m, k): length m * n + k for a task trained at length n (see module doc).
CHECK_LENGTHS: Tuple[Tuple[int, int], ...] = ((1, 0), (1, 1), (2, 1), (10, 3), (100, 3))

#: Fresh sequences per checked length: the one default of every command that judges a row
#: (``reproduce``, ``top``'s solved column, ``report`` and the answer page, the run summary);
#: defined in :mod:`lstmsearch.config` (beside the threshold), so the command line's help can name it.
CHECK_SEQUENCES = _CHECK_SEQUENCES

ALL, SOME, N_ONLY, NONE = "solved at every checked length", "solved at some lengths", "solved at n only", "not solved"
#: Short forms, for a table column (``lstmsearch top``).
SHORT = {ALL: "every length", SOME: "some lengths", N_ONLY: "n only", NONE: "no"}


def check_lengths(n: int, min_length: int = 1) -> List[int]:
    """The lengths checked for a task trained at length ``n`` (:data:`CHECK_LENGTHS`), in order.

    ``m n + k`` with k > 0 is raised to the next length that is not a multiple of n (n > 1);
    lengths below ``min_length`` are raised to it; duplicates are dropped.
    """
    require(isinstance(n, (int, np.integer)) and n >= 1, f"the trained length must be a positive integer, got {n!r}")
    out: List[int] = []
    for m, k in CHECK_LENGTHS:
        L = m * int(n) + k
        while k and n > 1 and L % n == 0:
            L += 1
        L = max(L, int(min_length))
        if L not in out:
            out.append(L)
    return out


def task_check_lengths(task: Task) -> List[int]:
    """The lengths checked for ``task``: its trained lengths (``task.scored_lengths``, all of
    them), then :func:`check_lengths` of the longest trained length beyond n itself."""
    trained = list(task.scored_lengths)
    return trained + [L for L in check_lengths(task.length, task.min_length)[1:] if L not in trained]


@dataclass(frozen=True)
class Verdict:
    """Whether one setting is solved at every checked length (see the module doc)."""

    status: str                     # ALL, SOME, N_ONLY or NONE
    n: int                          # the trained length (the longest, for several)
    lengths: Tuple[int, ...]        # the checked lengths (the trained ones first)
    nmse: Tuple[float, ...]         # held-out nmse with the stored readout, per length
    max_abs_err: Tuple[float, ...]
    threshold: float
    n_sequences: int
    seed: int = FRESH_SEED
    backend: str = "cpu"
    trained: Tuple[int, ...] = ()   # the trained lengths when several (empty: n alone)

    @property
    def trained_lengths(self) -> Tuple[int, ...]:
        return self.trained or (self.n,)

    @property
    def solved(self) -> bool:
        """True only when solved at every checked length."""
        return self.status == ALL

    @property
    def short(self) -> str:
        return SHORT[self.status]

    @property
    def failing(self) -> List[int]:
        return [L for L, e in zip(self.lengths, self.nmse) if not e < self.threshold]

    @property
    def text(self) -> str:
        """One line: the verdict, then the lengths it fails at."""
        if self.status == ALL:
            return f"{ALL} ({', '.join(map(str, self.lengths))})"
        worst = max(range(len(self.nmse)), key=lambda i: (not np.isfinite(self.nmse[i]), self.nmse[i]))
        k = len(self.trained_lengths)
        at_n = f"n = {self.n}" if k == 1 else f"the trained lengths {', '.join(map(str, self.trained_lengths))}"
        if self.status == NONE:
            i = max(range(k), key=lambda i: (not np.isfinite(self.nmse[i]), self.nmse[i]))
            return f"{NONE}: nmse {self.nmse[i]:.3g} at " + (f"n = {self.n}" if k == 1 else f"trained length "
                                                             f"{self.lengths[i]}") + (
                f", up to {self.nmse[worst]:.3g} at {self.lengths[worst]}" if worst >= k else "")
        ok = [L for L in self.lengths if L not in self.failing]
        head = f"solved at {at_n} only" if self.status == N_ONLY else f"solved at {', '.join(map(str, ok))} only"
        return f"{head}: fails at {', '.join(map(str, self.failing))} (nmse up to {self.nmse[worst]:.3g} at " \
               f"{self.lengths[worst]})"

    def describe(self) -> str:
        """How the verdict was reached, in one line."""
        return (f"nmse < {self.threshold:g} with the stored readout at lengths {', '.join(map(str, self.lengths))} "
                f"({'n = ' + str(self.n) if len(self.trained_lengths) == 1 else 'trained at ' + ', '.join(map(str, self.trained_lengths))}), {self.n_sequences} fresh sequences (seed {self.seed}), float32 on the "
                f"{self.backend} backend")

    def as_dict(self) -> Dict:
        return {"status": self.status, "text": self.text, "solved": self.solved, "n": self.n,
                "lengths": list(self.lengths), "nmse": list(self.nmse), "max_abs_err": list(self.max_abs_err),
                "threshold": self.threshold, "n_sequences": self.n_sequences, "seed": self.seed,
                "backend": self.backend, **({"trained": list(self.trained)} if self.trained else {})}


def _status(ok: Sequence[bool], k: int = 1) -> str:
    """The status from per-length passes, the first ``k`` at the trained lengths."""
    if not all(ok[:k]):
        return NONE
    if all(ok):
        return ALL
    return N_ONLY if not any(ok[k:]) else SOME


def verdicts(cell: Cell, params, task: Task, threshold: float, n_sequences: int = CHECK_SEQUENCES,
             seed: int = FRESH_SEED, backend: str = "cpu", lengths: Optional[Sequence[int]] = None) -> List[Verdict]:
    """The verdict of each setting of ``params`` (P, D) or (D,), trained at ``task.scored_lengths``.

    ``lengths`` (default :func:`task_check_lengths`) must start with the trained length(s). One
    simulation per length for all P settings (:func:`~lstmsearch.analysis.length.length_curve`,
    readout ``given``).
    """
    require(np.isfinite(threshold) and threshold > 0, f"the solve threshold must be positive, got {threshold!r}")
    n, trained = task.length, [int(L) for L in task.scored_lengths]
    lengths = [int(L) for L in (lengths if lengths is not None else task_check_lengths(task))]
    require(lengths[:len(trained)] == trained,
            f"the checked lengths must start with the trained length(s) {trained}, got {lengths}")
    t = length_curve(cell, params, task, lengths=lengths, readout="given", n_sequences=n_sequences, seed=seed,
                     backend=backend).to_pydict()
    P = max(t["setting"]) + 1
    out = []
    for p in range(P):
        by = {L: (e, m) for s, L, e, m in zip(t["setting"], t["length"], t["nmse"], t["max_abs_err"]) if s == p}
        nmse = tuple(float(by[L][0]) for L in lengths)
        out.append(Verdict(status=_status([e < threshold for e in nmse], len(trained)), n=n, lengths=tuple(lengths),
                           nmse=nmse, max_abs_err=tuple(float(by[L][1]) for L in lengths), threshold=float(threshold),
                           n_sequences=int(n_sequences), seed=int(seed), backend=backend,
                           trained=tuple(trained) if len(trained) > 1 else ()))
    return out


def verdict(cell: Cell, params, task: Task, threshold: float, **kw) -> Verdict:
    """The verdict of one setting (D,); keywords as :func:`verdicts`."""
    params = np.asarray(params)
    require(params.ndim == 1 or params.shape[0] == 1, f"verdict takes one setting, got shape {params.shape}")
    return verdicts(cell, params.reshape(1, -1), task, threshold, **kw)[0]


def row_verdicts(study, rows: Sequence[int], data_dir="data", n_sequences: int = CHECK_SEQUENCES,
                 seed: int = FRESH_SEED, code_optional: bool = False) -> Dict[int, Verdict]:
    """{row id: verdict} for stored rows of a study, against its ``[eval] solved`` threshold.

    The settings are the stored ones (weights and readout), rebuilt where only z or a sweep key
    was kept. All rows are checked in one batch per length. A row that only the study's template
    code rebuilds, which reading does not run unless allowed, is refused
    (:class:`~lstmsearch.errors.StudyCodeRefused`); with ``code_optional`` it is left out of the result.
    """
    if code_optional:
        from ..errors import StudyCodeRefused

        try:
            return row_verdicts(study, rows, data_dir, n_sequences, seed)
        except StudyCodeRefused:
            import pyarrow as pa
            import pyarrow.compute as pc

            _, store = open_study(study, data_dir)
            t = store.read(columns=["row", "weights"], filter=pc.field("row").isin(pa.array([int(r) for r in rows], pa.int64())))
            kept = [r for r, w in zip(t.column("row").to_pylist(), t.column("weights").is_valid().to_pylist()) if w]
            return row_verdicts(study, kept, data_dir, n_sequences, seed) if kept else {}
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = [int(r) for r in rows]
    if not rows:
        return {}
    cfg, store = open_study(study, data_dir)
    # only the asked rows are read (a blind study holds GBs of weights)
    t = store.read(filter=pc.field("row").isin(pa.array(rows, pa.int64())))
    ids = t.column("row").to_pylist()
    missing = sorted(set(rows) - set(ids))
    require(not missing, f"study {cfg.name} has no row {missing[0] if missing else ''}")
    settings = settings_of(cfg, store, t)
    vs = verdicts(cfg.cell, settings, cfg.task, cfg.eval.solved, n_sequences=n_sequences, seed=seed)
    return {int(r): v for r, v in zip(ids, vs)}


# ----------------------------------------------------------------- precision and export
@dataclass
class PrecisionCheck:
    """One setting at one length: float32 (our kernels), float64 (reference), PyTorch."""

    length: int
    threshold: float
    n_sequences: int
    float32: float                  # nmse, cpu backend
    float64: float                  # nmse, reference backend
    torch: Optional[float] = None   # nmse through the exported nn.Module (None: skipped)
    torch_skipped: Optional[str] = None
    torch_version: Optional[str] = None
    cell: str = ""
    notes: List[str] = field(default_factory=list)

    @property
    def saturation(self) -> bool:
        """Solved in float32, not in float64: the solution rests on float32 saturation."""
        return self.float32 < self.threshold and not self.float64 < self.threshold

    @property
    def torch_drift(self) -> bool:
        """Solved in our float32 kernels, not under PyTorch's."""
        return self.torch is not None and self.float32 < self.threshold and not self.torch < self.threshold

    def as_dict(self) -> Dict:
        return {"length": self.length, "threshold": self.threshold, "n_sequences": self.n_sequences,
                "float32": self.float32, "float64": self.float64, "torch": self.torch,
                "torch_skipped": self.torch_skipped, "torch_version": self.torch_version, "cell": self.cell,
                "saturation": self.saturation, "torch_drift": self.torch_drift, "notes": list(self.notes)}


def torch_nmse(cell: Cell, params, task: Task, n_sequences: int, seed: int = FRESH_SEED) -> float:
    """nmse of one setting run by PyTorch (``cell.torch_model``: nn.LSTM/GRU/RNN in float32 + the float64
    nn.Linear readout, cpu: the exported model) on the held-out sequences of ``seed`` that :func:`verdicts` uses (one batch)."""
    torch = import_optional("torch", "torch", "the PyTorch check")
    params = cell.check_params(np.asarray(params))
    require(params.shape[0] == 1, f"torch_nmse takes one setting, got {params.shape[0]}")
    x, y = task.sample(n_sequences, seed, HELDOUT_STREAM)
    model = cell.torch_model(params[0]).eval()
    with torch.no_grad():
        seq, _ = model.rnn(torch.from_numpy(x))
        out = model.readout(seq[torch.from_numpy(task.output_steps())].double()).numpy()  # float64, as exported
    if not np.isfinite(out).all():
        return float("inf")
    return float(np.mean((out - y) ** 2) / task.baseline)


def precision_check(cell: Cell, params, task: Task, threshold: float, length: Optional[int] = None,
                    n_sequences: int = CHECK_SEQUENCES, seed: int = FRESH_SEED,
                    with_torch: bool = True) -> PrecisionCheck:
    """Score one setting at ``length`` (default: the longest checked length) in float32, float64 and PyTorch.

    The three see the same fresh sequences. Without torch installed (or ``with_torch=False``) the
    PyTorch score is None and ``torch_skipped`` says why, in one line.
    """
    params = np.asarray(params, np.float32).reshape(1, -1)
    length = int(length or check_lengths(task.length, task.min_length)[-1])
    t = task.with_length(length)
    f32 = length_curve(cell, params, t, lengths=[length], readout="given", n_sequences=n_sequences, seed=seed,
                       backend="cpu").column("nmse")[0].as_py()
    f64 = length_curve(cell, params, t, lengths=[length], readout="given", n_sequences=n_sequences, seed=seed,
                       backend="reference").column("nmse")[0].as_py()
    pc = PrecisionCheck(length=length, threshold=float(threshold), n_sequences=int(n_sequences), float32=f32,
                        float64=f64, cell=cell.kind)
    if not with_torch:
        pc.torch_skipped = "PyTorch check not asked for"
    else:
        try:
            pc.torch_version = import_optional("torch", "torch", "the PyTorch check").__version__
            pc.torch = torch_nmse(cell, params, t, n_sequences, seed)
        except LstmsearchError as exc:
            pc.torch_skipped = f"PyTorch check skipped: {str(exc).removeprefix('lstmsearch: ')}"
    if f64 < threshold and not f32 < threshold:
        pc.notes.append(f"float32 rounding breaks it: solved in float64 (nmse {f64:.3g}) but not in float32 "
                        f"(nmse {f32:.3g}) at length {length}")
    if pc.torch is not None and pc.torch < threshold and not f32 < threshold:
        pc.notes.append(f"solved under PyTorch's kernels (nmse {pc.torch:.3g}) but not in ours (nmse {f32:.3g}) "
                        f"at length {length}")
    if f32 < threshold and f64 < threshold and f64 > 10 * f32:
        pc.notes.append(f"leans on float32: nmse {f64 / f32:.0f}x larger in float64 ({f64:.3g}) than in float32 "
                        f"({f32:.3g}) at length {length}, still under the threshold there")
    if pc.torch is not None and f32 < threshold and pc.torch < threshold and pc.torch > 10 * f32:
        pc.notes.append(f"PyTorch's kernels round differently: nmse {pc.torch / f32:.0f}x larger in PyTorch "
                        f"({pc.torch:.3g}) at length {length}, still under the threshold there")
    if pc.saturation:
        pc.notes.append(f"depends on float32 saturation: solved in float32 (nmse {f32:.3g}) but not in float64 "
                        f"(nmse {f64:.3g}) at length {length}; in exact arithmetic it does not hold")
    if pc.torch_drift:
        why = cell.spec.extra.get("torch_rounding", "")
        pc.notes.append(f"drifts under PyTorch's kernels: solved in ours (nmse {f32:.3g}) but nmse {pc.torch:.3g} "
                        f"in PyTorch at length {length}{why}")
    return pc
