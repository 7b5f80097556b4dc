"""Integrity of a study's files: what ``lstmsearch check`` verifies and every read checks.

Every file a study writes is covered by a recorded hash:

- a row part (``rows/part-*.parquet``): its sha256 and rows in the manifest's ``parts``, its study
  identity and the id of the run that wrote it in its Parquet metadata, its page checksums (a part
  the manifest does not record is adopted when its run is one of the manifest's ``runs`` -- a run
  killed before recording it -- and refused otherwise: :meth:`Integrity.verify_counts`);
- a ``best/`` file: its sha256 and rows in the manifest's ``files``, the study identity and a hash
  of its values in its metadata (:mod:`lstmsearch.store.best`);
- a ``generations/`` file: the sha256 in its own name, and its name in the manifest's ``files``
  (so a deleted one is named);
- a strategy's state file (``cmaes-state.pkl``): sealed with the sha256 of its bytes
  (:func:`lstmsearch.store.files.seal`);
- the Optuna journal (``optuna.journal``): the length and CRC-32 of its whole records as of the
  last part written, in the manifest's ``files``;
- the manifest's own content (study text, cell, task, ...): ``content_sha256``
  (:mod:`lstmsearch.store.manifest`).

A read leaves out what fails (a part, a ``best/`` file) with one warning naming the file; a part
the manifest records but which is gone is named too. :meth:`Integrity.check` is the full
verification, one dict per file; :meth:`Integrity.quarantine` moves damaged parts to
``rows/damaged/`` (a run does; ``run --repair`` then re-evaluates what can be rebuilt from keys).
"""

from __future__ import annotations

import os
import warnings
import zlib
from pathlib import Path
from typing import Dict, List, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DamagedPartWarning, LstmsearchError
from .best import BEST_DIR, check_best
from .files import BAD_FILE, file_sha256, hash_known, remember_hash, sealed_problem
from .generations import FOLDER as GENERATIONS, GenerationStore
from .manifest import part_batches
from .schema import IDENTITY_KEY, RUN_ID_KEY, part_rows_text

#: The strategies' state files beside the manifest (sealed: :func:`lstmsearch.store.files.seal`)
STATE_FILES = ("*.pkl",)
#: The Optuna journal of a study with the default storage
JOURNAL = "optuna.journal"


def journal_crc(path: Path, size: int, start=(0, 0)) -> int:
    """CRC-32 of the first ``size`` bytes of ``path``, going on from ``start`` = (bytes, crc) already summed."""
    done, crc = start
    with open(path, "rb") as fh:
        fh.seek(done)
        left = size - done
        while left > 0:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                raise EOFError
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
    return crc


def _why(exc) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class Integrity:
    """Verification, damage and quarantine (a mixin of :class:`~lstmsearch.store.Store`)."""

    root: Path
    rows_dir: Path
    damaged: Dict[str, str]
    _rows: Dict[str, int]
    _warned_missing: bool = False

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
                except BAD_FILE:
                    n = None
            out[p.name] = n
        return out

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
            status, rows, meta = [], None, {}
            try:
                f = pq.ParquetFile(p, page_checksum_verification=True)
                rows = f.metadata.num_rows
                meta = f.schema_arrow.metadata or {}
                f.read()
                ident = meta.get(IDENTITY_KEY.encode())
                if ident and identity and ident.decode() != identity:
                    status.append(f"belongs to another study (identity {ident.decode()}, the manifest's {identity})")
            except BAD_FILE as exc:
                status.append("unreadable: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            status.extend(_hash_problem(p, info))
            if rows is not None and info.get("rows") is not None and rows != info["rows"]:
                status.append(f"{rows} rows, the manifest records {info['rows']}")
            if not status and recorded and not info:
                rid = (meta or {}).get(RUN_ID_KEY.encode()) if rows is not None else None
                runs = self.known_run_ids() if rid else None
                if rid and runs is not None and rid.decode(errors="replace") not in runs:
                    status.append(f"not recorded in the manifest and written by run {rid.decode(errors='replace')}, "
                                  "none of this study's runs (a part of another copy of the study)")
                else:
                    status.append("ok (not recorded in the manifest)")
            out.append({"part": p.name, "rows": rows if rows is not None else info.get("rows"),
                        "status": "; ".join(status) or ("ok" if info.get("sha256") else "ok (no recorded hash)")})
        present = {d["part"] for d in out}
        damaged_dir = self.rows_dir / "damaged"
        back = None  # the batches the readable parts hold (read once, when a quarantined part needs them)
        for name, info in recorded.items():
            if name not in present:
                where = "quarantined in rows/damaged/" if (damaged_dir / name).exists() else "missing"
                span = info.get("batches")
                if where != "missing" and span:
                    back = self._readable_batches() if back is None else back
                    if all(b in back for b in range(span[0], span[1] + 1)):
                        where = (f"ok (quarantined in rows/damaged/; its batches {span[0]} to {span[1]} were "
                                 "evaluated again)")
                out.append({"part": name, "rows": info.get("rows"), "status": where})
        return sorted(out, key=lambda d: d["part"])

    def _readable_batches(self) -> set:
        """The batch numbers the readable parts hold (full rows, whatever their fidelity)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # check names the damaged parts itself
            try:
                return set(self.read(columns=["batch"]).column("batch").to_pylist()) if self.parts() else set()
            except (LstmsearchError,) + BAD_FILE:
                return set()

    def quarantine_checked(self, results: List[Dict]) -> List[str]:
        """Move the parts that :meth:`check` found wrong (on disk, not ok) to ``rows/damaged/``;
        the caller holds the run lock. Returns a message for each."""
        for r in results:
            p = self.rows_dir / r["part"]
            if not r["status"].startswith("ok") and r["status"] not in ("missing", "quarantined in rows/damaged/") \
                    and p.exists():
                self._mark_damaged(p, r["status"], warn=False)
        return self.quarantine()

    def verify_counts(self) -> List[str]:
        """The cheap check a run makes on start: every part the manifest records is present with
        its row count. A part with another count is marked damaged (then quarantined by the run);
        a missing one is named, one line per part. A part of this study that the manifest does not
        record (a run was killed between the part and the manifest) is recorded at the next write --
        unless the run id in its metadata is none of the manifest's runs (each run's id is recorded
        before it writes a part): a part of another copy of the study, put among the rows, is marked
        damaged (then quarantined by the run) with one line naming it. Returns the lines."""
        out = []
        present = {p.name: p for p in self.parts()}
        self._warned_missing = True  # the lines below name the missing parts: reads need not warn again
        for name, info in self.recorded_parts().items():
            if name in present:
                if info.get("rows") is not None and self._rows[name] != info["rows"]:
                    self._mark_damaged(present[name], f"it holds {self._rows[name]} rows, the manifest records "
                                                      f"{info['rows']}", warn=False)
            elif name not in self.damaged and not (self.rows_dir / "damaged" / name).exists():
                out.append(f"the part {name} recorded in the manifest is missing from {self.rows_dir} "
                           f"({info.get('rows', '?')} rows); " + part_rows_text(name))
        mine = self.study_identity()
        runs = self.known_run_ids()
        for name in sorted(set(present) - set(self.recorded_parts())):  # a run killed before the manifest recorded it
            rid = self._run_ids.get(name)
            if name not in self.damaged and rid and runs is not None and rid not in runs:
                why = (f"it is not recorded in the manifest and was written by run {rid}, which is none of this "
                       "study's runs (a part of another copy of the study, or of a backup)")
                self._mark_damaged(present[name], why, warn=False)  # the run's quarantine names it, in one line
                continue
            if name not in self.damaged and (mine is None or self._identity.get(name) == mine):
                self._written.setdefault(name, dict(part_batches(present[name]), rows=self._rows[name],
                                                    sha256=file_sha256(present[name])))
        return out

    def known_run_ids(self):
        """The ids of the runs the manifest records (None when there is no readable manifest)."""
        if not self.exists():
            return None
        try:
            return {r.get("id") for r in self.read_manifest().get("runs", []) if r.get("id")}
        except LstmsearchError:
            return None

    def verified_dataset(self):
        """The dataset of the parts that pass verification (what ``query --sql`` reads): a part
        whose content hash the manifest records must match it; one without a recorded hash is read
        through once with its page checksums verified. A part that fails is named in
        :attr:`damaged` with a warning and left out, as :meth:`read` leaves out unreadable parts; a
        recorded part that is gone is named (:meth:`warn_missing`)."""
        recorded = self.verify_hashes()  # the parts with a recorded hash
        self.warn_missing()
        for p in self.parts():
            if (recorded.get(p.name) or {}).get("sha256"):
                continue
            try:  # no recorded hash: read it through with its page checksums verified
                pq.ParquetFile(p, page_checksum_verification=True).read()
            except BAD_FILE as exc:
                self._mark_damaged(p, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return self.dataset()

    def verify_hashes(self) -> Dict[str, Dict]:
        """Check every part whose content hash the manifest records against it (once per part file
        and process: :func:`~lstmsearch.store.files.hash_known`); a part that differs is named in :attr:`damaged` with a
        warning and left out. Page checksums cover page data, not page headers: the hash is what
        makes any flipped bit visible. A part whose metadata names another study is left out the
        same way. Returns the manifest's part records."""
        recorded = self.recorded_parts()
        mine = self.study_identity()
        for p in self.parts():
            theirs = self._identity.get(p.name)
            if mine and theirs and theirs != mine:
                self._mark_damaged(p, f"it belongs to another study (identity {theirs}, this study's {mine})")
                continue
            want = (recorded.get(p.name) or {}).get("sha256")
            if not want:
                continue
            if hash_known(p, want) or not p.exists():
                continue
            if file_sha256(p) != want:
                self._mark_damaged(p, "content hash differs from the manifest's")
            else:
                remember_hash(p, want)
        return recorded


    def warn_missing(self) -> None:
        """Warn (once per object) about every part the manifest records that is neither in ``rows/``
        nor quarantined: its rows are gone from every count and query."""
        if self._warned_missing:
            return
        self._warned_missing = True
        damaged_dir = self.rows_dir / "damaged"
        for name, info in self.recorded_parts().items():
            if not (self.rows_dir / name).exists() and not (damaged_dir / name).exists():
                warnings.warn(f"lstmsearch: the part {self.rows_dir / name} recorded in the manifest is missing "
                              f"({info.get('rows', '?')} rows); " + part_rows_text(name), DamagedPartWarning,
                              stacklevel=4)

    # ------------------------------------------------------------ the other files
    def check_files(self, n_params: Optional[int] = None, stored: Optional[pa.Table] = None) -> List[Dict]:
        """Verify every file of the study that is not a row part: ``best/`` (:func:`check_best`, against
        the manifest's record), ``generations/`` (the hash in each name; a recorded one that is gone is
        named), the sealed state files and the Optuna journal. One dict per file (part, rows, status),
        as :meth:`check` gives per part. ``stored``: the (row, nmse) of the readable parts."""
        files = self.recorded_files()
        out = check_best(self.root, stored, n_params, files, self.study_identity())
        out += GenerationStore(self.root).check()
        present = {r["part"] for r in out}
        for name, info in files.items():
            if name not in present and name.split("/")[0] in (BEST_DIR, GENERATIONS):
                out.append({"part": name, "rows": info.get("rows"), "status": "missing"})
        for pattern in STATE_FILES:
            for p in sorted(self.root.glob(pattern)):
                why = sealed_problem(p)
                out.append({"part": p.name, "rows": None,
                            "status": "ok (" + why + ")" if why.startswith("not sealed") else why or "ok"})
        journal = self.journal_problem()
        if journal is not None:
            out.append({"part": JOURNAL, "rows": None, "status": journal})
        return sorted(out, key=lambda d: d["part"])

    def journal_record(self) -> Optional[Dict]:
        """The Optuna journal's whole records now -- their length and CRC-32 -- for the manifest (None
        when the study has none). Summed on from the last record this object made; a journal whose
        recorded part changed meanwhile is named in one warning (``check`` says so too, until then)."""
        path = self.root / JOURNAL
        if not path.is_file():
            return None
        try:
            data_end = path.stat().st_size
            last = self._journal or {}
            start = tuple(last.get("_at", (0, 0)))
            if start[0] > data_end:
                start = (0, 0)
            with open(path, "rb") as fh:
                fh.seek(start[0])
                new = fh.read(data_end - start[0])
        except OSError:
            return None
        whole = start[0] + new.rfind(b"\n") + 1 if b"\n" in new else start[0]  # whole records only
        crc = zlib.crc32(new[: whole - start[0]], start[1])
        rec = self.recorded_files().get(JOURNAL) if not last else None
        if rec and rec.get("bytes") is not None and rec["bytes"] <= whole:
            try:
                same = journal_crc(path, rec["bytes"]) == rec.get("crc32")
            except (OSError, EOFError):
                same = False
            if not same:
                warnings.warn(f"lstmsearch: the Optuna journal {path} differs from its record in the manifest in its "
                              f"first {rec['bytes']} bytes (a changed byte); recorded afresh", DamagedPartWarning,
                              stacklevel=4)
        self._journal = {"bytes": whole, "crc32": crc, "_at": (whole, crc)}
        return {"bytes": whole, "crc32": crc}

    def journal_problem(self) -> Optional[str]:
        """What is wrong with the Optuna journal ("ok" when nothing is; None when there is none)."""
        path = self.root / JOURNAL
        rec = self.recorded_files().get(JOURNAL)
        if not path.is_file():
            return "missing" if rec else None
        if not rec or rec.get("bytes") is None:
            return "ok (no recorded checksum)"
        size = path.stat().st_size
        if size < rec["bytes"]:
            return f"cut short: {size} bytes, the manifest records {rec['bytes']}"
        try:
            crc = journal_crc(path, rec["bytes"])
        except (OSError, EOFError) as exc:
            return f"unreadable: {_why(exc)}"
        if crc != rec.get("crc32"):
            return ("damaged: its first {} bytes differ from the CRC-32 in the manifest (run --repair cuts it back "
                    "to its last good record and re-queues from the rows)").format(rec["bytes"])
        return "ok"


def _hash_problem(path: Path, info: Dict) -> List[str]:
    """["content hash differs from the manifest's"] when the manifest records a hash the file no longer has."""
    if info.get("sha256") and file_sha256(path) != info["sha256"]:
        return ["content hash differs from the manifest's"]
    return []
