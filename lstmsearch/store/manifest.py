"""The study manifest (``manifest.json``): what a study is, and the record of its runs.

The manifest holds the study file text and its identity hash, the cell, task and space,
the seeds, the package versions, and one entry per run (start, end, settings, time split).
These helpers build, check and update it; :class:`~lstmsearch.store.Store` reads and writes
it atomically.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional

import warnings

from ..errors import LstmsearchError, ManifestRebuiltWarning, redact_url
from ..readout import BLAS, FIT_METHODS
from ..version import __version__
from .parts import SCHEMA_VERSION, Store


def versions() -> Dict[str, str]:
    """Versions of Python, lstmsearch (and its source hash) and the packages results depend on."""
    out = {"python": platform.python_version()}
    for pkg in ("lstmsearch", "numpy", "numba", "optuna", "pyarrow", "cmaes", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[pkg] = "not installed"
    out["lstmsearch"] = __version__
    out["lstmsearch_code"] = code_hash()
    return out


def code_hash() -> str:
    """sha256 (12 hex) of the package's source files: tells runs of different code apart."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]  # the lstmsearch package
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def now() -> str:
    """The current UTC time, ISO 8601 to the second (manifest timestamps)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def recorded_fit(cfg, manifest: Dict):
    """``cfg`` with the readout fit that its study's ``manifest`` records (``eval.readout_fit``):
    the rows of a study are fitted again, and the study continued, the way it fitted them. A
    manifest of release 0.1.0 or older records none: its readouts went through BLAS (``"blas"``)."""
    fit = (manifest.get("eval") or {}).get("readout_fit", BLAS)
    if fit not in FIT_METHODS:
        raise LstmsearchError(f"the manifest of study {cfg.name} records readout_fit {fit!r}, which this lstmsearch "
                              f"does not know ({', '.join(FIT_METHODS)}); upgrade lstmsearch to read it")
    if fit == cfg.eval.readout_fit:
        return cfg
    return dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, readout_fit=fit))


def prepare_manifest(cfg, store: Store) -> Dict:
    """The manifest a run of ``cfg`` (a :class:`~lstmsearch.config.StudyConfig`) starts from.

    A new study gets a new manifest (study text, identity, cell, task, space, seeds). An
    existing one is checked: a folder of extracted rows, a study of different content, another
    schema version or another Optuna storage is refused with one line; its study text is
    updated (budget and backend changes are recorded).
    """
    store.identity = cfg.identity()  # written into every part this store writes
    why = store.manifest_problem()
    if why:  # damaged, not deleted: refuse another study's parts first, then keep it aside and rebuild
        _check_part_identities(cfg, store, manifest=False)
        why = f"was damaged ({why}); it is kept as {store.set_aside_manifest().name}"
    if store.exists():
        m = store.read_manifest()
        if m.get("extracted_from"):
            raise LstmsearchError(
                f"{store.root} holds rows extracted from study {m['extracted_from']['study']!r} (lstmsearch extract), "
                f"not a study to continue; run its study.toml with --out pointing at another folder")
        if m.get("identity") != cfg.identity():
            raise LstmsearchError(
                f"{store.root} holds results of a study with different content (identity {m.get('identity')} vs "
                f"{cfg.identity()} for {cfg.source}); give this study another [study] name or out, or remove "
                f"{store.root}")
        if m.get("schema_version") != SCHEMA_VERSION:
            raise LstmsearchError(f"{store.root} was written with store schema version {m.get('schema_version')}; "
                                  f"this lstmsearch writes version {SCHEMA_VERSION}")
        _check_part_identities(cfg, store)  # whatever the manifest says, the parts say whose rows they are
        if store.count():  # a study without rows may still pick its storage
            check_storage(cfg, m)
        m["study_text"] = cfg.text  # budget/backend changes are recorded
        return m
    _check_part_identities(cfg, store)
    m = {
        "schema_version": SCHEMA_VERSION, "study": cfg.name, "identity": cfg.identity(),
        "study_file": str(cfg.source), "base_dir": str(cfg.base_dir), "study_text": cfg.text,
        "created": now(), "strategy": cfg.strategy["kind"],
        "cell": {"kind": cfg.cell.kind, "hidden": cfg.cell.hidden, "inputs": cfg.cell.inputs,
                 "outputs": cfg.cell.outputs, "n_params": cfg.cell.n_params},
        "task": cfg.task.spec(), "baseline": cfg.task.baseline,
        "eval": asdict(cfg.eval), "space": {"kind": cfg.space_obj.kind, "dim": cfg.space_obj.dim,
                                            "names": cfg.space_obj.names[:1000]},
        "seeds": {"eval": cfg.eval.seed, "strategy": int(cfg.strategy.get("seed") or cfg.eval.seed)},
        "runs": [],
    }
    if store.parts():  # the manifest is gone, the parts (all of this study: checked above) are not
        m = _rebuild(m, store, why or "was missing")
    elif why:
        warnings.warn(f"lstmsearch: {store.manifest_path} {why}; the study has no rows, so a new one is written",
                      ManifestRebuiltWarning, stacklevel=2)
    return m


def _check_part_identities(cfg, store: Store, manifest: Optional[bool] = None):
    """Refuse a folder whose parts belong to another study, whatever its manifest says (or if it has none)."""
    ids = store.part_identities()
    mine = cfg.identity()
    other = sorted({i for i in ids.values() if i and i != mine})
    if other:
        n = sum(1 for i in ids.values() if i in other)
        raise LstmsearchError(
            f"{store.root} holds rows of another study ({n} part(s) with identity {other[0]}, not {mine} of "
            f"{cfg.source}); nothing was written: give this study another [study] name or out, or move "
            f"{store.root} away")
    if manifest is None:
        manifest = store.exists()
    if ids and not manifest and any(i is None for i in ids.values()):
        raise LstmsearchError(
            f"{store.root} has rows but no usable {store.manifest_path.name}, and {sum(i is None for i in ids.values())} "
            "part(s) do not say which study wrote them (written before lstmsearch kept it); nothing was written: "
            f"restore {store.manifest_path}, or move {store.rows_dir} away")


def _rebuild(m: Dict, store: Store, why: str) -> Dict:
    """A manifest rebuilt from the parts of this study (rows, hashes, the runs that wrote them); says so."""
    from .parts import file_sha256

    parts = store.parts()
    m["parts"] = {p.name: {"rows": store.part_rows(p.name), "sha256": file_sha256(p)} for p in parts}
    runs = store.read(columns=["run"]).column("run").to_numpy()
    n_runs = int(runs.max()) + 1 if runs.size else 0
    m["runs"] = [{"run": i, "rebuilt": True} for i in range(n_runs)]
    m["rebuilt"] = now()
    warnings.warn(f"lstmsearch: {store.manifest_path} {why}; rebuilt it from the {len(parts)} part(s) in "
                  f"{store.rows_dir}, which carry this study's identity {m['identity']} ({store.count()} rows, "
                  f"{n_runs} earlier run(s)); the earlier runs' records are lost", ManifestRebuiltWarning,
                  stacklevel=3)
    return m


def storage_key(cfg) -> Optional[str]:
    """The storage of a strategy that has one (Optuna's), password removed (recorded in the manifest)."""
    storage = cfg.strategy.get("storage")
    return None if storage is None else redact_url(storage)


def check_storage(cfg, manifest: Dict):
    """A study's Optuna trials live in one storage: refuse to continue it in another one."""
    recorded = manifest.get("optuna_storage")
    mine = storage_key(cfg)
    if recorded is None or mine is None or recorded == mine or recorded == "memory":
        return
    raise LstmsearchError(
        f"the Optuna trials of study {cfg.name!r} are in the storage {recorded} (recorded in "
        f"{cfg.out}/manifest.json), not in {mine}; pass --storage with that URL (or set [strategy] storage)")


def replace_run(m: Dict, entry: Dict) -> Dict:
    """``m`` with the run entry of the same run number replaced by ``entry`` (appended if new)."""
    for i, r in enumerate(m["runs"]):
        if r.get("run") == entry["run"]:
            m["runs"][i] = entry
            return m
    m["runs"].append(entry)
    return m

