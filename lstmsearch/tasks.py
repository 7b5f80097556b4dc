"""Tasks: sequence generators, targets and predict-the-mean baselines.

A task makes time-major input sequences ``x`` of shape (T, B, I) and targets ``y`` of
shape (S, B, O), where S is the number of *output steps* (the time indices at which the
readout is read, :meth:`Task.output_steps`). For the final-output tasks S = 1 and the
step is T - 1.

Every task states its trivial baseline analytically: the mean squared error of always
predicting the target's mean, averaged over outputs (that is, the mean per-output
variance of the target). Errors are reported normalised: NMSE = MSE / baseline, so 1
means "no better than the mean" and 0 is perfect recall.

Sequences are drawn with NumPy's counter-based Philox generator keyed by
``(seed, stream)``: the same (seed, stream) always gives the same sequences; the
training and held-out sets use different streams.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from .errors import LstmsearchError, require

TRAIN_STREAM = 0
HELDOUT_STREAM = 1


def as_float32(a: np.ndarray) -> np.ndarray:
    """Round to float32, the precision the kernels see, so targets equal inputs exactly."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """The generator for one (seed, stream) pair: Philox keyed by a SeedSequence."""
    require(isinstance(seed, (int, np.integer)) and seed >= 0, f"seed must be a non-negative integer, got {seed!r}")
    return np.random.Generator(np.random.Philox(np.random.SeedSequence([int(seed), int(stream)])))


# ----------------------------------------------------------------- distributions
@dataclass(frozen=True)
class Uniform:
    """Reals uniform in [low, high], ``dim`` features per step."""

    low: float = -1.0
    high: float = 1.0
    dim: int = 1
    kind = "uniform"

    def __post_init__(self):
        require(np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high,
                f"uniform needs finite low < high, got low={self.low}, high={self.high}")

    @property
    def features(self) -> int:
        return self.dim

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12.0

    def sample(self, rng, T, B):
        return rng.uniform(self.low, self.high, size=(T, B, self.dim))


@dataclass(frozen=True)
class Normal:
    """Reals N(mean, std^2), ``dim`` features per step."""

    mean: float = 0.0
    std: float = 1.0
    dim: int = 1
    kind = "normal"

    def __post_init__(self):
        require(np.isfinite(self.mean) and np.isfinite(self.std) and self.std > 0,
                f"normal needs a finite mean and std > 0, got mean={self.mean}, std={self.std}")

    @property
    def features(self) -> int:
        return self.dim

    @property
    def variance(self) -> float:
        return self.std ** 2

    def sample(self, rng, T, B):
        return rng.normal(self.mean, self.std, size=(T, B, self.dim))


@dataclass(frozen=True)
class Bits:
    """Reals with k bits: 2^k equally spaced levels from low to high, equally likely.

    Variance of the discrete uniform on L = 2^k levels: (high-low)^2 (L+1) / (12 (L-1)).
    """

    bits: int = 4
    low: float = -1.0
    high: float = 1.0
    dim: int = 1
    kind = "bits"

    def __post_init__(self):
        require(isinstance(self.bits, (int, np.integer)) and 1 <= self.bits <= 24,
                f"bits must be an integer from 1 to 24, got {self.bits!r}")
        require(np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high,
                f"bits needs finite low < high, got low={self.low}, high={self.high}")

    @property
    def features(self) -> int:
        return self.dim

    @property
    def levels(self) -> int:
        return 2 ** self.bits

    @property
    def variance(self) -> float:
        L = self.levels
        return (self.high - self.low) ** 2 * (L + 1) / (12.0 * (L - 1))

    def sample(self, rng, T, B):
        k = rng.integers(0, self.levels, size=(T, B, self.dim))
        return self.low + (self.high - self.low) * k / (self.levels - 1)


@dataclass(frozen=True)
class Symbols:
    """One-hot symbols: one of ``symbols`` equally likely, as a one-hot vector.

    Each output is Bernoulli(1/K): variance (1/K)(1 - 1/K).
    """

    symbols: int = 8
    kind = "symbols"

    def __post_init__(self):
        require(isinstance(self.symbols, (int, np.integer)) and self.symbols >= 2,
                f"symbols must be an integer >= 2, got {self.symbols!r}")

    @property
    def features(self) -> int:
        return self.symbols

    @property
    def variance(self) -> float:
        p = 1.0 / self.symbols
        return p * (1 - p)

    def draw(self, rng, T, B):
        """Symbol indices (T, B)."""
        return rng.integers(0, self.symbols, size=(T, B))

    def sample(self, rng, T, B):
        return np.eye(self.symbols)[self.draw(rng, T, B)]


DISTRIBUTIONS = {"uniform": Uniform, "normal": Normal, "bits": Bits, "symbols": Symbols}


def make_distribution(spec) -> object:
    """A distribution from a name (``"uniform"``) or a dict (``{"kind": "bits", "bits": 8}``)."""
    if isinstance(spec, tuple(DISTRIBUTIONS.values())):
        return spec
    if isinstance(spec, str):
        spec = {"kind": spec}
    require(isinstance(spec, dict) and "kind" in spec,
            f"an input distribution is a name or a table with 'kind', got {spec!r}")
    spec = dict(spec)
    kind = spec.pop("kind")
    require(kind in DISTRIBUTIONS, f"unknown input distribution {kind!r}; expected one of {', '.join(DISTRIBUTIONS)}")
    return _construct(DISTRIBUTIONS[kind], spec, f"distribution {kind!r}")


def distribution_spec(dist) -> Dict:
    return {"kind": dist.kind, **dataclasses.asdict(dist)}


def _construct(cls, kwargs, what):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(kwargs) - fields
    if unknown:
        raise LstmsearchError(f"{what} has no parameter {sorted(unknown)[0]!r}; expected some of {sorted(fields)}")
    return cls(**kwargs)


# ------------------------------------------------------------------------ tasks
@dataclass(frozen=True)
class Task:
    """Base class: ``length`` is the number of time steps T of one sequence."""

    length: int
    name = "task"

    def __post_init__(self):
        require(isinstance(self.length, (int, np.integer)) and not isinstance(self.length, bool)
                and self.length >= self.min_length,
                f"task {self.name} needs length >= {self.min_length}, got {self.length!r}")

    min_length = 1

    # ---- to be provided by each task
    @property
    def n_inputs(self) -> int:
        raise NotImplementedError

    @property
    def n_outputs(self) -> int:
        raise NotImplementedError

    @property
    def baseline(self) -> float:
        """MSE of always predicting the target's mean (mean per-output variance)."""
        raise NotImplementedError

    def output_steps(self) -> np.ndarray:
        """Time indices (0-based) at which the readout is scored. Default: the last step."""
        return np.array([self.length - 1], dtype=np.int64)

    def _make(self, rng, B) -> Tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    # ---- shared
    def sample(self, n_sequences: int, seed: int, stream: int = TRAIN_STREAM):
        """(x (T, B, I) float32, y (S, B, O) float64) for B = n_sequences."""
        require(isinstance(n_sequences, (int, np.integer)) and n_sequences >= 1,
                f"n_sequences must be a positive integer, got {n_sequences!r}")
        x, y = self._make(rng_for(seed, stream), int(n_sequences))
        return np.ascontiguousarray(x, dtype=np.float32), np.asarray(y, dtype=np.float64)

    def with_length(self, length: int) -> "Task":
        """The same task at another sequence length (for length generalisation)."""
        return dataclasses.replace(self, length=int(length))

    def spec(self) -> Dict:
        """A plain dict that :func:`make_task` turns back into this task."""
        out = {"kind": self.name}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = distribution_spec(v) if f.name == "dist" else v
        return out

    def describe(self) -> str:
        return (f"{self.name}: T={self.length}, I={self.n_inputs}, O={self.n_outputs}, "
                f"scored at {len(self.output_steps())} step(s), baseline MSE={self.baseline:.6g}")


@dataclass(frozen=True)
class _DistTask(Task):
    """A task whose inputs are drawn i.i.d. from ``dist`` at every step."""

    dist: object = dataclasses.field(default_factory=Uniform)

    def __post_init__(self):
        object.__setattr__(self, "dist", make_distribution(self.dist))
        super().__post_init__()

    @property
    def n_inputs(self) -> int:
        return self.dist.features

    @property
    def n_outputs(self) -> int:
        return self.dist.features

    @property
    def baseline(self) -> float:
        return self.dist.variance

    def _inputs(self, rng, B):
        return as_float32(self.dist.sample(rng, self.length, B))


@dataclass(frozen=True)
class RecallFirst(_DistTask):
    """Read x_1..x_n, output x_1 at step n (the canonical question)."""

    name = "recall_first"

    def _make(self, rng, B):
        x = self._inputs(rng, B)
        return x, x[:1]


@dataclass(frozen=True)
class RecallLag(_DistTask):
    """Read x_1..x_n, output x_{n-lag} at step n (lag = 0: the last input)."""

    lag: int = 1
    name = "recall_lag"

    def __post_init__(self):
        super().__post_init__()
        require(isinstance(self.lag, (int, np.integer)) and 0 <= self.lag < self.length,
                f"recall_lag needs 0 <= lag < length, got lag={self.lag!r}, length={self.length}")

    def _make(self, rng, B):
        x = self._inputs(rng, B)
        k = self.length - 1 - self.lag
        return x, x[k:k + 1]


@dataclass(frozen=True)
class RecallWindow(_DistTask):
    """Read x_1..x_n, output the ``k`` most recent inputs x_n, x_{n-1}, ..., x_{n-k+1} at step n.

    Output j (0-based) is x_{n-j} (all its features, lag-major for ``dist.dim`` > 1), so
    O = k * I. Each output has the variance of x: the baseline is Var(x), and a per-output
    nmse says how well lag j is recalled (the memory-throughput experiment of Collins,
    Sohl-Dickstein & Sussillo 2017, see :mod:`lstmsearch.anchors.memory`).
    """

    k: int = 1
    name = "recall_window"

    def __post_init__(self):
        super().__post_init__()
        require(isinstance(self.k, (int, np.integer)) and not isinstance(self.k, bool) and 1 <= self.k <= self.length,
                f"recall_window needs 1 <= k <= length, got k={self.k!r}, length={self.length}")

    @property
    def n_outputs(self) -> int:
        return self.k * self.dist.features

    def _make(self, rng, B):
        x = self._inputs(rng, B)
        window = x[self.length - self.k:][::-1]  # (k, B, I): x_n first
        return x, np.transpose(window, (1, 0, 2)).reshape(1, B, -1)


@dataclass(frozen=True)
class NextValue(_DistTask):
    """At every step t < n, predict x_{t+1} (i.i.d. inputs: the mean is optimal)."""

    name = "next_value"
    min_length = 2

    def output_steps(self):
        return np.arange(self.length - 1, dtype=np.int64)

    def _make(self, rng, B):
        x = self._inputs(rng, B)
        return x, x[1:]


@dataclass(frozen=True)
class Copy(Task):
    """Copy task (after Arjovsky et al. 2016), with T = ``length`` steps in all.

    Inputs are one-hot over ``symbols`` + 2 channels (the symbols, blank, delimiter):
    ``m`` random symbols, blanks, the delimiter at step T - m - 1, then ``m`` blanks
    during which the readout must reproduce the m symbols (one-hot over ``symbols``).
    """

    symbols: int = 8
    m: int = 10
    name = "copy"

    def __post_init__(self):
        require(isinstance(self.symbols, (int, np.integer)) and self.symbols >= 2,
                f"copy needs symbols >= 2, got {self.symbols!r}")
        require(isinstance(self.m, (int, np.integer)) and self.m >= 1, f"copy needs m >= 1, got {self.m!r}")
        object.__setattr__(self, "min_length", 2 * self.m + 1)
        super().__post_init__()

    @property
    def n_inputs(self):
        return self.symbols + 2

    @property
    def n_outputs(self):
        return self.symbols

    @property
    def baseline(self):
        p = 1.0 / self.symbols
        return p * (1 - p)

    def output_steps(self):
        return np.arange(self.length - self.m, self.length, dtype=np.int64)

    def _make(self, rng, B):
        T, K, m = self.length, self.symbols, self.m
        s = rng.integers(0, K, size=(m, B))
        x = np.zeros((T, B, K + 2))
        x[:, :, K] = 1.0  # blank everywhere ...
        x[:m, :, K] = 0.0
        x[np.arange(m)[:, None], np.arange(B)[None, :], s] = 1.0
        x[T - m - 1, :, K] = 0.0
        x[T - m - 1, :, K + 1] = 1.0  # ... the delimiter
        return x, np.eye(K)[s]


@dataclass(frozen=True)
class Adding(Task):
    """Adding problem (Hochreiter & Schmidhuber 1997).

    Each step carries (value, marker); values are U[low, high]; exactly two steps are
    marked, one uniformly in the first half and one in the second half; the target at
    the last step is the sum of the two marked values. ``scaled=True`` gives the 1997
    target 0.5 + (X1 + X2) / 4. Baseline: the variance of the target.
    """

    low: float = -1.0
    high: float = 1.0
    scaled: bool = False
    name = "adding"
    min_length = 2

    def __post_init__(self):
        require(np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high,
                f"adding needs finite low < high, got low={self.low}, high={self.high}")
        super().__post_init__()

    @property
    def n_inputs(self):
        return 2

    @property
    def n_outputs(self):
        return 1

    @property
    def baseline(self):
        var_sum = 2 * (self.high - self.low) ** 2 / 12.0
        return var_sum / 16.0 if self.scaled else var_sum

    def _make(self, rng, B):
        T = self.length
        half = T // 2
        x = np.zeros((T, B, 2))
        x[:, :, 0] = as_float32(rng.uniform(self.low, self.high, size=(T, B)))
        first = rng.integers(0, half, size=B)
        second = rng.integers(half, T, size=B)
        cols = np.arange(B)
        x[first, cols, 1] = 1.0
        x[second, cols, 1] = 1.0
        total = x[first, cols, 0] + x[second, cols, 0]
        y = 0.5 + total / 4.0 if self.scaled else total
        return x, y[None, :, None]


# ------------------------------------------------ two-class long-lag benchmarks
@dataclass(frozen=True)
class _TwoClass(Task):
    """Two balanced classes, one input line, a class-dependent target at the last step.

    The benchmarks of Bengio, Simard & Frasconi (1994) as Hochreiter & Schmidhuber (NIPS
    1996) and Schmidhuber, Hochreiter & Bengio (2001, "Evaluating benchmark problems by
    random guessing") used them for weight guessing. Of B sequences, exactly B // 2 are of
    class 0 (a random one more when B is odd), in random order. The target of class c is
    ``targets[c]``; with balanced classes the baseline (variance of the target) is
    (targets[1] - targets[0])^2 / 4.
    """

    targets = (0.0, 1.0)

    @property
    def n_inputs(self):
        return 1

    @property
    def n_outputs(self):
        return 1

    @property
    def baseline(self):
        return (self.targets[1] - self.targets[0]) ** 2 / 4.0

    def threshold(self) -> float:
        """The midpoint of the two targets: an output on the right side of it names the class."""
        return (self.targets[0] + self.targets[1]) / 2.0

    def _classes(self, rng, B):
        c = np.arange(B) % 2
        if B % 2:
            c[-1] = rng.integers(0, 2)
        return rng.permutation(c)

    def _target(self, c):
        return np.where(c == 1, self.targets[1], self.targets[0])[None, :, None]


@dataclass(frozen=True)
class TwoSequence(_TwoClass):
    """The 2-sequence problem (Bengio et al. 1994; Hochreiter & Schmidhuber 1996).

    The first ``relevant`` inputs are +1 (class 1, target 1.0) or -1 (class 0, target
    0.0); every later input is Gaussian noise N(0, ``noise_var``) (variance 0.2 in the
    papers), which carries no class information. The net must latch the class over the
    whole sequence. Baseline: 0.25.
    """

    relevant: int = 1
    noise_var: float = 0.2
    name = "two_sequence"

    def __post_init__(self):
        require(isinstance(self.relevant, (int, np.integer)) and self.relevant >= 1,
                f"{self.name} needs relevant >= 1, got {self.relevant!r}")
        require(np.isfinite(self.noise_var) and self.noise_var >= 0,
                f"{self.name} needs a finite noise_var >= 0, got {self.noise_var!r}")
        object.__setattr__(self, "min_length", int(self.relevant))
        super().__post_init__()

    def _make(self, rng, B):
        c = self._classes(rng, B)
        x = np.empty((self.length, B, 1))
        x[:self.relevant, :, 0] = 2.0 * c - 1.0
        x[self.relevant:, :, 0] = as_float32(
            rng.normal(0.0, np.sqrt(self.noise_var), size=(self.length - self.relevant, B)))
        return x, self._target(c)


@dataclass(frozen=True)
class Latch(TwoSequence):
    """The latch problem, variant II of Schmidhuber, Hochreiter & Bengio (2001).

    Class 1 sequences start with +1.0, class 0 with -1.0; Gaussian noise N(0, 0.2) follows;
    the targets at the end are +1.0 and -1.0 (baseline 1.0). (Variant I, whose two first
    inputs are themselves free parameters, does not fit a fixed task.)
    """

    name = "latch"
    targets = (-1.0, 1.0)


@dataclass(frozen=True)
class Parity(_TwoClass):
    """The parity problem (Bengio et al. 1994; Hochreiter & Schmidhuber 1996).

    Every input is -1 or +1; the target at the end is 1.0 when the number of +1 inputs is
    odd and 0.0 when it is even. Classes are balanced: the class is drawn first, the first
    T - 1 inputs uniformly, and the last input is the one that gives the class's parity --
    so each class's sequences are uniform over the strings of that parity. Baseline: 0.25.
    """

    name = "parity"

    def _make(self, rng, B):
        c = self._classes(rng, B)
        bits = rng.integers(0, 2, size=(self.length, B))
        bits[-1] = (c - bits[:-1].sum(axis=0)) % 2
        return (2.0 * bits - 1.0)[:, :, None], self._target(c)


TASKS = {cls.name: cls for cls in (RecallFirst, RecallLag, RecallWindow, NextValue, Copy, Adding, TwoSequence, Latch,
                                   Parity)}


def make_task(kind: str, **params) -> Task:
    """A task by name: ``make_task("recall_first", length=20, dist={"kind": "uniform"})``."""
    require(kind in TASKS, f"unknown task {kind!r}; expected one of {', '.join(TASKS)}")
    require("length" in params, f"task {kind!r} needs a length")
    return _construct(TASKS[kind], params, f"task {kind!r}")


def takes_dist(kind: str) -> bool:
    """Whether task ``kind`` draws its inputs from a ``dist`` (the recall tasks) or makes its own."""
    require(kind in TASKS, f"unknown task {kind!r}; expected one of {', '.join(TASKS)}")
    return "dist" in {f.name for f in dataclasses.fields(TASKS[kind])}


def task_from_spec(spec: Dict) -> Task:
    spec = dict(spec)
    return make_task(spec.pop("kind"), **spec)
