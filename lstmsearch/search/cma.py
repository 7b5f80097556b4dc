"""Strategy ``cmaes``: CMA-ES over z with the ``cmaes`` library, a generation per kernel call.

``variant = "full"`` uses :class:`cmaes.CMA` (full covariance, for small dimensions; as
:class:`LazyCMA`, with the eigendecomposition refreshed every :func:`eigen_gap` generations),
``"sep"`` :class:`cmaes.SepCMA` (diagonal covariance: linear cost per dimension, for the
full weight space), ``"auto"`` picks full up to 100 dimensions. ``popsize`` is the
population (large populations fill the kernels); ``sigma`` the initial step size as a
fraction of the bound width; ``mean`` "middle" of the bounds, "random" in them, or the
best z of a warm-start study. ``restarts = "ipop"`` restarts a converged run with the
population multiplied by ``inc_popsize`` (Auger & Hansen 2005); ``"bipop"`` alternates such
large-population runs with small-population, small-step runs (Hansen 2009), giving each
regime a similar share of evaluations. ``objective`` is what CMA-ES minimises: ``"nmse"``
(default: log10 of the held-out nmse) or ``"max_abs_err"`` (log10 of the largest ``|y - x_1|`` over
the held-out sequences and scored lengths: a minimax score, closer to what a certificate's eps
measures; ``studies/attractor_rnn32.toml``, where it finds attractor states with steadier certified
eps than nmse over seeds: docs/analysis.md, "Search meets theory").

The optimizer is pickled to ``cmaes-state.pkl`` (atomically) after each told generation,
with its random state (which ``cmaes`` itself leaves out of pickles) and its exact covariance
matrix (``cmaes`` pickles only the upper triangle, which is not exactly the in-memory matrix), so
a run stopped and continued asks the same generations, bit for bit, as an uninterrupted one.
A run killed after writing a generation's rows but before saving the state re-asks the
same population on resume (the pickled optimizer carries its random state) and tells it
the stored values instead of evaluating it again.

Rows from keys: the population is drawn here, not by ``cmaes``: generation g of restart r
draws one standard-normal matrix ``Y`` (population x d) from the key
``SeedSequence([seed, 204, r, g])`` (bit generator SFC64) and sets
``x_k = clip(m + sigma * A y_k, low, high)`` with ``A = sqrt(diag C)`` (sep) or ``A = B D``
(full, ``C = B D^2 B^T``), the same sampling ``cmaes`` does one member at a time; ``cmaes``
then updates m, sigma and C from the told solutions as usual. The generation's m, sigma, A
and key are stored once in ``generations/`` (:mod:`lstmsearch.store.generations`) before its
rows (a full CMA's B D once per eigendecomposition: the generations in between name the one that
holds it), and each row keeps only (generation, index): :func:`generation_z` rebuilds its z bit
for bit. Rows of older stores keep z and are rebuilt from it.
"""

from __future__ import annotations

import math
import pickle
import time
from typing import Dict

import numpy as np
import pyarrow.dataset as ds
from cmaes import CMA, SepCMA

from ..errors import LstmsearchError
from ..store import atomic_write_bytes
from ..store.files import seal, unseal
from ..store.generations import GenerationStore, state_table
from . import sepcma
from .base import RANKED_COLUMNS, Batch, Strategy, round_z, told_values
from .sepcma import VectorSepCMA

STREAM = 204  # rng stream of the population draws
STATE_FIELDS = ("strategy", "batch", "kind", "key", "restart", "popsize", "sigma", "mean", "matrix", "matrix_batch")

STATE = "cmaes-state.pkl"

#: A full CMA-ES stores its d x d sampling matrix B D (float64) once per eigendecomposition; the
#: decompositions are spaced so that it costs at most about this many bytes per row.
MATRIX_BYTES_PER_ROW = 128


def eigen_gap(dim: int, popsize: int) -> int:
    """Generations between two eigendecompositions of a full CMA-ES of ``dim`` dimensions and
    population ``popsize``: ``ceil(8 dim^2 / (popsize * MATRIX_BYTES_PER_ROW))``, at least 1
    (1 up to 12 dimensions at the default population; 37 at 100 dimensions, population 17)."""
    return max(1, math.ceil(8 * dim * dim / (popsize * MATRIX_BYTES_PER_ROW)))


class LazyCMA(CMA):
    """:class:`cmaes.CMA` whose eigendecomposition ``C = B D^2 B^T`` is refreshed every
    ``eigen_gap`` generations instead of every generation: the *lazy update* of Hansen (2016),
    "The CMA Evolution Strategy: A Tutorial", appendix B.2, there to save the O(d^3)
    decomposition, here to store the sampling matrix ``B D`` once per refresh instead of once per
    generation (:func:`eigen_gap`). C itself is updated every generation as in CMA; between
    refreshes the population is drawn from, and C^(-1/2) in the step-size path taken from, the
    last decomposition. The adaptation of C is slow (time scale about d^2 / mu_eff generations:
    1,300 at d = 100), so a gap of a few dozen generations changes little
    (``python benchmarks/bench_lazy_cma.py`` measures it). ``eigen_at`` is the generation of
    the decomposition in use."""

    def __init__(self, *args, eigen_gap: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.eigen_gap = int(eigen_gap)
        self.eigen_at = None
        self._eigen_cache = None

    def _eigen_decomposition(self):
        if self._B is not None and self._D is not None:
            return self._B, self._D
        if self._eigen_cache is not None and self._g - self.eigen_at < self.eigen_gap:
            self._B, self._D = self._eigen_cache
            return self._B, self._D
        B, D = super()._eigen_decomposition()
        self._eigen_cache, self.eigen_at = (B, D), self._g
        return B, D


def check(spec: Dict, space, chk) -> Dict:
    """Validate a cmaes ``[strategy]`` table (keys: :attr:`CmaStrategy.options`)."""
    s = chk.keys(spec, "[strategy]", CmaStrategy.options)
    chk.choice("[strategy]", "variant", s["variant"], ("auto", "full", "sep"))
    chk.choice("[strategy]", "mean", s["mean"], ("middle", "random"))
    chk.choice("[strategy]", "restarts", s["restarts"], ("none", "ipop", "bipop"))
    chk.choice("[strategy]", "objective", s["objective"], RANKED_COLUMNS)
    chk.positive("[strategy]", "sigma", s["sigma"])
    chk.positive("[strategy]", "max_restarts", s["max_restarts"], allow_zero=True)
    chk.positive("[strategy]", "seed", s["seed"], allow_zero=True)
    if s["popsize"] is not None and s["popsize"] < 2:
        chk.fail("[strategy] popsize", f"must be >= 2, got {s['popsize']}")
    if s["inc_popsize"] < 1:
        chk.fail("[strategy] inc_popsize", f"must be >= 1, got {s['inc_popsize']}")
    if s["variant"] == "full" and space.dim > 2000:
        chk.fail("[strategy] variant", f"full CMA over {space.dim} dimensions needs a {space.dim}^2 "
                                       "covariance; use variant = \"sep\"")
    return s


class CmaStrategy(Strategy):
    """CMA-ES over z, a generation per kernel call (see the module doc)."""

    name = "cmaes"
    ranks_whole_batches = True
    not_regenerable_reason = ("cmaes rows are not regenerable from a key: lstmsearch run STUDY --repair replays "
                              "CMA-ES from the stored generations and evaluates the lost ones again")
    z_kept_by_key = True
    options = {
        "kind": ((str,), "cmaes"), "variant": ((str,), "auto"), "popsize": ((int,), None),
        "sigma": ((float,), 0.3), "mean": ((str,), "middle"), "restarts": ((str,), "ipop"),
        "max_restarts": ((int,), 9), "inc_popsize": ((int,), 2), "seed": ((int,), None),
        "objective": ((str,), "nmse"),
    }

    def __init__(self, cfg, space, store, spec):
        super().__init__(cfg, space, store, spec)
        d = space.dim
        self.bounds = np.stack([space.low, space.high], axis=1)
        self.width = space.high - space.low
        self.variant = spec["variant"] if spec["variant"] != "auto" else ("full" if d <= 100 else "sep")
        self.pop0 = spec["popsize"] or 4 + int(3 * math.log(d))
        self.sigma0 = float(spec["sigma"] * np.mean(self.width))
        self.state_path = store.root / STATE
        self.replay_until = -1
        self._pool = None  # the helper thread that draws the next generation's normals
        self._next = None  # (key, shape, future) of the prefetched draw
        if self.state_path.is_file():
            try:
                self.state = pickle.loads(unseal(self.state_path.read_bytes()))  # its sha256 checked first
            except Exception as exc:  # noqa: BLE001 - cut short, garbage: any unpickling error
                raise LstmsearchError(f"{self.state_path} is damaged ({type(exc).__name__}); run again with "
                                      "--repair to rebuild it by replaying the stored generations") from exc
            # cmaes leaves its RandomState out of pickles (and re-seeds it at random); restore it
            # so that a resumed run asks exactly the population an uninterrupted run would
            rng = np.random.RandomState()
            rng.set_state(self.state.pop("opt_rng"))
            self.state["opt"]._rng = rng
            # cmaes pickles the covariance as its upper triangle and mirrors it back on load; the
            # in-memory C is not exactly symmetric (its rank-mu update rounds differently on each
            # side), so the mirrored one differs by an ulp here and there and the runs drift apart
            # after a few hundred generations. The exact matrix is saved beside the pickle.
            if "opt_C" in self.state:
                self.state["opt"]._C = self.state.pop("opt_C")
        else:
            rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([self.seed, 202])))
            mean = (space.low + space.high) / 2 if spec["mean"] == "middle" else rng.uniform(space.low, space.high)
            self.state = {"generation": 0, "restart": 0, "rng": rng, "popsize": self.pop0, "regime": "large",
                          "evals": {"large": 0, "small": 0}, "large_pop": self.pop0,
                          "opt": self._new(mean, self.sigma0, self.pop0, 0)}

    def _new(self, mean, sigma, popsize, restart):
        seed = int(np.random.SeedSequence([self.seed, 203, restart]).generate_state(1)[0] % (2 ** 31))
        # n_max_resampling=1: an infeasible draw is clipped to the bounds instead of redrawn
        kw = dict(mean=np.asarray(mean, float), sigma=float(sigma), bounds=self.bounds, seed=seed, n_max_resampling=1,
                  population_size=int(popsize))
        if self.variant == "full":
            return LazyCMA(eigen_gap=eigen_gap(self.space.dim, int(popsize)), **kw)
        return (VectorSepCMA if popsize >= sepcma.MIN_POPSIZE else SepCMA)(**kw)

    def warm_start(self, z, source):
        if self.state["generation"] > 0:
            return ""
        self.state["opt"] = self._new(np.clip(z[0], self.space.low, self.space.high), self.sigma0, self.pop0, 0)
        return f"warm start: CMA-ES mean at the best z of {source}"

    def resume(self):
        t = self.store.read(columns=["batch"], filter=ds.field("strategy") == "cmaes")
        if t.num_rows == 0:
            return ""
        last = int(np.max(t.column("batch").to_numpy()))
        if last >= self.state["generation"]:
            self.replay_until = last
            return (f"generation {last} was written but not told to CMA-ES (killed in between); "
                    "its stored rows will be told instead of evaluated again")
        return f"resuming CMA-ES at generation {self.state['generation']} (restart {self.state['restart']})"

    def generation_state(self) -> dict:
        """The record of the next generation (m, sigma, A, key): what its rows are rebuilt from.
        ``matrix_batch`` is the generation whose stored record holds A (a full CMA-ES stores B D
        once per eigendecomposition: :meth:`ask` stores it only when that is this generation)."""
        st, opt = self.state, self.state["opt"]
        g, holder = st["generation"], st["generation"]
        if self.variant == "sep":
            kind, matrix = "sep", opt._eigen_decomposition()  # sqrt(diag C), as cmaes samples with
        else:
            B, D = opt._eigen_decomposition()
            kind, matrix = "full", (B * D).reshape(-1)  # B diag(D)
            if isinstance(opt, LazyCMA):  # (a state pickled before LazyCMA holds a CMA: every record its matrix)
                decomposition = (st["restart"], opt.eigen_at)
                if st.get("matrix_of", (None, None))[0] == decomposition:
                    holder = st["matrix_of"][1]  # the generation that stored this B D
                else:
                    st["matrix_of"] = (decomposition, g)
        # copies: the optimizer updates its arrays in place while the record waits for the writer
        return {"strategy": "cmaes", "batch": g, "kind": kind, "restart": st["restart"],
                "key": generation_key(self.seed, st["restart"], g), "popsize": opt.population_size,
                "sigma": float(opt._sigma), "mean": opt._mean.copy(), "matrix": np.array(matrix, np.float64),
                "matrix_batch": holder}

    def ask(self, n_max):
        st = self.state
        opt = st["opt"]
        if n_max < opt.population_size:
            return None
        t0 = time.perf_counter()
        record = self.generation_state()
        y = self._normals(record["key"], (record["popsize"], self.space.dim))
        xs = generation_z(record, self.space.low, self.space.high, y=y)
        self._prefetch_normals(st["restart"], st["generation"] + 1, opt.population_size)  # unless a restart
        self.overhead_s += time.perf_counter() - t0
        g = st["generation"]
        P = xs.shape[0]
        stored = None
        if g <= self.replay_until:
            stored = self.store.read(filter=(ds.field("strategy") == "cmaes") & (ds.field("batch") == g))
            stored = stored.sort_by("index")
            # (a raced generation also has rows of the settings it promoted: count its rung-0 rows)
            n = stored.num_rows if "fidelity" not in stored.column_names else \
                int(np.sum(stored.column("fidelity").to_numpy() == 0))
            if n != P:
                stored = None  # cannot happen unless the state file was replaced; evaluate again
        # what is stored: the matrix only in the generation that holds it (matrix_batch)
        kept = record if record["matrix_batch"] == g else dict(record, matrix=None)
        # the settings of z rounded to float32, as regenerate_z rebuilds them (round_z)
        return Batch(params=self.space.to_params(xs.astype(np.float32)), batch=np.full(P, g, np.int64), index=np.arange(P, dtype=np.int64),
                     stored=stored, info=xs, state=state_table(*(kept[k] for k in STATE_FIELDS)))

    def tell(self, batch, table):
        t0 = time.perf_counter()
        st = self.state
        values = told_values(table, self.spec["objective"])  # log10 of nmse (or max_abs_err), or raced ranks
        tell(st["opt"], batch.info, values)
        st["generation"] += 1
        st["evals"][st["regime"]] += len(values)
        if st["opt"].should_stop() and self.spec["restarts"] != "none" and st["restart"] < self.spec["max_restarts"]:
            self._restart()
        extra = {"opt_rng": st["opt"]._rng.get_state()}
        if isinstance(getattr(st["opt"], "_C", None), np.ndarray):
            extra["opt_C"] = st["opt"]._C.copy()  # exact, not cmaes's triangle (see __init__)
        self.persist(atomic_write_bytes, self.state_path, seal(pickle.dumps(dict(st, **extra))))
        self.overhead_s += time.perf_counter() - t0

    def _prefetch_normals(self, restart, generation, popsize):
        """Draw a generation's normal matrix on a helper thread while the kernels evaluate the one
        before (it depends on the key alone; numpy releases the GIL while it fills the matrix)."""
        key = generation_key(self.seed, restart, generation)
        shape = (popsize, self.space.dim)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lstmsearch-cma-draw")
        self._next = (key, shape, self._pool.submit(normals, key, shape))

    def _normals(self, key, shape):
        """The normal matrix of a generation: prefetched when the key and shape match, else drawn now."""
        nxt, self._next = self._next, None
        if nxt is not None and nxt[0] == key and nxt[1] == shape:
            return nxt[2].result()
        return normals(key, shape)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _restart(self):
        st = self.state
        st["restart"] += 1
        rng = st["rng"]
        mean = rng.uniform(self.space.low, self.space.high)
        inc = self.spec["inc_popsize"]
        if self.spec["restarts"] == "ipop":
            st["popsize"] *= inc
            pop, sigma = st["popsize"], self.sigma0
        else:  # bipop: alternate, giving the small regime about the large one's budget
            if st["regime"] == "large":
                st["large_pop"] *= inc
            if st["evals"]["small"] < st["evals"]["large"]:
                st["regime"] = "small"
                u = rng.uniform()
                pop = max(2, int(self.pop0 * (0.5 * st["large_pop"] / self.pop0) ** (u ** 2)))
                sigma = self.sigma0 * 10 ** (-2 * rng.uniform())
            else:
                st["regime"] = "large"
                pop, sigma = st["large_pop"], self.sigma0
        st["opt"] = self._new(mean, sigma, pop, st["restart"])

    def summary(self):
        st = self.state
        d, pop = self.space.dim, st["opt"].population_size
        line = (f"CMA-ES ({self.variant}, dim {d}): generation {st['generation']}, "
                f"restart {st['restart']}, population {pop}")
        per_row = state_bytes_per_row(self.variant, d, pop)
        if per_row > 200:  # the mean (and sqrt(diag C)) is stored once per generation: say what it costs
            hint = f"popsize >= {math.ceil(16 * d / 200)} keeps it under 200" if self.variant == "sep" else \
                "a larger popsize lowers it"
            line += f"; its generation state costs about {per_row:.0f} bytes a row ({hint})"
        return line

    @classmethod
    def regenerate_z(cls, cfg, space, store, rows):
        """z (P, d) of stored rows: from the row's z where kept (older stores), else rebuilt from
        its generation's stored state (:func:`generation_z`)."""
        out = np.empty((rows.num_rows, space.dim))
        zcol = rows.column("z").to_pylist() if "z" in rows.column_names else [None] * rows.num_rows
        keyed = [i for i, v in enumerate(zcol) if v is None]
        for i, v in enumerate(zcol):
            if v is not None:
                out[i] = v
        if keyed:
            batch = rows.column("batch").to_numpy()[keyed]
            index = rows.column("index").to_numpy()[keyed]
            records = GenerationStore(store.root).records("cmaes", np.unique(batch))
            for g in np.unique(batch):
                sel = np.flatnonzero(batch == g)
                out[np.asarray(keyed)[sel]] = round_z(generation_z(records[int(g)], space.low, space.high, index[sel]))
        return out

    @classmethod
    def regenerate_rows(cls, cfg, space, store, rows):
        return space.to_params(cls.regenerate_z(cfg, space, store, rows))

    @classmethod
    def repair_state(cls, store):
        """Set the optimizer's state file aside, so that the run replays CMA-ES from generation 0,
        telling each stored generation its stored rows and evaluating again a generation whose rows
        were lost (the same population, bit for bit)."""
        path = store.root / STATE
        if not path.is_file():
            return []
        kept = path.with_name(f"{STATE}.before-repair-{time.strftime('%Y%m%dT%H%M%S')}")
        path.replace(kept)
        return [f"--repair: set the CMA-ES state aside as {kept.name}; CMA-ES is replayed from the stored generations "
                "(rows told, not evaluated again; a generation without rows is evaluated again)"]


def state_bytes_per_row(variant: str, dim: int, popsize: int) -> float:
    """About what the stored generation state costs per row (before compression): the mean in
    float64, and sqrt(diag C) (sep) or B D once per :func:`eigen_gap` generations (full)."""
    if variant == "sep":
        return 16.0 * dim / popsize
    return 8.0 * dim / popsize + 8.0 * dim * dim / (popsize * eigen_gap(dim, popsize))


def generation_key(seed: int, restart: int, generation: int) -> int:
    """The random key of a generation: 63 bits from ``SeedSequence([seed, 204, restart, generation])``."""
    return int(np.random.SeedSequence([int(seed), STREAM, int(restart), int(generation)])
               .generate_state(1, np.uint64)[0] >> np.uint64(1))


def normals(key: int, shape) -> np.ndarray:
    """The standard normal matrix of a generation: SFC64 seeded with its key, float64."""
    return np.random.Generator(np.random.SFC64(int(key))).standard_normal(tuple(shape))


def generation_z(record, low, high, index=None, y=None) -> np.ndarray:
    """Members ``index`` (default all) of a generation, from its stored record:
    ``x_k = clip(m + sigma * A y_k, low, high)``, ``Y`` (popsize x d) standard normal from SFC64 keyed by
    ``record["key"]``; ``A y = sqrt(diag C) * y`` (sep) or ``B D y`` (full). The sampling of
    Hansen (2016), "The CMA Evolution Strategy: A Tutorial", eq. (38)-(40), and of sep-CMA-ES (Ros
    & Hansen 2008, "A Simple Modification in CMA-ES Achieving Linear Time and Space Complexity"),
    for the whole population in one draw. Each member's float64 arithmetic does not depend on
    which others are rebuilt with it, so a row rebuilt alone is bit-identical to the one evaluated.
    ``y`` is the generation's normal matrix when drawn ahead (:func:`normals`).
    """
    mean = np.asarray(record["mean"], np.float64)
    d = mean.size
    if y is None:  # (the caller may pass the matrix drawn ahead, ``normals(key, (popsize, d))``)
        y = normals(record["key"], (int(record["popsize"]), d))
    if index is not None:
        y = y[np.asarray(index, np.int64)]
    a = np.asarray(record["matrix"], np.float64)
    sigma = float(record["sigma"])
    if record["kind"] == "sep":
        return sepcma.sample(y, sigma * a, mean, np.asarray(low, np.float64), np.asarray(high, np.float64))
    A = a.reshape(d, d)
    x = mean + sigma * np.stack([(A * yk).sum(axis=1) for yk in y]) if len(y) else np.empty((0, d))
    return np.clip(x, low, high)


def tell(opt, xs: np.ndarray, values: np.ndarray) -> None:
    """Tell the optimizer a generation: solutions ``xs`` (popsize, d) and their objective values
    (in array operations for :class:`~lstmsearch.search.sepcma.VectorSepCMA`)."""
    if isinstance(opt, VectorSepCMA):
        opt.tell_arrays(xs, values)
    else:
        opt.tell(list(zip(xs, values)))
