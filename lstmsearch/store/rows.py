"""The rows of one evaluated batch, as the store keeps them.

:func:`rows_table` turns a batch and its evaluation table into rows of the store's schema;
:class:`TopK` picks the rows that may be among the best ``keep_weights`` so far, and
:class:`BestRows` keeps exactly the best k of them, full weights and readout, in the writer's
file under ``best/`` (:mod:`lstmsearch.store.best`); every row keeps the keys its setting is
rebuilt from, and its readout is fitted again when needed (:func:`lstmsearch.query.refit_readouts`).
With ``keep_weights = "all"`` every row keeps its weights and readout in the parts.
"""

from __future__ import annotations

import datetime as _dt
import io
from typing import Dict, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .best import best_path, read_best_file
from .parts import atomic_write_bytes, fixed_list, schema, var_list


class TopK:
    """The k smallest nmse seen so far, to decide which rows keep their full weights."""

    def __init__(self, k: Optional[int], values: np.ndarray):
        self.k = k
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        self.best = np.sort(v)[: k] if k is not None else v[:0]

    def keep(self, nmse: np.ndarray) -> np.ndarray:
        finite = np.isfinite(nmse)
        if self.k is None:
            return np.ones(len(nmse), bool)
        if self.k == 0:
            return np.zeros(len(nmse), bool)
        combined = np.sort(np.concatenate([self.best, nmse[finite]]))
        kth = combined[self.k - 1] if combined.size >= self.k else np.inf
        self.best = combined[: self.k]
        return finite & (nmse <= kth)


class BestRows:
    """The best ``k`` rows of one writer with their weights and readouts (see the module doc)."""

    def __init__(self, root, slot: int, k: int, n_params: int, n_readout: int):
        self.path = best_path(root, slot)
        self.k = int(k)
        self.n_params, self.n_readout = int(n_params), int(n_readout)
        self.rows = np.empty(0, np.int64)
        self.nmse = np.empty(0, np.float64)
        self.weights = np.empty((0, self.n_params), np.float32)
        self.changed = False
        t = read_best_file(self.path)
        if t is not None and t.num_rows:
            self.rows = t.column("row").to_numpy().astype(np.int64)
            self.nmse = t.column("nmse").to_numpy().astype(np.float64)
            self.weights = t.column("weights").combine_chunks().flatten().to_numpy(
                zero_copy_only=False).astype(np.float32).reshape(-1, self.n_params)

    def offer(self, rows: np.ndarray, nmse: np.ndarray, weights: np.ndarray) -> None:
        """Rows that may be among the best, with their full settings (readout spliced in, as
        :func:`lstmsearch.evaluate.solutions` gives them): keep the k smallest nmse (then row id)
        of all so far."""
        if not len(rows):
            return
        all_rows = np.concatenate([self.rows, np.asarray(rows, np.int64)])
        all_nmse = np.concatenate([self.nmse, np.asarray(nmse, np.float64)])
        order = np.lexsort((all_rows, all_nmse))[: self.k]
        order.sort()  # the kept rows in the order they came: old rows first, then by position
        if np.array_equal(all_rows[order], self.rows):
            return
        self.rows, self.nmse = all_rows[order], all_nmse[order]
        self.weights = np.concatenate([self.weights, np.asarray(weights, np.float32)])[order]
        self.changed = True

    def table(self) -> pa.Table:
        """row, nmse, weights and readout (the weights' readout tail, a column of its own for readers)."""
        n = len(self.rows)
        readout = self.weights[:, self.n_params - self.n_readout:]
        return pa.table({"row": pa.array(self.rows, pa.int64()), "nmse": pa.array(self.nmse, pa.float64()),
                         "weights": fixed_list(self.weights, self.n_params, None, n),
                         "readout": fixed_list(readout, self.n_readout, None, n)})

    def write(self) -> None:
        """Rewrite the file (atomically) if the set changed since the last write."""
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        pq.write_table(self.table(), buf, compression="zstd", write_page_checksum=True)  # lstmsearch check verifies it
        atomic_write_bytes(self.path, buf.getvalue())
        self.changed = False


def full_fidelity(cfg):
    """The filter (a pyarrow expression) of the rows scored at full fidelity, or None when every
    row is (a study without ``[eval] racing``): what ``top``, the best row and the verdict rank."""
    if cfg.eval.racing is None:
        return None
    import pyarrow.dataset as ds

    return ds.field("fidelity") == cfg.eval.racing.full


def rows_table(cfg, strategy: str, batch, table: pa.Table, row0: int, keep: np.ndarray,
               extra: Dict, wall: float, run: int, rung: Optional[tuple] = None) -> pa.Table:
    """The store rows of one evaluated batch of ``cfg`` (a :class:`~lstmsearch.config.StudyConfig`;
    see :mod:`lstmsearch.store.parts` for the schema). ``rung`` = (fidelity, sequences, heldout,
    length) of a racing study's rows (default: full fidelity)."""
    cell, task, ev = cfg.cell, cfg.task, cfg.eval
    racing = ev.racing is not None
    fidelity, sequences, heldout, length = rung or (ev.racing.full if racing else None, ev.sequences, ev.heldout,
                                                    task.length)
    P = table.num_rows
    ro_np = table.column("readout").combine_chunks().flatten().to_numpy().reshape(P, cell.n_readout)
    weights = None
    if keep.any():
        weights = cell.with_readout(batch.params, ro_np)

    def const(v, t):  # one value for every row, without a Python object per row
        return pa.repeat(pa.scalar(v, t), P)

    def opt(values, t):
        if values is None:
            return pa.nulls(P, t)
        if isinstance(values, tuple):
            return pa.array(values[0], t, mask=~values[1])
        return pa.array(values, t, mask=np.isnan(values) if np.asarray(values).dtype.kind == "f" else None)

    has = table.column_names
    cols = {
        "study": const(cfg.name, pa.string()), "strategy": const(strategy, pa.string()),
        "row": pa.array(np.arange(row0, row0 + P, dtype=np.int64)), "batch": pa.array(batch.batch, pa.int64()),
        "index": pa.array(batch.index, pa.int64()), "cell": const(cell.kind, pa.string()),
        "hidden": const(cell.hidden, pa.int32()), "inputs": const(cell.inputs, pa.int32()),
        "outputs": const(cell.outputs, pa.int32()), "task": const(task.name, pa.string()),
        "length": const(length, pa.int32()), "seed": const(ev.seed, pa.int64()),
        "sequences": const(sequences, pa.int32()), "heldout": const(heldout, pa.int32()),
        "fidelity": const(fidelity, pa.int32()),
        "z": var_list(batch.z, P), "scale": opt(batch.scale, pa.float32()),
        "key_seed": opt(batch.key_seed, pa.int64()), "key_index": opt(batch.key_index, pa.int64()),
        "weights": fixed_list(weights, cell.n_params, keep, P),
        # the readout only where the weights are kept: the others refit it from the stored seed
        # (lstmsearch.query.refit_readouts), 4 (H + 1) bytes a row saved (132 B at H = 32)
        "readout": fixed_list(ro_np if keep.any() else None, cell.n_readout, keep, P),
        "mse": table.column("mse"), "nmse": table.column("nmse"), "max_abs_err": table.column("max_abs_err"),
        "train_mse": table.column("train_mse") if "train_mse" in has else pa.nulls(P, pa.float64()),
        "train_nmse": table.column("train_nmse") if "train_nmse" in has else pa.nulls(P, pa.float64()),
        "nmse_by_length": table.column("nmse_by_length") if "nmse_by_length" in has else
        pa.nulls(P, pa.list_(pa.float64())),  # (a racing study's low rung scores one length)
        "nmse_long": opt(extra.get("nmse_long"), pa.float64()),
        "long_length": opt(extra.get("long_length"), pa.int32()),
        "finite": table.column("finite"), "wall_s": const(wall / P, pa.float64()),
        "time": const(_dt.datetime.now(_dt.timezone.utc), pa.timestamp("ms", tz="UTC")),
        "run": const(run, pa.int32()),
    }
    sch = schema(cell.n_params, cell.n_readout, by_length=task.lengths is not None, racing=racing)
    return pa.Table.from_arrays([cols[f.name].cast(f.type) if cols[f.name].type != f.type else cols[f.name]
                                 for f in sch], schema=sch)

