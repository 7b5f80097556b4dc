"""The row schema of a study's Parquet parts, and the names of the files that hold them.

Part files are ``rows/part-w<slot>-<first row:012d>.parquet``: writer ``w<slot>`` numbers its
rows ``slot * ROW_SLOT + 0, 1, 2, ...`` (:data:`ROW_SLOT` = 10**12), so ids never collide and
need no coordination; a single ``run`` is slot 0.

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
length        int32                      sequence length T the setting was scored at (the longest
                                         of ``[task] lengths``)
seed          int64                      evaluation seed (training stream 0, held-out stream 1)
sequences     int32                      training sequences (readout fit)
heldout       int32                      held-out sequences (mse/nmse/max_abs_err)
z             list<float32>, nullable    search vector the setting came from
scale         float32, nullable          Optuna region jitter scale (0 for the centre)
key_seed      int64, nullable            sweep regeneration key: seed ...
key_index     int64, nullable            ... and setting index
weights       fixed_size_list<float32>   the full setting (D floats, readout spliced in): for
              [D], nullable              the best ``keep_weights`` rows, held in ``best/`` and
                                         filled in by :meth:`Store.read` (older stores: in the
                                         parts, for the rows that were among the best as they
                                         arrived); a null one is rebuilt from the row's keys
readout       fixed_size_list<float32>   O*H+O: fitted (or searched) readout; kept with the
              [O*H+O], nullable          weights (older stores: every row); a null one is
                                         fitted again from the row's seed when needed
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

A study whose task has several lengths (``[task] lengths``) has one more column, after
``train_nmse``: ``nmse_by_length`` (list<float64>), the held-out nmse at each trained length in
order (``nmse`` is their worst, or mean: :mod:`lstmsearch.evaluate`).

A study with ``[eval] racing`` (successive halving, :mod:`lstmsearch.run.racing`) has one more
column, after ``heldout``: ``fidelity`` (int32), the rung its row was scored at, 0 the cheapest
and ``len(rungs)`` full fidelity. Its ``sequences``, ``heldout`` and ``length`` are the rung's
(a low rung scores one length; its ``nmse_by_length`` is null). A setting promoted to a higher rung
has one row per rung it reached, with the same ``batch`` and ``index``; only full-fidelity rows
count for ``top``, the best row and the verdict.
"""

from __future__ import annotations

import re
from typing import List, Optional

import numpy as np
import pyarrow as pa

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ROWS = "rows"
WORKERS = "workers"
#: The Parquet key-value metadata of every file the store writes: the identity of the study that wrote it
IDENTITY_KEY = "lstmsearch.study_identity"
#: The Parquet key-value metadata of a part: the id of the run that wrote it (one of the manifest's
#: ``runs``, recorded at the run's start, before it writes any part)
RUN_ID_KEY = "lstmsearch.run_id"
#: Row ids of writer slot s are s * ROW_SLOT + 0, 1, 2, ...
ROW_SLOT = 10 ** 12
_PART = re.compile(r"part-w(\d+)-(\d+)\.parquet")


def schema(n_params: int, n_readout: int, by_length: bool = False, racing: bool = False) -> pa.Schema:
    """The row schema for a cell with D = n_params and a readout of n_readout floats
    (``by_length``: with the ``nmse_by_length`` column of a several-length task; ``racing``: with
    the ``fidelity`` column of a study with ``[eval] racing``)."""
    f32 = pa.float32()
    fields = [
        ("study", pa.string()), ("strategy", pa.string()), ("row", pa.int64()), ("batch", pa.int64()),
        ("index", pa.int64()), ("cell", pa.string()), ("hidden", pa.int32()), ("inputs", pa.int32()),
        ("outputs", pa.int32()), ("task", pa.string()), ("length", pa.int32()), ("seed", pa.int64()),
        ("sequences", pa.int32()), ("heldout", pa.int32()), *([("fidelity", pa.int32())] if racing else []),
        ("z", pa.list_(f32)), ("scale", f32),
        ("key_seed", pa.int64()), ("key_index", pa.int64()), ("weights", pa.list_(f32, n_params)),
        ("readout", pa.list_(f32, n_readout)), ("mse", pa.float64()), ("nmse", pa.float64()),
        ("max_abs_err", pa.float64()), ("train_mse", pa.float64()), ("train_nmse", pa.float64()),
        *([("nmse_by_length", pa.list_(pa.float64()))] if by_length else []), ("nmse_long", pa.float64()), ("long_length", pa.int32()), ("finite", pa.bool_()),
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


def schema_diff(old: pa.Schema) -> List[str]:
    """How the columns of ``old`` differ from this version's schema (for the one-line refusal)."""
    now = schema(1, 1)
    missing = [f"{n} missing" for n in now.names if n not in old.names]
    extra = [f"{n} unknown" for n in old.names if n not in now.names]
    return (missing + extra) or ["of other types"]


def part_name(slot: int, first: int) -> str:
    """The file name of writer ``w<slot>``'s part whose first row id is ``first``."""
    return f"part-w{int(slot)}-{int(first):012d}.parquet"


def part_slot_first(name: str) -> Optional[tuple]:
    """(writer slot, first row id) from a part file's name, or None for another name."""
    m = _PART.fullmatch(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def part_rows_text(name: str) -> str:
    m = _PART.fullmatch(name)
    if not m:
        return "its rows are not readable"
    return (f"its rows (from row {int(m.group(2))}, writer w{int(m.group(1))}) are not readable; "
            "they are left out of every count, query and resume")
