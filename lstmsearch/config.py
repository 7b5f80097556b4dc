"""Study files: TOML -> one validated :class:`StudyConfig`, before any work starts.

A study file (``studies/*.toml``, read with Python's ``tomllib``) has these tables::

    [study]      name, description, out (result folder; default DATA/<name>, DATA = data unless
                 the caller passes another ``data_dir``, e.g. ``lstmsearch run --data``)
    [cell]       kind, hidden, inputs, outputs  (inputs/outputs default to the task's)
    [task]       kind, length (or lengths = [20, 21], or a range lengths = { from = 20, to = 40,
                 step = 1 }, and aggregate = "worst" | "mean" | "per_sequence": scored at several lengths from one
                 simulation, see :mod:`lstmsearch.tasks`),
                 dist = {kind = "uniform", ...} and the task's own parameters
    [eval]       sequences, heldout, seed, backend, readout ("fit" | "given"), ridge, solved,
                 racing = { rungs = [[16, 10]], keep = 0.125 } (successive halving, off by
                 default: :class:`Racing`)
    [space]      kind = "full" | "masked" | "subspace" | "template" and its keys
    [strategy]   kind = "optuna" | "cmaes" | "sweep" and its keys
    [budget]     settings (total for the study), seconds (per run)
    [store]      keep_weights (best rows that carry full weights; "all" for every row),
                 max_part_rows, plots (write PNGs of the results after each run)
    [warm_start] study (a folder, study file or name), k

Every mistake -- an unknown key, a wrong type, an impossible size -- raises one
:class:`~lstmsearch.errors.LstmsearchError` whose message names the file and the key.
The per-kind keys of ``[space]`` and ``[strategy]`` are checked by their builders in
:mod:`lstmsearch.search`, with the same error style.

A :class:`StudyConfig` is frozen and complete once parsed (its search space included): a run
in another folder is ``cfg.with_out(path)``, other changes are ``parse_study(..., overrides)``.
:func:`study_toml` is the one writer of study files (anchor studies, constructions, tests).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .cells import Cell
from .errors import (MAX_COUNT, ConfigError, LstmsearchError, check_memory, check_text, control_character, has_password,
                     redact_url)
from .readout import FIXED_ORDER
from .tasks import Task, make_task

REQUIRED = object()


# ------------------------------------------------------------------ checking helpers
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "an array", dict: "a table"}


def _type_ok(value, types) -> bool:
    for t in types:
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t not in (int, float) and isinstance(value, t):
            return True
    return False


class Checker:
    """Validates one table of a study file against a spec; errors name file and key."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, msg: str):
        raise ConfigError(f"{self.source}: {where} {msg}")

    def table(self, doc: Dict, name: str, spec: Dict[str, tuple], required: bool = True,
              allow_extra: bool = False) -> Dict[str, Any]:
        """Check ``doc[name]`` (or ``doc`` itself when name is a dotted path already resolved).

        ``spec`` maps key -> (types tuple, default or REQUIRED).
        """
        where = f"[{name}]"
        data = doc.get(name) if isinstance(doc, dict) else None
        if data is None:
            if required and any(d is REQUIRED for _, d in spec.values()):
                raise ConfigError(f"{self.source}: the table [{name}] is missing")
            data = {}
        if not isinstance(data, dict):
            self.fail(where, f"must be a table, got {type(data).__name__}")
        return self.keys(data, where, spec, allow_extra)

    def keys(self, data: Dict, where: str, spec: Dict[str, tuple], allow_extra: bool = False):
        """Check the keys of one table ``data`` against ``spec`` (key -> (types, default or
        REQUIRED)); the checked table, defaults filled in (a list or table default copied, so that
        a spec, e.g. a strategy's :attr:`~lstmsearch.search.base.Strategy.options`, is never shared)."""
        if not allow_extra:
            unknown = [k for k in data if k not in spec]
            if unknown:
                self.fail(where, f"has no key {unknown[0]!r}; expected some of {', '.join(spec)}")
        out = dict(data) if allow_extra else {}
        for key, (types, default) in spec.items():
            if key not in data:
                if default is REQUIRED:
                    self.fail(where, f"needs the key {key!r}")
                out[key] = default.copy() if isinstance(default, (list, dict)) else default
                continue
            value = data[key]
            if not _type_ok(value, types):
                want = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
                self.fail(f"{where} {key}", f"must be {want}, got {value!r} ({type(value).__name__})")
            if isinstance(value, float) and not math.isfinite(value):
                self.fail(f"{where} {key}", f"must be finite, got {value!r}")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not abs(value) < MAX_NUMBER:
                self.fail(f"{where} {key}", f"must be between -2**62 and 2**62, got {value!r}")
            out[key] = float(value) if types == (float,) else value
        return out

    def positive(self, where: str, key: str, value, allow_zero=False):
        if value is None:
            return
        if value < 0 or (value == 0 and not allow_zero):
            self.fail(f"{where} {key}", f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")

    def choice(self, where: str, key: str, value, choices):
        if value not in choices:
            self.fail(f"{where} {key}", f"must be one of {', '.join(map(str, choices))}, got {value!r}")

    def wrap(self, where: str, exc: LstmsearchError):
        raise ConfigError(f"{self.source}: {where}: {exc}") from exc


#: Default parent folder of study results: a study named NAME keeps its rows in DATA_DIR/NAME
#: unless its file sets ``[study] out`` (``--data`` of every command).
DATA_DIR = "data"

#: Default nmse below which a setting counts as solved: ``[eval] solved`` of a study and
#: ``lstmsearch evaluate --solved``.
SOLVED_NMSE = 1e-5

#: Fresh sequences per checked length of a verdict (``lstmsearch.analysis.verdict``, which
#: re-exports it): the one default of every command that judges a row -- ``reproduce``, ``top``'s
#: solved column, ``report`` and its answer page, the run summary. Kept here, beside the
#: threshold, so that the command line's help can name it without importing the analysis.
CHECK_SEQUENCES = 1024


# ------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Racing:
    """``[eval] racing``: successive halving of every batch (:mod:`lstmsearch.run.racing`).

    ``rungs`` are the low-fidelity rungs, cheapest first: (sequences, length) pairs, each scored
    on ``sequences`` training and as many held-out sequences of the one length ``length``. The
    last rung, *full fidelity*, is always the study's own ``[eval]`` scoring (sequences, heldout,
    every length of ``[task]``): its index is ``len(rungs)``. ``keep`` is the fraction of a rung's
    settings promoted to the next (eta = 1 / keep in Jamieson & Talwalkar 2016).
    """

    rungs: Tuple[Tuple[int, int], ...]
    keep: float

    @property
    def full(self) -> int:
        """The fidelity (rung index) of full-fidelity rows."""
        return len(self.rungs)


@dataclass(frozen=True)
class EvalConfig:
    """How every setting is scored (see :func:`lstmsearch.evaluate`)."""

    sequences: int = 256
    heldout: int = 256
    seed: int = 0
    backend: str = "cpu"
    readout: str = "fit"
    ridge: float = 1e-6
    solved: float = SOLVED_NMSE
    racing: Optional[Racing] = None  # successive halving; None: every setting at full fidelity
    #: how readouts are fitted (:data:`lstmsearch.readout.FIT_METHODS`): not a study-file key but what
    #: the manifest records (:func:`lstmsearch.store.manifest.recorded_fit`); "blas" for studies of
    #: releases <= 0.1.0, whose manifests record none
    readout_fit: str = FIXED_ORDER


@dataclass(frozen=True)
class StudyConfig:
    """A validated study, complete and frozen once parsed (no attribute is set afterwards).

    ``space`` and ``strategy`` are the checked [space]/[strategy] tables and ``space_obj`` the
    search space built from them. Another result folder is :meth:`with_out` (a new config);
    other changes go through :func:`parse_study`'s ``overrides``.
    """

    name: str
    description: str
    source: str
    text: str
    out: Path
    cell: Cell
    task: Task
    eval: EvalConfig
    space: Dict[str, Any]
    strategy: Dict[str, Any]
    budget_settings: Optional[int]
    budget_seconds: Optional[float]
    keep_weights: Optional[int]  # None = all rows
    max_part_rows: int
    warm_start: Optional[Dict[str, Any]]
    space_obj: Any = field(compare=False, repr=False)  # the search space (lstmsearch.search.spaces)
    base_dir: Path = field(default=Path("."))
    plots: bool = False  # [store] plots: write best-so-far and nmse-histogram PNGs after each run

    def identity(self) -> str:
        """Hash of everything that decides which rows the study produces (not budget/backend)."""
        doc = tomllib.loads(self.text)
        doc.pop("budget", None)
        doc.get("eval", {}).pop("backend", None)
        doc.get("study", {}).pop("out", None)
        doc.get("study", {}).pop("description", None)
        doc.get("store", {}).pop("plots", None)
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def with_out(self, out) -> "StudyConfig":
        """The same study (same identity) writing its results to the folder ``out``."""
        return dataclasses.replace(self, out=Path(out))


_STUDY = {"name": ((str,), REQUIRED), "description": ((str,), ""), "out": ((str,), None)}
_CELL = {"kind": ((str,), REQUIRED), "hidden": ((int,), REQUIRED), "inputs": ((int,), None),
         "outputs": ((int,), None)}
_EVAL = {"sequences": ((int,), 256), "heldout": ((int,), None), "seed": ((int,), 0),
         "backend": ((str,), "cpu"), "readout": ((str,), "fit"), "ridge": ((float,), 1e-6),
         "solved": ((float,), SOLVED_NMSE), "racing": ((dict,), None)}
_RACING = {"rungs": ((list,), REQUIRED), "keep": ((float,), REQUIRED)}
_BUDGET = {"settings": ((int,), None), "seconds": ((float,), None)}
_STORE = {"keep_weights": ((int, str), 100), "max_part_rows": ((int,), 65536), "plots": ((bool,), False)}
_WARM = {"study": ((str,), REQUIRED), "k": ((int,), 8)}
_TOP = {"study", "cell", "task", "eval", "space", "strategy", "budget", "store", "warm_start"}

#: Largest sizes accepted (a typo such as hidden = 32000 is caught before any work).
MAX_HIDDEN = 4096
#: Largest magnitude of any number of a study file's tables (counts, seeds, tolerances): int64 with room.
MAX_NUMBER = float(MAX_COUNT)
#: Largest study file read (bytes), and deepest nesting of its tables and arrays: a study file is a
#: few dozen lines whose values nest four deep ([[space.rule]] block lists, racing rungs).
MAX_STUDY_BYTES = 1 << 20
MAX_DEPTH = 16
#: Longest study name (characters): the default result folder is DATA/NAME, and a folder name has
#: at most 255 bytes on every common file system.
MAX_NAME = 100
MAX_LENGTH = 10_000_000
MAX_SEQUENCES = 1_000_000


def parse_study(text: str, source: str = "<study>", base_dir: Path = Path("."),
                overrides: Optional[Dict[str, Any]] = None, data_dir=DATA_DIR,
                allow_password: bool = False) -> StudyConfig:
    """Validate study-file text; ``overrides`` ({"budget.settings": 10, ...}) win over the file.
    The result folder is ``[study] out``, else ``data_dir``/NAME.

    A password in the text's ``[strategy] storage`` (in its userinfo or a query parameter such as
    ``?password=``: :func:`~lstmsearch.errors.has_password`) is refused (the text is copied into the
    manifest and by ``extract``): it belongs in a PGPASSFILE, ``$LSTMSEARCH_STORAGE`` or
    ``--storage`` (an override, never written anywhere). ``allow_password`` reads old manifests.

    One function reads each table, in this order (the first mistake is the one reported)."""
    chk = Checker(source)
    doc = _read_document(chk, text, overrides, allow_password)
    st = _read_study(chk, doc)
    task = _read_task(chk, doc)  # task first: the cell's inputs/outputs default to the task's
    cell = _read_cell(chk, doc, task)
    ev = _read_eval(chk, doc, task)
    b = _read_budget(chk, doc)
    s = _read_store(chk, doc)
    warm = _read_warm_start(chk, doc)
    for t in ("space", "strategy"):
        _require_kind(chk, doc, t)
    space, space_obj = _read_space(chk, doc, cell, ev, base_dir)
    strategy = _read_strategy(chk, doc, space_obj)
    _check_sizes(chk, b, cell, task, ev, strategy)
    out = Path(st["out"]) if st["out"] else Path(data_dir) / st["name"]
    return StudyConfig(
        name=st["name"], description=st["description"], source=source, text=text, out=out, cell=cell,
        task=task, eval=ev, space=space, strategy=strategy,
        budget_settings=b["settings"], budget_seconds=b["seconds"], keep_weights=s["keep_weights"],
        max_part_rows=s["max_part_rows"], warm_start=warm, space_obj=space_obj, base_dir=base_dir,
        plots=s["plots"],
    )


def _read_document(chk: Checker, text: str, overrides: Optional[Dict[str, Any]], allow_password: bool) -> Dict:
    """The TOML document with ``overrides`` applied: no password in ``[strategy] storage`` (unless
    ``allow_password``), no control character in any string, no unknown table."""
    if len(text) > MAX_STUDY_BYTES:
        chk.fail("the file", f"has {len(text)} characters; a study file has at most {MAX_STUDY_BYTES}: is it the right file?")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chk.source}: not valid TOML: {exc}") from exc
    except RecursionError:  # tomllib reads nested arrays and inline tables recursively
        chk.fail("the file", f"nests arrays or tables too deeply; a study file nests at most {MAX_DEPTH} levels")
    _check_depth(chk, doc)
    stored = doc.get("strategy", {}).get("storage") if isinstance(doc.get("strategy"), dict) else None
    if has_password(stored) and not allow_password:
        chk.fail("[strategy] storage", f"holds a password ({redact_url(stored)}); a study file is copied into "
                                       "the study's manifest.json, so keep the password out of it: put it in a "
                                       "PGPASSFILE (~/.pgpass) or PGPASSWORD, or pass the whole URL in the "
                                       "environment variable LSTMSEARCH_STORAGE or with --storage")
    for key, value in (overrides or {}).items():
        table, _, k = key.partition(".")
        doc.setdefault(table, {})[k] = value
    _refuse_control_characters(chk, doc)
    unknown = [k for k in doc if k not in _TOP]
    if unknown:
        chk.fail(f"[{unknown[0]}]", f"is not a known table; expected some of {', '.join(sorted(_TOP))}")
    return doc


def _check_depth(chk: Checker, doc) -> None:
    """Tables and arrays nest at most :data:`MAX_DEPTH` deep (walked without recursion)."""
    stack = [(doc, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            chk.fail("the file", f"nests arrays or tables {depth} levels deep; a study file nests at most {MAX_DEPTH}")
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def _read_study(chk: Checker, doc: Dict) -> Dict[str, Any]:
    """``[study]``: name (a plain folder name of at most :data:`MAX_NAME` characters), description,
    out (a path whose every name fits a file system)."""
    st = chk.table(doc, "study", _STUDY)
    name = st["name"]
    if not name or any(c in name for c in "/\\:*?\"<>| ") or name.startswith("."):
        chk.fail("[study] name", f"must be a plain folder name (letters, digits, -, _), got {name!r}")
    if len(name) > MAX_NAME or len(name.encode("utf-8", "surrogatepass")) > 2 * MAX_NAME:
        chk.fail("[study] name", f"has {len(name)} characters ({name[:20]!r}...); at most {MAX_NAME}: "
                                 "it names the result folder; give a shorter name")
    if st["out"] is not None:
        _check_path_names(chk, "[study] out", st["out"])
    return st


def _check_path_names(chk: Checker, where: str, path: str) -> None:
    """Every name of ``path`` fits a file system (255 bytes), the whole path 4096 bytes."""
    if not path:
        chk.fail(where, "is empty; give a folder, or leave the key out for DATA/NAME")
    if len(path.encode("utf-8", "surrogatepass")) > 4096 or any(
            len(part.encode("utf-8", "surrogatepass")) > 255 for part in Path(path).parts):
        chk.fail(where, f"is too long for a file system ({len(path)} characters; a name at most 255 bytes): "
                        "give a shorter path")


def check_result_folder(out) -> None:
    """``out`` can be a study's result folder: not an existing file (``out`` pointing at a
    ``manifest.json``) and not inside another study's folder; else one line naming the fix. Called
    by ``run`` before any work (:func:`lstmsearch.run.loop.study_config`), where ``out`` is final."""
    from .errors import study_folder_of

    p = Path(out)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"the result folder {str(p)!r} is a file, not a folder; set [study] out (or --out) to a "
                          "folder of its own")
    try:
        outer = study_folder_of(p.parent) if not (p / "manifest.json").is_file() else None
    except (OSError, RuntimeError):  # pragma: no cover - an unreadable or looping path: the run says so
        return
    if outer is not None:
        raise ConfigError(f"the result folder {str(p)!r} is inside the study folder {str(outer)!r}; a study's "
                          "folder holds its own files only: set [study] out (or --out) to a folder outside it")


def _read_task(chk: Checker, doc: Dict) -> Task:
    """``[task]``: its kind, one length or several (:func:`_read_lengths`) and the task's own keys."""
    task_doc = doc.get("task")
    if not isinstance(task_doc, dict):
        chk.fail("[task]", "is missing" if task_doc is None else "must be a table")
    if "kind" not in task_doc or not isinstance(task_doc["kind"], str):
        chk.fail("[task]", "needs the key 'kind' (a string such as \"recall_first\")")
    if ("length" in task_doc) == ("lengths" in task_doc):
        chk.fail("[task]", "needs the key 'length' (length = 20) or the key 'lengths' (lengths = [20, 21]), not both"
                 if "length" in task_doc else "needs the key 'length' (length = 20) or 'lengths' (lengths = [20, 21])")
    params = {k: v for k, v in task_doc.items() if k != "kind"}
    if "length" in task_doc:
        _check_length(chk, "[task] length", task_doc["length"])
    else:
        params["lengths"] = _read_lengths(chk, task_doc["lengths"])
    try:
        return make_task(task_doc["kind"], **params)
    except LstmsearchError as exc:
        chk.wrap("[task]", exc)


def _read_lengths(chk: Checker, lengths) -> list:
    """``[task] lengths``: a non-empty array of distinct lengths, or a range (:func:`_length_range`)."""
    if isinstance(lengths, dict):  # a range: every length from .. to, one simulation to the longest
        lengths = _length_range(chk, lengths)
    if not isinstance(lengths, list) or not lengths:
        chk.fail("[task] lengths", f"must be a non-empty array of integers such as [20, 21], or a range "
                                   f"{{ from = 20, to = 40 }}, got {lengths!r}")
    for n in lengths:
        _check_length(chk, "[task] lengths", n)
    if len(set(lengths)) != len(lengths):
        chk.fail("[task] lengths", f"has a repeated length: {lengths}; give each length once")
    return lengths


def _read_cell(chk: Checker, doc: Dict, task: Task) -> Cell:
    """``[cell]``: kind and hidden size; inputs and outputs default to ``task``'s and must match them."""
    c = chk.table(doc, "cell", _CELL)
    chk.positive("[cell]", "hidden", c["hidden"])
    if c["hidden"] > MAX_HIDDEN:
        chk.fail("[cell] hidden", f"must be at most {MAX_HIDDEN}, got {c['hidden']}")
    for k in ("inputs", "outputs"):
        chk.positive("[cell]", k, c[k])
    inputs = c["inputs"] if c["inputs"] is not None else task.n_inputs
    outputs = c["outputs"] if c["outputs"] is not None else task.n_outputs
    if inputs != task.n_inputs or outputs != task.n_outputs:
        chk.fail("[cell]", f"has inputs={inputs}, outputs={outputs} but task {task.name} has "
                           f"{task.n_inputs} input(s) and {task.n_outputs} output(s)")
    try:
        return Cell(c["kind"], c["hidden"], inputs, outputs)
    except LstmsearchError as exc:
        chk.wrap("[cell]", exc)


def _read_eval(chk: Checker, doc: Dict, task: Task) -> EvalConfig:
    """``[eval]``: how every setting is scored, racing included (:func:`_check_racing`)."""
    e = chk.table(doc, "eval", _EVAL, required=False)
    for k in ("sequences", "heldout"):
        chk.positive("[eval]", k, e[k])
        if e[k] is not None and e[k] > MAX_SEQUENCES:
            chk.fail(f"[eval] {k}", f"must be at most {MAX_SEQUENCES}, got {e[k]}")
    chk.positive("[eval]", "seed", e["seed"], allow_zero=True)
    chk.positive("[eval]", "ridge", e["ridge"], allow_zero=True)
    chk.positive("[eval]", "solved", e["solved"])
    chk.choice("[eval]", "readout", e["readout"], ("fit", "given"))
    from .kernels import BACKENDS

    chk.choice("[eval]", "backend", e["backend"], tuple(dict.fromkeys(tuple(BACKENDS) + ("auto", "cuda"))))
    if e["readout"] == "fit" and e["sequences"] < 2:
        chk.fail("[eval] sequences", "must be >= 2 to fit a readout")
    heldout = e["heldout"] or e["sequences"]
    racing = _check_racing(chk, e["racing"], e["readout"], min(e["sequences"], heldout), task, doc.get("strategy"))
    return EvalConfig(sequences=e["sequences"], heldout=heldout, seed=e["seed"],
                      backend=e["backend"], readout=e["readout"], ridge=e["ridge"], solved=e["solved"], racing=racing)


def _read_budget(chk: Checker, doc: Dict) -> Dict[str, Any]:
    """``[budget]``: settings (total for the study) or seconds (per run), at least one of them."""
    b = chk.table(doc, "budget", _BUDGET, required=False)
    chk.positive("[budget]", "settings", b["settings"])
    chk.positive("[budget]", "seconds", b["seconds"])
    if b["settings"] is None and b["seconds"] is None:
        chk.fail("[budget]", "needs settings (total settings to evaluate) or seconds (wall time per run)")
    return b


def _read_store(chk: Checker, doc: Dict) -> Dict[str, Any]:
    """``[store]``: keep_weights (None for "all"), max_part_rows, plots."""
    s = chk.table(doc, "store", _STORE, required=False)
    keep = s["keep_weights"]
    if isinstance(keep, str):
        if keep != "all":
            chk.fail("[store] keep_weights", f"must be an integer or \"all\", got {keep!r}")
        s["keep_weights"] = None
    else:
        chk.positive("[store]", "keep_weights", keep, allow_zero=True)
    chk.positive("[store]", "max_part_rows", s["max_part_rows"])
    return s


def _read_warm_start(chk: Checker, doc: Dict) -> Optional[Dict[str, Any]]:
    """``[warm_start]`` (study, k), or None without the table."""
    if "warm_start" not in doc:
        return None
    warm = chk.table(doc, "warm_start", _WARM)
    chk.positive("[warm_start]", "k", warm["k"])
    return warm


def _require_kind(chk: Checker, doc: Dict, name: str) -> None:
    """The table ``[name]`` is there, with a string ``kind`` (its other keys are its builder's)."""
    if not isinstance(doc.get(name), dict):
        chk.fail(f"[{name}]", "is missing" if name not in doc else "must be a table")
    if not isinstance(doc[name].get("kind"), str):
        chk.fail(f"[{name}]", "needs the key 'kind' (a string)")


def _read_space(chk: Checker, doc: Dict, cell: Cell, ev: EvalConfig, base_dir: Path) -> Tuple[Dict[str, Any], Any]:
    """``[space]``: the table and the search space built from it (its keys checked) by
    :func:`lstmsearch.search.build_space`."""
    from .search import build_space

    space = dict(doc["space"])
    try:
        return space, build_space(cell, space, ev.readout == "given", base_dir=base_dir)
    except ConfigError:
        raise
    except LstmsearchError as exc:
        chk.wrap("[space]", exc)


def _read_strategy(chk: Checker, doc: Dict, space_obj) -> Dict[str, Any]:
    """``[strategy]``: checked by its kind's ``check`` (:func:`lstmsearch.search.check_strategy`)
    against the search space."""
    from .search import check_strategy

    try:
        return check_strategy(dict(doc["strategy"]), space_obj, chk)
    except ConfigError:
        raise
    except LstmsearchError as exc:
        chk.wrap("[strategy]", exc)


def _check_racing(chk: Checker, spec, readout: str, max_sequences: int, task: Task, strategy) -> Optional[Racing]:
    """``[eval] racing`` checked: rungs strictly cheaper (sequences x length) one after another and
    than full fidelity, at most the study's sequences and longest length; 0 < keep < 1."""
    if spec is None:
        return None
    where = "[eval] racing"
    r = chk.keys(spec, where, _RACING)
    from .search import kinds_with, strategy_named

    kind = strategy.get("kind") if isinstance(strategy, dict) else None
    chosen = strategy_named(kind)
    if chosen is None or not chosen.ranks_whole_batches:
        racers = kinds_with("ranks_whole_batches")
        chk.fail(where, f"needs a strategy that ranks whole batches ({', '.join(racers)}), not {kind!r}; "
                        "an Optuna study prunes with its own pruners: remove racing")
    if not 0.0 < r["keep"] < 1.0:
        chk.fail(f"{where} keep", f"must be between 0 and 1 (the fraction promoted to the next rung), got {r['keep']!r}")
    rungs = r["rungs"]
    least = 2 if readout == "fit" else 1
    if not rungs:
        chk.fail(f"{where} rungs", "must list at least one low-fidelity rung [sequences, length], e.g. [[16, 10]]")
    full_cost = max_sequences * task.length
    out, prev = [], 0
    for rung in rungs:
        if not (isinstance(rung, list) and len(rung) == 2 and all(_type_ok(v, (int,)) for v in rung)):
            chk.fail(f"{where} rungs", f"must be pairs [sequences, length] of integers, got {rung!r}")
        s, n = rung
        if not least <= s <= max_sequences:
            chk.fail(f"{where} rungs", f"has {s} sequences in {rung}; give {least} to {max_sequences} "
                                       "(at most the study's sequences and heldout)")
        if not 1 <= n <= task.length:
            chk.fail(f"{where} rungs", f"has length {n} in {rung}; give 1 to {task.length} (the task's longest length)")
        if s * n <= prev or s * n >= full_cost:
            chk.fail(f"{where} rungs", f"{rung} costs {s} x {n} sequence steps; each rung must cost more than the one "
                                       f"before and less than full fidelity ({max_sequences} x {task.length})")
        try:
            task.with_length(n)
        except LstmsearchError as exc:
            chk.wrap(f"{where} rungs {rung}", exc)
        out.append((int(s), int(n)))
        prev = s * n
    return Racing(rungs=tuple(out), keep=float(r["keep"]))


#: Most lengths one task may score (a range { from, to } included): the states kept per setting grow with them.
MAX_SCORED_LENGTHS = 256


def _length_range(chk, spec: dict) -> list:
    """``{ from = a, to = b, step = s }`` (step 1 by default) -> [a, a + s, ..., <= b]."""
    if set(spec) - {"from", "to", "step"} or not {"from", "to"} <= set(spec):
        chk.fail("[task] lengths", f"a range is written {{ from = 20, to = 40 }} (optional step = 1), got {spec!r}")
    lo, hi, step = spec["from"], spec["to"], spec.get("step", 1)
    for n in (lo, hi):
        _check_length(chk, "[task] lengths", n)
    if not _type_ok(step, (int,)) or step < 1:
        chk.fail("[task] lengths", f"step must be a positive integer, got {step!r}")
    if not lo < hi:
        chk.fail("[task] lengths", f"a range needs from < to, got from = {lo}, to = {hi}")
    out = list(range(lo, hi + 1, step))
    if len(out) > MAX_SCORED_LENGTHS:
        chk.fail("[task] lengths", f"the range scores {len(out)} lengths; at most {MAX_SCORED_LENGTHS}: "
                                   "use a larger step")
    return out


def _check_length(chk: Checker, where: str, n) -> None:
    if not _type_ok(n, (int,)):
        chk.fail(where, f"must be {'integers' if 'lengths' in where else 'an integer'}, got {n!r}")
    if not 1 <= n <= MAX_LENGTH:
        chk.fail(where, f"must be from 1 to {MAX_LENGTH}, got {n}")


def _check_sizes(chk: Checker, budget: Dict[str, Any], cell: Cell, task: Task, ev: EvalConfig,
                 strategy: Dict[str, Any]) -> None:
    """Refuse, before any work, a budget beyond what a store can number and a study this machine
    cannot hold (:func:`_check_footprint`)."""
    if budget["settings"] is not None and budget["settings"] >= MAX_COUNT:
        chk.fail("[budget] settings", f"must be below {MAX_COUNT}, got {budget['settings']}")
    _check_footprint(chk, cell, task, ev, strategy)


def _check_footprint(chk: Checker, cell: Cell, task: Task, ev: EvalConfig, strategy: Dict[str, Any]) -> None:
    """Refuse, before any work, a population (batch x region size, popsize) or a number of
    sequences x length whose memory this machine does not have (one line naming the key)."""
    pop, key = 1, None
    for k in ("batch", "popsize"):
        v = strategy.get(k)
        if isinstance(v, int) and v > pop:
            pop, key = v, k
    region = strategy.get("region")
    if isinstance(region, dict) and isinstance(region.get("size"), int):
        pop, key = pop * region["size"], ("batch x region size" if key else "region size")
    try:
        if key:  # settings, z and their rows, several copies of each
            check_memory(f"a population of {pop} settings ({key})", 16.0 * pop * (cell.n_params + 16),
                         "make it smaller")
        n_all = ev.heldout + (ev.sequences if ev.readout == "fit" else 0)
        check_memory(f"{n_all} sequences of length {task.length}", 16.0 * task.length * n_all * (cell.inputs + cell.outputs),
                     "use fewer sequences or a shorter length")
    except LstmsearchError as exc:
        chk.fail(f"[strategy] {key}" if "population" in str(exc) else "[eval] sequences", str(exc))


# ------------------------------------------------------------------- writing study files
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise LstmsearchError(f"cannot write the string {s!r} in a study file: it holds a lone surrogate")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(k) -> str:
    if not isinstance(k, str):
        raise LstmsearchError(f"cannot write the key {k!r} in a study file: keys are strings")
    return k if _BARE_KEY.fullmatch(k) else _toml_string(k)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return re.sub(r"e([+-])0+(?=\d)", r"e\1", repr(v))  # 1e-05 -> 1e-5
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise LstmsearchError(f"cannot write the value {v!r} ({type(v).__name__}) in a study file")


def _table_of_tables(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, dict) for x in v)


def study_toml(doc: Dict[str, Any], comments: Optional[Dict[str, str]] = None) -> str:
    """The TOML text of a study document: ``tomllib.loads(study_toml(doc)) == doc``.

    The one writer of study files (anchor studies, constructions, tests). Top-level dicts are
    tables (``[cell]``), lists of dicts inside a table are arrays of tables (``[[space.rule]]``,
    after the table's own keys), other dicts and lists are inline; keys keep their order and
    tables are separated by one blank line, so equal documents give equal text. Inside an
    element of an array of tables everything is inline. Floats are
    written exactly (``repr``, exponent without leading zeros: ``1e-5``; ``inf``, ``nan``).

    ``comments`` puts ``# `` lines before a table: the key is its name (``"space"``), an
    element of an array of tables is ``"space.rule[3]"`` (0-based), ``""`` is the top of
    the file (followed by a blank line).
    """
    comments = comments or {}
    unknown = [k for k in comments if k != "" and not re.fullmatch(r"[^\[\]]+(\[\d+\])?", k)]
    if unknown:
        raise LstmsearchError(f"cannot place the comment {unknown[0]!r}: name a table or array element")

    def note(key):
        text = comments.get(key)
        if text is None:
            return []
        return [("# " + ln).rstrip(" ") if ln else "#" for ln in text.splitlines()]

    def body(table: Dict[str, Any], inline_all: bool = False):
        return [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()
                if inline_all or not _table_of_tables(v)]

    blocks = []
    top = note("")
    if top:
        blocks.append("\n".join(top) + "\n")
    scalars = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    if scalars:
        blocks.append("".join(ln + "\n" for ln in body(scalars)))
    for name, table in doc.items():
        if not isinstance(table, dict):
            continue
        header = _toml_key(name)
        blocks.append("".join(ln + "\n" for ln in note(name) + [f"[{header}]"] + body(table)))
        for key, items in table.items():
            if _table_of_tables(items):
                for i, item in enumerate(items):
                    lines = note(f"{name}.{key}[{i}]") + [f"[[{header}.{_toml_key(key)}]]"] + body(item, True)
                    blocks.append("".join(ln + "\n" for ln in lines))
    return "\n".join(blocks)


def _refuse_control_characters(chk: Checker, doc, where: str = "") -> None:
    """A NUL (or another control character) in any string of a study file is refused, naming the
    key; a description may hold tabs and newlines."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            name = k if _BARE_KEY.fullmatch(k) else json.dumps(k)  # a key is shown escaped: one line, no escapes run
            if control_character(k) is not None or not k.isprintable():
                chk.fail(f"[{where or name}]", f"has the key {name}, which holds a control or unprintable character; "
                                               "keys are names: remove it")
            _refuse_control_characters(chk, v, f"{where}.{name}" if where else name)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            _refuse_control_characters(chk, v, f"{where}[{i}]")
    else:
        c = control_character(doc, allow="\t\n\r" if where == "study.description" else "")
        if c is not None:
            table, _, key = where.partition(".")
            chk.fail(f"[{table}] {key}", f"holds the control character {c!r}; names, paths and URLs cannot: "
                                         "remove it")


def _study_file(path) -> Path:
    """``path`` as a Path when it is a file; else the one-line error."""
    p = Path(check_text(str(path), "the study file path"))
    if not p.is_file():
        raise ConfigError(f"study file {str(p)!r} not found; pass a path to a .toml study file")
    return p


def locate_study(ref, data_dir=DATA_DIR) -> Path:
    """Where the study ``ref`` is, found without reading it (nor importing pyarrow or the kernels,
    so that the command line reports a study that is not there at once): a study file (``.toml``),
    else a folder with a manifest.json, ``ref`` itself or ``data_dir``/``ref``.

    Anything else is a one-line :class:`~lstmsearch.errors.LstmsearchError`; a name not found
    under ``data_dir`` but one folder deeper (``data/examples/NAME``) is named in it.
    """
    p = Path(ref)
    if p.suffix == ".toml":
        return _study_file(p)
    for root in (p, Path(data_dir) / str(ref)):
        if (root / "manifest.json").is_file():
            return root
    hint = "".join(f"; try --data {d}" for d in _elsewhere(str(ref), data_dir)[:1])
    raise LstmsearchError(f"no study {str(ref)!r}: expected a study file (.toml), a study folder with a "
                          f"manifest.json, or a study name under {str(data_dir)!r}/{hint}")


def _elsewhere(name: str, data_dir) -> list:
    """Folders other than ``data_dir`` that hold a study ``name``: the sub-folders of ``data_dir``
    (``data/examples``) and ``data/examples`` itself."""
    if not name or Path(name).name != name or name in (".", ".."):
        return []
    found = []
    for parent in [Path(data_dir), Path(DATA_DIR)]:
        try:
            subs = sorted(d for d in parent.iterdir() if d.is_dir())
        except OSError:
            continue
        for d in subs:
            if (d / name / "manifest.json").is_file() and d.as_posix() not in found:
                found.append(d.as_posix())
    return found


def load_study(path, overrides: Optional[Dict[str, Any]] = None, data_dir=DATA_DIR) -> StudyConfig:
    """Read and validate a study file (results in ``[study] out``, else ``data_dir``/NAME)."""
    p = _study_file(path)
    try:
        if p.stat().st_size > 4 * MAX_STUDY_BYTES:  # not read at all: parse_study refuses it by its characters
            raise ConfigError(f"{p}: has {p.stat().st_size} bytes; a study file has at most {MAX_STUDY_BYTES} "
                              "characters: is it the right file?")
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot be read: {exc}") from exc
    return parse_study(text, source=str(p), base_dir=p.parent.resolve(), overrides=overrides, data_dir=data_dir)
