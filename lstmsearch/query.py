"""Finding a study and reading its results.

:func:`open_study` finds a study (a study file, a folder, or a name under ``data/``);
:func:`load_results`, :func:`top_rows` and :func:`sql` read its rows (pyarrow tables);
:func:`settings_of` rebuilds the full settings of stored rows (:func:`refit_readouts` the readouts
that rows below the best ``keep_weights`` do not keep).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .config import DATA_DIR, StudyConfig, load_study, locate_study, parse_study
from .errors import LstmsearchError, install_hint, require
from .search import regenerate_settings
from .store import Store, schema
from .store.manifest import recorded_fit
from .store.rows import full_fidelity


#: Does reading a study (:func:`open_study`) import a template space's module when a row needs it?
#: Off: reading runs no code of a study folder (``--allow-code`` turns it on: :func:`allow_study_code`).
_ALLOW_CODE = [False]


def allow_study_code(allow: bool = True) -> None:
    """Let the studies opened from now on (:func:`open_study`) import their template space's module
    to rebuild rows that keep no weights (``--allow-code``); off by default."""
    _ALLOW_CODE[0] = bool(allow)


def _reading(cfg: StudyConfig) -> StudyConfig:
    """``cfg`` as opened for reading: its template space (if any) imports nothing unless allowed."""
    if hasattr(cfg.space_obj, "allow_code"):
        cfg.space_obj.allow_code = _ALLOW_CODE[0]
    return cfg


def open_study(ref: Union[str, Path, StudyConfig], data_dir: Union[str, Path] = DATA_DIR):
    """(config, store) for a study file, a study folder, or a study name under ``data_dir``.

    Reading runs no code of the study: rows that a template space would rebuild are refused in one
    line (:class:`~lstmsearch.errors.StudyCodeRefused`) unless :func:`allow_study_code` was called.

    A study file's results are in its ``[study] out``, else ``data_dir``/NAME. A folder or
    name is read through its manifest (the study file text stored there), so results can be
    queried and reproduced without the original study file. A name not found under
    ``data_dir`` but found one folder deeper (``data/examples/NAME``) is named in the error.
    """
    if isinstance(ref, StudyConfig):
        return ref, Store(ref.out)
    p = Path(ref)
    if p.suffix == ".toml":
        cfg = _reading(load_study(p, data_dir=data_dir))
        store = Store(cfg.out)
        recorded = store.exists() and not store.manifest_problem()
        return (recorded_fit(cfg, store.read_manifest()) if recorded else cfg), store
    root = locate_study(ref, data_dir)  # a folder with a manifest.json, or a one-line error
    store = Store(root)
    m = store.read_manifest()
    cfg = parse_study(m["study_text"], source=f"{root}/manifest.json", base_dir=Path(m.get("base_dir", ".")),
                      allow_password=True)  # a manifest written before passwords were refused
    return recorded_fit(_reading(cfg).with_out(root), m), store


def best_row(study, data_dir=DATA_DIR) -> int:
    """The row id with the smallest nmse (ties: the smallest row id); what ``ROW = best`` means."""
    cfg, store = open_study(study, data_dir)
    require(store.count(), f"study {cfg.name} in {store.root} has no rows yet")
    t = top_rows(cfg, 1, columns=["row", "nmse"], data_dir=data_dir)
    return int(t.column("row")[0].as_py())


#: Columns shown by ``top``/``query`` by default (the big lists are left out).
SUMMARY_COLUMNS = ["row", "strategy", "batch", "index", "nmse", "train_nmse", "max_abs_err", "nmse_long", "finite"]


def summary_columns(cfg: StudyConfig) -> List[str]:
    """:data:`SUMMARY_COLUMNS`, with ``nmse_by_length`` after ``nmse`` when the study's task has
    several lengths (``[task] lengths``)."""
    cols = list(SUMMARY_COLUMNS)
    if cfg.task.lengths is not None:
        cols.insert(cols.index("nmse") + 1, "nmse_by_length")
    return cols


def spread_by_length(table: pa.Table, lengths) -> pa.Table:
    """``table`` with its ``nmse_by_length`` list column (if any) replaced, in place, by one
    float column per trained length, named ``nmse@n`` (n in ``lengths``, in order)."""
    if "nmse_by_length" not in table.column_names:
        return table
    i = table.column_names.index("nmse_by_length")
    values = table.column("nmse_by_length").to_pylist()
    table = table.remove_column(i)
    for j, n in enumerate(lengths):
        table = table.add_column(i + j, f"nmse@{n}", pa.array([None if v is None else v[j] for v in values],
                                                               pa.float64()))
    return table


def parse_where(text: str):
    """A pyarrow expression from a small filter language: ``col OP value [and ...]``.

    OP is one of < <= > >= == = !=; value is a number, true/false or a 'quoted string'.
    """
    import re

    import pyarrow.dataset as ds

    expr = None
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.I):
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*(<=|>=|==|!=|=|<|>)\s*(.+?)\s*", part)
        require(m is not None, f"cannot read the filter {part!r}; write column OP value, e.g. \"nmse < 1e-3\" "
                               "(joined with and), or use --sql with duckdb installed")
        col, op, val = m.groups()
        if val.lower() in ("true", "false"):
            v = val.lower() == "true"
        elif val[:1] in "'\"" and val[-1:] == val[:1]:
            v = val[1:-1]
        else:
            try:
                v = float(val) if any(c in val for c in ".eE") or val in ("inf", "-inf") else int(val)
            except ValueError:
                raise LstmsearchError(f"cannot read the value {val!r} in the filter {part!r}") from None
        f = ds.field(col)
        e = {"<": f < v, "<=": f <= v, ">": f > v, ">=": f >= v, "==": f == v, "=": f == v, "!=": f != v}[op]
        expr = e if expr is None else expr & e
    return expr


def load_results(study, where=None, columns: Optional[List[str]] = None, data_dir=DATA_DIR) -> pa.Table:
    """A study's rows as a pyarrow Table (sorted by row id).

    ``where`` is a pyarrow compute expression or a filter string (``"nmse < 1e-3 and finite == true"``);
    ``columns`` selects columns (default: all).
    """
    cfg, store = open_study(study, data_dir)
    if isinstance(where, str):
        where = parse_where(where)
    if columns is not None:
        names = schema(1, 1, by_length=cfg.task.lengths is not None, racing=cfg.eval.racing is not None).names
        bad = [c for c in columns if c not in set(names)]
        if bad:
            raise LstmsearchError(f"unknown column {bad[0]!r}; the store has {', '.join(names)}")
    try:
        return store.read(columns=columns, filter=where)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise LstmsearchError(f"cannot apply the filter: {str(exc).splitlines()[0]}") from exc


def top_rows(study, k: int = 10, where=None, data_dir=DATA_DIR, columns=SUMMARY_COLUMNS) -> pa.Table:
    """The ``k`` best rows by nmse then row id (``columns``: default :data:`SUMMARY_COLUMNS`,
    None for all; with the default, ``nmse_by_length`` too when the task has several lengths:
    :func:`summary_columns`): what ``lstmsearch top`` prints. In a racing study only rows scored
    at full fidelity are ranked (:func:`lstmsearch.store.rows.full_fidelity`)."""
    cfg, store = open_study(study, data_dir)
    if columns is SUMMARY_COLUMNS:
        columns = summary_columns(cfg)
    # rank on (row, nmse) alone, then read the k winners' other columns: a blind study's weight
    # and z columns are GBs, and memory stays flat whatever the study's size
    if isinstance(where, str):
        where = parse_where(where)
    full = full_fidelity(cfg)  # racing: low-fidelity rows are never ranked with full-fidelity ones
    if full is not None:
        where = full if where is None else where & full
    ranked = load_results(cfg, columns=["row", "nmse"], where=where, data_dir=data_dir)
    best = ranked.sort_by([("nmse", "ascending"), ("row", "ascending")]).slice(0, k)
    if columns is not None and set(columns) <= {"row", "nmse"}:
        return best.select(list(columns))
    ids = best.column("row")
    t = load_results(cfg, columns=columns, where=pc.field("row").isin(ids), data_dir=data_dir)
    return t.sort_by([("nmse", "ascending"), ("row", "ascending")])


def sql(study, query: str, data_dir=DATA_DIR) -> pa.Table:
    """Run SQL through DuckDB over the study's rows, visible as the table ``rows``, and its kept
    weights, the table ``best`` (row, nmse, weights, readout of the best ``keep_weights`` rows, read
    from ``best/`` and verified: join it on ``row``).

    DuckDB sees the study's own rows only: they are handed to it as an Arrow dataset, and
    the connection then runs with ``enable_external_access = false`` and its configuration
    locked, so a query that reads another file (``read_csv('/etc/passwd')``), writes one
    (``COPY ... TO``), attaches a database or installs an extension is refused with one line.
    The parts are verified first (:meth:`~lstmsearch.store.Store.verified_dataset`: the manifest's
    content hash, or the page checksums): a damaged part is named in a warning and left out.
    """
    try:
        import duckdb
    except ImportError:
        raise LstmsearchError(f"SQL queries need DuckDB: {install_hint('sql')} (or use --where)") from None
    _, store = open_study(study, data_dir)
    require(store.parts(), f"the study in {store.root} has no rows yet")
    con = duckdb.connect()
    # verified first (content hash or page checksums); damaged parts left out with a warning; read
    # through Arrow, not DuckDB's own file access
    con.register("rows", store.verified_dataset())
    con.register("best", _best_rows_table(store))
    for setting in ("SET python_enable_replacements = false", "SET enable_external_access = false",
                    "SET lock_configuration = true"):
        try:
            con.execute(setting)
        except duckdb.Error:
            if "external_access" in setting or "lock" in setting:  # pragma: no cover - old DuckDB
                raise LstmsearchError(f"this DuckDB ({duckdb.__version__}) cannot run queries sandboxed "
                                      "(enable_external_access); upgrade duckdb") from None
    try:
        res = con.sql(query)
        if res is None:
            return pa.table({})
        for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
            if hasattr(res, name):
                out = getattr(res, name)()
                return out if isinstance(out, pa.Table) else out.read_all()
        raise LstmsearchError("this DuckDB cannot return Arrow tables; upgrade duckdb")  # pragma: no cover
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        if "disabled by configuration" in first or "configuration has been locked" in first:
            raise LstmsearchError(f"SQL refused: {first}; --sql reads only the study's own rows (the tables "
                                  "rows and best) and writes nothing: use --output to save the result") from exc
        raise LstmsearchError(f"SQL error: {first}") from exc


def _best_rows_table(store: Store) -> pa.Table:
    """The kept rows of ``best/`` (row, nmse, weights, readout), verified; an empty table without them."""
    t = store.best_table()
    if t is not None:
        return t.select(["row", "nmse", "weights", "readout"])
    return pa.table({"row": pa.array([], pa.int64()), "nmse": pa.array([], pa.float64()),
                     "weights": pa.array([], pa.list_(pa.float32())), "readout": pa.array([], pa.list_(pa.float32()))})


def settings_of(cfg: StudyConfig, store: Store, rows: pa.Table) -> np.ndarray:
    """Full settings (P, D) of stored rows, readout included: the stored weights where kept,
    else rebuilt from z or the sweep key with the stored readout spliced in -- or, where the row
    keeps no readout (rows that are not among the best ``keep_weights``), the readout fitted
    again (:func:`refit_readouts`); a searched readout (``[eval] readout = "given"``) is part
    of the rebuilt setting already."""
    P = rows.num_rows
    out = np.empty((P, cfg.cell.n_params), np.float32)
    w = rows.column("weights").to_pylist()
    missing = [i for i, v in enumerate(w) if v is None]
    for i, v in enumerate(w):
        if v is not None:
            out[i] = v
    if missing:
        sub = rows.take(pa.array(missing))
        params = regenerate_settings(cfg, store, sub)
        ro_col = sub.column("readout").combine_chunks()
        have = ro_col.is_valid().to_numpy(zero_copy_only=False)
        if have.any():
            ro = ro_col.filter(pa.array(have)).flatten().to_numpy().reshape(int(have.sum()), -1)
            params[have] = cfg.cell.with_readout(params[have], ro)
        if cfg.eval.readout == "fit" and not have.all():
            lost = np.flatnonzero(~have)
            params[lost] = cfg.cell.with_readout(params[lost], refit_readouts(cfg, params[lost], sub.take(pa.array(lost))))
        out[missing] = params
    return out


def refit_readouts(cfg: StudyConfig, params: np.ndarray, rows: pa.Table) -> np.ndarray:
    """The readouts (P, O*H+O) of stored rows, fitted again as the study fitted them: the
    closed-form least-squares fit (:mod:`lstmsearch.readout`) on the row's own training
    sequences -- its ``sequences`` and ``length`` (a racing study's low rung scores one
    length; a full-fidelity row, the task's lengths) from the study's seed -- on the study's
    backend (``cpu`` where CUDA is not available) with its ridge and its recorded ``readout_fit``. With
    the fixed-order fit this is the stored fit bit for bit on any machine; a study of release 0.1.0
    (BLAS fit) gets it bit for bit only where the BLAS kernel rounds alike (``reproduce`` says which)."""
    from .evaluate import evaluate
    from .kernels import resolve_backend

    ev = cfg.eval
    backend = resolve_backend("auto") if ev.backend in ("cuda", "auto") else ev.backend
    out = np.empty((rows.num_rows, cfg.cell.n_readout), np.float32)
    seq = rows.column("sequences").to_numpy(zero_copy_only=False)
    held = rows.column("heldout").to_numpy(zero_copy_only=False)
    length = rows.column("length").to_numpy(zero_copy_only=False)
    full = (rows.column("fidelity").to_numpy(zero_copy_only=False) == ev.racing.full
            if ev.racing is not None and "fidelity" in rows.column_names else np.ones(rows.num_rows, bool))
    keys = np.stack([seq, held, length, full]).T
    for key in np.unique(keys, axis=0):
        sel = np.flatnonzero((keys == key).all(axis=1))
        s, h, n, is_full = (int(v) for v in key)
        task = cfg.task if is_full else cfg.task.with_length(n)
        t = evaluate(cfg.cell, params[sel], task, n_sequences=s, seed=ev.seed, backend=backend, readout="fit",
                     n_heldout=h, ridge=ev.ridge, readout_fit=ev.readout_fit)
        out[sel] = t.column("readout").combine_chunks().flatten().to_numpy().reshape(len(sel), -1)
    return out

