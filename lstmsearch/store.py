"""The Parquet store: one dataset per study, append-only, atomically written part files.

Layout of a study folder (default ``data/<study name>/``)::

    manifest.json        study file text, identity hash, package versions, seeds, runs
    rows/part-<writer>-<first row>.parquet   one part per evaluated batch (or group of batches)
    optuna.journal       the Optuna study (strategy optuna with the default storage)
    cmaes-state.pkl      the CMA-ES optimizer after its last told generation (strategy cmaes)

Every part is written to a hidden temporary file in ``rows/`` and renamed into place
(``os.replace``, atomic on POSIX), so a reader -- and a resumed run -- sees whole parts
only. Hidden files are skipped by pyarrow datasets and by ``rows/*.parquet`` globs.

Schema (version :data:`SCHEMA_VERSION`, stored in each file's metadata as
``lstmsearch.schema_version``):

============  =========================  ============================================
column        type                       meaning
============  =========================  ============================================
study         string                     study name
strategy      string                     optuna, cmaes or sweep
row           int64                      row id, unique within the study (``show``/``reproduce``)
batch         int64                      Optuna trial number, CMA-ES generation or sweep chunk
index         int64                      setting within the trial's region, the generation's
                                         population, or the sweep's global setting index
cell          string                     rnn_tanh, rnn_relu, lstm, gru
hidden        int32                      H
inputs        int32                      I
outputs       int32                      O
task          string                     task kind (recall_first, ...)
length        int32                      sequence length T the setting was scored at
seed          int64                      evaluation seed (training stream 0, held-out stream 1)
sequences     int32                      training sequences (readout fit)
heldout       int32                      held-out sequences (mse/nmse/max_abs_err)
z             list<float32>, nullable    search vector the setting came from
scale         float32, nullable          Optuna region jitter scale (0 for the centre)
key_seed      int64, nullable            sweep regeneration key: seed ...
key_index     int64, nullable            ... and setting index
weights       fixed_size_list<float32>   the full setting (D floats, readout spliced in); kept
              [D], nullable              for the best ``keep_weights`` rows as they arrive
readout       fixed_size_list<float32>   O*H+O: fitted (or searched) readout
              [O*H+O]
mse           float64                    held-out mean squared error
nmse          float64                    mse / task baseline (predict-the-mean)
max_abs_err   float64                    held-out largest absolute error
train_mse     float64, nullable          training error (readout fitted)
train_nmse    float64, nullable          train_mse / baseline
nmse_long     float64, nullable          held-out nmse at ``long_length`` (given readout)
long_length   int32, nullable            the longer length used for nmse_long
finite        bool                       false if the setting produced NaN/inf (errors inf)
wall_s        float64                    this row's share of its batch's wall time
time          timestamp[ms, UTC]         when its batch was written
run           int32                      which ``run`` invocation wrote it (0, 1, ...)
============  =========================  ============================================
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .errors import LstmsearchError, require

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ROWS = "rows"


def schema(n_params: int, n_readout: int) -> pa.Schema:
    """The row schema for a cell with D = n_params and a readout of n_readout floats."""
    f32 = pa.float32()
    fields = [
        ("study", pa.string()), ("strategy", pa.string()), ("row", pa.int64()), ("batch", pa.int64()),
        ("index", pa.int64()), ("cell", pa.string()), ("hidden", pa.int32()), ("inputs", pa.int32()),
        ("outputs", pa.int32()), ("task", pa.string()), ("length", pa.int32()), ("seed", pa.int64()),
        ("sequences", pa.int32()), ("heldout", pa.int32()), ("z", pa.list_(f32)), ("scale", f32),
        ("key_seed", pa.int64()), ("key_index", pa.int64()), ("weights", pa.list_(f32, n_params)),
        ("readout", pa.list_(f32, n_readout)), ("mse", pa.float64()), ("nmse", pa.float64()),
        ("max_abs_err", pa.float64()), ("train_mse", pa.float64()), ("train_nmse", pa.float64()),
        ("nmse_long", pa.float64()), ("long_length", pa.int32()), ("finite", pa.bool_()),
        ("wall_s", pa.float64()), ("time", pa.timestamp("ms", tz="UTC")), ("run", pa.int32()),
    ]
    return pa.schema(fields, metadata={"lstmsearch.schema_version": str(SCHEMA_VERSION)})


def fixed_list(values: Optional[np.ndarray], width: int, valid: Optional[np.ndarray] = None, n: int = None):
    """A FixedSizeListArray of float32 from (n, width) values; rows where ``valid`` is false are null."""
    if values is None:
        return pa.nulls(n, pa.list_(pa.float32(), width))
    values = np.ascontiguousarray(values, np.float32)
    flat = pa.array(values.reshape(-1), pa.float32())
    mask = None if valid is None else pa.array(~np.asarray(valid, bool))
    return pa.FixedSizeListArray.from_arrays(flat, width, mask=mask)


def var_list(values: Optional[np.ndarray], n: int):
    """A list<float32> array from (n, d) values, or all null."""
    if values is None:
        return pa.nulls(n, pa.list_(pa.float32()))
    values = np.ascontiguousarray(values, np.float32)
    d = values.shape[1]
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1), pa.float32()))


def _atomic_write_bytes(path: Path, data: bytes):
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


class Store:
    """One study's folder: the append-only Parquet dataset and the manifest.

    ``writer`` names this process's part files; several writers (workers) may append to the
    same dataset as long as each uses its own row-id range (see :meth:`next_row`).
    """

    def __init__(self, root, writer: str = "w0"):
        self.root = Path(root)
        self.rows_dir = self.root / ROWS
        self.writer = writer
        self._count = None

    # ------------------------------------------------------------------ manifest
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> Dict:
        require(self.exists(), f"no study results in {str(self.root)!r} (no {MANIFEST}); "
                               "run the study first or pass its folder, study file or name")
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise LstmsearchError(f"{self.manifest_path}: cannot be read ({exc}); the file is damaged") from exc

    def write_manifest(self, manifest: Dict):
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(self.manifest_path, json.dumps(manifest, indent=2, default=str).encode())

    # --------------------------------------------------------------- run lock
    @property
    def lock_path(self) -> Path:
        return self.root / "run.lock"

    def acquire(self) -> List[str]:
        """Take the study's run lock (one ``run`` per study folder at a time).

        A lock left by a process that no longer exists on this host (a killed run) is taken
        over, and so are the lock files its Optuna journal storage left behind. Returns
        messages about what was cleaned up.
        """
        import platform

        self.root.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": platform.node()}
        messages = []
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    other = json.loads(self.lock_path.read_text() or "{}")
                except (OSError, json.JSONDecodeError):
                    other = {}
                if other.get("host") == me["host"] and not _alive(other.get("pid")):
                    self.lock_path.unlink(missing_ok=True)
                    for stale in self.root.glob("*.lock"):
                        stale.unlink(missing_ok=True)
                    messages.append(f"took over the run lock of process {other.get('pid')}, which no longer runs")
                    continue
                raise LstmsearchError(
                    f"the study in {str(self.root)!r} is being run by process {other.get('pid')} on "
                    f"{other.get('host')}; wait for it to finish (or remove {self.lock_path} if that run is gone)")
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            return messages
        raise LstmsearchError(f"cannot take the run lock {self.lock_path}")  # pragma: no cover

    def release(self):
        self.lock_path.unlink(missing_ok=True)

    # ---------------------------------------------------------------------- rows
    def parts(self) -> List[Path]:
        if not self.rows_dir.is_dir():
            return []
        return sorted(p for p in self.rows_dir.glob("*.parquet") if not p.name.startswith("."))

    def clean_temporaries(self) -> int:
        """Remove temporary files left by a killed writer; returns how many."""
        n = 0
        if self.rows_dir.is_dir():
            for p in self.rows_dir.glob(".*.tmp"):
                p.unlink(missing_ok=True)
                n += 1
        return n

    def count(self) -> int:
        """Rows in the dataset (from the part files' footers)."""
        if self._count is None:
            self._count = sum(pq.read_metadata(p).num_rows for p in self.parts())
        return self._count

    def next_row(self) -> int:
        """The next free row id (rows are numbered 0, 1, ... in order of writing)."""
        return self.count()

    def append(self, table: pa.Table) -> Path:
        """Write one part atomically (temporary file, fsync, rename); returns its path."""
        require(table.num_rows > 0, "cannot append an empty table")
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        first = int(table.column("row")[0].as_py())
        final = self.rows_dir / f"part-{self.writer}-{first:012d}.parquet"
        require(not final.exists(), f"part {final} already exists; the store's row ids are inconsistent")
        tmp = self.rows_dir / f".{final.name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        try:
            dfd = os.open(self.rows_dir, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
        except OSError:  # pragma: no cover - platform dependent
            pass
        if self._count is not None:
            self._count += table.num_rows
        return final

    def dataset(self) -> ds.Dataset:
        parts = self.parts()
        require(parts, f"the study in {str(self.root)!r} has no rows yet")
        return ds.dataset([str(p) for p in parts], format="parquet")

    def read(self, columns: Optional[List[str]] = None, filter=None) -> pa.Table:
        """Rows (all, or those matching a pyarrow compute expression), sorted by row id."""
        if not self.parts():
            return pa.table({c: [] for c in (columns or ["row"])})
        cols = columns if columns is None or "row" in columns else list(columns) + ["row"]
        table = self.dataset().to_table(columns=cols, filter=filter)
        return table.sort_by("row")

    def row(self, row: int) -> Dict:
        """One row as a dict (weights/readout/z as numpy arrays)."""
        require(isinstance(row, (int, np.integer)) and row >= 0, f"row must be a non-negative integer, got {row!r}")
        t = self.read(filter=ds.field("row") == int(row))
        require(t.num_rows == 1, f"the study in {str(self.root)!r} has no row {row} "
                                 f"(rows 0 to {self.count() - 1})")
        out = {}
        for name in t.column_names:
            v = t.column(name)[0].as_py()
            if name in ("weights", "readout", "z") and v is not None:
                v = np.asarray(v, np.float32)
            out[name] = v
        return out
