"""Write hand-built constructions into a study store (``lstmsearch construct ... --study NAME``).

A construction becomes one row of an ordinary study folder (``DATA/NAME/``: a manifest and
one Parquet part per call), so ``top``, ``show``, ``reproduce``, ``export`` and ``explain``
work on it as on any searched row. The study file text kept in the manifest is generated
here (:func:`study_text`): the cell, the task, ``[eval] readout = "given"`` (the
construction's own readout is scored, never refitted), a full space and a sweep strategy
that never runs (the budget is the number of rows, so ``lstmsearch run NAME`` has nothing
left to do). Rows carry strategy ``"construction"`` and their full weights; their errors
come from the same :func:`lstmsearch.evaluate` call that ``reproduce`` makes, so the
stored and reproduced errors are identical.

The folder may hold several constructions of the same cell, task and evaluation (say the
``flag_memory`` and ``integrator`` RNNs); one with other content is refused. A construction
already stored (same name and options) is not written again: its row is returned.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ..cells import Cell
from ..config import parse_study, study_toml
from ..errors import require
from ..search.base import Batch
from ..store import Store
from ..store.manifest import now, prepare_manifest, versions
from ..store.rows import rows_table
from ..tasks import Task
from .loop import local_evaluate


def _finite(v) -> None:
    if isinstance(v, dict):
        for x in v.values():
            _finite(x)
    elif isinstance(v, (list, tuple)):
        for x in v:
            _finite(x)
    elif isinstance(v, float):
        require(np.isfinite(v), f"cannot store the non-finite value {v} in a study file")


def study_text(name: str, cell: Cell, task: Task, sequences: int, seed: int, backend: str,
               out: str, rows: int) -> str:
    """The study file text of a construction study (kept in its manifest)."""
    spec = task.spec()
    _finite(spec)
    return study_toml({
        "study": {"name": name, "description": f"hand-built constructions ({cell.kind}, H={cell.hidden})",
                  "out": out},
        "cell": {"kind": cell.kind, "hidden": cell.hidden, "inputs": cell.inputs, "outputs": cell.outputs},
        "task": spec,
        "eval": {"sequences": sequences, "heldout": sequences, "seed": seed, "backend": backend,
                 "readout": "given"},
        "space": {"kind": "full"},
        "strategy": {"kind": "sweep", "batch": 1},
        "budget": {"settings": rows},
        "store": {"keep_weights": "all"},
    }, {"": f"Hand-built constructions written by `lstmsearch construct --study {name}`.\n"
            "Each row is a construction scored with its own readout; nothing is searched."})


def store_construction(cell: Cell, params: np.ndarray, task: Task, name: str, construction: str,
                       options: Optional[Dict] = None, data_dir="data", sequences: int = 64, seed: int = 0,
                       backend: str = "cpu") -> Tuple[Path, int, Dict]:
    """Write one construction as a row of the study ``data_dir/name``; returns
    (study folder, row id, the row's errors). See the module doc."""
    options = dict(options or {})
    root = Path(data_dir) / name
    store = Store(root)
    rows_before = store.count() if store.exists() else 0
    text = study_text(name, cell, task, sequences, seed, backend, str(root), rows_before + 1)
    cfg = parse_study(text, source=f"construct --study {name}")
    require(cfg.cell.n_params == params.shape[-1],
            f"the construction has {params.shape[-1]} weights; {cell.kind} H={cell.hidden} needs {cfg.cell.n_params}")
    store.acquire("construct")
    try:
        manifest = prepare_manifest(cfg, store)  # refuses a folder holding another study
        for c in manifest.get("constructions", []):
            if c["construction"] == construction and c["options"] == options:
                r = store.row(c["row"])
                return root, int(c["row"]), {k: r[k] for k in ("mse", "nmse", "max_abs_err")}
        row0 = store.next_row()
        run = len(manifest["runs"])
        batch = Batch(params=np.asarray(params, np.float32)[None], batch=np.array([run], np.int64),
                      index=np.array([row0], np.int64))
        t0 = time.perf_counter()
        table = local_evaluate(cfg, batch)
        wall = time.perf_counter() - t0
        rows = rows_table(cfg, "construction", batch, table, row0, np.ones(1, bool), {}, wall, run)
        entry = {"run": run, "start": now(), "end": now(), "backend": backend, "rows_before": rows_before,
                 "settings": 1, "rows_after": rows_before + 1, "wall_s": round(wall, 3),
                 "construction": construction, "versions": versions()}
        if not manifest["runs"]:
            manifest["versions"] = entry["versions"]
        store.append(rows)
        manifest["runs"].append(entry)
        manifest.setdefault("constructions", []).append(
            {"row": row0, "construction": construction, "options": options})
        store.write_manifest(manifest)
    finally:
        store.release()
    errors = {k: table.column(k)[0].as_py() for k in ("mse", "nmse", "max_abs_err")}
    return root, row0, errors
