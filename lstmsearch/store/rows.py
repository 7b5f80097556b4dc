"""The rows of one evaluated batch, as the store keeps them.

:func:`rows_table` turns a batch and its evaluation table into rows of the store's schema
(:mod:`lstmsearch.store.schema`); the best ``keep_weights`` rows keep their full weights and
readout in the writer's file under ``best/`` (:mod:`lstmsearch.store.best`); every row keeps the keys its setting is
rebuilt from, and its readout is fitted again when needed (:func:`lstmsearch.query.refit_readouts`).
With ``keep_weights = "all"`` every row keeps its weights and readout in the parts.
"""

from __future__ import annotations

import datetime as _dt
from typing import Dict, Optional

import numpy as np
import pyarrow as pa

from .schema import fixed_list, schema, var_list


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
    see :mod:`lstmsearch.store.schema` for the schema). ``rung`` = (fidelity, sequences, heldout,
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

