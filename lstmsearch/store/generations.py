"""Per-generation (per-trial) search state, stored once: what rebuilds rows from small keys.

A CMA-ES row is ``x_k = clip(m + sigma * A y_k)`` with ``y_k`` the k-th row of one standard
normal matrix drawn from the generation's key; an Optuna region row is the trial's centre
plus jitter drawn from (seed, trial, index). Storing ``m``, ``sigma``, ``A`` (the square root
of the diagonal covariance, or ``B D`` for a full one) and the key once per generation, or the
centre once per trial, lets every row keep only its ``(batch, index)``: a few bytes instead of
the search vector ``z`` (16 KB for an LSTM with 32 units in the full weight space).

Layout: ``generations/<strategy>-<first batch:012d>-<last batch:012d>-<sha256[:16]>.parquet``
in the study folder, one file per asked batch (a CMA-ES generation, or the trials of one Optuna batch), with
one record per generation or trial:

==========  ======================  ===============================================
column      type                    meaning
==========  ======================  ===============================================
strategy    string                  cmaes or optuna
batch       int64                   CMA-ES generation or Optuna trial number
kind        string                  sep, full (CMA-ES) or region (Optuna)
key         int64                   random key of the generation / trial
restart     int32                   CMA-ES restart number (0 for Optuna)
popsize     int32                   rows of the batch (population, region size)
sigma       float64                 CMA-ES step size; Optuna jitter scale
mean        list<float64>           CMA-ES mean; Optuna trial centre z (float32-rounded)
matrix      list<float64>, null     sqrt(diag C) (sep) or B D row-major (full); null in a
                                    full CMA-ES generation that samples with the B D
                                    of an earlier one (``matrix_batch``)
matrix_bat  int64, null             the generation whose record holds the matrix this
ch                                  one samples with (itself when it holds one; null in
                                    files written before the column: then itself)
==========  ======================  ===============================================

A full CMA-ES refreshes its eigendecomposition ``C = B D^2 B^T`` every few generations (the
lazy update of Hansen 2016, :class:`lstmsearch.search.cma.LazyCMA`), so its d x d matrix is
stored once per refresh, not once per generation: :meth:`GenerationStore.records` fills it in.

Each file is written like a row part (temporary file, fsync, link into place), *before* the
rows that need it are written, so a run killed at any point leaves no row without its state.
The file name carries the sha256 of its bytes, checked on every read, and the Parquet pages
carry checksums; a file whose bytes do not match its name is reported, never used.
"""

from __future__ import annotations

import errno
import os
import re
import uuid
from pathlib import Path
from typing import Iterable, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DiskFullError, LstmsearchError
from .files import BAD_FILE, file_sha256

FOLDER = "generations"
_NAME = re.compile(r"([a-z]+)-(\d{12})-(\d{12})-([0-9a-f]{16})\.parquet")


def state_schema() -> pa.Schema:
    """The schema of a generation-state file (see the module docstring)."""
    return pa.schema([("strategy", pa.string()), ("batch", pa.int64()), ("kind", pa.string()), ("key", pa.int64()),
                      ("restart", pa.int32()), ("popsize", pa.int32()), ("sigma", pa.float64()),
                      ("mean", pa.list_(pa.float64())), ("matrix", pa.list_(pa.float64())),
                      ("matrix_batch", pa.int64())])


def state_table(strategy: str, batch, kind: str, key, restart, popsize, sigma, mean: np.ndarray,
                matrix: Optional[np.ndarray], matrix_batch=None) -> pa.Table:
    """Records of ``len(batch)`` generations/trials; ``mean`` (n, d), ``matrix`` (n, m) or None;
    ``matrix_batch`` the batch whose record holds the matrix (None: each record its own)."""
    batch = np.atleast_1d(np.asarray(batch, np.int64))
    n = batch.size

    def lists(values):
        if values is None:
            return pa.nulls(n, pa.list_(pa.float64()))
        v = np.array(values, np.float64).reshape(n, -1)  # a copy: the optimizer updates its arrays in place
        offsets = pa.array(np.arange(0, (n + 1) * v.shape[1], v.shape[1], dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(v.reshape(-1)))

    def col(v, dtype):
        return np.broadcast_to(np.asarray(v, dtype), (n,))

    return pa.Table.from_arrays([
        pa.array([strategy] * n, pa.string()), pa.array(batch), pa.array([kind] * n, pa.string()),
        pa.array(col(key, np.int64)), pa.array(col(restart, np.int32)), pa.array(col(popsize, np.int32)),
        pa.array(col(sigma, np.float64)), lists(mean), lists(matrix),
        pa.nulls(n, pa.int64()) if matrix_batch is None else pa.array(col(matrix_batch, np.int64))],
        schema=state_schema())


class GenerationStore:
    """The ``generations/`` folder of a study: write and read per-generation state."""

    def __init__(self, root):
        self.dir = Path(root) / FOLDER

    def files(self, strategy: Optional[str] = None) -> List[Path]:
        if not self.dir.is_dir():
            return []
        out = [p for p in sorted(self.dir.glob("*.parquet")) if _NAME.fullmatch(p.name)]
        return [p for p in out if strategy is None or _NAME.fullmatch(p.name).group(1) == strategy]

    def write(self, table: pa.Table) -> Optional[Path]:
        """Write one batch's records atomically (before its rows); returns the file. (The same
        records written again, as a batch asked again after a kill is, give the same file.)"""
        if table.num_rows == 0:
            return None
        strategy = table.column("strategy")[0].as_py()
        first = int(pc.min(table.column("batch")).as_py())
        last = int(pc.max(table.column("batch")).as_py())
        prefix = f"{strategy}-{first:012d}-{last:012d}-"
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{prefix}{uuid.uuid4().hex}.tmp"
        try:
            pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            final = self.dir / f"{prefix}{file_sha256(tmp)[:16]}.parquet"
            os.replace(tmp, final)
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(f"no space left on the device of {self.dir} while writing the state of batch "
                                    f"{first} ({exc.strerror}); nothing partial was kept: free some space and run "
                                    "the study again to continue") from exc
            raise
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def check(self) -> List[dict]:
        """Verify every state file (``lstmsearch check``): its content hash against the one in its
        name, then readable with page checksums. One dict per file, as
        :meth:`lstmsearch.store.Store.check` gives per part: part (``generations/<name>``), rows, status."""
        out = []
        for p in self.files():
            status, rows = [], None
            if file_sha256(p)[:16] != _NAME.fullmatch(p.name).group(4):
                status.append("content hash differs from the one in its name (damaged): the rows of its "
                              "batches cannot be rebuilt from their keys")
            try:
                f = pq.ParquetFile(p, page_checksum_verification=True)
                rows = f.metadata.num_rows
                f.read()
            except BAD_FILE as exc:
                status.append("unreadable: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            out.append({"part": f"{FOLDER}/{p.name}", "rows": rows, "status": "; ".join(status) or "ok"})
        return out

    def read(self, strategy: str, batches: Optional[Iterable[int]] = None) -> pa.Table:
        """The records of ``strategy`` (for the given batch numbers, or all), checked against the
        sha256 in each file's name; the last record wins where a batch appears twice."""
        want = None if batches is None else set(int(b) for b in batches)
        tables = []
        wanted = None if want is None else np.array(sorted(want), np.int64)
        for p in self.files(strategy):
            m = _NAME.fullmatch(p.name)
            first, last = int(m.group(2)), int(m.group(3))
            if wanted is not None:
                i = int(np.searchsorted(wanted, first))
                if i == wanted.size or wanted[i] > last:
                    continue  # the file's batches (first..last) hold none of the wanted ones
            if file_sha256(p)[:16] != m.group(4):
                raise LstmsearchError(f"the generation state {p} does not match the checksum in its name (the file "
                                      "was damaged); the rows of its batch cannot be rebuilt from their keys")
            try:
                t = pq.read_table(p, schema=state_schema())
            except BAD_FILE as exc:
                raise LstmsearchError(f"the generation state {p} cannot be read ({str(exc).splitlines()[0][:120]}); "
                                      "the rows of its batch cannot be rebuilt from their keys") from None
            if want is not None:
                t = t.filter(pc.is_in(t.column("batch"), pa.array(wanted)))
            tables.append(t)
        if not tables:
            return state_schema().empty_table()
        return pa.concat_tables(tables)

    def records(self, strategy: str, batches: Iterable[int]) -> dict:
        """batch -> record (a dict with numpy ``mean``/``matrix``); refuses a batch without one.
        A record that samples with an earlier generation's matrix (``matrix_batch``) gets it."""
        out = self._records(strategy, batches)
        shared = {int(r["matrix_batch"]) for r in out.values()
                  if r["matrix"] is None and r.get("matrix_batch") is not None and r["matrix_batch"] != r["batch"]}
        if shared:
            holders = self._records(strategy, shared)
            for r in out.values():
                if r["matrix"] is None and r.get("matrix_batch") in holders:
                    r["matrix"] = holders[r["matrix_batch"]]["matrix"]
                    if r["matrix"] is None:
                        raise LstmsearchError(f"the stored state of {strategy} batch {r['matrix_batch']} has no matrix, "
                                              f"but batch {r['batch']} samples with it; generations/ is inconsistent")
        return out

    def _records(self, strategy: str, batches: Iterable[int]) -> dict:
        batches = sorted(set(int(b) for b in batches))
        t = self.read(strategy, batches)
        out = {}
        for r in t.to_pylist():
            r["mean"] = np.asarray(r["mean"], np.float64)
            r["matrix"] = None if r["matrix"] is None else np.asarray(r["matrix"], np.float64)
            out[r["batch"]] = r
        missing = [b for b in batches if b not in out]
        if missing:
            raise LstmsearchError(f"no stored state for {strategy} batch(es) {missing[:8]} in {self.dir}; these rows "
                                  "keep neither weights nor z and cannot be rebuilt (was generations/ removed?)")
        return out

