"""The Parquet store: one dataset per study, append-only, atomically written part files.

Layout of a study folder (default ``data/<study name>/``)::

    manifest.json        study file text, identity hash, package versions, seeds, runs
    rows/part-w<slot>-<first row>.parquet   one part per evaluated batch (or group of batches)
    rows/damaged/        part files that could not be read, moved aside by a run (see below)
    workers/w<slot>.json the lease of a running worker (pid, host, trials in flight)
    optuna.journal       the Optuna study (strategy optuna with the default storage)
    cmaes-state.pkl      the CMA-ES optimizer after its last told generation (strategy cmaes)

Every part is written to a hidden temporary file in ``rows/`` and linked into place
(``os.link``, which fails if the part exists: a part never overwrites another), then the
temporary name is removed, so a reader -- and a resumed run -- sees whole parts only. Hidden files are skipped by pyarrow datasets and by ``rows/*.parquet`` globs.

Row ids: several writers (the workers of one study, each with its own *slot*) append to
the same dataset. Writer ``w<slot>`` numbers its rows ``slot * ROW_SLOT + 0, 1, 2, ...``
(:data:`ROW_SLOT` = 10**12), so ids never collide and need no coordination; a single
``run`` is slot 0 and numbers its rows 0, 1, 2, ... A slot reused by a later worker goes
on from the slot's last row.

Damaged parts: a part whose footer (or, when read, whose data) cannot be read is left out
of every read and count, and named in :attr:`Store.damaged` (the CLI prints it); a run
moves it to ``rows/damaged/`` and says so, with the row ids its file name gives.

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

import errno
import hashlib
import json
import os
import re
import time
import uuid
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import DamagedPartWarning, DiskFullError, LstmsearchError, check_text, require
from .best import fill_best

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ROWS = "rows"
WORKERS = "workers"
#: The part's Parquet key-value metadata: the identity of the study that wrote it
IDENTITY_KEY = "lstmsearch.study_identity"
#: What a manifest must hold (key -> type); without one of them it is damaged
MANIFEST_KEYS = {"schema_version": int, "identity": str, "study_text": str, "runs": list}
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


#: (path, size, mtime_ns, sha256) of the part files this process has hashed or written: a part
#: is hashed once per process, whatever Store object reads it (parts are immutable).
_HASHED: set = set()


def _hash_key(path: Path, sha: str):
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, sha)


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file's bytes: the content hash recorded per part in the manifest."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parquet_format() -> ds.ParquetFileFormat:
    """Parquet reading that verifies the page checksums (parts written without them read as before)."""
    return ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True))


def _disk_full(path: Path, exc: OSError, what: str) -> DiskFullError:
    return DiskFullError(f"no space left on the device of {path.parent} while writing {what} ({exc.strerror}); "
                         "nothing partial was kept and every part written before is intact: free some space "
                         "and run the study again to continue")


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = True):
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(path, exc, path.name) from exc
        raise


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

    ``slot`` names this process's part files (``part-w<slot>-...``) and its row ids
    (``slot * ROW_SLOT + n``); several writers (workers) append to the same dataset, each
    with its own slot (see :meth:`next_row`).
    """

    def __init__(self, root, slot: int = 0):
        self.root = Path(check_text(str(root), "the study folder"))
        self.rows_dir = self.root / ROWS
        self.slot = int(slot)
        self.writer = f"w{self.slot}"
        self._rows: Dict[str, int] = {}  # part file name -> rows (parts are immutable)
        self.damaged: Dict[str, str] = {}  # part file name -> why it cannot be read
        self._next_local = None
        self._lock_fd: Optional[int] = None
        self._identity: Dict[str, Optional[str]] = {}  # part file name -> study identity in its metadata
        self._written: Dict[str, Dict] = {}  # parts written by this object: rows and sha256 for the manifest
        #: the identity of the study this store's rows belong to (set by prepare_manifest; else the manifest's)
        self.identity: Optional[str] = None

    # ------------------------------------------------------------------ manifest
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
        the wrong type), or None when it is whole (or absent)."""
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
        if not all(isinstance(r, dict) for r in m["runs"]) or not isinstance(m.get("parts", {}), dict):
            return None, "its runs or parts are not records"
        return m, None

    def set_aside_manifest(self) -> Path:
        """Move a damaged manifest to ``manifest.json.damaged-<time>`` (never silently replaced)."""
        dst = self.root / f"{MANIFEST}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        os.replace(self.manifest_path, dst)
        return dst

    def write_manifest(self, manifest: Dict):
        """Write the manifest atomically. Its ``parts`` (name -> rows, sha256: one entry per part
        file written) is the union of the given one, the one on disk and the parts this object
        wrote, so a manifest held in memory since the start of a run never drops an entry."""
        self.root.mkdir(parents=True, exist_ok=True)
        parts = dict(manifest.get("parts") or {})
        if self.exists():
            try:
                parts.update(json.loads(self.manifest_path.read_text()).get("parts") or {})
            except (OSError, ValueError, AttributeError):
                pass
        parts.update(self._written)
        if parts:
            manifest["parts"] = dict(sorted(parts.items()))
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

    def lock_holder(self) -> Optional[Dict]:
        """Who holds the run lock (pid, host, mode), if a live process does: the lock is an OS
        lock (``flock``) on ``run.lock``, which dies with its holder; the file's text names it."""
        import fcntl

        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._lock_text(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)  # nobody holds it: a killed run's file
            return None
        finally:
            os.close(fd)

    def _lock_text(self, fd: int, tries: int = 50) -> Dict:
        """The holder's pid/host/mode from the lock file (written just after the lock is taken)."""
        import platform

        d: Dict = {}
        for _ in range(tries):
            try:
                d = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            except (OSError, ValueError):
                d = {}
            if d.get("pid") and (d.get("host") != platform.node() or _alive(d.get("pid"))):
                return d
            time.sleep(0.02)  # the new holder has not written its text yet (or a stale one is there)
        return d

    # --------------------------------------------------------------- run lock
    @property
    def lock_path(self) -> Path:
        return self.root / "run.lock"

    def acquire(self, mode: str = "single") -> List[str]:
        """Take the study's run lock (one ``run`` per study folder at a time).

        The lock is ``flock(LOCK_EX | LOCK_NB)`` on ``run.lock``, held until :meth:`release`
        or the end of this process (a killed run's lock is gone with it: there is no stale
        lock to take over, and two runs started together cannot both get it). The file keeps
        the holder's pid, host and mode for messages. A file left by a killed run is reused,
        and the lock files its Optuna journal storage left behind are removed. Returns
        messages about what was cleaned up.
        """
        import fcntl
        import platform

        self.root.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": platform.node(), "mode": mode}
        messages = []
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = self._lock_text(fd)
                os.close(fd)
                raise LstmsearchError(
                    f"the study in {str(self.root)!r} is being run by process {other.get('pid')} on "
                    f"{other.get('host')}; wait for it to finish") from None
            try:  # the file may have been removed by a holder that released meanwhile: lock the one in place
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            old = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            old = {}
        if old.get("pid"):
            for stale in self.root.glob("*.lock"):
                if stale.name != self.lock_path.name:
                    stale.unlink(missing_ok=True)
            messages.append(f"took over the run lock of process {old.get('pid')}, which no longer runs")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._lock_fd = fd
        return messages

    def release(self):
        """Give the run lock back (the file is removed while still locked, then the lock dropped)."""
        import fcntl

        fd = getattr(self, "_lock_fd", None)
        if fd is None:
            return
        self._lock_fd = None
        try:
            if os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino:
                self.lock_path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    # ---------------------------------------------------------------------- rows
    def _all_parts(self) -> List[Path]:
        if not self.rows_dir.is_dir():
            return []
        return sorted(p for p in self.rows_dir.glob("*.parquet") if not p.name.startswith("."))

    def parts(self) -> List[Path]:
        """The readable part files (their footers are read once and cached; damaged ones are
        left out and named in :attr:`damaged`)."""
        out = []
        for p in self._all_parts():
            if p.name in self.damaged:
                continue
            if p.name not in self._rows:
                try:
                    md = pq.read_metadata(p)
                except (OSError, pa.ArrowException) as exc:
                    if not p.exists():  # moved away meanwhile (another process quarantined it)
                        continue
                    self._mark_damaged(p, exc)
                    continue
                version = (md.metadata or {}).get(b"lstmsearch.schema_version", b"?").decode()
                if version != str(SCHEMA_VERSION):
                    raise LstmsearchError(
                        f"{p} was written with store schema version {version}; this lstmsearch reads version "
                        f"{SCHEMA_VERSION} (columns {', '.join(_schema_diff(md.schema.to_arrow_schema()))}); "
                        "read it with the lstmsearch that wrote it, or move it out of rows/")
                self._rows[p.name] = md.num_rows
                ident = (md.metadata or {}).get(IDENTITY_KEY.encode())
                self._identity[p.name] = ident.decode() if ident else None
            out.append(p)
        return out

    def _mark_damaged(self, p: Path, exc, warn: bool = True):
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.damaged[p.name] = why
        self._rows.pop(p.name, None)
        if warn:
            warnings.warn(f"lstmsearch: skipped the damaged part file {p} ({why}); " + part_rows_text(p.name),
                          DamagedPartWarning, stacklevel=3)

    def quarantine(self) -> List[str]:
        """Move damaged parts to ``rows/damaged/``; returns a message for each."""
        self.parts()
        out = []
        for name, why in list(self.damaged.items()):
            src = self.rows_dir / name
            if not src.exists():
                continue
            dst_dir = self.rows_dir / "damaged"
            dst_dir.mkdir(exist_ok=True)
            os.replace(src, dst_dir / name)
            out.append(f"moved the damaged part {name} to {dst_dir} ({why}); {part_rows_text(name)} "
                       "(run --repair re-evaluates them where they can be regenerated)")
        return out

    def clean_temporaries(self) -> int:
        """Remove temporary files left by a killed writer; returns how many."""
        n = 0
        if self.rows_dir.is_dir():
            for p in self.rows_dir.glob(".*.tmp"):
                p.unlink(missing_ok=True)
                n += 1
        return n

    def count(self) -> int:
        """Rows in the dataset (from the part files' footers; new parts of other writers are seen)."""
        return sum(self._rows[p.name] for p in self.parts())

    def next_row(self) -> int:
        """The next free row id of this writer's slot: ``slot * ROW_SLOT + n``."""
        if self._next_local is None:
            last = self.slot * ROW_SLOT
            for p in self.parts():
                m = _PART.fullmatch(p.name)
                if m and int(m.group(1)) == self.slot:
                    last = max(last, int(m.group(2)) + self._rows[p.name])
            quarantined = self.quarantined()
            for name in set(self.damaged) | set(quarantined):  # never reuse the ids of a damaged part
                m = _PART.fullmatch(name)
                if m and int(m.group(1)) == self.slot:
                    last = max(last, int(m.group(2)) + (quarantined.get(name) or 1))
            self._next_local = last
        return self._next_local

    def quarantined(self) -> Dict[str, Optional[int]]:
        """The parts in ``rows/damaged/`` -> their row count (the manifest's record, else the file's
        footer where it still reads; None when neither says)."""
        d = self.rows_dir / "damaged"
        if not d.is_dir():
            return {}
        recorded = self.recorded_parts()
        out = {}
        for p in sorted(d.glob("part-*.parquet")):
            n = (recorded.get(p.name) or {}).get("rows")
            if n is None:
                try:
                    n = pq.read_metadata(p).num_rows
                except (OSError, pa.ArrowException):
                    n = None
            out[p.name] = n
        return out

    def append(self, table: pa.Table) -> Path:
        """Write one part atomically (temporary file, fsync, rename); returns its path."""
        require(table.num_rows > 0, "cannot append an empty table")
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        first = int(table.column("row")[0].as_py())
        final = self.rows_dir / f"part-{self.writer}-{first:012d}.parquet"
        tmp = self.rows_dir / f".{final.name}.{uuid.uuid4().hex}.tmp"
        identity = self.study_identity()
        if identity:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), IDENTITY_KEY.encode(): identity})
        try:
            # dictionary pages only for the text columns: a float column of distinct values (errors,
            # the fitted readout) is larger with a dictionary than without
            pq.write_table(table, tmp, compression="zstd", write_page_checksum=True,
                           use_dictionary=[f.name for f in table.schema if pa.types.is_string(f.type)])
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            digest = file_sha256(tmp)
            os.link(tmp, final)  # fails if the part exists: a part never overwrites another
        except FileExistsError:
            raise LstmsearchError(f"part {final} already exists; another writer wrote these row ids "
                                  "(the store's row ids are inconsistent); nothing was overwritten") from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
                raise _disk_full(final, exc, f"{table.num_rows} rows (part {final.name})") from exc
            raise
        finally:
            tmp.unlink(missing_ok=True)
        try:
            dfd = os.open(self.rows_dir, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
        except OSError:  # pragma: no cover - platform dependent
            pass
        self._rows[final.name] = table.num_rows
        self._identity[final.name] = identity
        self._written[final.name] = {"rows": table.num_rows, "sha256": digest}
        _HASHED.add(_hash_key(final, digest))  # its hash is known: a later read need not compute it
        last = int(table.column("row")[table.num_rows - 1].as_py())
        self._next_local = max(self.next_row(), last + 1)
        if self.exists():  # record the part's rows and hash (merged by write_manifest, under the manifest lock)
            self.update_manifest(lambda m: m)
        return final

    def check(self) -> List[Dict]:
        """Verify every part (``lstmsearch check``): readable, page checksums, content hash and rows
        against the manifest, study identity. One dict per part: part, rows, status ("ok", or what
        is wrong); parts recorded in the manifest but missing, and quarantined ones, are listed too.
        Reads only; a run quarantines what it finds damaged."""
        recorded = self.recorded_parts()
        identity = None
        if self.exists():
            try:
                identity = self.read_manifest().get("identity")
            except LstmsearchError:
                identity = None
        out = []
        for p in self._all_parts():
            info = recorded.get(p.name, {})
            status, rows = [], None
            try:
                f = pq.ParquetFile(p, page_checksum_verification=True)
                rows = f.metadata.num_rows
                meta = f.schema_arrow.metadata or {}
                f.read()
                ident = meta.get(IDENTITY_KEY.encode())
                if ident and identity and ident.decode() != identity:
                    status.append(f"belongs to another study (identity {ident.decode()}, the manifest's {identity})")
            except (OSError, pa.ArrowException) as exc:
                status.append("unreadable: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            status.extend(_hash_problem(p, info))
            if rows is not None and info.get("rows") is not None and rows != info["rows"]:
                status.append(f"{rows} rows, the manifest records {info['rows']}")
            if not status and recorded and not info:
                status.append("ok (not recorded in the manifest)")
            out.append({"part": p.name, "rows": rows if rows is not None else info.get("rows"),
                        "status": "; ".join(status) or ("ok" if info.get("sha256") else "ok (no recorded hash)")})
        present = {d["part"] for d in out}
        damaged_dir = self.rows_dir / "damaged"
        for name, info in recorded.items():
            if name not in present:
                where = "quarantined in rows/damaged/" if (damaged_dir / name).exists() else "missing"
                out.append({"part": name, "rows": info.get("rows"), "status": where})
        return sorted(out, key=lambda d: d["part"])

    def quarantine_checked(self, results: List[Dict]) -> List[str]:
        """Move the parts that :meth:`check` found wrong (on disk, not ok) to ``rows/damaged/``;
        the caller holds the run lock. Returns a message for each."""
        for r in results:
            p = self.rows_dir / r["part"]
            if not r["status"].startswith("ok") and r["status"] not in ("missing", "quarantined in rows/damaged/") \
                    and p.exists():
                self._mark_damaged(p, r["status"], warn=False)
        return self.quarantine()

    def study_identity(self) -> Optional[str]:
        """The identity written into new parts: :attr:`identity`, else the manifest's."""
        if self.identity is None and self.exists():
            try:
                self.identity = self.read_manifest().get("identity")
            except LstmsearchError:
                pass
        return self.identity

    def part_rows(self, name: str) -> int:
        """Rows of a readable part (from its footer)."""
        self.parts()
        return self._rows[name]

    def part_identities(self) -> Dict[str, Optional[str]]:
        """Part file name -> the study identity in its metadata (None for parts written before it was kept)."""
        return {p.name: self._identity.get(p.name) for p in self.parts()}

    def recorded_parts(self) -> Dict[str, Dict]:
        """The manifest's record of the parts written (name -> rows, sha256); empty for older stores."""
        if not self.exists():
            return {}
        try:
            return dict(self.read_manifest().get("parts") or {})
        except LstmsearchError:
            return {}

    def verify_counts(self) -> List[str]:
        """The cheap check a run makes on start: every part the manifest records is present with
        its row count. A part with another count is marked damaged (then quarantined by the run);
        a missing one is named, one line per part. Returns the lines."""
        out = []
        present = {p.name: p for p in self.parts()}
        for name, info in self.recorded_parts().items():
            if name in present:
                if info.get("rows") is not None and self._rows[name] != info["rows"]:
                    self._mark_damaged(present[name], f"it holds {self._rows[name]} rows, the manifest records "
                                                      f"{info['rows']}", warn=False)
            elif name not in self.damaged and not (self.rows_dir / "damaged" / name).exists():
                out.append(f"the part {name} recorded in the manifest is missing from {self.rows_dir} "
                           f"({info.get('rows', '?')} rows); " + part_rows_text(name))
        return out

    def dataset(self) -> ds.Dataset:
        parts = self.parts()
        require(parts, f"the study in {str(self.root)!r} has no rows yet")
        return ds.dataset([str(p) for p in parts], format=parquet_format())

    def verified_dataset(self) -> ds.Dataset:
        """The dataset of the parts that pass verification (what ``query --sql`` reads): a part
        whose content hash the manifest records must match it; one without a recorded hash is read
        through once with its page checksums verified. A part that fails is named in
        :attr:`damaged` with a warning and left out, as :meth:`read` leaves out unreadable parts."""
        recorded = self.verify_hashes()  # the parts with a recorded hash
        for p in self.parts():
            if (recorded.get(p.name) or {}).get("sha256"):
                continue
            try:  # no recorded hash: read it through with its page checksums verified
                pq.ParquetFile(p, page_checksum_verification=True).read()
            except (OSError, pa.ArrowException) as exc:
                self._mark_damaged(p, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return self.dataset()

    def verify_hashes(self) -> Dict[str, Dict]:
        """Check every part whose content hash the manifest records against it (once per part file
        and process: see ``_HASHED``); a part that differs is named in :attr:`damaged` with a
        warning and left out. Page checksums cover page data, not page headers: the hash is what
        makes any flipped bit visible. Returns the manifest's part records."""
        recorded = self.recorded_parts()
        for p in self.parts():
            want = (recorded.get(p.name) or {}).get("sha256")
            if not want:
                continue
            try:
                key = _hash_key(p, want)
            except OSError:
                continue
            if key in _HASHED:
                continue
            if file_sha256(p) != want:
                self._mark_damaged(p, "content hash differs from the manifest's")
            else:
                _HASHED.add(key)
        return recorded

    def read(self, columns: Optional[List[str]] = None, filter=None) -> pa.Table:
        """Rows (all, or those matching a pyarrow compute expression), sorted by row id.

        Parts are checked against the manifest's content hashes first (:meth:`verify_hashes`);
        a part that differs or whose data turns out unreadable is skipped (and named in
        :attr:`damaged`); the other parts are read as usual.
        """
        self.verify_hashes()
        parts = self.parts()
        if not parts:
            return pa.table({c: [] for c in (columns or ["row"])})
        cols = columns if columns is None or "row" in columns else list(columns) + ["row"]
        try:
            table = ds.dataset([str(p) for p in parts], format=parquet_format()).to_table(columns=cols, filter=filter)
        except (OSError, pa.ArrowException) as exc:
            if isinstance(exc, (pa.ArrowInvalid, pa.ArrowTypeError)) and "No match for FieldRef" in str(exc):
                raise
            tables = []
            for p in parts:  # find the bad part(s): read one by one
                try:
                    tables.append(ds.dataset(str(p), format=parquet_format()).to_table(columns=cols, filter=filter))
                except (OSError, pa.ArrowException) as exc1:
                    if not p.exists():
                        continue
                    self._mark_damaged(p, exc1)
            if not tables:
                return pa.table({c: [] for c in cols})
            table = pa.concat_tables(tables, promote_options="permissive")
        return fill_best(self.root, table.sort_by("row"))

    def row(self, row: int) -> Dict:
        """One row as a dict (weights/readout/z as numpy arrays)."""
        require(isinstance(row, (int, np.integer)) and row >= 0, f"row must be a non-negative integer, got {row!r}")
        t = self.read(filter=ds.field("row") == int(row))
        require(t.num_rows == 1, f"the study in {str(self.root)!r} has no row {row} ({self.describe_ids()})")
        out = {}
        for name in t.column_names:
            v = t.column(name)[0].as_py()
            if name in ("weights", "readout", "z") and v is not None:
                v = np.asarray(v, np.float32)
            out[name] = v
        return out

    def describe_ids(self) -> str:
        """The row ids the study has, as runs of consecutive ids (for error messages): one run
        per writer slot for a study as written, single ids for rows picked by ``extract``."""
        ids = np.sort(self.read(columns=["row"]).column("row").to_numpy()) if self.parts() else np.empty(0)
        if not ids.size:
            return "it has no rows yet"
        cut = np.flatnonzero(np.diff(ids) != 1) + 1
        runs = [f"{r[0]} to {r[-1]}" if r.size > 1 else f"{r[0]}" for r in np.split(ids, cut)]
        if len(runs) > 8:
            runs = runs[:4] + [f"... ({len(runs) - 6} more runs)"] + runs[-2:]
        return "row ids " + ", ".join(runs) + "; lstmsearch top lists the best"

    # ------------------------------------------------------------- worker leases
    @property
    def workers_dir(self) -> Path:
        return self.root / WORKERS

    def leases(self) -> List[Dict]:
        """Leases of workers (live or dead): dicts with slot, pid, host, trials, age_s, alive."""
        import platform

        out = []
        if not self.workers_dir.is_dir():
            return out
        host = platform.node()
        for p in sorted(self.workers_dir.glob("w*.json")):
            try:
                d = json.loads(p.read_text())
                age = time.time() - p.stat().st_mtime
            except (OSError, json.JSONDecodeError):
                continue
            grace = float(d.get("grace_s", 60))
            d["age_s"] = age
            d["alive"] = _alive(d.get("pid")) if d.get("host") == host else age < grace
            d["path"] = p
            out.append(d)
        return out

    def claim_slot(self, info: Dict, slot: Optional[int] = None) -> int:
        """Claim a free writer slot >= 1 (or the given one) with a lease file; returns it.

        A slot whose lease belongs to a dead process (same host) or is older than its
        grace period (other hosts) is taken over.
        """
        self.workers_dir.mkdir(parents=True, exist_ok=True)
        candidates = [slot] if slot is not None else range(1, 100000)
        for s in candidates:
            path = self.workers_dir / f"w{s}.json"
            for _ in range(2):
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    stale = [d for d in self.leases() if d["path"] == path and not d["alive"]]
                    if stale:
                        path.unlink(missing_ok=True)
                        continue
                    break
                with os.fdopen(fd, "w") as fh:
                    json.dump(dict(info, slot=s), fh)
                return s
            if slot is not None:
                raise LstmsearchError(f"worker slot {slot} of {self.root} is held by a live worker")
        raise LstmsearchError(f"no free worker slot in {self.workers_dir}")  # pragma: no cover

    def write_lease(self, slot: int, info: Dict):
        atomic_write_bytes(self.workers_dir / f"w{slot}.json", json.dumps(dict(info, slot=slot)).encode(),
                            fsync=False)

    def release_slot(self, slot: int):
        (self.workers_dir / f"w{slot}.json").unlink(missing_ok=True)


def _schema_diff(old: pa.Schema) -> List[str]:
    now = schema(1, 1)
    missing = [f"{n} missing" for n in now.names if n not in old.names]
    extra = [f"{n} unknown" for n in old.names if n not in now.names]
    return (missing + extra) or ["of other types"]


def _hash_problem(path: Path, info: Dict) -> List[str]:
    """["content hash differs from the manifest's"] when the manifest records a hash the file no longer has."""
    if info.get("sha256") and file_sha256(path) != info["sha256"]:
        return ["content hash differs from the manifest's"]
    return []


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
