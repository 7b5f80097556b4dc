"""Search spaces: maps from a search vector z (dim d) to full settings (D).

Strategies only ever see z, with per-dimension bounds ``low``/``high``; the space turns a
population of z into settings in the flat layout of :mod:`lstmsearch.cells`. When the
readout is fitted in closed form the readout tail is left at zero (the evaluator fits it);
with ``readout = "given"`` the readout blocks are part of the space.

Kinds (the ``[space]`` table of a study file):

``full``
    Every searched weight is its own dimension, bounded by ``scale`` (``[-scale, scale]``),
    or ``bias_scale`` for the biases when given.
``masked``
    Every searched position is *fixed* (to ``value``, default 0) or *free*; free positions
    are tied into one dimension per group: ``tie = "none"`` (one dimension per weight),
    ``"unit"`` (per hidden unit of a gate), ``"gate"`` (per gate of a block) or ``"all"``.
    ``default`` ("free" or "fixed") applies to every position, then ``[[space.rule]]``
    entries, in order, re-assign the positions they select: ``block`` (weight_ih,
    weight_hh, bias_ih, bias_hh, weight_out, bias_out), ``gate`` (a name or list:
    LSTM i,f,g,o; GRU r,z,n; RNN h), ``units`` (list of hidden units), ``part``
    ("all", "diagonal", "offdiagonal"; weight_hh only). Examples: forget-gate bias fixed
    at 5; diagonal recurrence; bias_hh fixed at 0.
``subspace``
    theta = theta0 + A z with A (D_searched x dim) Gaussian, scaled by 1/sqrt(dim), drawn
    from ``seed``; theta0 drawn by ``init`` ("zeros", "torch", "uniform", "normal") with
    ``init_scale`` (intrinsic-dimension search).
``template``
    A user callable ``f(z, cell) -> (P, D) array`` named ``"package.module:function"`` or
    ``"file.py:function"`` (relative to the study file), with ``dim``, ``low``, ``high``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..cells import Cell
from ..errors import LstmsearchError, StudyCodeRefused, check_memory, require

BLOCK_ALIASES = {
    "weight_ih": "weight_ih_l0", "weight_hh": "weight_hh_l0", "bias_ih": "bias_ih_l0",
    "bias_hh": "bias_hh_l0", "weight_out": "weight_out", "bias_out": "bias_out",
}
TIES = ("none", "unit", "gate", "all")

#: Largest magnitude of a bound, a fixed value or a scale of a space (``low``, ``high``, ``value``,
#: ``scale``, ``bound``, ``init_scale``): float32 saturates every gate far below it, and bounds as
#: wide as 1e308 overflow their width (``high - low``) and every strategy's step sizes.
MAX_BOUND = 1e6


def _keys(spec: Dict, allowed, where="[space]"):
    unknown = [k for k in spec if k not in allowed]
    require(not unknown, f"{where} has no key {unknown[0]!r}; expected some of {', '.join(allowed)}" if unknown else "")


def _num(spec, key, default, where="[space]", positive=False):
    v = spec.get(key, default)
    require(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v),
            f"{where} {key} must be a finite number, got {v!r}")
    require(not positive or v > 0, f"{where} {key} must be > 0, got {v!r}")
    require(abs(v) <= MAX_BOUND, f"{where} {key} must be from {-MAX_BOUND:g} to {MAX_BOUND:g}, got {v!r} "
                                 "(wider bounds overflow the search's step sizes)")
    return float(v)


def _int(spec, key, default, where="[space]", minimum=1, maximum=None):
    v = spec.get(key, default)
    require(isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
            f"{where} {key} must be an integer >= {minimum}, got {v!r}")
    require(maximum is None or v <= maximum, f"{where} {key} must be at most {maximum}, got {v!r}")
    return int(v)


class Space:
    """Base class. ``dim``, ``low``/``high`` (d,), ``names`` (d,), ``to_params(z)`` (P, D)."""

    kind = "space"

    def __init__(self, cell: Cell, searched_readout: bool):
        self.cell = cell
        self.searched_readout = searched_readout
        D = cell.n_params
        #: positions of the flat vector that the space may change (recurrent part, + readout)
        self.searched = np.zeros(D, bool)
        self.searched[: D if searched_readout else cell.n_recurrent] = True

    dim: int
    low: np.ndarray
    high: np.ndarray
    names: List[str]

    def to_params(self, z) -> np.ndarray:
        raise NotImplementedError

    def free_mask(self) -> np.ndarray:
        """(D,) bool: positions that depend on z (where region jitter is applied)."""
        return self.searched.copy()

    def _check_z(self, z, dtype=np.float64) -> np.ndarray:
        z = np.asarray(z, dtype=dtype)
        if z.ndim == 1:
            z = z[None]
        require(z.ndim == 2 and z.shape[1] == self.dim,
                f"z has shape {z.shape}; the {self.kind} space has dimension {self.dim}")
        return z

    def describe(self) -> str:
        return f"{self.kind} space, dim {self.dim}"


class _Positions:
    """Where each of a cell's D positions lies: block index, gate, unit and column (arrays)."""

    def __init__(self, cell: Cell):
        self.blocks = cell.blocks
        self.G, self.H = cell.gates, cell.hidden
        D = cell.n_params
        self.block = np.empty(D, np.int16)
        self.gate = np.full(D, -1, np.int32)
        self.unit = np.full(D, -1, np.int32)
        self.col = np.full(D, -1, np.int32)
        for i, b in enumerate(self.blocks):
            s = b.slice
            self.block[s] = i
            if b.name in ("weight_out", "bias_out"):
                continue
            off = np.arange(b.size, dtype=np.int64)
            row = off // b.shape[1] if len(b.shape) == 2 else off
            self.gate[s] = row // cell.hidden
            self.unit[s] = row % cell.hidden
            if len(b.shape) == 2:
                self.col[s] = off % b.shape[1]

    def index(self, name: str) -> int:
        return [b.name for b in self.blocks].index(name)


class MaskedSpace(Space):
    """Fixed/free/tied positions (``full`` is the all-free, untied case). See module doc.

    Built with array operations over the D positions (no Python loop over parameters), so a
    space over H = 4096 (67 M weights) takes seconds; :attr:`names` is made on first use.
    """

    kind = "masked"

    def __init__(self, cell: Cell, searched_readout: bool, spec: Dict, kind: str = "masked"):
        super().__init__(cell, searched_readout)
        self.kind = kind
        D = cell.n_params
        self.base = np.zeros(D, np.float32)
        self._where = _Positions(cell)
        if kind == "full":
            _keys(spec, ("kind", "scale", "bias_scale"))
            scale = _num(spec, "scale", 1.0, positive=True)
            bias_scale = _num(spec, "bias_scale", scale, positive=True)
            rules = [{"mode": "free", "tie": "none", "low": -scale, "high": scale},
                     {"block": ["bias_ih", "bias_hh", "bias_out"], "mode": "free", "tie": "none",
                      "low": -bias_scale, "high": bias_scale}]
        else:
            _keys(spec, ("kind", "default", "value", "tie", "low", "high", "rule"))
            default = spec.get("default", "fixed")
            require(default in ("free", "fixed"), f"[space] default must be \"free\" or \"fixed\", got {default!r}")
            first = {"mode": default, "value": spec.get("value", 0.0), "tie": spec.get("tie", "none"),
                     "low": spec.get("low", -1.0), "high": spec.get("high", 1.0)}
            extra = spec.get("rule", [])
            require(isinstance(extra, list) and all(isinstance(r, dict) for r in extra),
                    "[space] rule must be an array of tables ([[space.rule]])")
            rules = [first] + extra
        # per position: the rule that made it free (-1: fixed), its tie, bounds
        rule_of = np.full(D, -1, np.int32)
        self._ties, bounds = [], []
        for r_i, rule in enumerate(rules):
            where = "[space]" if r_i == 0 else f"[[space.rule]] #{r_i}"
            mask = self._select(rule, where)
            mode = rule.get("mode", "free")
            require(mode in ("free", "fixed"), f"{where} mode must be \"free\" or \"fixed\", got {mode!r}")
            if mode == "fixed":
                self.base[mask] = _num(rule, "value", 0.0, where)
                rule_of[mask] = -1
                self._ties.append(None)
                bounds.append((0.0, 0.0))
                continue
            tie = rule.get("tie", "none")
            require(tie in TIES, f"{where} tie must be one of {', '.join(TIES)}, got {tie!r}")
            lo, hi = _num(rule, "low", -1.0, where), _num(rule, "high", 1.0, where)
            require(lo < hi, f"{where} needs low < high, got low={lo}, high={hi}")
            rule_of[mask] = r_i
            self._ties.append(tie)
            bounds.append((lo, hi))
        # group key of each free position: (rule, what the rule's tie keeps apart)
        self.positions = np.flatnonzero(rule_of >= 0).astype(np.int64)
        w, r = self._where, rule_of[self.positions].astype(np.int64)
        tie_code = np.array([TIES.index(t) if t else -1 for t in self._ties], np.int64)[r]
        apart = np.select(
            [tie_code == TIES.index("none"), tie_code == TIES.index("unit"), tie_code == TIES.index("gate")],
            [self.positions,
             (w.block[self.positions] * (w.G + 1) + w.gate[self.positions] + 1) * (w.H + 1) + w.unit[self.positions] + 1,
             w.block[self.positions] * (w.G + 1) + w.gate[self.positions] + 1],
            default=0)
        # number the groups in order of first appearance
        _, first, inverse = np.unique(np.stack([r, apart], axis=1), axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        self.groups = rank[inverse.reshape(-1)].astype(np.int64)
        # every free position its own group, in order, on one run of positions (the full space): to_params
        # copies z into a slice instead of gathering and scattering
        n = self.positions.size
        self._slice = slice(int(self.positions[0]), int(self.positions[0]) + n) if n and np.array_equal(
            self.positions, np.arange(self.positions[0], self.positions[0] + n)) and np.array_equal(
            self.groups, np.arange(n)) else None
        self._first = self.positions[np.sort(first)]  # first position of each group, in group order
        self._group_rule = rule_of[self._first]
        self.dim = int(order.size)
        self.low = np.array([bounds[r_i][0] for r_i in range(len(rules))], float)[self._group_rule]
        self.high = np.array([bounds[r_i][1] for r_i in range(len(rules))], float)[self._group_rule]
        require(self.dim >= 1, "the space has no free parameter; make at least one block free")

    @functools.cached_property
    def names(self) -> List[str]:
        """One name per searched value: ``block.gate`` (tied by gate), ``block.gate[unit]``
        (by unit), ``block.gate[unit,col]`` (untied), ``all#rule`` (one value for the rule);
        a name made twice gets ``#1``, ``#2``, ..."""
        out, seen = [], {}
        for p, r_i in zip(self._first.tolist(), self._group_rule.tolist()):
            block, gate, unit, local = self._label(p)
            tie = self._ties[r_i]
            if tie == "all":
                name = f"all#{r_i}"
            elif tie == "none":
                name = f"{block}.{gate}[{local}]" if gate else f"{block}[{local}]"
            elif tie == "gate":
                name = f"{block}.{gate}" if gate else block
            else:
                name = f"{block}.{gate}[{unit}]"
            if name in seen:
                seen[name] += 1
                name = f"{name}#{seen[name]}"
            else:
                seen[name] = 0
            out.append(name)
        return out

    def _label(self, p):
        """(block short name, gate or '', unit or -1, local index string) of position p."""
        w = self._where
        b = w.blocks[w.block[p]]
        short = b.name.replace("_l0", "")
        if b.name in ("weight_out", "bias_out"):
            return short, "", -1, str(p - b.start)
        gate, unit = self.cell.gate_names[w.gate[p]], int(w.unit[p])
        return short, gate, unit, (f"{unit},{w.col[p]}" if len(b.shape) == 2 else str(unit))

    def _select(self, rule: Dict, where: str) -> np.ndarray:
        """Boolean mask (D,) of the positions a rule selects."""
        _keys(rule, ("block", "gate", "units", "part", "mode", "value", "tie", "low", "high"), where)
        cell, w = self.cell, self._where
        blocks = rule.get("block")
        if blocks is None:
            blocks = [b.name for b in w.blocks]
        else:
            blocks = [blocks] if isinstance(blocks, str) else blocks
            require(isinstance(blocks, list) and all(isinstance(b, str) for b in blocks),
                    f"{where} block must be a name or a list of names")
            for b in blocks:
                require(b in BLOCK_ALIASES or b in BLOCK_ALIASES.values(),
                        f"{where} block {b!r} is unknown; expected one of {', '.join(BLOCK_ALIASES)}")
            blocks = [BLOCK_ALIASES.get(b, b) for b in blocks]
        gates = rule.get("gate")
        names = cell.gate_names
        if gates is not None:
            gates = [gates] if isinstance(gates, str) else gates
            for g in gates:
                require(g in names, f"{where} gate {g!r}: a {cell.kind} cell has gates {', '.join(names)}")
        units = rule.get("units")
        if units is not None:
            require(isinstance(units, list) and all(isinstance(u, int) and 0 <= u < cell.hidden for u in units),
                    f"{where} units must be a list of hidden units from 0 to {cell.hidden - 1}")
        part = rule.get("part", "all")
        require(part in ("all", "diagonal", "offdiagonal"),
                f"{where} part must be all, diagonal or offdiagonal, got {part!r}")
        chosen = [i for i, b in enumerate(w.blocks) if b.name in blocks
                  and (self.searched_readout or b.name not in ("weight_out", "bias_out"))]
        mask = np.isin(w.block, chosen)
        recurrent = w.gate >= 0
        if gates is not None:
            mask &= ~recurrent | np.isin(w.gate, [names.index(g) for g in gates])
        if units is not None:
            mask &= ~recurrent | np.isin(w.unit, units)
        if part != "all":
            require(any(b.name == "weight_hh_l0" for b in w.blocks),
                    f"{where} part = {part!r} selects recurrent weights; a {cell.kind} cell has none "
                    "(its gates see only x_t): drop 'part'")
            hh = w.block == w.index("weight_hh_l0")
            # a diagonal recurrence (IndRNN: weight_hh is a vector, col -1) stores only its diagonal
            diagonal = (w.col == w.unit) | (w.col < 0)
            mask &= ~hh | (diagonal == (part == "diagonal"))
            require(part == "diagonal" or cell.spec.recurrence != "diagonal",
                    f"{where} part = 'offdiagonal' selects nothing: a {cell.kind} cell's weight_hh is "
                    "its diagonal (one weight a unit); use part = 'diagonal' or 'all'")
        if rule.get("block") is not None or gates is not None or units is not None:
            require(mask.any(), f"{where} selects no searched parameter"
                    + ("" if self.searched_readout else " (readout blocks are fitted, not searched)"))
        return mask

    def free_mask(self):
        m = np.zeros(self.cell.n_params, bool)
        m[self.positions] = True
        return m

    def to_params(self, z) -> np.ndarray:
        # float32 z is copied as it is (float64 z is rounded to float32 by the assignment: the same floats)
        z = self._check_z(z, np.float32 if getattr(z, "dtype", None) == np.float32 else np.float64)
        out = np.tile(self.base, (z.shape[0], 1))
        if self._slice is not None:
            out[:, self._slice] = z
        else:
            out[:, self.positions] = z[:, self.groups]
        return out

    def describe(self):
        fixed = int((~self.free_mask() & self.searched).sum())
        return (f"{self.kind} space: dim {self.dim} ({len(self.positions)} free weights, {fixed} fixed"
                f"{', readout fitted' if not self.searched_readout else ''})")


class Subspace(Space):
    """theta = theta0 + A z with a seeded Gaussian A (D_searched x dim) / sqrt(dim); A z is summed over
    z's entries in order (:func:`lstmsearch.kernels.fixed_order.matmul`), not by BLAS, so a setting
    rebuilt from z has the same bits on every machine."""

    kind = "subspace"

    def __init__(self, cell: Cell, searched_readout: bool, spec: Dict):
        super().__init__(cell, searched_readout)
        _keys(spec, ("kind", "dim", "seed", "init", "init_scale", "bound"))
        self.dim = _int(spec, "dim", None if "dim" not in spec else spec["dim"], maximum=int(self.searched.sum()))
        seed = _int(spec, "seed", 0, minimum=0, maximum=2 ** 63 - 1)
        init = spec.get("init", "zeros")
        require(init in ("zeros", "torch", "uniform", "normal"),
                f"[space] init must be zeros, torch, uniform or normal, got {init!r}")
        bound = _num(spec, "bound", 1.0, positive=True)
        idx = np.flatnonzero(self.searched)
        self.theta0 = np.zeros(cell.n_params, np.float32)
        if init != "zeros":
            scale = _num(spec, "init_scale", 1.0, positive=True) if init != "torch" else None
            self.theta0[idx] = cell.init(1, seed=seed, method=init, scale=scale)[0, idx]
        rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, 7])))
        self.idx = idx
        self.A = rng.standard_normal((idx.size, self.dim)) / np.sqrt(self.dim)
        self.AT = np.ascontiguousarray(self.A.T)
        self.low = np.full(self.dim, -bound)
        self.high = np.full(self.dim, bound)
        self.names = [f"z{i}" for i in range(self.dim)]

    def to_params(self, z):
        z = self._check_z(z)
        out = np.tile(self.theta0, (z.shape[0], 1))
        from ..kernels.fixed_order import matmul

        zA = np.empty((z.shape[0], self.idx.size))
        if z.shape[0]:
            matmul(np.ascontiguousarray(z, np.float64), self.AT, zA)  # z A^T, the same bits on every machine
        out[:, self.idx] += zA.astype(np.float32)
        return out


class TemplateSpace(Space):
    """A user callable ``f(z (P, dim) float64, cell) -> (P, D)``.

    The user's module is imported lazily, the first time settings are built from z
    (:meth:`to_params`): reading a study (``top``, ``query``, ``show``, a row with stored
    weights) never runs its code. A ``file.py`` that does not exist is refused at once.
    """

    kind = "template"
    #: May :attr:`fn` import the user's module? A run may; a study opened for reading
    #: (:func:`lstmsearch.query.open_study`) may not unless the user asks (``--allow-code``).
    allow_code = True

    def __init__(self, cell: Cell, searched_readout: bool, spec: Dict, base_dir: Path):
        super().__init__(cell, searched_readout)
        _keys(spec, ("kind", "function", "dim", "low", "high"))
        fn = spec.get("function")
        self.base_dir = Path(base_dir)
        _check_function_name(fn, self.base_dir)
        self.function_name = fn
        self._fn = None
        mod_name = fn.rpartition(":")[0]
        if mod_name.endswith(".py"):
            path = (self.base_dir / mod_name).resolve()
            require(path.is_file(), f"[space] function file {str(path)!r} not found")
            require(_defines(path, fn.rpartition(":")[2]), f"[space] {mod_name!r} has no callable "
                                                           f"{fn.rpartition(':')[2]!r}")
        self.dim = _int(spec, "dim", spec.get("dim"), maximum=cell.n_params)
        self.low = _bounds(spec.get("low", -1.0), self.dim, "low")
        self.high = _bounds(spec.get("high", 1.0), self.dim, "high")
        require(bool(np.all(self.low < self.high)), "[space] needs low < high in every dimension")
        self.names = [f"z{i}" for i in range(self.dim)]

    @property
    def fn(self):
        """The user's callable, imported (its module's code run) on first use; refused in one line
        (:class:`~lstmsearch.errors.StudyCodeRefused`) where :attr:`allow_code` is off."""
        if self._fn is None and not self.allow_code:
            mod_name = self.function_name.rpartition(":")[0]
            where = str((self.base_dir / mod_name).resolve()) if mod_name.endswith(".py") else f"module {mod_name}"
            raise StudyCodeRefused(f"these rows keep no weights: their settings are rebuilt by the template "
                                   f"{self.function_name} ({where}), and reading a study runs none of its code; "
                                   "pass --allow-code to import and run it")
        if self._fn is None:
            self._fn = _load_callable(self.function_name, self.base_dir)
        return self._fn

    def describe_code(self) -> str:
        """The one line ``run`` prints: the code this space runs."""
        mod_name, _, attr = self.function_name.rpartition(":")
        where = str((self.base_dir / mod_name).resolve()) if mod_name.endswith(".py") else f"module {mod_name}"
        return f"space: template {attr} from {where}; this run imports and runs that code"

    def to_params(self, z):
        z = self._check_z(z)
        try:
            out = np.asarray(self.fn(z, self.cell))
        except LstmsearchError:
            raise
        except Exception as exc:  # the user's code: its failure is one line naming it, not a traceback
            raise LstmsearchError(f"template {self.function_name} failed on z of shape {z.shape}: "
                                  f"{type(exc).__name__}: {' '.join(str(exc).split())}; fix the function "
                                  "(it takes z (P, dim) and the cell, and returns (P, D) settings)") from exc
        require(out.shape == (z.shape[0], self.cell.n_params),
                f"template {self.function_name} returned shape {out.shape}; expected "
                f"({z.shape[0]}, {self.cell.n_params})")
        return np.ascontiguousarray(out, np.float32)


def _bounds(v, dim, what):
    ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) or (
        isinstance(v, list) and len(v) == dim and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                      for x in v))
    require(ok, f"[space] {what} must be a number or a list of {dim} finite numbers")
    a = np.asarray(v, float)
    if a.ndim == 0:
        a = np.full(dim, float(a))
    require(bool(np.all(np.isfinite(a)) and np.all(np.abs(a) <= MAX_BOUND)),
            f"[space] {what} must be a number or a list of {dim} finite numbers from {-MAX_BOUND:g} to {MAX_BOUND:g}")
    return a


def _check_function_name(fn, base_dir: Path) -> None:
    """A template's ``function``, checked without importing anything: ``"file.py:name"`` (a file in
    the study file's folder or below it) or ``"package.module:name"`` (a module of your own, not one of
    Python's standard library: ``"os:system"`` is not a template); ``name`` an identifier."""
    form = "[space] function must be \"package.module:function\" or \"file.py:function\""
    require(isinstance(fn, str) and ":" in fn, form)
    mod_name, _, attr = fn.rpartition(":")
    require(attr.isidentifier(), f"{form}; {attr!r} is not a Python name")
    if mod_name.endswith(".py"):
        p = Path(mod_name)
        inside = not p.is_absolute() and ".." not in p.parts
        require(inside, f"[space] function file {mod_name!r} is outside the study file's folder; a template "
                        "file is named relative to the study file, below its folder: copy it there")
        return
    require(all(part.isidentifier() for part in mod_name.split(".")),
            f"{form}; {mod_name!r} is neither a .py file nor a module name")
    top = mod_name.split(".")[0]
    require(top not in sys.stdlib_module_names and top not in sys.builtin_module_names and top != "lstmsearch",
            f"[space] function {fn!r} names {top!r}, not a module of yours; a template is your own function "
            "f(z, cell) -> (P, D) settings, in a .py file beside the study file or a package you installed")


def space_footprint(cell: Cell, spec: Dict) -> float:
    """Bytes that building the space of ``spec`` over ``cell`` takes at most (an estimate from
    measured peaks: position tables and masks per weight; a subspace's matrix A and its transpose),
    so that :func:`build_space` refuses a space this process cannot hold before allocating it."""
    D, kind = float(cell.n_params), spec.get("kind")
    if kind == "full":
        return 160.0 * D
    if kind == "masked":
        rules = spec.get("rule")
        return (48.0 + 4.0 * (len(rules) if isinstance(rules, list) else 0)) * D
    dim = spec.get("dim")
    dim = min(float(dim), D) if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else 1.0  # more: refused
    if kind == "subspace":
        return D * (16.0 * dim + 16.0)
    return 8.0 * D + 32.0 * dim


def _defines(path: Path, name: str) -> bool:
    """Does the Python file ``path`` define ``name`` at top level? Read, never run (``ast``);
    a file that binds names in ways not seen here (``import *``, syntax errors) gets the benefit
    of the doubt: the import at first use says what is wrong."""
    import ast

    try:
        tree = ast.parse(path.read_text(), str(path))
    except (SyntaxError, ValueError, OSError, UnicodeDecodeError):
        return True
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(a.name == "*" or (a.asname or a.name.split(".")[0]) == name for a in node.names):
                return True
        elif not isinstance(node, (ast.Expr, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if any(isinstance(t, ast.Name) and t.id == name for t in ast.walk(node)):
                return True
    return False


def _load_callable(ref: str, base_dir: Path):
    mod_name, _, attr = ref.rpartition(":")
    try:
        if mod_name.endswith(".py"):
            path = (Path(base_dir) / mod_name).resolve()
            require(path.is_file(), f"[space] function file {str(path)!r} not found")
            spec = importlib.util.spec_from_file_location(f"lstmsearch_template_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise LstmsearchError(f"[space] cannot import {mod_name!r}: {exc}") from exc
    fn = getattr(module, attr, None)
    require(callable(fn), f"[space] {mod_name!r} has no callable {attr!r}")
    return fn


def build_space(cell: Cell, spec: Dict, searched_readout: bool, base_dir: Path = Path(".")) -> Space:
    """The space described by a ``[space]`` table (refused before any allocation when this process
    cannot hold it: :func:`space_footprint`)."""
    kind = spec.get("kind")
    if kind in ("full", "masked", "subspace", "template"):
        check_memory(f"a {kind} space over the {cell.n_params} weights of a {cell.kind} cell with {cell.hidden} units",
                     space_footprint(cell, spec), "use a smaller [cell] hidden or [space] dim")
    if kind in ("full", "masked"):
        return MaskedSpace(cell, searched_readout, spec, kind=kind)
    if kind == "subspace":
        require("dim" in spec, "[space] a subspace needs dim (the number of search dimensions)")
        return Subspace(cell, searched_readout, spec)
    if kind == "template":
        require("dim" in spec, "[space] a template needs dim")
        return TemplateSpace(cell, searched_readout, spec, base_dir)
    raise LstmsearchError(f"[space] kind must be full, masked, subspace or template, got {kind!r}")


def jitter(params: np.ndarray, mask: np.ndarray, scale, seed: int, stream: int, batch: int) -> np.ndarray:
    """params + scale * N(0, 1) on the masked positions; noise keyed by (seed, stream, batch).

    ``scale`` is a number or a (P,) array. Row j's noise is row j of one (P, n_free) draw over
    the masked positions, so it is regenerable from (seed, stream, batch, j) and the
    population size.
    """
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, stream, batch])))
    free = np.flatnonzero(mask)  # noise is drawn for the masked positions only: (P, n_free)
    noise = rng.standard_normal((params.shape[0], free.size)).astype(np.float32)
    scale = np.asarray(scale, np.float32).reshape(-1, 1) if np.ndim(scale) else np.float32(scale)
    out = np.array(params, dtype=np.float32, copy=True)
    out[:, free] += (scale * noise) * mask[free][None, :]
    return out
