"""Extract the best rows of a study into a small, self-contained study folder.

``extract("recall_first_lstm32", "data/examples", top=5)`` writes
``data/examples/recall_first_lstm32/`` with

- ``manifest.json`` -- the source study's manifest (study file text, versions, seeds, runs)
  plus an ``extracted_from`` entry (source folder, the rows taken, when, how many rows the
  source held);
- ``rows/part-w0-<first row>.parquet`` -- the chosen rows, same schema, same row ids, with the
  full setting in ``weights`` for every row (rebuilt from z / the sweep key where the source
  did not keep it), so that nothing else is needed to reproduce them;
- ``study.toml`` -- the study file that made them, to run the search again.

The folder is read by every result command (``top``, ``show``, ``reproduce``, ``export``,
``explain``, ``report``) with ``--data`` pointing at its parent. It is not a study to continue:
``run`` refuses it (its Optuna or CMA-ES state stays with the source).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np
import pyarrow.dataset as ds

from .errors import LstmsearchError, redact_url, require, study_folder_of
from .evaluate import evaluate, solutions
from .query import open_study, settings_of, top_rows
from .readout import FIXED_ORDER
from .store import Store, fixed_list
from .store.manifest import versions


def extract(study, dest: Union[str, Path], top: Optional[int] = None, rows: Optional[Sequence[int]] = None,
            name: Optional[str] = None, data_dir="data") -> Path:
    """Copy ``top`` best rows (finite, by held-out nmse) or the given ``rows`` of ``study``
    into ``dest/<name>`` (default name: the study's); returns that folder."""
    require((top is None) != (rows is None), "give either top=K or rows=[...], not both")
    cfg, store = open_study(study, data_dir)
    require(store.parts(), f"the study in {store.root} has no rows to extract")
    if top is not None:
        require(isinstance(top, (int, np.integer)) and top >= 1, f"top must be a positive integer, got {top!r}")
        picked = top_rows(cfg, int(top), where=ds.field("finite") == True, columns=None)  # noqa: E712
    else:
        wanted = [int(r) for r in rows]
        picked = store.read(filter=ds.field("row").isin(wanted))
        missing = sorted(set(wanted) - set(picked.column("row").to_pylist()))
        if missing:
            raise LstmsearchError(f"the study in {store.root} has no row {missing[0]} ({store.describe_ids()})")
    require(picked.num_rows > 0, f"the study in {store.root} has no finite rows to extract")
    picked = picked.sort_by("row")

    settings = settings_of(cfg, store, picked)
    idx = picked.schema.get_field_index("weights")
    picked = picked.set_column(idx, picked.schema.field(idx),
                               fixed_list(settings, cfg.cell.n_params).cast(picked.schema.field(idx).type))

    out = Path(dest) / (name or cfg.name)
    require(not (out / "manifest.json").exists() and not (out / "rows").exists(),
            f"{out} already holds a study; remove it or pass another destination")
    inside = study_folder_of(out)
    require(inside is None, f"--to {str(dest)!r} is inside the study folder {str(inside)!r}; lstmsearch never writes "
                            f"there: give a destination outside it")
    target = Store(out)
    manifest = store.read_manifest()
    manifest["extracted_from"] = {
        "study": cfg.name, "folder": str(store.root), "rows": picked.column("row").to_pylist(),
        "source_rows": store.count(), "best_nmse": float(np.min(picked.column("nmse").to_numpy())),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    manifest.pop("optuna_storage", None)
    manifest["parts"] = {}  # the source's part records name its parts, not this folder's: append() adds ours
    manifest.pop("files", None)  # nor are its best/, generations/ and journal records this folder's
    manifest["study_text"] = redact_url(manifest["study_text"])  # a password never travels (old manifests)
    out.mkdir(parents=True, exist_ok=True)
    target.write_manifest(manifest)
    target.append(picked)
    (out / "study.toml").write_text(manifest["study_text"])  # redacted above
    return out


def refit_extracted(folder: Union[str, Path]) -> Dict:
    """Score the rows of an extracted folder again with this release's readout fit.

    The rows of a study made by release 0.1.0 or older were fitted through BLAS, whose last bits
    depend on the CPU (:mod:`lstmsearch.readout`); they reproduce as identical only on a machine
    whose BLAS kernel rounds like the one that ran the study. This re-evaluates every row's setting
    on the study's own sequences with the fixed-order fit -- the settings (recurrent weights) are
    kept, their fitted readouts, errors and the readout tail of ``weights`` replaced -- and records
    ``eval.readout_fit = "fixed-order"`` and a ``refitted`` entry (date, previous fit, best nmse
    before and after, the package versions that scored them) in the manifest, so that every row
    reproduces bit for bit on any machine.
    Returns that entry; a folder fitted this way already is left as it is (``{}``).
    """
    root = Path(folder)
    cfg, store = open_study(root)
    manifest = store.read_manifest()
    require(manifest.get("extracted_from"), f"{root} is a study, not a folder of extracted rows: run its study file "
                                            f"again with this release instead (its search depends on the errors)")
    if cfg.eval.readout_fit == FIXED_ORDER:
        return {}
    ev = cfg.eval
    rows = store.read().sort_by("row")
    full = all(rows.column(c).to_numpy(zero_copy_only=False).tolist() == [v] * rows.num_rows
               for c, v in (("sequences", ev.sequences), ("heldout", ev.heldout)))
    require(full, f"{root} holds rows scored at another fidelity than the study's: they cannot be refitted")
    settings = np.stack(rows.column("weights").to_numpy(zero_copy_only=False)).astype(np.float32)
    t = evaluate(cfg.cell, settings, cfg.task, n_sequences=ev.sequences, seed=ev.seed, backend=ev.backend,
                 readout=ev.readout, n_heldout=ev.heldout, ridge=ev.ridge, readout_fit=FIXED_ORDER)
    settings = solutions(t, settings, cfg.cell)
    for name in ("mse", "nmse", "max_abs_err", "train_mse", "train_nmse", "nmse_by_length", "finite", "readout"):
        if name in rows.column_names and name in t.column_names:
            i = rows.schema.get_field_index(name)
            rows = rows.set_column(i, rows.schema.field(i), t.column(name).cast(rows.schema.field(i).type))
    i = rows.schema.get_field_index("weights")
    weights = fixed_list(settings, cfg.cell.n_params).cast(rows.schema.field(i).type)
    rows = rows.set_column(i, rows.schema.field(i), weights)
    entry = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "from": ev.readout_fit,
             "to": FIXED_ORDER, "best_nmse_before": manifest["extracted_from"].get("best_nmse"),
             "best_nmse_after": float(np.min(t.column("nmse").to_numpy())), "versions": versions()}
    manifest["eval"] = {**manifest.get("eval", {}), "readout_fit": FIXED_ORDER}
    manifest["refitted"] = entry
    manifest["parts"] = {}
    aside = root.with_name(f".{root.name}.refit-old")
    root.rename(aside)
    try:
        target = Store(root)
        target.write_manifest(manifest)
        target.append(rows)
        for extra in aside.iterdir():  # study.toml and anything else beside the rows
            if extra.is_file() and extra.name not in ("manifest.json", "manifest.flock"):
                (root / extra.name).write_bytes(extra.read_bytes())
    except BaseException:
        if root.exists():
            shutil.rmtree(root)
        aside.rename(root)
        raise
    shutil.rmtree(aside)
    return entry


def format_extracted(path: Path) -> str:
    m = json.loads((Path(path) / "manifest.json").read_text())
    e = m["extracted_from"]
    return (f"wrote {len(e['rows'])} rows of study {e['study']} (of {e['source_rows']}; best nmse "
            f"{e['best_nmse']:.3g}) to {path}: manifest.json, rows/, study.toml")
