r"""A gradient-descent baseline: what people try first, scored with our evaluator.

A ``torch.nn.LSTM/GRU/RNN`` with a linear readout (:meth:`lstmsearch.Cell.torch_model`, PyTorch's
default initialisation) is trained with Adam on the square loss

.. math::  L = \frac{1}{B} \sum_b \| W_{out} h_n^{(b)} + b_{out} - y^{(b)} \|^2

on fresh batches of the task's own sequences (``task.sample(batch, seed, stream=2 + step)``:
streams 2, 3, ... of the seed, never the evaluator's streams 0 and 1), with the gradient norm
clipped. The trained weights are converted to the flat layout with
:meth:`lstmsearch.Cell.from_torch` and scored by :func:`lstmsearch.evaluate` (readout as
trained, float32 ``cpu`` kernels) at the training length n and at longer lengths -- the same
numbers the search results are reported with. :func:`torch_nmse` scores the torch model itself
on the same held-out sequences: the two agree when the conversion is right.

PyTorch is optional: ``pip install 'lstmsearch[torch]'``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ..cells import Cell
from ..errors import import_optional, require
from ..tasks import HELDOUT_STREAM, Task

#: Seed of the sequences the trained settings are scored on (as :mod:`lstmsearch.reproduction`).
SCORE_SEED = 1_000_003


def _torch():
    return import_optional("torch", "torch", "the gradient baseline")


@dataclass
class Trained:
    """A trained model, its flat setting and the training curve (nmse of each step's batch)."""

    cell: Cell
    params: np.ndarray  # (D,) float32, readout as trained
    model: object  # the torch module (rnn + readout)
    losses: List[float] = field(default_factory=list)  # per step: batch mse / task baseline
    seconds: float = 0.0


def train(kind: str, task: Task, hidden: int = 32, steps: int = 3000, batch: int = 128, lr: float = 3e-3,
          clip: float = 1.0, seed: int = 0, threads: int = 1, forget_bias: Optional[float] = None) -> Trained:
    """Train ``Cell(kind, hidden).torch_model()`` with Adam on ``task``; see the module doc.

    ``forget_bias`` (LSTM only): start the forget gate's bias_ih at this value and its bias_hh
    at 0 instead of PyTorch's U(-1/sqrt(H), 1/sqrt(H)) (Gers et al. 2000; Jozefowicz et al.
    2015 recommend 1).
    """
    torch = _torch()
    require(task.output_steps().tolist() == [task.length - 1],
            f"the gradient baseline trains final-output tasks; {task.name} is scored at several steps")
    require(isinstance(steps, int) and steps >= 1, f"steps must be a positive integer, got {steps!r}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    cell = Cell(kind, hidden, task.n_inputs, task.n_outputs)
    model = cell.torch_model()
    if forget_bias is not None:
        require(kind == "lstm", f"forget_bias is for the lstm; a {kind} has no forget gate")
        rows = cell.gate_rows("f")
        with torch.no_grad():
            model.rnn.bias_ih_l0[rows] = float(forget_bias)
            model.rnn.bias_hh_l0[rows] = 0.0
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    t0 = time.perf_counter()
    for step in range(steps):
        x, y = task.sample(batch, seed, stream=2 + step)
        pred = model(torch.from_numpy(x))
        loss = torch.mean((pred - torch.from_numpy(y[-1]).to(pred.dtype)) ** 2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(float(loss.detach()) / task.baseline)
    seconds = time.perf_counter() - t0
    _, params = Cell.from_torch(model.rnn, model.readout)
    model.load_state_dict(cell.torch_state_dict(params))  # the float64 readout rounded to the float32 setting
    return Trained(cell, params, model, losses, seconds)


def torch_nmse(model, task: Task, n_sequences: int = 1024, seed: int = SCORE_SEED) -> float:
    """Held-out nmse of the torch model itself, on the sequences ``evaluate`` scores (stream 1 of seed)."""
    torch = _torch()
    x, y = task.sample(n_sequences, seed, HELDOUT_STREAM)
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).double().numpy()
    return float(np.mean((pred - y[-1]) ** 2) / task.baseline)


def score(trained: Trained, task: Task, factors: Sequence[int] = (1, 10, 100), n_sequences: int = 1024,
          seed: int = SCORE_SEED, backend: str = "cpu") -> List[float]:
    """Our held-out nmse of the converted setting (readout as trained) at each factor x the length."""
    from ..evaluate import evaluate

    out = []
    for f in factors:
        t = evaluate(trained.cell, trained.params[None], task.with_length(task.length * int(f)),
                     n_sequences=n_sequences, seed=seed, backend=backend, readout="given")
        out.append(float(t.column("nmse")[0].as_py()))
    return out
