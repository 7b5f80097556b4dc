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

Several lengths in one task
---------------------------
A task scored at one length n can be solved by settings that work only at n (a tanh RNN
whose units flip sign every step is read correctly at even n only). A task made with
``lengths=(n_1, ..., n_k)`` (``make_task("recall_first", lengths=(20, 21))``, TOML
``[task] lengths = [20, 21]``) scores every setting at all of them from ONE simulation:
``sample`` draws sequences of the longest length T = max n_j (``length``), the readout is
read at the steps n_j - 1 (``output_steps``), and the target at step n_j is the task's
target for the prefix x_1..x_{n_j} (recall_first: x_1 at every n_j; recall_lag k:
x_{n_j-k}; recall_window: x_{n_j}, ..., x_{n_j-k+1}; two_sequence and latch: the class).
:meth:`Task.output_lengths` says which length each output step belongs to, so an error
can be reported per length and then aggregated (``aggregate``: ``"worst"``, the largest
per-length error, or ``"mean"``; or ``"per_sequence"``: each sequence is scored at ONE of the
lengths, drawn uniformly for it (:meth:`Task.drawn_lengths`), the readout fitted and the error
taken over those (sequence, own length) pairs -- "n drawn per sequence", at the cost of the same
one simulation). Tasks with several output steps or with a
length-dependent layout (next_value, copy, adding, parity) take one length only.
One length given as a list is the same task as ``length=n``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from .errors import LstmsearchError, require

TRAIN_STREAM = 0
HELDOUT_STREAM = 1
#: How the per-length errors of a several-length task become one objective value.
AGGREGATES = ("worst", "mean", "per_sequence")
#: The drawn lengths of the sequences of stream s come from stream LENGTHS_STREAM + s (the
#: sequences themselves do not change with the aggregate).
LENGTHS_STREAM = 1000


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
    require(isinstance(kind, str) and kind in DISTRIBUTIONS, f"unknown input distribution {kind!r}; expected one of {', '.join(DISTRIBUTIONS)}")
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
    """Base class: ``length`` is the number of time steps T of one sequence.

    ``lengths`` (None, or a sorted tuple of two or more distinct lengths whose largest is
    ``length``) makes a several-length task (see the module doc); ``aggregate`` ("worst"
    or "mean") says how its per-length errors become one. ``scored_lengths`` is
    ``lengths`` or ``(length,)``.
    """

    length: int
    lengths: Optional[Tuple[int, ...]] = None
    aggregate: str = "worst"
    name = "task"
    #: Whether the task can be scored at several lengths from one simulation.
    several_lengths = False

    def __post_init__(self):
        if self.lengths is not None:
            lengths = normalise_lengths(self.lengths, self.name)
            if len(lengths) == 1:  # one length given as a list is that length
                require(self.length == lengths[0], f"task {self.name} has length={self.length!r} but "
                        f"lengths={list(lengths)}; give one of them")
                lengths = None
            else:
                require(self.several_lengths, f"task {self.name} takes one length only (its targets or layout "
                        f"depend on the length); give length = n, or use recall_first, recall_lag, "
                        f"recall_window, two_sequence or latch")
                require(self.length == lengths[-1], f"task {self.name} has length={self.length!r}, which must be "
                        f"the longest of lengths={list(lengths)}; give lengths only")
            object.__setattr__(self, "lengths", lengths)
        require(self.aggregate in AGGREGATES,
                f"task aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        require(self.lengths is not None or self.aggregate == "worst",
                f"task aggregate={self.aggregate!r} needs several lengths; give lengths = [n1, n2, ...] "
                "or drop aggregate")
        for n in self.scored_lengths:
            require(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= self.min_length,
                    f"task {self.name} needs length >= {self.min_length}, got {n!r}")

    min_length = 1

    @property
    def scored_lengths(self) -> Tuple[int, ...]:
        """The lengths the task is scored at: ``lengths``, or ``(length,)``."""
        return self.lengths if self.lengths is not None else (self.length,)

    @property
    def shortest(self) -> int:
        """The shortest scored length (per-length parameters such as a lag must fit it)."""
        return self.scored_lengths[0]

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
        """Time indices (0-based) at which the readout is scored. Default: the last step of
        every scored length, n_j - 1 (one step for a one-length task)."""
        return np.array([n - 1 for n in self.scored_lengths], dtype=np.int64)

    def output_lengths(self) -> np.ndarray:
        """(S,) the scored length each output step belongs to (all ``length`` for one length)."""
        if self.lengths is None:
            return np.full(len(self.output_steps()), self.length, dtype=np.int64)
        return np.asarray(self.lengths, dtype=np.int64)

    def _make(self, rng, B) -> Tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _target_at(self, x, y, n) -> np.ndarray:
        """(1, B, O) target at length n, given x (T, B, I) and the target y at T (several-length tasks)."""
        raise NotImplementedError

    # ---- shared
    def sample(self, n_sequences: int, seed: int, stream: int = TRAIN_STREAM):
        """(x (T, B, I) float32, y (S, B, O) float64) for B = n_sequences.

        For a several-length task T is the longest length and y[j] the target at the j-th
        scored length n_j, computed from the same sequences' prefix x_1..x_{n_j}."""
        require(isinstance(n_sequences, (int, np.integer)) and n_sequences >= 1,
                f"n_sequences must be a positive integer, got {n_sequences!r}")
        x, y = self._make(rng_for(seed, stream), int(n_sequences))
        if self.lengths is not None:
            y = np.concatenate([self._target_at(x, y, n) for n in self.lengths], axis=0)
        return np.ascontiguousarray(x, dtype=np.float32), np.asarray(y, dtype=np.float64)

    def drawn_lengths(self, n_sequences: int, seed: int, stream: int = TRAIN_STREAM) -> np.ndarray:
        """(n_sequences,) for ``aggregate = "per_sequence"``: the index into ``lengths`` each
        sequence of (seed, stream) is scored at, uniform over the lengths, from its own stream
        (``LENGTHS_STREAM + stream``)."""
        require(self.lengths is not None, f"task {self.name} has one length; drawn lengths need lengths = [...]")
        return rng_for(seed, LENGTHS_STREAM + stream).integers(0, len(self.lengths), size=int(n_sequences))

    def with_length(self, length: int) -> "Task":
        """The same task at one other sequence length (for length generalisation)."""
        return dataclasses.replace(self, length=int(length), lengths=None, aggregate="worst")

    def with_lengths(self, lengths, aggregate: Optional[str] = None) -> "Task":
        """The same task scored at several lengths (one length gives :meth:`with_length`)."""
        lengths = normalise_lengths(lengths, self.name)
        agg = self.aggregate if aggregate is None else aggregate
        if len(lengths) == 1:
            return dataclasses.replace(self.with_length(lengths[0]), aggregate=agg)
        return dataclasses.replace(self, length=lengths[-1], lengths=lengths, aggregate=agg)

    def spec(self) -> Dict:
        """A plain dict that :func:`make_task` turns back into this task.

        A one-length task gives ``length`` (as it always did); a several-length one gives
        ``lengths`` (a list) and ``aggregate`` instead."""
        out = {"kind": self.name}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("length", "lengths", "aggregate"):
                if (f.name == "length") == (self.lengths is None):
                    out[f.name] = list(v) if f.name == "lengths" else v
                continue
            out[f.name] = distribution_spec(v) if f.name == "dist" else v
        return out

    def describe(self) -> str:
        at = f"T={self.length}" if self.lengths is None else \
            f"lengths {', '.join(map(str, self.lengths))} (" + ("one drawn per sequence"
                                                              if self.aggregate == "per_sequence" else
                                                              f"{self.aggregate} of their errors") + ")"
        return (f"{self.name}: {at}, I={self.n_inputs}, O={self.n_outputs}, "
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
    several_lengths = True

    def _make(self, rng, B):
        x = self._inputs(rng, B)
        return x, x[:1]

    def _target_at(self, x, y, n):
        return x[:1]


@dataclass(frozen=True)
class RecallLag(_DistTask):
    """Read x_1..x_n, output x_{n-lag} at step n (lag = 0: the last input)."""

    lag: int = 1
    name = "recall_lag"
    several_lengths = True

    def __post_init__(self):
        super().__post_init__()
        require(isinstance(self.lag, (int, np.integer)) and 0 <= self.lag < self.shortest,
                f"recall_lag needs 0 <= lag < length (the shortest length), got lag={self.lag!r}, "
                f"length={self.shortest}")

    def _make(self, rng, B):
        x = self._inputs(rng, B)
        return x, self._target_at(x, None, self.length)

    def _target_at(self, x, y, n):
        k = n - 1 - self.lag
        return x[k:k + 1]


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
    several_lengths = True

    def __post_init__(self):
        super().__post_init__()
        require(isinstance(self.k, (int, np.integer)) and not isinstance(self.k, bool) and 1 <= self.k <= self.shortest,
                f"recall_window needs 1 <= k <= length (the shortest length), got k={self.k!r}, "
                f"length={self.shortest}")

    @property
    def n_outputs(self) -> int:
        return self.k * self.dist.features

    def _make(self, rng, B):
        x = self._inputs(rng, B)
        return x, self._target_at(x, None, self.length)

    def _target_at(self, x, y, n):
        window = x[n - self.k:n][::-1]  # (k, B, I): x_n first
        return np.transpose(window, (1, 0, 2)).reshape(1, x.shape[1], -1)


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
    several_lengths = True

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

    def _target_at(self, x, y, n):
        return y  # the class, fixed by the first inputs, is the target at every length


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


def normalise_lengths(lengths, what: str = "task") -> Tuple[int, ...]:
    """``lengths`` checked (a non-empty list of distinct positive integers) and sorted."""
    ok = isinstance(lengths, (list, tuple, np.ndarray)) and len(lengths) >= 1 and all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in lengths)
    require(ok, f"{what} lengths must be a non-empty list of positive integers such as [20, 21], got {lengths!r}")
    out = tuple(sorted(int(n) for n in lengths))
    require(len(set(out)) == len(out), f"{what} lengths has a repeated length: {list(lengths)}; give each once")
    return out


def make_task(kind: str, **params) -> Task:
    """A task by name: ``make_task("recall_first", length=20, dist={"kind": "uniform"})``.

    ``lengths=(20, 21)`` instead of ``length`` scores it at several lengths from one
    simulation (see the module doc), with ``aggregate="worst"`` (default) or ``"mean"``."""
    require(kind in TASKS, f"unknown task {kind!r}; expected one of {', '.join(TASKS)}")
    require(("length" in params) != ("lengths" in params),
            f"task {kind!r} needs a length (length = 20) or a list of lengths (lengths = [20, 21]), not both")
    if "lengths" in params:
        params = dict(params)
        params["lengths"] = normalise_lengths(params["lengths"], f"task {kind!r}")
        params["length"] = params["lengths"][-1]
    return _construct(TASKS[kind], params, f"task {kind!r}")


def takes_dist(kind: str) -> bool:
    """Whether task ``kind`` draws its inputs from a ``dist`` (the recall tasks) or makes its own."""
    require(kind in TASKS, f"unknown task {kind!r}; expected one of {', '.join(TASKS)}")
    return "dist" in {f.name for f in dataclasses.fields(TASKS[kind])}


def task_from_spec(spec: Dict) -> Task:
    spec = dict(spec)
    return make_task(spec.pop("kind"), **spec)
