"""Row parts and reads: the append-only Parquet dataset of a study (a mixin of
:class:`lstmsearch.store.Store`).

Every part is written to a hidden temporary file in ``rows/`` and linked into place
(``os.link``, which fails if the part exists: a part never overwrites another), then the
temporary name is removed, so a reader -- and a resumed run -- sees whole parts only. Hidden
files are skipped by pyarrow datasets and by ``rows/*.parquet`` globs. After the part, the
writer's ``best/`` file is rewritten (:mod:`lstmsearch.store.best`), then the manifest records
the part, the best file and the generation-state files written with it (rows, sha256, the
part's batches) and the Optuna journal's length and CRC-32, in one write.

A part whose footer (or, when read, whose data) cannot be read is left out of every read and
count, and named in :attr:`Store.damaged` (the CLI prints it); a run moves it to
``rows/damaged/`` and says so, with the row ids its file name gives.
"""

from __future__ import annotations

import errno
import os
import uuid
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import DamagedPartWarning, LstmsearchError, require
from .best import BEST_DIR, BestRows, best_k, best_path, fill_best, read_best
from .files import BAD_FILE, disk_full, file_sha256, parquet_format, remember_hash
from .schema import IDENTITY_KEY, ROW_SLOT, RUN_ID_KEY, SCHEMA_VERSION, part_name, part_slot_first, schema_diff


class Parts:
    """The part files of ``rows/`` and the reads over them (a mixin of :class:`~lstmsearch.store.Store`)."""

    root: Path
    rows_dir: Path
    slot: int
    writer: str
    damaged: Dict[str, str]
    _rows: Dict[str, int]
    _identity: Dict[str, Optional[str]]
    _written: Dict[str, Dict]
    _written_files: Dict[str, Dict]
    _next_local: Optional[int]

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
                except BAD_FILE as exc:
                    if not p.exists():  # moved away meanwhile (another process quarantined it)
                        continue
                    self._mark_damaged(p, exc)
                    continue
                version = (md.metadata or {}).get(b"lstmsearch.schema_version", b"?").decode()
                if version != str(SCHEMA_VERSION):
                    raise LstmsearchError(
                        f"{p} was written with store schema version {version}; this lstmsearch reads version "
                        f"{SCHEMA_VERSION} (columns {', '.join(schema_diff(md.schema.to_arrow_schema()))}); "
                        "read it with the lstmsearch that wrote it, or move it out of rows/")
                self._rows[p.name] = md.num_rows
                ident = (md.metadata or {}).get(IDENTITY_KEY.encode())
                self._identity[p.name] = ident.decode() if ident else None
                rid = (md.metadata or {}).get(RUN_ID_KEY.encode())
                self._run_ids[p.name] = rid.decode(errors="replace") if rid else None
            out.append(p)
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
                m = part_slot_first(p.name)
                if m and m[0] == self.slot:
                    last = max(last, m[1] + self._rows[p.name])
            quarantined = self.quarantined()
            for name in set(self.damaged) | set(quarantined):  # never reuse the ids of a damaged part
                m = part_slot_first(name)
                if m and m[0] == self.slot:
                    last = max(last, m[1] + (quarantined.get(name) or 1))
            self._next_local = last
        return self._next_local

    def append(self, table: pa.Table, best: Optional[BestRows] = None, files: Sequence[Path] = ()) -> Path:
        """Write one part atomically (temporary file, fsync, rename); returns its path. Then
        ``best`` (this writer's :class:`~lstmsearch.store.best.BestRows`, its set already offered the
        part's rows) is rewritten, and the manifest records the part, the best file, ``files`` (the
        generation-state files written for these rows) and the Optuna journal, in one write."""
        require(table.num_rows > 0, "cannot append an empty table")
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        first = int(table.column("row")[0].as_py())
        final = self.rows_dir / part_name(self.slot, first)
        tmp = self.rows_dir / f".{final.name}.{uuid.uuid4().hex}.tmp"
        identity = self.study_identity()
        meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != RUN_ID_KEY.encode()}
        if identity:
            meta[IDENTITY_KEY.encode()] = identity.encode() if isinstance(identity, str) else identity
        if self.run_id:
            meta[RUN_ID_KEY.encode()] = self.run_id.encode()
        table = table.replace_schema_metadata(meta or None)
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
                raise disk_full(final, exc, f"{table.num_rows} rows (part {final.name})") from exc
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
        self._run_ids[final.name] = self.run_id
        record = {"rows": table.num_rows, "sha256": digest}
        if "batch" in table.column_names:  # which batches it holds: check sees them back after a repair
            record["batches"] = [int(pc.min(table.column("batch")).as_py()), int(pc.max(table.column("batch")).as_py())]
        self._written[final.name] = record
        remember_hash(final, digest)  # its hash is known: a later read need not compute it
        last = int(table.column("row")[table.num_rows - 1].as_py())
        self._next_local = max(self.next_row(), last + 1)
        if best is not None:  # after the part: the file never names a row that is not on disk
            self.note_best(best)
        self.note_files(files)
        if self.exists():  # record the part's rows and hash (merged by write_manifest, under the manifest lock)
            self.update_manifest(self._record_journal)
        return final

    def note_files(self, files: Sequence[Path]) -> None:
        """Record the files (``generations/...``, whose names carry their sha256) in the manifest at
        its next write, with their rows: a file deleted later is named by ``check``."""
        for p in files or ():
            if p is not None:
                p = Path(p)
                self._written_files[f"{p.parent.name}/{p.name}"] = {"rows": pq.read_metadata(p).num_rows}

    def note_best(self, best: BestRows) -> None:
        """Rewrite ``best``'s file if its set changed; its record goes into the manifest at its next write."""
        record = best.write()
        if record is not None:
            self._written_files[best.name] = record

    def record_journal(self) -> None:
        """Record the Optuna journal as it is now in the manifest (after ``--repair`` cut it back)."""
        self._journal = None
        if self.exists():
            self.update_manifest(self._record_journal)

    def _record_journal(self, m: Dict) -> Dict:
        journal = self.journal_record()
        if journal is not None:
            self._written_files["optuna.journal"] = journal
        return m


    def part_rows(self, name: str) -> int:
        """Rows of a readable part (from its footer)."""
        self.parts()
        return self._rows[name]

    def part_identities(self) -> Dict[str, Optional[str]]:
        """Part file name -> the study identity in its metadata (None for parts written before it was kept)."""
        return {p.name: self._identity.get(p.name) for p in self.parts()}


    def dataset(self) -> ds.Dataset:
        parts = self.parts()
        require(parts, f"the study in {str(self.root)!r} has no rows yet")
        return ds.dataset([str(p) for p in parts], format=parquet_format())


    def read(self, columns: Optional[List[str]] = None, filter=None) -> pa.Table:
        """Rows (all, or those matching a pyarrow compute expression), sorted by row id, the
        weights and readouts of the best rows filled in from ``best/`` (:meth:`best_table`).

        Parts are checked against the manifest's content hashes first (:meth:`verify_hashes`);
        a part that differs or whose data turns out unreadable is skipped (and named in
        :attr:`damaged`), and a recorded part that is gone is named (:meth:`warn_missing`), each
        with one warning; the other parts are read as usual.
        """
        self.verify_hashes()
        self.warn_missing()
        parts = self.parts()
        if not parts:
            return pa.table({c: [] for c in (columns or ["row"])})
        cols = columns if columns is None or "row" in columns else list(columns) + ["row"]
        try:
            table = ds.dataset([str(p) for p in parts], format=parquet_format()).to_table(columns=cols, filter=filter)
        except BAD_FILE as exc:
            if isinstance(exc, (pa.ArrowInvalid, pa.ArrowTypeError)) and "No match for FieldRef" in str(exc):
                raise
            tables = []
            for p in parts:  # find the bad part(s): read one by one
                try:
                    tables.append(ds.dataset(str(p), format=parquet_format()).to_table(columns=cols, filter=filter))
                except BAD_FILE as exc1:
                    if not p.exists():
                        continue
                    self._mark_damaged(p, exc1)
            if not tables:
                return pa.table({c: [] for c in cols})
            table = pa.concat_tables(tables, promote_options="permissive")
        return fill_best(self.best_table(), table.sort_by("row"))

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

    # ------------------------------------------------------------------ best rows
    def best_table(self) -> Optional[pa.Table]:
        """The usable rows of every ``best/`` file (:func:`~lstmsearch.store.best.read_best`,
        verified against the manifest's records and the study identity; once per object). A file
        the manifest records that is gone is named in a warning."""
        if self._best is None:
            records = self.recorded_files()
            for name in sorted(records):
                if name.startswith(BEST_DIR + "/") and not (self.root / name).exists():
                    warnings.warn(f"lstmsearch: the file {self.root / name} recorded in the manifest is missing; the "
                                  "weights of the best rows it held are rebuilt from their keys (the next run of the "
                                  "study rewrites it)", DamagedPartWarning, stacklevel=4)
            self._best = (read_best(self.root, records, self.study_identity()),)
        return self._best[0]

    def best_rows(self, k: int, n_params: int, n_readout: int, slot: Optional[int] = None) -> BestRows:
        """The :class:`~lstmsearch.store.best.BestRows` of writer ``slot`` (default this one's)."""
        slot = self.slot if slot is None else slot
        return BestRows(self.root, slot, k, n_params, n_readout, self.recorded_files().get(
            f"{BEST_DIR}/{best_path(self.root, slot).name}"), self.study_identity())

    def reconcile_best(self, k: int, n_params: int, n_readout: int, settings, filter=None) -> List[str]:
        """Make ``best/`` hold exactly the best ``k`` rows on disk (of those matching ``filter``), each
        in its writer's file: rows a killed run left out are put in (``settings(rows)`` gives their
        full settings in row order, rebuilt from their keys); rows no longer among the best, and
        unusable files, go. The caller holds the run lock (a worker, slot >= 1, sees to its own file only). Returns one
        line when it changed anything."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # read() names damaged files; this is about best/
            stored = self.read(columns=["row", "nmse"], filter=filter) if self.parts() else None
        if stored is None or not stored.num_rows:
            return []
        want = best_k(stored.column("row").to_numpy(), stored.column("nmse").to_numpy(zero_copy_only=False), k)
        have = self.best_table()
        have_rows = np.empty(0, np.int64) if have is None else have.column("row").to_numpy()
        files = [p.stem[1:] for p in (self.root / BEST_DIR).glob("w*.parquet")]
        slots = {int(r // ROW_SLOT) for r in want} | {int(s) for s in files if s.isdigit()}
        lacking = np.setdiff1d(want, have_rows)  # sorted
        if self.slot:  # a worker (slot >= 1) touches its own file only; a single run (slot 0) holds every slot
            slots = {self.slot}
            lacking = lacking[lacking // ROW_SLOT == self.slot]
        changed = 0
        rows_in = stored.filter(pc.is_in(stored.column("row"), pa.array(lacking, pa.int64()))) if lacking.size else None
        full = np.asarray(settings(lacking), np.float32) if lacking.size else None
        for slot in sorted(slots):
            kept = self.best_rows(k, n_params, n_readout, slot)
            before = kept.changed
            kept.keep_only(want)
            if full is not None:
                mine = (rows_in.column("row").to_numpy() // ROW_SLOT) == slot
                kept.offer(rows_in.column("row").to_numpy()[mine], rows_in.column("nmse").to_numpy()[mine], full[mine])
            if kept.changed or before:
                changed += 1
                self.note_best(kept)
        if not changed:
            return []
        self._best = None
        if self.exists():
            self.update_manifest(lambda m: m)
        return [f"rewrote {changed} file(s) in {self.root / BEST_DIR} to hold exactly the best {k} rows on disk "
                f"({lacking.size} row(s) put back with their weights rebuilt from their keys)"]
