"""Plots (PNG, matplotlib with the Agg backend; matplotlib is the optional ``plots`` extra).

Every function takes plain arrays or a pyarrow table with named columns, writes one PNG
and returns its path, so that study code can feed it whatever it stored:

- :func:`plot_length_curve` -- error against sequence length, one line per label
  (e.g. per cell kind) and readout;
- :func:`plot_best_so_far` -- best-so-far error against settings evaluated, per group
  (e.g. per strategy);
- :func:`plot_traces` -- gate traces of one setting (from :func:`~lstmsearch.analysis.explain.traces`);
- :func:`plot_nmse_hist` -- the distribution of nmse over a sweep (log-spaced bins, log x).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from ..errors import LstmsearchError, import_optional, require


def pyplot():
    """matplotlib.pyplot on the Agg backend; one clear line when matplotlib is missing."""
    matplotlib = import_optional("matplotlib", "plots", "plots")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _columns(data, names):
    """Columns ``names`` from a pyarrow table, a dict of arrays or a pandas-like frame."""
    out = {}
    for n in names:
        try:
            col = data[n]
        except (KeyError, IndexError, TypeError):
            col = None
        if col is None:
            raise LstmsearchError(f"the plot needs a column {n!r}")
        if hasattr(col, "to_pylist"):
            col = col.to_pylist()
        out[n] = np.asarray(col)
    return out


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _positive(v):
    """Values for a log axis: non-finite stays out, 0 is drawn at the smallest positive / 10."""
    v = np.asarray(v, np.float64)
    pos = v[np.isfinite(v) & (v > 0)]
    floor = pos.min() / 10 if pos.size else 1e-300
    return np.where(np.isfinite(v), np.maximum(v, floor), np.nan)


def _reference_lines(ax, threshold: Optional[float], baseline: Optional[float]):
    """Horizontal lines, each in the legend: the solved threshold and the predict-the-mean baseline."""
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=1, label=f"solved: nmse < {threshold:g}")
    if baseline is not None:
        ax.axhline(baseline, color="0.5", ls=":", lw=1, label=f"predict the mean (nmse = {baseline:g})")


def plot_length_curve(table, path, label: str = "setting", labels: Optional[Dict] = None,
                      metric: str = "nmse", title: str = "error against sequence length",
                      threshold: Optional[float] = None, baseline: Optional[float] = 1.0) -> Path:
    """Error against length, one line per (``label`` column value, readout); log-log axes; the
    ``threshold`` (solved below it) and the predict-the-mean ``baseline`` as dashed lines.

    ``table`` has columns ``length``, ``metric``, ``label`` (e.g. "setting" or "cell") and
    optionally ``readout`` (as :func:`~lstmsearch.analysis.length.length_curve` returns, with a
    ``cell`` column added when several kinds are compared). ``labels`` maps label values to text.
    """
    plt = pyplot()
    cols = _columns(table, ["length", metric, label])
    readouts = _columns(table, ["readout"])["readout"] if _has(table, "readout") else np.full(len(cols["length"]), "")
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in dict.fromkeys(zip(cols[label].tolist(), readouts.tolist())):
        m = (cols[label] == key[0]) & (readouts == key[1])
        L = cols["length"][m]
        o = np.argsort(L)
        name = str(labels.get(key[0], key[0]) if labels else key[0]) + (f" ({key[1]})" if key[1] else "")
        ax.plot(L[o], _positive(cols[metric][m][o]), marker="o", label=name)
    _reference_lines(ax, threshold, baseline if metric == "nmse" else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence length n")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _has(table, name):
    try:
        return name in (table.column_names if hasattr(table, "column_names") else table)
    except TypeError:
        return False


def best_so_far(values) -> np.ndarray:
    """Running minimum, with NaN treated as +inf."""
    v = np.asarray(values, np.float64)
    return np.minimum.accumulate(np.where(np.isnan(v), np.inf, v))


def plot_best_so_far(values, path, groups=None, order=None, metric: str = "nmse",
                     title: str = "best error against settings evaluated", threshold: Optional[float] = None,
                     baseline: Optional[float] = 1.0) -> Path:
    """Best-so-far ``metric`` against the number of settings evaluated (log-log), with the
    ``threshold`` and the predict-the-mean ``baseline`` as dashed lines in the legend.

    ``values``: the errors in evaluation order, or a table with a ``metric`` column (and
    an optional ``order`` column to sort by, e.g. "trial"). ``groups``: one label per
    value (e.g. the strategy), or the name of a column of the table; one line per group.
    """
    plt = pyplot()
    if isinstance(values, (np.ndarray, list, tuple)):
        v = np.asarray(values, np.float64)
        g = np.asarray(groups) if groups is not None else np.full(v.shape, "")
        o = None
    else:
        v = _columns(values, [metric])[metric].astype(np.float64)
        g = _columns(values, [groups])[groups] if isinstance(groups, str) else (
            np.asarray(groups) if groups is not None else np.full(v.shape, ""))
        o = _columns(values, [order])[order] if order else None
    require(g.shape == v.shape, f"groups has {g.shape[0]} labels for {v.shape[0]} values")
    if o is not None:
        idx = np.argsort(o, kind="stable")
        v, g = v[idx], g[idx]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in dict.fromkeys(g.tolist()):
        m = g == key
        b = best_so_far(v[m])
        ax.step(np.arange(1, b.size + 1), _positive(b), where="post", label=str(key) or f"best {metric} so far")
    _reference_lines(ax, threshold, baseline if metric == "nmse" else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("settings evaluated")
    ax.set_ylabel(f"best {metric} so far")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


#: Range of each gate's activation: sigmoid gates in [0, 1], tanh candidates in [-1, 1].
_GATE_RANGE = {"i": (0.0, 1.0), "f": (0.0, 1.0), "o": (0.0, 1.0), "r": (0.0, 1.0), "z": (0.0, 1.0),
               "g": (-1.0, 1.0), "n": (-1.0, 1.0)}


def plot_traces(tr: Dict[str, np.ndarray], path, sequences: Sequence[int] = (0, 1, 2),
                units: Optional[Sequence[int]] = None, names: Optional[Sequence[str]] = None,
                max_steps: int = 200, title: str = "gate traces") -> Path:
    """Gate traces: one panel per gate (i, f, g, o, c, h / r, z, n, h / h), one line per unit.

    ``tr`` maps gate names to (T, B, H) arrays; ``units`` defaults to the non-silent ones;
    solid, dashed, dotted lines are the first three ``sequences``. At most ``max_steps``
    steps are drawn (the first ones).
    """
    plt = pyplot()
    require("h" in tr, "traces need an 'h' entry")
    h = tr["h"]
    T, B, H = h.shape
    if units is None:
        units = [j for j in range(H) if np.nanmax(np.abs(h[:, :, j])) > 1e-6] or [0]
    sequences = [s for s in sequences if s < B][:3]
    gates = [k for k in ("i", "f", "g", "o", "r", "z", "n", "c", "h") if k in tr]
    fig, axes = plt.subplots(len(gates), 1, figsize=(7, 1.6 * len(gates) + 0.6), sharex=True, squeeze=False)
    t = np.arange(1, min(T, max_steps) + 1)
    styles = ["-", "--", ":"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, k in zip(axes[:, 0], gates):
        for ui, j in enumerate(units):
            for si, s in enumerate(sequences):
                ax.plot(t, tr[k][: t.size, s, j], styles[si], color=colors[ui % len(colors)], lw=1,
                        label=(names[j] if names else f"unit {j}") if si == 0 else None)
        ax.set_ylabel(k)
        ax.grid(True, alpha=0.3)
        if k in _GATE_RANGE:  # the whole range of the gate, so 1 - 1e-12 reads as 1, not as a slope
            lo, hi = _GATE_RANGE[k]
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        else:
            ax.ticklabel_format(axis="y", useOffset=False)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(fontsize=7, ncol=min(4, len(units)), loc="best")
    axes[-1, 0].set_xlabel("step t")
    from matplotlib.ticker import MaxNLocator

    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)


def plot_nmse_hist(nmse, path, bins: int = 60, title: str = "nmse over the sweep",
                   solved: Optional[float] = None) -> Path:
    """Histogram of nmse with log-spaced bins on a log x axis; non-finite values are counted in the title."""
    plt = pyplot()
    v = np.asarray(nmse.to_numpy() if hasattr(nmse, "to_numpy") else nmse, np.float64)
    ok = np.isfinite(v) & (v > 0)
    n_zero = int(np.sum(v == 0))
    n_bad = int(np.sum(~np.isfinite(v)))
    fig, ax = plt.subplots(figsize=(6, 4))
    if ok.any():
        lo, hi = np.log10(v[ok].min()), np.log10(v[ok].max())
        edges = np.logspace(lo, hi if hi > lo else lo + 1, bins + 1)
        ax.hist(v[ok], bins=edges, label="settings")
    ax.set_xscale("log")
    ax.set_yscale("log")  # the tail (the few good settings) matters
    if solved is not None:
        ax.axvline(solved, color="k", ls="--", lw=1, label=f"solved: nmse < {solved:g}")
    ax.axvline(1.0, color="0.5", ls=":", lw=1, label="predict the mean (nmse = 1)")
    ax.legend(fontsize=8)
    ax.set_xlabel("nmse")
    ax.set_ylabel("settings")
    extra = ", ".join(s for s in (f"{n_bad} non-finite" if n_bad else "", f"{n_zero} exactly 0" if n_zero else "") if s)
    ax.set_title(f"{title} ({v.size} settings{', ' + extra if extra else ''})")
    return _save(fig, path)
