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
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pyarrow.dataset as ds

from .errors import LstmsearchError, redact_url, require, study_folder_of
from .store import Store, fixed_list
from .query import open_study, settings_of, top_rows


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
    manifest["study_text"] = redact_url(manifest["study_text"])  # a password never travels (old manifests)
    out.mkdir(parents=True, exist_ok=True)
    target.write_manifest(manifest)
    target.append(picked)
    (out / "study.toml").write_text(manifest["study_text"])  # redacted above
    return out


def format_extracted(path: Path) -> str:
    m = json.loads((Path(path) / "manifest.json").read_text())
    e = m["extracted_from"]
    return (f"wrote {len(e['rows'])} rows of study {e['study']} (of {e['source_rows']}; best nmse "
            f"{e['best_nmse']:.3g}) to {path}: manifest.json, rows/, study.toml")
