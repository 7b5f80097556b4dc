"""The full weights and fitted readouts of a study's best rows: their writer and their reader.

Every row can be rebuilt from its key (:mod:`lstmsearch.search`) and its readout fitted again
(:func:`lstmsearch.query.refit_readouts`), so a row part keeps neither. The best
``[store] keep_weights`` rows keep both, exactly as evaluated, in ``best/w{slot}.parquet``: the
k rows with the smallest nmse among those the writer ``w{slot}`` has written (ties: the lower row
id), with columns ``row``, ``nmse``, ``weights`` and ``readout``. :class:`TopK` decides which rows
of a batch may be among them; :class:`BestRows` keeps exactly the best k and rewrites the file
(atomically) after each part it writes, when the set has changed, so the file never names a row
that is not on disk. A row leaves the file when k better rows of the same writer have come: the
file holds k rows, not every row that was once among the best (a blind LSTM with 32 units keeps
100 rows of 18 KB whatever the study's length).

Each file says whose it is and what it holds: its Parquet metadata carries the study identity
(``lstmsearch.study_identity``) and the sha256 of its values (``lstmsearch.values_sha256``), and
the manifest records the sha256 of its bytes (``files``, :meth:`lstmsearch.store.Store.append`).
A file that is unreadable, of another study, or not the one the manifest records (an older one
copied back, another run's) is reported with one warning and left out: the weights of its rows
are rebuilt from their keys when read. A run killed between a part and the file's rewrite leaves
the previous file; the next run puts the rows that belong in it back
(:meth:`lstmsearch.store.Store.reconcile_best`), so after any sequence of kills and continuations
``best/`` holds exactly the best k rows on disk. Under ``run --workers`` each worker keeps the best k
of its own rows while it runs; once every worker has stopped, the supervisor makes the files together
the best k rows on disk (:func:`lstmsearch.run.workers.run_workers`).

:meth:`lstmsearch.store.Store.read` fills the ``weights`` and ``readout`` columns of these rows from
the files (:func:`fill_best`), so every reader sees them as if the parts held them.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DamagedPartWarning
from .files import BAD_FILE, atomic_write_bytes, file_sha256
from .schema import IDENTITY_KEY, fixed_list

BEST_DIR = "best"
#: The Parquet metadata key of the sha256 of a best file's values (row, nmse, weights, readout)
VALUES_KEY = "lstmsearch.values_sha256"


def best_path(root, slot: int) -> Path:
    """The file of writer ``w{slot}`` (written by :class:`BestRows`)."""
    return Path(root) / BEST_DIR / f"w{int(slot)}.parquet"


def values_sha256(t: pa.Table) -> str:
    """sha256 of a best table's values, column by column (what its metadata records)."""
    h = hashlib.sha256()
    for name in ("row", "nmse", "weights", "readout"):
        col = t.column(name).combine_chunks()
        if isinstance(col.type, pa.FixedSizeListType):
            col = col.flatten()
        h.update(name.encode())
        h.update(np.ascontiguousarray(col.to_numpy(zero_copy_only=False)).tobytes())
    return h.hexdigest()


def best_problems(path: Path, record: Optional[Dict] = None, identity: Optional[str] = None):
    """(table, whys): a best file read and verified -- readable with its page checksums, the study
    identity and values hash in its metadata, its bytes' sha256 against the manifest's ``record`` --
    with what is wrong with it (empty when it is usable). The table is None when it cannot be read."""
    try:
        t = pq.ParquetFile(path, page_checksum_verification=True).read()
    except BAD_FILE as exc:
        return None, ["unreadable: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)]
    lacking = [c for c in ("row", "nmse", "weights", "readout") if c not in t.column_names]
    if lacking:
        return None, [f"lacks the column(s) {', '.join(lacking)}"]
    whys = []
    meta = t.schema.metadata or {}
    theirs = meta.get(IDENTITY_KEY.encode(), b"").decode(errors="replace")
    if identity and theirs and theirs != identity:
        whys.append(f"belongs to another study (identity {theirs}, the manifest's {identity})")
    want = meta.get(VALUES_KEY.encode())
    try:
        differ = want is not None and values_sha256(t) != want.decode(errors="replace")
    except BAD_FILE:
        differ = True
    if differ:
        whys.append("its values differ from the sha256 in its metadata (a changed byte)")
    if record and record.get("sha256") and file_sha256(path) != record["sha256"]:
        whys.append("content hash differs from the manifest's (a changed byte, or a file of another run or an "
                    "older one put back)")
    return t, whys


def read_best_file(path: Path, record: Optional[Dict] = None, identity: Optional[str] = None) -> Optional[pa.Table]:
    """One writer's file, or None when there is none; a file that is not usable (:func:`best_problems`)
    is reported with one warning and left out."""
    if not path.exists():
        return None
    t, whys = best_problems(path, record, identity)
    if whys:
        warnings.warn(f"lstmsearch: skipped the damaged file {path} ({'; '.join(whys)}); the weights of the best "
                      "rows it held are rebuilt from their keys (the next run of the study rewrites it)",
                      DamagedPartWarning, stacklevel=3)
        return None
    return t


def read_best(root, records: Optional[Dict] = None, identity: Optional[str] = None) -> Optional[pa.Table]:
    """Every writer's usable best rows (row, nmse, weights, readout), or None when there are none.
    ``records``: the manifest's ``files`` (``best/w{slot}.parquet`` -> sha256)."""
    d = Path(root) / BEST_DIR
    if not d.is_dir():
        return None
    records = records or {}
    tables = [read_best_file(p, records.get(f"{BEST_DIR}/{p.name}"), identity) for p in sorted(d.glob("w*.parquet"))]
    tables = [t.select(["row", "nmse", "weights", "readout"]) for t in tables if t is not None and t.num_rows]
    if not tables:
        return None
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException:  # files of another cell size: the manifest's check names them
        return None


def check_best(root, stored: Optional[pa.Table] = None, n_params: Optional[int] = None,
               records: Optional[Dict] = None, identity: Optional[str] = None) -> List[dict]:
    """Verify every writer's file (``lstmsearch check``): :func:`best_problems`, ``n_params`` weights a
    row, and -- given ``stored``, the (row, nmse) of the readable parts -- every row it names held by
    a part with the same nmse. One dict per file, as :meth:`lstmsearch.store.Store.check` gives per
    part: part (``best/w{slot}.parquet``), rows, status ("ok", or what is wrong). Reads only."""
    d = Path(root) / BEST_DIR
    records = records or {}
    out: List[dict] = []
    for p in sorted(d.glob("w*.parquet")) if d.is_dir() else []:
        name = f"{BEST_DIR}/{p.name}"
        t, whys = best_problems(p, records.get(name), identity)
        status = []
        if t is not None and t.num_rows:
            size = t.schema.field("weights").type
            if n_params is not None and getattr(size, "list_size", n_params) != n_params:
                status.append(f"{size.list_size} weights a row, the cell has {n_params}")
            if stored is not None:
                at = pc.index_in(t.column("row"), value_set=stored.column("row"))
                gone = t.column("row").filter(pc.is_null(at)).to_pylist()
                if gone:
                    status.append(f"names {len(gone)} row(s) no readable part holds (e.g. row {gone[0]})")
                held = pc.is_valid(at)
                theirs = stored.column("nmse").take(at.filter(held)).to_numpy(zero_copy_only=False)
                ours = t.column("nmse").filter(held).to_numpy(zero_copy_only=False)
                differ = ~((theirs == ours) | (np.isnan(theirs) & np.isnan(ours)))
                if differ.any():
                    status.append(f"the nmse of {int(differ.sum())} row(s) differs from their part's "
                                  f"(e.g. row {t.column('row').filter(held)[int(np.argmax(differ))].as_py()})")
        out.append({"part": name, "rows": None if t is None else t.num_rows,
                    "status": "; ".join(status + whys) or "ok"})
    return out


def fill_best(best: Optional[pa.Table], table: pa.Table) -> pa.Table:
    """``table`` (rows read from the parts, sorted by row) with the ``weights`` and ``readout`` of
    the rows held in ``best`` (:func:`read_best`) filled in where the parts have none."""
    names = [c for c in ("weights", "readout") if c in table.column_names]
    if not names or "row" not in table.column_names or not table.num_rows or best is None:
        return table
    hit_mask = pc.is_in(table.column("row"), value_set=best.column("row"))
    if not pc.any(hit_mask).as_py():
        return table
    hit, rest = table.filter(hit_mask), table.filter(pc.invert(hit_mask))
    at = pc.index_in(hit.column("row"), value_set=best.column("row"))
    for name in names:
        i = hit.schema.get_field_index(name)
        typ = hit.schema.field(i).type
        held = best.column(name).take(at)
        if held.type != typ:
            held = held.cast(typ)
        hit = hit.set_column(i, name, pc.coalesce(hit.column(name), held))  # a part's own value first
    return pa.concat_tables([rest, hit]).sort_by("row")


def best_k(rows: np.ndarray, nmse: np.ndarray, k: int) -> np.ndarray:
    """The row ids of the k smallest finite nmse (ties: the lower row id), in row order."""
    rows, nmse = np.asarray(rows, np.int64), np.asarray(nmse, np.float64)
    finite = np.isfinite(nmse)
    rows, nmse = rows[finite], nmse[finite]
    return np.sort(rows[np.lexsort((rows, nmse))[:k]])


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
    """The best ``k`` rows of one writer with their weights and readouts (see the module doc).
    ``record`` (the manifest's record of the file) and ``identity`` (the study's) verify the file
    read at the start and go into the file written."""

    def __init__(self, root, slot: int, k: int, n_params: int, n_readout: int, record: Optional[Dict] = None,
                 identity: Optional[str] = None):
        self.path = best_path(root, slot)
        self.name = f"{BEST_DIR}/{self.path.name}"
        self.k = int(k)
        self.identity = identity
        self.n_params, self.n_readout = int(n_params), int(n_readout)
        self.rows = np.empty(0, np.int64)
        self.nmse = np.empty(0, np.float64)
        self.weights = np.empty((0, self.n_params), np.float32)
        self.changed = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a run rewrites an unusable file (Store.reconcile_best says so)
            t = read_best_file(self.path, record, identity)
        if t is not None and t.num_rows and getattr(t.schema.field("weights").type, "list_size", 0) == self.n_params:
            self.rows = t.column("row").to_numpy().astype(np.int64)
            self.nmse = t.column("nmse").to_numpy().astype(np.float64)
            self.weights = t.column("weights").combine_chunks().flatten().to_numpy(
                zero_copy_only=False).astype(np.float32).reshape(-1, self.n_params)
        elif self.path.exists():
            self.changed = True  # an unusable file is replaced at the next write

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

    def keep_only(self, rows: np.ndarray) -> None:
        """Drop the rows not in ``rows``."""
        sel = np.isin(self.rows, rows)
        if not sel.all():
            self.rows, self.nmse, self.weights = self.rows[sel], self.nmse[sel], self.weights[sel]
            self.changed = True

    def table(self) -> pa.Table:
        """row, nmse, weights and readout (the weights' readout tail, a column of its own for readers),
        with the study identity and the values' sha256 in its metadata."""
        n = len(self.rows)
        readout = self.weights[:, self.n_params - self.n_readout:]
        t = pa.table({"row": pa.array(self.rows, pa.int64()), "nmse": pa.array(self.nmse, pa.float64()),
                      "weights": fixed_list(self.weights, self.n_params, None, n),
                      "readout": fixed_list(readout, self.n_readout, None, n)})
        meta = {VALUES_KEY.encode(): values_sha256(t).encode()}
        if self.identity:
            meta[IDENTITY_KEY.encode()] = self.identity.encode()
        return t.replace_schema_metadata(meta)

    def write(self) -> Optional[Dict]:
        """Rewrite the file (atomically) if the set changed since the last write; returns its record
        for the manifest (rows, sha256), or None when nothing was written."""
        if not self.changed:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        pq.write_table(self.table(), buf, compression="zstd", write_page_checksum=True)  # lstmsearch check verifies it
        data = buf.getvalue()
        atomic_write_bytes(self.path, data)
        self.changed = False
        return {"rows": len(self.rows), "sha256": hashlib.sha256(data).hexdigest()}
