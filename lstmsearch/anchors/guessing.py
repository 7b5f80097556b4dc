r"""Weight guessing: how many random draws until a net solves a long-lag benchmark?

Hochreiter & Schmidhuber (NIPS 1996, "LSTM can solve hard long time lag problems") and
Schmidhuber, Hochreiter & Bengio (2001, "Evaluating benchmark problems by random
guessing") measured a benchmark's difficulty by *random guessing* (RG)::

    REPEAT draw every weight independently, uniform in [-100, 100]
    UNTIL the net classifies all training sequences correctly

and reported the number of draws, averaged over 40 runs. Their training sets had 100
sequences (50 per class) of lengths drawn from 500 to 600, and a sequence counted as
correct when the absolute error at its end was below 0.1. Published means: latch
variant II about 22 draws, parity (architecture A1) about 2,906.

Here the nets are this package's cells (LSTM, GRU, tanh RNN) with a linear readout, so the
comparison is of kind, not of identical nets (theirs were small fully connected sigmoid
nets, with a sigmoid output unit). Choices, stated once:

*Lengths.* A task has one length per call, so "lengths 500-600" is realised as
``lengths`` groups (default 500, 525, 550, 575, 600) of ``per_length`` sequences each
(default 20: 100 training sequences, 10 of each class per group). Group g's training
sequences are stream 2g of ``eval_seed``, its test sequences stream 2g + 1.

*Draws.* Draw i of run r is row i % 1024 of block i // 1024, a (1024, D) array uniform in
[-scale, scale] from NumPy's Philox keyed by SeedSequence([seed, 401, r, block]): every
setting is regenerable from (seed, run, index) whatever the batch sizes
(:func:`draw_settings`). The count of a run is index + 1 of its first solving draw.

*Readout.* ``readout="given"``: the readout weights are drawn with the rest (faithful to
the papers). ``readout="fit"``: only the recurrent weights are guessed; the readout is
fitted in closed form on the training sequences (:func:`lstmsearch.readout.fit`, the
reservoir trick) and the criterion is checked on those same sequences. ``readout="unit"``:
the output is hidden unit 0 itself (readout fixed to weight e_0, bias 0), as in the
papers' nets whose output unit is a unit of the net; for ``rnn_tanh`` with H = 1 this is
their latch variant II net (one tanh unit: self, input and bias weights -- ours has two
biases, b_ih + b_hh, both drawn).

*Criterion.* ``criterion="abs"``: every training sequence has ``|y_hat - y| < tol`` (0.1,
the papers'). ``criterion="class"``: every y_hat lies on its target's side of the midpoint
of the two class targets. A guessed *linear* readout with weights of size 100 almost never
lands within 0.1 of both targets, whereas the papers' sigmoid output unit saturates onto
them; "class" is what a saturating output unit makes of the same hidden states.

Evaluation uses :func:`lstmsearch.evaluate.simulate` (final states of many draws per
kernel call). With the given readout a draw that fails on the first length group is not
simulated on the others (exact: each sequence is judged on its own). Runs stop at their
first solving draw or at ``max_draws``; capped runs are reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import readout as readout_mod
from ..cells import Cell
from ..errors import require
from ..evaluate import simulate
from ..tasks import make_task

BLOCK = 1024
STREAM = 401
LENGTHS = (500, 525, 550, 575, 600)
TASKS = ("latch", "two_sequence", "parity")
READOUTS = ("given", "unit", "fit")
#: Published mean draws (Hochreiter & Schmidhuber 1996; Schmidhuber, Hochreiter & Bengio 2001).
PUBLISHED = {
    "latch": "~22 (variant II, 1 tanh unit); ~6 (variant I)",
    "two_sequence": "hundreds (secondary sources)",
    "parity": "~2,906 (A1); ~2,797 (A2)",
}


def draw_settings(cell: Cell, seed: int, run: int, start: int, stop: int, scale: float = 100.0,
                  zero: Sequence[str] = ()) -> np.ndarray:
    """Draws start..stop-1 of run ``run``: (stop - start, D) float32 uniform in [-scale, scale].

    The blocks named in ``zero`` (e.g. ``("bias_hh_l0",)``: one bias per unit, as in the
    papers' nets) are set to 0 after drawing, so the other weights do not change.
    """
    require(0 <= start <= stop, f"need 0 <= start <= stop, got start={start}, stop={stop}")
    D = cell.n_params
    out = np.empty((stop - start, D), np.float32)
    i = start
    while i < stop:
        b = i // BLOCK
        rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([int(seed), STREAM, int(run), int(b)])))
        block = rng.uniform(-scale, scale, size=(BLOCK, D)).astype(np.float32)
        lo, hi = i - b * BLOCK, min(stop - b * BLOCK, BLOCK)
        out[i - start:i - start + hi - lo] = block[lo:hi]
        i += hi - lo
    for name in zero:
        out[:, cell.block(name).slice] = 0.0
    return out


def unit_readout(cell: Cell) -> np.ndarray:
    """The readout (O*H+O,) float32 that outputs hidden unit 0: weight e_0, bias 0."""
    ro = np.zeros(cell.n_readout, np.float32)
    ro[0] = 1.0
    return ro


@dataclass
class TrainingSet:
    """The guessing sequences of a task: one (x, y) per length group, for training and test."""

    task: object
    lengths: Tuple[int, ...]
    train: List[Tuple[np.ndarray, np.ndarray]]
    test: List[Tuple[np.ndarray, np.ndarray]]

    @classmethod
    def make(cls, kind: str, lengths: Sequence[int] = LENGTHS, per_length: int = 20, eval_seed: int = 0,
             **task_params) -> "TrainingSet":
        require(kind in TASKS, f"weight guessing takes the tasks {', '.join(TASKS)}, got {kind!r}")
        require(len(lengths) >= 1, "weight guessing needs at least one length")
        tasks = [make_task(kind, length=int(n), **task_params) for n in lengths]
        train = [t.sample(per_length, eval_seed, 2 * g) for g, t in enumerate(tasks)]
        test = [t.sample(per_length, eval_seed, 2 * g + 1) for g, t in enumerate(tasks)]
        return cls(tasks[0], tuple(int(n) for n in lengths), train, test)


def _final_h(cell, params, x, backend):
    h = simulate(cell, params, x, backend=backend)
    return h[0] if cell.memory else h


def _correct(pred, y, criterion, tol, threshold):
    """(P, N) bool: is each prediction (P, N) right for targets y (N,)?"""
    with np.errstate(invalid="ignore", over="ignore"):
        if criterion == "abs":
            ok = np.abs(pred - y[None]) < tol
        else:
            ok = (pred > threshold) == (y[None] > threshold)
    return ok & np.isfinite(pred)


def score(cell: Cell, params: np.ndarray, data: TrainingSet, readout: str = "given", criterion: str = "abs",
          tol: float = 0.1, backend: str = "cpu") -> Tuple[np.ndarray, np.ndarray]:
    """(solved (P,) bool, readouts (P, O*H+O) float32): does each setting classify every training sequence?

    The readout is the setting's own (``given``), hidden unit 0 (``unit``) or fitted on all
    training groups (``fit``).
    """
    require(readout in READOUTS, f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
    require(criterion in ("abs", "class"), f"criterion must be 'abs' or 'class', got {criterion!r}")
    params = cell.check_params(params)
    P, O, H = params.shape[0], cell.outputs, cell.hidden
    thr = data.task.threshold()
    if readout in ("given", "unit"):
        ro = params[:, cell.n_recurrent:].copy() if readout == "given" else np.tile(unit_readout(cell), (P, 1))
        alive = np.arange(P)
        for x, y in data.train:  # a draw wrong on one group is not simulated on the next
            if alive.size == 0:
                break
            h = _final_h(cell, params[alive], x, backend)
            pred = readout_mod.apply(h, ro[alive], O)[..., 0]
            alive = alive[_correct(pred, y[0, :, 0], criterion, tol, thr).all(axis=1)]
        solved = np.zeros(P, bool)
        solved[alive] = True
        return solved, ro
    hs = np.concatenate([_final_h(cell, params, x, backend) for x, _ in data.train], axis=1)  # (P, N, H)
    ys = np.concatenate([y[0, :, 0] for _, y in data.train])
    finite = np.isfinite(hs).all(axis=(1, 2))
    hs = np.where(finite[:, None, None], hs, 0.0)
    ro = readout_mod.fit(hs, ys[:, None])
    pred = readout_mod.apply(hs, ro, O)[..., 0]
    solved = _correct(pred, ys, criterion, tol, thr).all(axis=1) & finite & np.isfinite(ro).all(axis=1)
    return solved, ro


def share_correct(cell: Cell, setting: np.ndarray, data: TrainingSet, criterion: str = "abs", tol: float = 0.1,
               backend: str = "cpu") -> float:
    """Share of the test sequences (all groups) that one setting, with its readout, gets right."""
    setting = cell.check_params(setting)
    ok = []
    for x, y in data.test:
        h = _final_h(cell, setting, x, backend)
        pred = readout_mod.apply(h, setting[:, cell.n_recurrent:], cell.outputs)[..., 0]
        ok.append(_correct(pred, y[0, :, 0], criterion, tol, data.task.threshold())[0])
    return float(np.concatenate(ok).mean())


@dataclass
class GuessResult:
    """Draw counts of the runs of one guessing experiment.

    ``draws[r]`` is the 1-based index of run r's first solving draw, or the number of draws
    a capped run made (``max_draws``, or fewer when ``max_seconds`` ran out; ``solved[r]``
    false). ``readouts[r]`` is the solving draw's readout
    (fitted or its own); ``test[r]`` its share of correct test sequences (nan if capped).
    """

    cell: Cell
    task: str
    readout: str
    criterion: str
    tol: float
    seed: int
    scale: float
    max_draws: int
    draws: np.ndarray
    solved: np.ndarray
    readouts: np.ndarray
    test: np.ndarray
    wall_s: float = 0.0
    zero: Tuple[str, ...] = ()
    task_params: Dict = field(default_factory=dict)

    def setting(self, run: int) -> np.ndarray:
        """Run ``run``'s solving setting (D,), regenerated from (seed, run, index), readout spliced in."""
        require(bool(self.solved[run]), f"run {run} was capped at {self.max_draws} draws: it has no solving setting")
        i = int(self.draws[run]) - 1
        p = draw_settings(self.cell, self.seed, run, i, i + 1, self.scale, self.zero)
        return self.cell.with_readout(p, self.readouts[run])[0]

    def stats(self) -> Dict[str, float]:
        """mean, median, sem over solved runs; ``rate_mean`` = total draws / solved runs.

        ``rate_mean`` is the censored maximum-likelihood estimate of the mean of a geometric
        count (capped runs add their draws but no success): the fair figure when some runs
        were capped, where the mean over solved runs alone is biased low.
        """
        d = self.draws[self.solved].astype(float)
        n = d.size
        return {
            "runs": int(self.draws.size), "solved": n, "capped": int(self.draws.size - n),
            "mean": float(d.mean()) if n else float("nan"),
            "median": float(np.median(d)) if n else float("nan"),
            "sem": float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
            "max": float(d.max()) if n else float("nan"),
            "rate_mean": float(self.draws.sum() / n) if n else float("inf"),
            "test": float(np.nanmean(self.test)) if n else float("nan"),
        }


def guess(cell: Cell, task: str, runs: int = 40, seed: int = 0, readout: str = "given", criterion: str = "abs",
          tol: float = 0.1, scale: float = 100.0, max_draws: int = 20000, lengths: Sequence[int] = LENGTHS,
          per_length: int = 20, eval_seed: int = 0, backend: str = "cpu", first_batch: int = 64,
          max_population: int = 32768, max_seconds: Optional[float] = None, data: Optional[TrainingSet] = None,
          zero: Sequence[str] = (), **task_params) -> GuessResult:
    """Random guessing on ``task`` for ``runs`` runs (see module doc); returns the draw counts.

    All unfinished runs are evaluated together: each round draws the next ``size`` settings
    of every unfinished run (``size`` starts at ``first_batch`` and grows 4x a round, with
    at most ``max_population`` settings a round) and scores them in one population; the
    counts do not depend on the batch sizes. After ``max_seconds`` no new round starts and
    the unfinished runs are capped at the draws they made (``max_draws`` caps them too).
    """
    import time

    require(isinstance(runs, (int, np.integer)) and runs >= 1, f"runs must be a positive integer, got {runs!r}")
    require(isinstance(max_draws, (int, np.integer)) and max_draws >= 1,
            f"max_draws must be a positive integer, got {max_draws!r}")
    require(np.isfinite(scale) and scale > 0, f"scale must be positive, got {scale!r}")
    require(tol > 0, f"tol must be positive, got {tol!r}")
    t0 = time.perf_counter()
    for name in zero:
        cell.block(name)  # an unknown block name is a one-line error
    data = data or TrainingSet.make(task, lengths, per_length, eval_seed, **task_params)
    require(cell.inputs == 1 and cell.outputs == 1, f"task {task} needs a cell with inputs=1, outputs=1")
    nxt = np.zeros(runs, np.int64)
    draws = np.full(runs, max_draws, np.int64)
    solved = np.zeros(runs, bool)
    readouts = np.zeros((runs, cell.n_readout), np.float32)
    size = first_batch
    active = list(range(runs))
    while active:
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            draws[active] = nxt[active]
            break
        size = max(1, min(size, max_population // len(active)))
        counts = [min(size, max_draws - int(nxt[r])) for r in active]
        params = np.concatenate([draw_settings(cell, seed, r, int(nxt[r]), int(nxt[r]) + c, scale, zero)
                                 for r, c in zip(active, counts)])
        ok, ro = score(cell, params, data, readout, criterion, tol, backend)
        still, off = [], 0
        for r, c in zip(active, counts):
            hit = np.flatnonzero(ok[off:off + c])
            if hit.size:
                draws[r] = nxt[r] + hit[0] + 1
                solved[r] = True
                readouts[r] = ro[off + hit[0]]
            else:
                nxt[r] += c
                if nxt[r] < max_draws:
                    still.append(r)
            off += c
        active = still
        size *= 4
    res = GuessResult(cell, task, readout, criterion, float(tol), int(seed), float(scale), int(max_draws), draws,
                      solved, readouts, np.full(runs, np.nan), zero=tuple(zero), task_params=dict(task_params))
    for r in np.flatnonzero(solved):
        res.test[r] = share_correct(cell, res.setting(r), data, criterion, tol, backend)
    res.wall_s = time.perf_counter() - t0
    return res


def format_table(results: Sequence[GuessResult]) -> List[str]:
    """One line per result: cell, task, readout, criterion, runs, capped, mean, median, sem, published."""
    head = (f"{'cell':<9}{'H':>2} {'task':<13}{'readout':<8}{'crit':<6}{'runs':>5}{'capped':>7}"
            f"{'mean':>9}{'median':>8}{'sem':>8}{'draws/solve':>12}{'test':>6}{'s':>6}  published mean")
    lines = [head]
    for r in results:
        s = r.stats()
        ro = r.readout + ("*" if r.zero else "")
        lines.append(f"{r.cell.kind:<9}{r.cell.hidden:>2} {r.task:<13}{ro:<8}{r.criterion:<6}{s['runs']:>5}"
                     f"{s['capped']:>7}{s['mean']:>9.1f}{s['median']:>8.1f}{s['sem']:>8.1f}{s['rate_mean']:>12.1f}"
                     f"{s['test']:>6.2f}{r.wall_s:>6.0f}  {PUBLISHED.get(r.task, '')}")
    return lines
