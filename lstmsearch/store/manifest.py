"""The study manifest (``manifest.json``): what a study is, and the record of its runs.

The manifest holds the study file text and its identity hash, the cell, task and space,
the seeds, the package versions, and one entry per run (start, end, settings, time split).
:class:`ManifestFile` reads and writes it (atomically, under a file lock) for
:class:`~lstmsearch.store.Store`; the functions below build, check and update it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import platform
import time
import uuid
import warnings
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional

from ..errors import LstmsearchError, ManifestRebuiltWarning, redact_url, require
from ..readout import BLAS, FIT_METHODS
from ..version import __version__
from .files import atomic_write_bytes, file_sha256
from .schema import MANIFEST, SCHEMA_VERSION


#: What a manifest must hold (key -> type); without one of them it is damaged
MANIFEST_KEYS = {"schema_version": int, "identity": str, "study_text": str, "runs": list}
#: The keys that say what the study's rows mean: their sha256 is kept in the manifest (``content_sha256``)
#: and checked on every read, so a changed digit in the study text is a damaged manifest, not other rows
CONTENT_KEYS = ("study", "identity", "study_text", "strategy", "cell", "task", "baseline", "eval", "space", "seeds",
                "extracted_from")


def content_sha256(m: Dict) -> str:
    """sha256 of the manifest's :data:`CONTENT_KEYS` (canonical JSON)."""
    body = json.loads(json.dumps({k: m[k] for k in CONTENT_KEYS if k in m}, default=str))  # as it reads back
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class ManifestFile:
    """Reading and writing ``manifest.json`` (a mixin of :class:`~lstmsearch.store.Store`): atomic
    writes under a file lock, the record of every file written (``parts``: row parts; ``files``:
    ``best/`` and ``generations/`` files, each with its rows and sha256), and the hash of the study's
    content (:func:`content_sha256`)."""

    root: Path
    identity: Optional[str]
    _written: Dict[str, Dict]
    _written_files: Dict[str, Dict]

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> Dict:
        """The manifest; a missing or damaged one (see :meth:`manifest_problem`) is a one-line error."""
        require(self.exists(), f"no study results in {str(self.root)!r} (no {MANIFEST}); "
                               "run the study first or pass its folder, study file or name")
        m, why = self._load_manifest()
        if why:
            raise LstmsearchError(
                f"{self.manifest_path} is damaged ({why}); its rows are intact: run the study file "
                f"(lstmsearch run STUDY.toml --out {self.root}) to rebuild it from the parts, or restore it "
                f"(lstmsearch check {self.root} lists the parts)")
        return m

    def manifest_problem(self) -> Optional[str]:
        """Why the manifest cannot be used (not JSON, cut short, not an object, a key missing or of
        the wrong type, its content not matching its ``content_sha256``), or None when it is whole
        (or absent)."""
        return self._load_manifest()[1] if self.exists() else None

    def _load_manifest(self):
        try:
            m = json.loads(self.manifest_path.read_bytes())
        except (OSError, ValueError) as exc:  # cut short, garbage, not UTF-8
            return None, f"not readable JSON: {str(exc).splitlines()[0][:120]}"
        if not isinstance(m, dict):
            return None, f"a JSON {type(m).__name__}, not an object"
        for key, kind in MANIFEST_KEYS.items():
            if key not in m:
                return None, f"the key {key!r} is missing"
            if not isinstance(m[key], kind) or isinstance(m[key], bool):
                return None, f"the key {key!r} is not {kind.__name__}"
        if not all(isinstance(r, dict) for r in m["runs"]) or not isinstance(m.get("parts", {}), dict) \
                or not isinstance(m.get("files", {}), dict):
            return None, "its runs, parts or files are not records"
        if "content_sha256" in m and m["content_sha256"] != content_sha256(m):  # older manifests keep none
            return None, ("its study text, cell, task, space, eval or seeds differ from the sha256 recorded with "
                          "them (a changed byte)")
        return m, None

    def set_aside_manifest(self) -> Path:
        """Move a damaged manifest to ``manifest.json.damaged-<time>`` (never silently replaced)."""
        dst = self.root / f"{MANIFEST}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        os.replace(self.manifest_path, dst)
        return dst

    def write_manifest(self, manifest: Dict):
        """Write the manifest atomically. Its ``parts`` (name -> rows, sha256: one entry per part
        file written) is the union of the given one, the one on disk and the parts this object
        wrote, so a manifest held in memory since the start of a run never drops an entry; ``files``
        (``best/`` and ``generations/``) likewise, a file this object wrote last winning. The hash of
        the study's content (``content_sha256``) is computed afresh."""
        self.root.mkdir(parents=True, exist_ok=True)
        parts = dict(manifest.get("parts") or {})
        files = dict(manifest.get("files") or {})
        if self.exists():
            try:
                disk = json.loads(self.manifest_path.read_text())
                parts.update(disk.get("parts") or {})
                files.update(disk.get("files") or {})
            except (OSError, ValueError, AttributeError):
                pass
        parts.update(self._written)
        if parts:
            manifest["parts"] = dict(sorted(parts.items()))
        if files or self._written_files:
            manifest["files"] = dict(sorted({**files, **self._written_files}.items()))
        manifest["content_sha256"] = content_sha256(manifest)
        atomic_write_bytes(self.manifest_path, json.dumps(manifest, indent=2, default=str).encode())

    def update_manifest(self, fn) -> Dict:
        """Read-modify-write the manifest under an advisory file lock (several workers)."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "manifest.flock", "a") as lk:
            fcntl.flock(lk.fileno(), fcntl.LOCK_EX)
            try:
                m = fn(self.read_manifest())
                self.write_manifest(m)
                return m
            finally:
                fcntl.flock(lk.fileno(), fcntl.LOCK_UN)

    def create_manifest(self, manifest: Dict) -> bool:
        """Write the manifest unless one exists (under the file lock); True if written."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "manifest.flock", "a") as lk:
            fcntl.flock(lk.fileno(), fcntl.LOCK_EX)
            try:
                if self.exists():
                    return False
                self.write_manifest(manifest)
                return True
            finally:
                fcntl.flock(lk.fileno(), fcntl.LOCK_UN)

    def study_identity(self) -> Optional[str]:
        """The identity written into new files: :attr:`identity`, else the manifest's."""
        if self.identity is None and self.exists():
            try:
                self.identity = self.read_manifest().get("identity")
            except LstmsearchError:
                pass
        return self.identity

    def recorded_parts(self) -> Dict[str, Dict]:
        """The manifest's record of the parts written (name -> rows, sha256); empty for older stores."""
        return self._recorded("parts")

    def recorded_files(self) -> Dict[str, Dict]:
        """The manifest's record of the other files written (``best/...``, ``generations/...`` ->
        rows, sha256); empty for older stores."""
        return self._recorded("files")

    def _recorded(self, key: str) -> Dict[str, Dict]:
        if not self.exists():
            return {}
        try:
            return dict(self.read_manifest().get(key) or {})
        except LstmsearchError:
            return {}


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


def prepare_manifest(cfg, store) -> Dict:
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


def _check_part_identities(cfg, store, manifest: Optional[bool] = None):
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


def _rebuild(m: Dict, store, why: str) -> Dict:
    """A manifest rebuilt from the parts of this study (rows, hashes, the runs that wrote them); says so."""
    parts = store.parts()
    m["parts"] = {p.name: dict(part_batches(p), rows=store.part_rows(p.name), sha256=file_sha256(p)) for p in parts}
    runs = store.read(columns=["run"]).column("run").to_numpy()
    n_runs = int(runs.max()) + 1 if runs.size else 0
    m["runs"] = [{"run": i, "rebuilt": True} for i in range(n_runs)]
    m["rebuilt"] = now()
    warnings.warn(f"lstmsearch: {store.manifest_path} {why}; rebuilt it from the {len(parts)} part(s) in "
                  f"{store.rows_dir}, which carry this study's identity {m['identity']} ({store.count()} rows, "
                  f"{n_runs} earlier run(s)); the earlier runs' records are lost", ManifestRebuiltWarning,
                  stacklevel=3)
    return m


def part_batches(path: Path) -> Dict:
    """``{"batches": [first, last]}`` of a readable part (empty when it cannot say)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        b = pq.read_table(path, columns=["batch"]).column("batch")
        return {"batches": [int(pc.min(b).as_py()), int(pc.max(b).as_py())]} if len(b) else {}
    except (OSError, ValueError, KeyError):
        return {}


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

