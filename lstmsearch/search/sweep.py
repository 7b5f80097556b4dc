"""Strategy ``sweep``: random, Sobol or Gaussian-perturbation sampling of z, in chunks.

Every setting is regenerable from (seed, index) alone, whatever the chunk size:

``random``
    z uniform in the space's bounds. Settings come in blocks of :data:`BLOCK` = 1024; block
    b is drawn from Philox keyed by SeedSequence([seed, 301, b]); setting i is row i % 1024
    of block i // 1024.
``sobol``
    A scrambled Sobol sequence (``scipy.stats.qmc.Sobol(d, scramble=True, seed=seed)``)
    mapped to the bounds; setting i is point i.
``gaussian``
    ``centre + sigma * (high - low) * N(0, 1)``, blocks as for random (stream 302); the
    centre is the middle of the bounds or the best z of a warm-start study (kept in the
    manifest so that regeneration does not depend on the other study).

So the store keeps a row for every setting with its key (``key_seed``, ``key_index``),
z only when the space has at most ``store_z`` dimensions, and full weights only for the
best rows (``[store] keep_weights``). ``batch`` is the number of settings per kernel call
(rows of one part file); its ``batch`` column is the chunk number.
"""

from __future__ import annotations

import functools
from typing import Dict

import numpy as np
import pyarrow.dataset as ds

from ..errors import require
from ..store.schema import part_name
from .base import Batch, Strategy, round_z

BLOCK = 1024
METHODS = ("random", "sobol", "gaussian")


def check(spec: Dict, space, chk) -> Dict:
    """Validate a sweep's ``[strategy]`` table (keys: :attr:`SweepStrategy.options`)."""
    s = chk.keys(spec, "[strategy]", SweepStrategy.options)
    chk.choice("[strategy]", "method", s["method"], METHODS)
    chk.positive("[strategy]", "batch", s["batch"])
    chk.positive("[strategy]", "sigma", s["sigma"])
    chk.positive("[strategy]", "store_z", s["store_z"], allow_zero=True)
    chk.positive("[strategy]", "seed", s["seed"], allow_zero=True)
    if s["method"] == "sobol" and space.dim > 21201:
        chk.fail("[strategy] method", f"Sobol sequences support up to 21201 dimensions, the space has {space.dim}")
    if s["centre"] is not None and (len(s["centre"]) != space.dim or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and space.low[j] <= v <= space.high[j]
            for j, v in enumerate(s["centre"]))):
        chk.fail("[strategy] centre", f"must be {space.dim} numbers (the space's dimension), each within the space's "
                                      f"bounds, got {str(s['centre'])[:80]}")
    return s


class SweepStrategy(Strategy):
    """Random, Sobol or Gaussian-perturbation sampling of z in chunks (see the module doc)."""

    name = "sweep"
    ranks_whole_batches = True
    rows_regenerable_from_key = True
    options = {
        "kind": ((str,), "sweep"), "method": ((str,), "random"), "batch": ((int,), 4096),
        "sigma": ((float,), 0.05), "seed": ((int,), None), "store_z": ((int,), 64),
        "centre": ((list,), None),
    }

    def __init__(self, cfg, space, store, spec, centre=None):
        super().__init__(cfg, space, store, spec)
        self.method = spec["method"]
        if centre is None:
            centre = spec["centre"] if spec["centre"] is not None else (space.low + space.high) / 2
        self.centre = np.asarray(centre, float)
        self.next_index = 0
        self.next_chunk = 0

    def warm_start(self, z, source):
        if self.method != "gaussian" or self.spec["centre"] is not None:
            return ""
        self.centre = np.asarray(z[0], float)
        return f"warm start: Gaussian sweep centred at the best z of {source}"

    def manifest_extra(self):
        return {"sweep_centre": self.centre.tolist()} if self.method == "gaussian" else {}

    def resume(self):
        t = self.store.read(columns=["batch", "index"], filter=ds.field("strategy") == "sweep")
        if t.num_rows == 0:
            return ""
        self.next_index = int(np.max(t.column("index").to_numpy())) + 1
        self.next_chunk = int(np.max(t.column("batch").to_numpy())) + 1
        return f"resuming the sweep at setting {self.next_index}"

    def range_maker(self, batch):
        n = len(batch)
        if batch.key_index is None or not np.array_equal(batch.key_index, np.arange(batch.key_index[0],
                                                                                    batch.key_index[0] + n)):
            return None
        try:  # a template space from a file may not travel: then the settings are shipped
            import cloudpickle

            cloudpickle.dumps(self.space)
        except Exception:  # noqa: BLE001
            return None
        return functools.partial(sweep_settings, self.space, dict(self.spec), self.seed, self.centre.tolist(),
                                 int(batch.key_index[0]))

    def z_at(self, index: np.ndarray) -> np.ndarray:
        """z (n, d) of the settings with these global indices (regeneration from the key)."""
        index = np.asarray(index, np.int64)
        d, lo, hi = self.space.dim, self.space.low, self.space.high
        if self.method == "sobol":
            from scipy.stats import qmc

            out = np.empty((index.size, d))
            order = np.argsort(index)
            idx = index[order]
            # runs of consecutive indices are drawn in one go
            start = 0
            while start < idx.size:
                end = start + 1
                while end < idx.size and idx[end] == idx[end - 1] + 1:
                    end += 1
                eng = qmc.Sobol(d, scramble=True, seed=self.seed)
                if idx[start]:
                    eng.fast_forward(int(idx[start]))
                out[order[start:end]] = lo + (hi - lo) * eng.random(end - start)
                start = end
            return out
        out = np.empty((index.size, d))
        blocks = index // BLOCK
        for b in np.unique(blocks):
            sel = blocks == b
            stream = 301 if self.method == "random" else 302
            rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([self.seed, stream, int(b)])))
            if self.method == "random":
                block = rng.uniform(lo, hi, size=(BLOCK, d))
            else:
                block = self.centre + self.spec["sigma"] * (hi - lo) * rng.standard_normal((BLOCK, d))
            out[sel] = block[index[sel] % BLOCK]
        return out

    def ask(self, n_max):
        n = min(self.spec["batch"], n_max)
        if n <= 0:
            return None
        return self.batch_at(np.arange(self.next_index, self.next_index + n, dtype=np.int64), self.next_chunk)

    def batch_at(self, index: np.ndarray, chunk: int) -> Batch:
        """The batch of the settings with these global indices, as chunk ``chunk`` (what :meth:`ask`
        hands out, and what re-evaluating a lost part needs: the same settings, bit for bit)."""
        z = round_z(self.z_at(index))
        keep_z = self.space.dim <= self.spec["store_z"]
        n = len(index)
        return Batch(params=self.space.to_params(z), z=z.astype(np.float32) if keep_z else None,
                     batch=np.full(n, chunk, np.int64), index=index,
                     key_seed=np.full(n, self.seed, np.int64), key_index=index)

    @classmethod
    def lost_part_batch(cls, cfg, store, slot, first, n):
        """A lost part's settings from its neighbours' keys: a sweep writes its chunks in order (writer
        slot 0), its row ids and setting indices advancing together, so the part's indices (and each
        row's chunk) follow from the stored row before it; a part whose indices a later run
        evaluated again is left."""
        if slot != 0:
            return None, 0, "a sweep is written by writer slot 0 only"
        near = store.read(columns=["row", "batch", "index", "run", "strategy"],
                          filter=(ds.field("row") >= first - 1) & (ds.field("row") <= first + n))
        rows = dict(zip(near.column("row").to_pylist(), near.to_pylist()))
        if any(r in rows for r in range(first, first + n)):
            return None, 0, "its row ids are in use by other rows"
        prev, nxt = rows.get(first - 1), rows.get(first + n)
        if prev is not None and prev["strategy"] == cls.name:
            index0, chunk, run = prev["index"] + 1, prev["batch"] + 1, prev["run"]
        elif prev is None and first == 0:  # the study's first part
            index0, chunk, run = 0, 0, nxt["run"] if nxt else 0
        else:
            return None, 0, "no stored neighbour tells its setting indices"
        index = np.arange(index0, index0 + n, dtype=np.int64)
        # a part may hold several chunks (small batches are gathered into one part): each of ``batch``
        # settings but the run's last; the manifest records the part's first and last chunk
        chunks = chunk + np.arange(n, dtype=np.int64) // max(int(cfg.strategy.get("batch") or n), 1)
        recorded = ((store.recorded_parts().get(part_name(slot, first)) or {}).get("batches"))
        if recorded is not None and list(recorded) != [chunk, int(chunks[-1])]:
            return None, 0, (f"it held chunks {recorded[0]} to {recorded[1]}, which the study's batch size does "
                             f"not give from its neighbours (chunks {chunk} to {int(chunks[-1])})")
        taken = store.read(columns=["index"], filter=(ds.field("strategy") == cls.name) & ds.field("index").isin(index))
        if taken.num_rows == n:
            return None, 0, "a later run evaluated its settings again already"
        if taken.num_rows or (nxt is not None and (nxt["index"], nxt["batch"]) != (index0 + n, int(chunks[-1]) + 1)):
            return None, 0, "its neighbours' setting indices do not bracket it"
        batch = cls.of_store(cfg, cfg.space_obj, store).batch_at(index, chunk)
        batch.batch = chunks  # each row its own chunk
        return batch, run, ""

    def tell(self, batch, table):
        self.next_index = int(batch.index[-1]) + 1
        self.next_chunk += 1

    def regenerate(self, rows):
        return self.space.to_params(self.keyed_z(rows))

    def keyed_z(self, rows) -> np.ndarray:
        """z (P, d) of stored rows, rebuilt from their ``key_index``."""
        idx = np.asarray(rows.column("key_index").to_pylist())
        require(not any(v is None for v in idx), "sweep rows without a key_index cannot be rebuilt")
        return round_z(self.z_at(idx.astype(np.int64)))

    @classmethod
    def regenerate_z(cls, cfg, space, store, rows):
        return cls.of_store(cfg, space, store).keyed_z(rows)

    @classmethod
    def of_store(cls, cfg, space, store) -> "SweepStrategy":
        """The sweep of a stored study (its Gaussian centre from the manifest), to rebuild settings."""
        return cls(cfg, space, store, cfg.strategy, centre=store.read_manifest().get("sweep_centre"))

    def summary(self):
        return f"sweep ({self.method}, dim {self.space.dim}): next setting {self.next_index}"


def sweep_settings(space, spec, seed, centre, first, start, stop) -> np.ndarray:
    """Settings ``first + start .. first + stop`` of a sweep, rebuilt from its key on any machine
    (what :meth:`SweepStrategy.range_maker` hands to a cluster)."""
    sw = SweepStrategy.__new__(SweepStrategy)  # just what z_at needs: no store, no config
    sw.space, sw.spec, sw.seed, sw.method, sw.centre = space, spec, seed, spec["method"], np.asarray(centre, float)
    return space.to_params(round_z(sw.z_at(np.arange(first + start, first + stop, dtype=np.int64))))
