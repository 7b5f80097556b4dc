"""Reproduce and export stored settings.

:func:`reproduce` re-simulates one stored row:

1. on the *stored* sequences (the study's seed: training stream 0, held-out stream 1),
   fitting the readout again as the study did -- on the same backend this gives the
   stored error bit for bit;
2. on *fresh* sequences (another seed) with the stored readout (the weights found at length
   n, unchanged): the length-generalisation question. By default at the checked lengths of
   :mod:`lstmsearch.analysis.verdict` -- n, n+1, 2n+1, 10n+3, 100n+3: off-multiples and long
   ones -- or at n * factor (any positive factors, rounded, as
   :func:`lstmsearch.analysis.length.length_curve` does);
3. the **verdict** (:func:`lstmsearch.analysis.verdict.verdict`): solved at every checked
   length, at n only, at some lengths, or not solved (float32, cpu backend, stored readout,
   the study's ``[eval] solved``), on the same fresh sequences;
4. the **precision check** (:func:`lstmsearch.analysis.verdict.precision_check`) at the longest
   checked length: float32 on our kernels, float64 on the reference backend, and PyTorch's
   nn.LSTM/GRU/RNN after export (skipped, with one line, without torch); it says when the
   solution depends on float32 saturation or drifts under PyTorch's kernels.

:func:`export` writes a row's full setting as a PyTorch state dict (``torch``: the keys of
``Cell.torch_model()``: ``rnn.weight_ih_l0``, ..., ``readout.weight``, ``readout.bias``),
a NumPy ``.npz`` of torch-named blocks (``lengths --npz`` and ``explain --npz`` read it), or JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .analysis.verdict import CHECK_SEQUENCES, FRESH_SEED, precision_check, task_check_lengths, verdict
from . import kinds
from .errors import LstmsearchError, check_output, import_optional, require
from .evaluate import evaluate
from .query import open_study, settings_of
from .readout import BLAS
from .search import regenerate_search_z, strategy_named
from .store.manifest import versions

__all__ = ["FRESH_SEED", "row_setting", "reproduce", "format_reproduction", "export", "FORMATS"]


def row_setting(study, row: int, data_dir="data", code_optional: bool = False):
    """(config, row dict, full setting (D,) float32) of one stored row.

    A row whose setting only the study's template code rebuilds, which reading does not run unless
    allowed (:class:`~lstmsearch.errors.StudyCodeRefused`), is refused; with ``code_optional`` its
    setting is None instead and ``row["setting_refused"]`` says why (``show`` prints the rest)."""
    import pyarrow.dataset as ds

    from .errors import StudyCodeRefused

    cfg, store = open_study(study, data_dir)
    r = store.row(row)
    t = store.read(filter=ds.field("row") == int(row))
    try:
        setting = settings_of(cfg, store, t)[0]
    except StudyCodeRefused as exc:
        if not code_optional:
            raise
        setting, r["setting_refused"] = None, str(exc)
    strategy = strategy_named(r.get("strategy"))  # None for a construction's row
    if r.get("z") is None and strategy is not None and strategy.z_kept_by_key:  # rows keep keys, not z
        try:
            r["z"] = regenerate_search_z(cfg, store, t)[0].astype(np.float32)
        except LstmsearchError:  # the row keeps its weights, its state is gone: show it without z
            pass
    return cfg, r, setting


def reproduce(study, row: int, backend: Optional[str] = None, factors: Optional[Sequence[float]] = None,
              fresh_seed: int = FRESH_SEED, n_sequences: Optional[int] = None, data_dir="data",
              check: bool = True, lengths: Optional[Sequence[int]] = None) -> Dict:
    """Re-simulate a stored row; returns a dict with ``stored``, ``same``, ``fresh``, ``verdict``, ``precision``.

    ``same``: errors on the stored sequences with the readout fitted again (as the study did);
    ``identical`` is true when they equal the stored ones exactly. ``by_length`` (several-length
    tasks only): the trained lengths with the stored and reproduced nmse at each. ``fresh``: one entry per
    length -- the checked lengths n, n+1, 2n+1, 10n+3, 100n+3 by default (every trained length first
    for a several-length task, n the longest), else n * factor for ``factors``, or exactly
    ``lengths`` -- length, nmse, mse, max_abs_err on ``n_sequences`` (default
    :data:`~lstmsearch.analysis.verdict.CHECK_SEQUENCES`, 1,024) fresh sequences with the stored readout, on ``backend``. ``verdict``
    (:class:`~lstmsearch.analysis.verdict.Verdict` as a dict) and ``precision``
    (:class:`~lstmsearch.analysis.verdict.PrecisionCheck` as a dict) on the same fresh
    sequences; None with ``check=False``.
    """
    cfg, r, setting = row_setting(study, row, data_dir)
    ev = cfg.eval
    backend = backend or ev.backend
    params = setting[None]
    same = evaluate(cfg.cell, params, cfg.task, n_sequences=ev.sequences, seed=ev.seed, backend=backend,
                    readout=ev.readout, n_heldout=ev.heldout, ridge=ev.ridge,
                    readout_fit=ev.readout_fit).to_pylist()[0]
    keys = ("mse", "nmse", "max_abs_err", "train_mse", "train_nmse")
    stored = {k: r[k] for k in keys if r.get(k) is not None}
    identical = all(same.get(k) == v for k, v in stored.items())
    by_length = None
    if r.get("nmse_by_length") is not None:  # a several-length task: held-out nmse per trained length
        by_length = {"lengths": list(cfg.task.scored_lengths), "stored": r["nmse_by_length"],
                     "same": same["nmse_by_length"]}
        identical = identical and np.array_equal(np.asarray(by_length["stored"], float),
                                                 np.asarray(by_length["same"], float), equal_nan=True)
    differences = [] if identical else differences_of(stored, same, by_length)
    cause = None if identical else likely_cause(study, cfg, backend, data_dir)
    fresh = []
    n = n_sequences or CHECK_SEQUENCES  # the one default of every command that judges a row
    n0 = cfg.task.length
    require(factors is None or lengths is None, "give fresh lengths either as factors of n or as lengths, not both")
    if lengths is not None:
        for L in lengths:
            require(isinstance(L, (int, np.integer)) and not isinstance(L, bool) and L >= cfg.task.min_length,
                    f"fresh lengths must be whole numbers >= {cfg.task.min_length} (this task's shortest), got {L!r}")
        lengths = [int(L) for L in lengths]
    elif factors is None:
        lengths = task_check_lengths(cfg.task)
    else:
        for f in factors:
            require(isinstance(f, (int, float, np.integer, np.floating)) and not isinstance(f, bool)
                    and np.isfinite(f) and f > 0, f"length factors must be positive numbers, got {f!r}")
        lengths = [max(cfg.task.min_length, int(round(n0 * f))) for f in factors]
    for i, L in enumerate(lengths):
        task = cfg.task.with_length(L)
        t = evaluate(cfg.cell, params, task, n_sequences=n, seed=fresh_seed, backend=backend,
                     readout="given").to_pylist()[0]
        f = factors[i] if factors is not None else L / n0
        fresh.append({"factor": int(f) if float(f).is_integer() else float(f), "length": task.length,
                      "nmse": t["nmse"], "mse": t["mse"], "max_abs_err": t["max_abs_err"], "finite": t["finite"]})
    v = pc = None
    if check:
        v = verdict(cfg.cell, setting, cfg.task, ev.solved, n_sequences=n, seed=fresh_seed).as_dict()
        pc = precision_check(cfg.cell, setting, cfg.task, ev.solved, n_sequences=n, seed=fresh_seed).as_dict()
    return {"study": cfg.name, "row": int(row), "backend": backend, "seed": ev.seed, "cell": cfg.cell.kind,
            "hidden": cfg.cell.hidden, "task": cfg.task.describe(), "stored": stored,
            "same": {k: same[k] for k in keys if k in same}, "identical": identical,
            "differences": differences, "cause": cause, "readout_fit": ev.readout_fit,
            "fresh_seed": fresh_seed, "fresh": fresh, **({"by_length": by_length} if by_length else {}), "n_sequences": n, "verdict": v, "precision": pc}


def ulps_apart(a: float, b: float) -> Optional[int]:
    """How many float64 steps (units in the last place) lie between ``a`` and ``b``: 0 when they are
    equal, None when one is NaN and the other is not."""
    if np.isnan(a) or np.isnan(b):
        return 0 if np.isnan(a) and np.isnan(b) else None

    def line(v):  # the float64 bit patterns as one increasing integer line (-0.0 == +0.0)
        i = int(np.float64(v).view(np.int64))
        return i if i >= 0 else -(i & 0x7FFFFFFFFFFFFFFF)

    return abs(line(a) - line(b))


def differences_of(stored: Dict, same: Dict, by_length: Optional[Dict] = None) -> List[Dict]:
    """The stored errors that the reproduction does not give bit for bit: quantity, stored value,
    reproduced value and how many float64 ulps apart (None: one of them NaN)."""
    pairs = [(k, v, same.get(k)) for k, v in stored.items()]
    if by_length:
        pairs += [(f"nmse at trained length {n}", a, b) for n, a, b in
                  zip(by_length["lengths"], by_length["stored"], by_length["same"])]
    out = []
    for k, a, b in pairs:
        a, b = float(np.nan if a is None else a), float(np.nan if b is None else b)
        u = ulps_apart(a, b)
        if u != 0:
            out.append({"quantity": k, "stored": a, "reproduced": b, "ulps": u})
    return out


def likely_cause(study, cfg, backend: str, data_dir) -> str:
    """One sentence on why a row does not reproduce bit for bit: the study's readout fit (BLAS, before
    this release), another backend, other package versions than the manifest records, else a
    changed file."""
    if cfg.eval.readout_fit == BLAS:
        return ("the study's readouts were fitted through BLAS (lstmsearch 0.1.0 or older), whose last bits depend "
                "on the CPU's BLAS kernel (OPENBLAS_CORETYPE): this release fits in a fixed order, the same on every "
                "machine; run the study again (an extracted folder: lstmsearch.extract.refit_extracted)")
    if cfg.eval.backend not in ("auto", backend):
        return (f"the study was evaluated on the {cfg.eval.backend} backend, this on {backend}: backends agree "
                f"within 1e-5, not bit for bit")
    _, store = open_study(study, data_dir)
    m = store.read_manifest()
    then = (m.get("refitted") or {}).get("versions") or m.get("versions", {})  # what scored the stored rows
    now = versions()
    changed = [f"{k} {then[k]} -> {now[k]}" for k in ("lstmsearch", "numba", "numpy")
               if k in then and k in now and then[k] != now[k]]
    if changed:
        return f"the code changed since the study ran ({', '.join(changed)}): its kernels may round differently"
    return (f"same readout fit, backend and versions: the stored rows or the study's files may have been changed "
            f"(lstmsearch check {cfg.name})")


def format_reproduction(rep: Dict) -> List[str]:
    """The text ``lstmsearch reproduce`` prints: the verdict first, then the stored sequences, the
    precision check and the fresh-sequence table (one line per length, last)."""
    lines = [f"study {rep['study']} row {rep['row']}: {rep['cell']} H={rep['hidden']}, backend {rep['backend']}",
             f"task {rep['task']}"]
    v = rep.get("verdict")
    if v:
        lines.append(f"verdict: {v['text']}")
        lines.append(f"  (nmse < {v['threshold']:g} with the stored readout at lengths "
                     f"{', '.join(map(str, v['lengths']))}; {v['n_sequences']} fresh sequences, seed {v['seed']}, "
                     f"float32, {v['backend']} backend)")
    lines.append(f"stored sequences (seed {rep.get('seed', '')}){'':6s}{'stored':>14s}{'reproduced':>14s}")
    for k, val in rep["stored"].items():
        lines.append(f"  {k:32s}{val:14.6g}{rep['same'][k]:14.6g}")
    bl = rep.get("by_length")
    for n, a, b in zip(*(bl["lengths"], bl["stored"], bl["same"]) if bl else ((), (), ())):
        lines.append(f"  {'nmse at trained length ' + str(n):32s}{a:14.6g}{b:14.6g}")
    lines.append("  identical to the stored errors: " + ("yes" if rep["identical"] else "NO"))
    diffs = rep.get("differences") or []
    if diffs:  # one line: the headline quantity (nmse where it differs) in full, the others by name
        d = next((d for d in diffs if d["quantity"] == "nmse"), diffs[0])
        rel = abs(d["reproduced"] - d["stored"]) / abs(d["stored"]) if d["stored"] else float("inf")
        apart = "one is NaN" if d["ulps"] is None else f"{d['ulps']:,} ulp apart, relative {rel:.2g}"
        others = [o["quantity"] for o in diffs if o is not d]
        lines.append(f"    {d['quantity']}: {d['stored']!r} stored, {d['reproduced']!r} reproduced ({apart})"
                     + (f"; also {', '.join(others)}" if others else ""))
    if rep.get("cause"):
        lines.append(f"    likely cause: {rep['cause']}")
    pc = rep.get("precision")
    if pc:
        lines.append(f"precision at length {pc['length']} (nmse with the stored readout, the same "
                     f"{pc['n_sequences']} fresh sequences):")
        lines.append(f"  {'float32, our cpu kernels':40s}{pc['float32']:14.6g}")
        lines.append(f"  {'float64, reference backend':40s}{pc['float64']:14.6g}")
        if pc["torch"] is not None:
            name = f"PyTorch {pc['torch_version']} {kinds.get(pc['cell']).torch_name}, float32"
            lines.append(f"  {name:40s}{pc['torch']:14.6g}")
        else:
            lines.append(f"  {pc['torch_skipped']}")
        for note in pc["notes"]:
            lines.append(f"  NOTE: {note}")
        if not pc["saturation"] and not pc["torch_drift"]:
            lines.append("  float64" + (" and PyTorch agree" if pc["torch"] is not None else " agrees")
                         + " with float32 about the threshold at this length")
    lines.append(f"fresh sequences (seed {rep['fresh_seed']}), readout as stored:")
    lines.append(f"  {'length':>8s}{'nmse':>14s}{'max_abs_err':>14s}")
    for f in rep["fresh"]:
        lines.append(f"  {f['length']:8d}{f['nmse']:14.6g}{f['max_abs_err']:14.6g}"
                     + ("" if f["finite"] else "  (non-finite)"))
    return lines


FORMATS = ("torch", "npz", "json")


def export(study, row: int, fmt: str = "torch", path=None, data_dir="data", cell: Optional[str] = None,
           force: bool = False) -> Path:
    """Write a stored row's full setting; returns the file written.

    ``cell`` (optional) is the cell kind the caller expects (``lstm``, ``gru``, ...): a row of
    another kind is refused rather than written as a model it is not.

    ``torch``: ``torch.save`` of a state dict that ``cell.torch_model()`` loads (nn.LSTM/GRU/RNN
    as ``rnn`` plus an ``nn.Linear`` as ``readout``). ``npz``: torch-named blocks plus a JSON
    ``meta`` entry (cell, task, metrics; ``lengths --npz`` and ``explain --npz`` read the file).
    ``json``: cell, task, metrics and nested lists.

    An existing file is refused unless ``force``; a path inside a study folder always is
    (:func:`~lstmsearch.errors.check_output`).
    """
    require(fmt in FORMATS, f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    cfg, r, setting = row_setting(study, row, data_dir)
    want = cell
    cell = cfg.cell
    if want is not None and want != cell.kind:
        from .cells import Cell

        try:
            other = Cell(want, cell.hidden, cell.inputs, cell.outputs)
            sizes = f"{cell.n_params} parameters against {other.n_params}, gates {cell.gates} against {other.gates}"
        except LstmsearchError:
            sizes = f"{want!r} is not a cell kind"
        raise LstmsearchError(f"row {row} of study {cfg.name} is a {cell.kind} setting (H={cell.hidden}); it cannot "
                              f"be exported as {want} ({sizes}): export it as {cell.kind}")
    ext = {"torch": ".pt", "npz": ".npz", "json": ".json"}[fmt]
    path = check_output(Path(path) if path else Path(f"{cfg.name}-row{row}{ext}"), force, "-o/--output")
    meta = {"study": cfg.name, "row": int(row), "cell": {"kind": cell.kind, "hidden": cell.hidden,
            "inputs": cell.inputs, "outputs": cell.outputs}, "task": cfg.task.spec(),
            "metrics": {k: r[k] for k in ("mse", "nmse", "max_abs_err", "train_nmse") if r.get(k) is not None},
            "layout": [b.name for b in cell.blocks]}
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torch":
        torch = import_optional("torch", "torch", "the torch format")
        torch.save(cell.torch_state_dict(setting), path)
    elif fmt == "npz":
        blocks = cell.unflatten(setting)
        np.savez(path, **{k: np.ascontiguousarray(v) for k, v in blocks.items()}, meta=np.array(json.dumps(meta)))
    else:
        meta["weights"] = {k: v.tolist() for k, v in cell.unflatten(setting.astype(np.float64)).items()}
        path.write_text(json.dumps(meta, indent=1))
    return path
