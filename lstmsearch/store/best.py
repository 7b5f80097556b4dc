"""The full weights and fitted readouts of a study's best rows: one small file per writer.

Every row can be rebuilt from its key (:mod:`lstmsearch.search`) and its readout fitted again
(:func:`lstmsearch.query.refit_readouts`), so a row part keeps neither. The best
``[store] keep_weights`` rows keep both, exactly as evaluated, in ``best/w{slot}.parquet``: the
k rows with the smallest nmse among those the writer ``w{slot}`` has written (ties: the lower row
id), with columns ``row``, ``nmse``, ``weights`` and ``readout``. The writer rewrites the file
(atomically) after each part it writes, when the set has changed, so the file never names a row
that is not on disk. A row leaves the file when k better rows of the same writer have come: the
file holds k rows, not every row that was once among the best (a blind LSTM with 32 units keeps
100 rows of 18 KB whatever the study's length, where keeping them in the parts as they arrived
kept about 3,000).

:meth:`lstmsearch.store.Store.read` fills the ``weights`` and ``readout`` columns of these rows from
the files, so every reader sees them as if the parts held them. SQL (``lstmsearch query --sql``)
reads the parts alone. A run killed between a part and the file's rewrite leaves the previous file:
the rows of that part that would have entered it are rebuilt from their keys when they are read.
A damaged file is reported and left out (its rows are rebuilt from their keys too).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DamagedPartWarning

BEST_DIR = "best"


def best_path(root, slot: int) -> Path:
    """The file of writer ``w{slot}`` (written by :class:`lstmsearch.store.rows.BestRows`)."""
    return Path(root) / BEST_DIR / f"w{int(slot)}.parquet"


def read_best_file(path: Path) -> Optional[pa.Table]:
    """One writer's file, or None when there is none; a damaged file is reported and left out."""
    if not path.exists():
        return None
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        warnings.warn(f"lstmsearch: skipped the damaged file {path} ({str(exc).splitlines()[0]}); the weights of "
                      "the best rows it held are rebuilt from their keys", DamagedPartWarning, stacklevel=3)
        return None


def read_best(root) -> Optional[pa.Table]:
    """Every writer's best rows (row, nmse, weights, readout), or None when the study has none."""
    d = Path(root) / BEST_DIR
    if not d.is_dir():
        return None
    tables = [t for t in (read_best_file(p) for p in sorted(d.glob("w*.parquet"))) if t is not None and t.num_rows]
    return pa.concat_tables(tables) if tables else None


def check_best(root, stored: Optional[pa.Table] = None, n_params: Optional[int] = None) -> List[dict]:
    """Verify every writer's file (``lstmsearch check``): readable (page checksums where written
    with them), its columns, ``n_params`` weights a row, and -- given ``stored``, the (row, nmse) of
    the readable parts -- every row it names held by a part with the same nmse. One dict per file,
    as :meth:`lstmsearch.store.Store.check` gives per part: part (``best/w{slot}.parquet``), rows,
    status ("ok", or what is wrong). Reads only."""
    d = Path(root) / BEST_DIR
    out: List[dict] = []
    for p in sorted(d.glob("w*.parquet")) if d.is_dir() else []:
        status, rows = [], None
        try:
            f = pq.ParquetFile(p, page_checksum_verification=True)
            rows = f.metadata.num_rows
            t = f.read()
        except (OSError, pa.ArrowException) as exc:
            t = None
            status.append("unreadable: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        lacking = [] if t is None else [c for c in ("row", "nmse", "weights", "readout") if c not in t.column_names]
        if lacking:
            status.append(f"lacks the column(s) {', '.join(lacking)}")
        elif t is not None and t.num_rows:
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
        out.append({"part": f"{BEST_DIR}/{p.name}", "rows": rows, "status": "; ".join(status) or "ok"})
    return out


def fill_best(root, table: pa.Table) -> pa.Table:
    """``table`` (rows read from the parts, sorted by row) with the ``weights`` and ``readout`` of
    the rows held in ``best/`` filled in where the parts have none."""
    names = [c for c in ("weights", "readout") if c in table.column_names]
    if not names or "row" not in table.column_names or not table.num_rows:
        return table
    best = read_best(root)
    if best is None:
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
