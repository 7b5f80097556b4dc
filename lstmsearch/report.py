r"""Reports: the tables and plots of one or several studies on one page (Markdown or HTML).

``lstmsearch report STUDY [STUDY ...]`` reads each study's rows
(:func:`lstmsearch.query.load_results`) and writes ``report.md`` -- or a self-contained
``report.html`` with the images inlined -- and its PNGs beside it, in
``DATA/reports/<name>[+<name>...]/`` or ``--out``. The page holds:

1. **Studies**: one line per study -- cell, H, task, length n, strategy, settings evaluated,
   best nmse (and its row), median nmse, share under the threshold at n (nmse below the
   study's ``[eval] solved``, default 1e-5), whether the best row is under it at n, and the
   **verdict** of the best row (:mod:`lstmsearch.analysis.verdict`: solved at every checked
   length n, n+1, 2n+1, 10n+3, 100n+3 with its stored readout, at n only, at some lengths, or
   not solved) -- and which cells solved the task by that verdict.
   nmse is the held-out MSE over the MSE of predicting the mean (Var(x_1) for recall_first).
2. **Length**: the best setting of each study re-simulated at the checked lengths n, n+1,
   2n+1, 10n+3, 100n+3 (or at multiples of n: ``--lengths``) on fresh sequences (seed :data:`lstmsearch.reproduction.FRESH_SEED`,
   ``--sequences`` of them, by default :data:`~lstmsearch.analysis.verdict.CHECK_SEQUENCES` (1,024) as the
   verdict, so that its given-readout nmse at the checked lengths are the verdict's digits) by
   :func:`~lstmsearch.analysis.length.length_curve`, with the stored readout (``given``)
   and a refitted one (``refit``); one plot, a line per cell kind.
3. Per study, first the verdict of its top K rows (per checked length, on
   :data:`~lstmsearch.analysis.verdict.CHECK_SEQUENCES` fresh sequences), then its settings, the
   top K rows (as ``lstmsearch top``, with the verdict column), the units of the best
   setting (roles and single-unit ablation) and its pruned form -- the fewest
   largest-magnitude weights that keep the error within max(2 e, e + 1e-6) of the full
   setting's e (:func:`~lstmsearch.analysis.explain.prune`) -- as a table of named
   weights (``i[memory] <- h[flag]``); plots of the best error so far against settings
   evaluated, per strategy, the nmse histogram, and the gate traces of the best setting.

The page is built once as a list of blocks (heading, paragraph, table, image,
preformatted text); :func:`render_markdown` and :func:`render_html` write the same blocks.
Without matplotlib the tables are written and the page says, in one line, that the plots
were skipped.

:func:`run_plots` writes the two plots that need no re-simulation (best so far, nmse
histogram) into ``<study folder>/plots/``: what ``lstmsearch run --plots`` (or
``[store] plots = true`` in the study file) calls after the run.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .analysis.explain import explain, weight_name
from .analysis.length import length_curve
from .analysis.plots import plot_best_so_far, plot_length_curve, plot_nmse_hist, plot_traces, pyplot
from .analysis.verdict import ALL, CHECK_SEQUENCES, N_ONLY, NONE, SOME, row_verdicts, task_check_lengths
from .errors import LstmsearchError, check_output, require
from .query import SUMMARY_COLUMNS, load_results, open_study, top_rows
from .reproduction import FRESH_SEED, row_setting
from .store.rows import full_fidelity

FORMATS = ("md", "html")
#: Length factors of the length table when asked for multiples (``--lengths 1,2,10,100``); by default
#: the table uses the verdict's checked lengths (:func:`lstmsearch.analysis.verdict.task_check_lengths`).
DEFAULT_FACTORS = (1, 2, 10, 100)


# ------------------------------------------------------------------------- blocks
@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Table:
    header: List[str]
    rows: List[List]


@dataclass
class Image:
    path: Path
    alt: str


@dataclass
class Pre:
    text: str


def fmt(v) -> str:
    """A table cell: floats to 4 significant digits, None empty, the rest as str."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def render_markdown(blocks: Sequence) -> str:
    """GitHub-flavoured Markdown; images are linked by file name (they lie beside the page)."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Table):
            def row(cells):
                return "| " + " | ".join(fmt(c).replace("|", "\\|") for c in cells) + " |"
            out.append("\n".join([row(b.header), "|" + "|".join("---" for _ in b.header) + "|"]
                                 + [row(r) for r in b.rows]))
        elif isinstance(b, Image):
            out.append(f"![{b.alt}]({Path(b.path).name})")
        elif isinstance(b, Pre):
            out.append("```\n" + b.text.rstrip("\n") + "\n```")
    return "\n\n".join(out) + "\n"


_CSS = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:2px 8px;"
        "text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}"
        "pre{background:#f6f6f6;padding:0.5em;overflow-x:auto}img{max-width:100%}code{background:#f2f2f2}")


def _inline(text: str) -> str:
    """Escaped text with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def render_html(blocks: Sequence, title: str = "lstmsearch report") -> str:
    """One self-contained HTML page: the same blocks, the PNGs inlined as data: URIs."""
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>{html.escape(title)}</title>",
           f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            out.append("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in b.header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in r) + "</tr>" for r in b.rows]
            out.append("</table>")
        elif isinstance(b, Image):
            data = base64.b64encode(Path(b.path).read_bytes()).decode("ascii")
            out.append(f"<p><img alt=\"{html.escape(b.alt)}\" src=\"data:image/png;base64,{data}\"></p>")
        elif isinstance(b, Pre):
            out.append(f"<pre>{html.escape(b.text)}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- summaries
@dataclass
class StudySummary:
    """What the report says about one study's rows."""

    cfg: object                  # the StudyConfig (its ``out`` is the study folder)
    rows: int
    best_row: int
    best_nmse: float
    median_nmse: float
    solved_share: float          # share of rows with nmse < cfg.eval.solved
    finite_share: float
    per_strategy: Dict[str, int]
    table: object = field(repr=False, default=None)  # row, strategy, nmse, time (row order)
    source_rows: Optional[int] = None  # rows of the study these were extracted from (lstmsearch extract)
    verdicts: Dict = field(default_factory=dict)  # {row: Verdict} of the top rows (build_report fills it)

    @property
    def settings_text(self):
        return self.rows if self.source_rows is None else f"{self.rows} of {self.source_rows:,} (extracted)"

    @property
    def solved(self) -> bool:
        """The best row is under the threshold at the trained length n (see :attr:`verdict` for the
        answer at every checked length)."""
        return bool(self.best_nmse < self.cfg.eval.solved)

    @property
    def verdict(self):
        """The best row's :class:`~lstmsearch.analysis.verdict.Verdict` (None until checked)."""
        return self.verdicts.get(self.best_row)

    @property
    def strategy(self) -> str:
        s = self.cfg.strategy
        how = s.get("sampler") or s.get("method")
        return f"{s['kind']} ({how})" if how else s["kind"]


def summarize(study, data_dir="data") -> StudySummary:
    """Best, median and share solved of a study (a file, folder or name under ``data_dir``)."""
    cfg, store = open_study(study, data_dir)
    require(store.parts(), f"the study {cfg.name} in {store.root} has no rows yet; run it first "
                           "(lstmsearch run STUDY.toml)")
    # racing: best, median and share solved of the full-fidelity rows only (rows counts them all)
    t = load_results(cfg, columns=["row", "strategy", "nmse", "finite", "time"], where=full_fidelity(cfg))
    nmse = np.nan_to_num(t.column("nmse").to_numpy(zero_copy_only=False).astype(np.float64), nan=np.inf)
    i = int(np.argmin(nmse))  # rows are in row order: ties go to the smallest row, as in `top`
    strategies = t.column("strategy").to_pylist()
    return StudySummary(cfg=cfg, rows=store.count(), best_row=int(t.column("row")[i].as_py()),
                        best_nmse=float(nmse[i]), median_nmse=float(np.median(nmse)),
                        solved_share=float(np.mean(nmse < cfg.eval.solved)),
                        finite_share=float(np.mean(t.column("finite").to_numpy(zero_copy_only=False))),
                        per_strategy={s: strategies.count(s) for s in dict.fromkeys(strategies)}, table=t,
                        source_rows=(store.read_manifest().get("extracted_from") or {}).get("source_rows"))


def _evaluation_order(t):
    """nmse and strategy in the order the rows were evaluated (time, then row id)."""
    times = t.column("time").to_numpy(zero_copy_only=False).astype("datetime64[ms]").astype(np.int64)
    order = np.lexsort((t.column("row").to_numpy(), times))
    nmse = t.column("nmse").to_numpy(zero_copy_only=False).astype(np.float64)[order]
    return nmse, np.asarray(t.column("strategy").to_pylist(), dtype=object)[order]


def plots_available() -> Optional[str]:
    """None when matplotlib can be used, else the one-line reason."""
    try:
        pyplot()
    except LstmsearchError as exc:
        return str(exc)
    return None


#: Fewest rows for the best-so-far and histogram plots: an extracted study of 5 rows has no search
#: curve to show and no distribution worth a histogram (its table says it all).
MIN_PLOT_ROWS = 50


def summary_plots(s: StudySummary, folder, prefix: str = "") -> List[Path]:
    """Best nmse so far against settings evaluated (per strategy) and the nmse histogram, with the
    study's solved threshold and the predict-the-mean baseline; none for a study of fewer than
    :data:`MIN_PLOT_ROWS` rows (or extracted from another: its evaluation order is not the search's)."""
    if s.rows < MIN_PLOT_ROWS or s.source_rows is not None:
        return []
    folder = Path(folder)
    nmse, strategy = _evaluation_order(s.table)
    name = s.cfg.name
    return [plot_best_so_far(nmse, folder / f"{prefix}best_so_far.png", groups=strategy.astype(str),
                             title=f"{name}: best nmse against settings evaluated", threshold=s.cfg.eval.solved),
            plot_nmse_hist(nmse, folder / f"{prefix}nmse_hist.png", solved=s.cfg.eval.solved,
                           title=f"{name}: nmse")]


def run_plots(study, data_dir="data") -> List[Path]:
    """The plots of ``run --plots``: ``<study folder>/plots/best_so_far.png`` and ``nmse_hist.png``."""
    s = summarize(study, data_dir)
    return summary_plots(s, Path(s.cfg.out) / "plots")


# ------------------------------------------------------------------------- report
@dataclass
class Report:
    """What :func:`build_report` wrote."""

    path: Path                   # the page
    text: str                    # its content
    files: List[Path]            # the PNGs beside it
    notes: List[str]             # e.g. that the plots were skipped
    summaries: List[StudySummary]


def default_folder(names: Sequence[str], data_dir="data") -> Path:
    return Path(data_dir) / "reports" / "+".join(names)


def _best_section(s: StudySummary, factors, n_sequences, backend, top, folder, plots_ok, max_refine):
    """(blocks, length table, files) of one study: its table, top rows, units, pruned form, plots."""
    cfg = s.cfg
    name = cfg.name
    setting = row_setting(cfg, s.best_row)[2] if s.verdict is not None else None  # None: only its code rebuilds it
    blocks = [Heading(f"Study {name}")]
    top_t = top_rows(cfg, top)
    ids = top_t.column("row").to_pylist()
    vs = [s.verdicts[r] for r in ids if r in s.verdicts]
    if vs:
        v0 = s.verdict or vs[0]
        blocks += [Para(f"Verdict: best row {s.best_row} {v0.text}. Checked: {v0.describe()}."),
                   Table(["rank", "row", "verdict"] + [f"nmse n={L}" for L in v0.lengths],
                         [[i + 1, r, s.verdicts[r].status] + list(s.verdicts[r].nmse)
                          for i, r in enumerate(ids) if r in s.verdicts])]
    if cfg.description:
        blocks.append(Para(cfg.description))
    blocks.append(Table(["", ""], [
        ["cell", cfg.cell.kind], ["hidden size H", cfg.cell.hidden], ["task", cfg.task.describe()],
        ["length n", cfg.task.length], ["search space", cfg.space_obj.describe()],
        ["strategy", s.strategy],
        ["settings evaluated", s.rows if len(s.per_strategy) < 2 else
         f"{s.rows} (" + ", ".join(f"{k} {v}" for k, v in s.per_strategy.items()) + ")"],
        ["best nmse", f"{s.best_nmse:.4g} (row {s.best_row})"], ["median nmse", s.median_nmse],
        [f"share under the threshold at n (nmse < {cfg.eval.solved:g})", f"{s.solved_share:.2%}"],
        ["share finite", f"{s.finite_share:.2%}"], ["best row under the threshold at n", s.solved],
        ["verdict of the best row", s.verdict.status if s.verdict else "not checked"],
        ["scored on", f"{cfg.eval.heldout} held-out sequences, readout {cfg.eval.readout}, seed {cfg.eval.seed}"],
        ["results", str(cfg.out)]]))

    cols = [c for c in SUMMARY_COLUMNS if c in top_t.column_names]
    blocks += [Heading(f"Best settings of {name} (top {top})", 3),
               Table(cols + ["solved"], [[r[c] for c in cols] + [s.verdicts[r["row"]].short if r["row"] in s.verdicts
                                                                   else ""] for r in top_t.select(cols).to_pylist()])]

    if setting is None:
        blocks.append(Para(f"The best setting (row {s.best_row}) is rebuilt by the study's template code, which "
                           "reading does not run: no length curve, units or pruned form (pass --allow-code)."))
        return blocks, None, []
    lengths = length_curve(cfg.cell, setting, cfg.task, factors=factors or DEFAULT_FACTORS,
                           lengths=None if factors else task_check_lengths(cfg.task),
                           n_sequences=n_sequences, seed=FRESH_SEED, backend=backend)

    e = explain(cfg.cell, setting, cfg.task, n_sequences=n_sequences, seed=cfg.eval.seed, backend=backend,
                readout="given", n_traces=min(n_sequences, 64), max_refine=max_refine)
    ab = e.ablation.to_pydict()
    blocks += [Heading(f"Units of the best setting (row {s.best_row})", 3),
               Para(f"Roles from the traces over {e.x.shape[1]} sequences; 'nmse if silenced': the error with "
                    f"the unit's outgoing weights zeroed (intact: {ab['nmse'][0]:.3g}, readout as stored, "
                    f"{n_sequences} held-out sequences)."),
               Table(["unit", "name", "nmse if silenced", "role"],
                     [[j, e.names[j], ab["nmse"][j + 1], e.roles[j]] for j in range(cfg.cell.hidden)])]
    p = e.pruned
    blocks += [Heading(f"Pruned form of the best setting (row {s.best_row})", 3),
               Para(f"{len(p.kept)} of {p.n_candidates} nonzero weights kept (all others set to 0): nmse "
                    f"{p.base_nmse:.3g} -> {p.nmse:.3g} (tolerance {p.max_nmse:.3g}; on fresh sequences "
                    f"{p.check_nmse:.3g}). Index: position in the flat setting."),
               Table(["index", "weight", "value"],
                     [[int(k), weight_name(cfg.cell, int(k), p.names or None), f"{p.params[k]:.6g}"]
                      for k in sorted(p.kept)])]
    files = []
    if plots_ok:
        curves = summary_plots(s, folder, prefix=f"{name}-")
        units = [j for j, r in enumerate(e.roles) if r != "silent"][:8] or [0]
        tr = plot_traces(e.traces, folder / f"{name}-traces.png", units=units, names=e.names,
                         max_steps=cfg.task.length, title=f"{name}: gate traces of row {s.best_row}")
        files += curves + [tr]
        blocks.append(Heading(f"Plots of {name}", 3))
        if curves:
            blocks += [Image(curves[0], f"{name}: best nmse so far"), Image(curves[1], f"{name}: nmse histogram")]
        else:
            blocks.append(Para(f"No search curve or histogram: {s.rows} rows"
                               + (" extracted from a larger study" if s.source_rows is not None else "")
                               + f" (they need a searched study of at least {MIN_PLOT_ROWS})."))
        blocks.append(Image(tr, f"{name}: gate traces of the best setting"))
    return blocks, lengths, files


def answer_blocks(summaries: Sequence[StudySummary], certificates: bool = True) -> List:
    """The page's first section: per cell, the answer to the canonical question (:mod:`lstmsearch.answer`)
    -- solved or not at every checked length, the unit roles, the searched values by name, the
    construction beside it, the certificates, the worst input found, float64 and PyTorch."""
    from .answer import ANSWER_HEADER, answer, answer_lines, answer_row

    fit = [s for s in summaries if s.cfg.task.name == "recall_first" and s.cfg.cell.inputs == 1
           and s.cfg.cell.outputs == 1 and s.verdict is not None]
    if not fit:
        return []
    found = [answer(s.cfg.out, s.best_row, with_certificate=certificates,
                    verdict_of=s.verdict) for s in fit]
    blocks = [Heading("Answer: does a setting exist that outputs x_1 after reading x_1..x_n?"),
              Para("Per cell, the best row of each study, with its stored readout on fresh sequences: solved "
                   "means nmse under the study's threshold at every checked length (the trained ones, then "
                   "n+1, 2n+1, 10n+3, 100n+3 beyond the longest). The certificate is a proof over every input "
                   "sequence in the box (float32 semantics of the cpu kernel); the worst input is the largest "
                   "|y - x_1| an adversarial search found; float64 and PyTorch score the same weights at the "
                   "longest checked length."),
              Table(ANSWER_HEADER, [answer_row(a) for a in found])]
    for a in found:
        blocks += [Para(line) for line in answer_lines(a)]
    left = [s.cfg.name for s in summaries if s not in fit]
    if left:
        blocks.append(Para(f"Not in the answer table (not recall_first with 1 input and 1 output, or its best "
                           f"setting not rebuilt: see the notes): {', '.join(left)}."))
    return blocks


def build_report(studies: Sequence[Union[str, Path]], data_dir="data", out=None, fmt: str = "md", top: int = 5,
                 factors: Optional[Sequence[float]] = None, n_sequences: int = CHECK_SEQUENCES, backend: str = "cpu",
                 plots: bool = True, max_refine: Optional[int] = 256, force: bool = False,
                 answers: bool = True, certificates: bool = True) -> Report:
    """Write the report page of ``studies`` (files, folders or names under ``data_dir``).

    ``factors``: lengths of the length table as multiples of each study's n (default None: the
    checked lengths n, n+1, 2n+1, 10n+3, 100n+3). ``answers``: lead with the answer table of
    :mod:`lstmsearch.answer` (recall_first studies with 1 input and 1 output), with the
    certificates of the best rows and the constructions when ``certificates``. Every study is opened before any work, so a
    bad name fails at once. Returns a :class:`Report`; the page is ``<out>/report.md`` or
    ``report.html``. A page already there is refused unless ``force``; a folder inside a study
    folder always is.
    """
    require(fmt in FORMATS, f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    require(len(studies) >= 1, "name at least one study")
    require(isinstance(top, (int, np.integer)) and top >= 1, f"--top must be a positive integer, got {top!r}")
    require(isinstance(n_sequences, (int, np.integer)) and n_sequences >= 2,
            f"--sequences must be an integer >= 2, got {n_sequences!r}")
    require(factors is None or len(factors) >= 1 and all(np.isfinite(f) and f > 0 for f in factors),
            f"--lengths must be positive multiples of the study length, got {list(factors or [])}")
    summaries = [summarize(s, data_dir) for s in studies]
    names = [s.cfg.name for s in summaries]
    require(len(set(names)) == len(names), f"a study is named twice: {', '.join(names)}")
    for s in summaries:  # solved means solved: the top rows at n, n+1, 2n+1, 10n+3, 100n+3
        s.verdicts = row_verdicts(s.cfg, top_rows(s.cfg, top, columns=["row", "nmse"]).column("row").to_pylist(),
                                  code_optional=True)  # rows only the study's code rebuilds: no verdict
    locked = [s for s in summaries if s.best_row not in s.verdicts]  # only the study's code rebuilds it
    folder = Path(out) if out is not None else default_folder(names, data_dir)
    check_output(folder, True, "--out")  # never inside a study folder
    check_output(folder / f"report.{fmt}", force, "--out")
    folder.mkdir(parents=True, exist_ok=True)
    notes = [f"study {s.cfg.name}: its best row {s.best_row} keeps no weights and its setting is rebuilt by the "
             "study's template code, which reading does not run: the page leaves out that setting (verdict, length, "
             "units, pruned form, answer); pass --allow-code to import and run it (or keep weights: [store] "
             "keep_weights)" for s in locked]
    skipped = plots_available() if plots else "plots not asked for (--no-plots)"
    if plots and skipped:
        notes.append(f"plots skipped: {skipped}")

    blocks = [Heading("lstmsearch report: " + ", ".join(names), 1),
              Para(f"Written {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC from "
                   + ", ".join(f"`{s.cfg.out}`" for s in summaries)
                   + ". nmse: held-out MSE / MSE of predicting the mean (0 = perfect, 1 = no better than the mean).")]
    blocks += [Para(n) for n in notes]
    extracted = [s.cfg.name for s in summaries if s.source_rows is not None]
    if extracted:
        blocks.append(Para(f"{', '.join(extracted)}: the best rows extracted from a larger study (lstmsearch "
                           "extract); median and share solved are of the extracted rows only."))
    if answers:
        blocks += answer_blocks(summaries, certificates)
    blocks.append(Para("Contents: " + " · ".join(
        ["Studies", "Length: the best setting at longer sequences"]
        + [f"Study {s.cfg.name}" for s in summaries]) + " (below)."))
    blocks += [Heading("Studies"), Table(
        ["study", "cell", "H", "task", "n", "strategy", "settings", "best nmse", "best row", "median nmse",
         "share under threshold at n", "best under threshold at n", "verdict (best row)"],
        [[s.cfg.name, s.cfg.cell.kind, s.cfg.cell.hidden, s.cfg.task.name, s.cfg.task.length, s.strategy, s.settings_text,
          s.best_nmse, s.best_row, s.median_nmse, f"{s.solved_share:.2%} (< {s.cfg.eval.solved:g})", s.solved,
          s.verdict.status if s.verdict else "not checked"] for s in summaries])]

    def who(status):
        return [f"{s.cfg.cell.kind} H={s.cfg.cell.hidden} ({s.cfg.name})" for s in summaries if s.verdict and s.verdict.status == status]

    v0 = next((s.verdict for s in summaries if s.verdict), None)
    blocks.append(Para("Solved at every checked length (the best row's nmse under the study's threshold with its "
                       f"stored readout at n, n+1, 2n+1, 10n+3, 100n+3 on {v0.n_sequences if v0 else CHECK_SEQUENCES} fresh sequences): "
                       + (", ".join(who(ALL)) or "none")
                       + "".join(f". {label}: {', '.join(who(st))}" for label, st in
                                 (("Solved at some lengths only", SOME), ("Solved at n only", N_ONLY),
                                  ("Not solved", NONE)) if who(st)) + "."))

    sections, curves, files = [], [], []
    for s in summaries:
        b, curve, f = _best_section(s, factors, n_sequences, backend, top, folder, not skipped, max_refine)
        sections += b
        curves.append(curve)
        files += f

    lengths = sorted({L for c in curves if c is not None for L in c.column("length").to_pylist()})
    rows = []
    for s, c in zip(summaries, curves):
        if c is None:  # its best setting is not rebuilt (see the notes)
            continue
        d = c.to_pydict()
        for mode in dict.fromkeys(d["readout"]):
            by_len = {L: v for L, v, m in zip(d["length"], d["nmse"], d["readout"]) if m == mode}
            rows.append([s.cfg.name, f"{s.cfg.cell.kind} H={s.cfg.cell.hidden}", s.best_row, mode]
                        + [by_len.get(L) for L in lengths])
    blocks += [Heading("Length: the best setting at longer sequences"),
               Para(f"The same weights at every step, re-simulated on {n_sequences} fresh sequences "
                    "per length. given: the stored readout; refit: a readout fitted again at that length "
                    "(does the state still hold the answer?)."
                    + (" Empty: length not run for that study (the studies' n differ)."
                       if len({s.cfg.task.length for s in summaries}) > 1 else "")),
               Table(["study", "cell", "row", "readout"] + [f"nmse n={L}" for L in lengths], rows)]
    if not skipped and any(c is not None for c in curves):
        import pyarrow as pa

        label = [f"{s.cfg.cell.kind} H={s.cfg.cell.hidden} ({s.cfg.name})" for s in summaries]
        table = pa.concat_tables([c.append_column("cell", pa.array([lab] * c.num_rows))
                                  for c, lab in zip(curves, label) if c is not None])
        p = plot_length_curve(table, folder / "length.png", label="cell", threshold=summaries[0].cfg.eval.solved,
                              title="nmse of the best setting against sequence length")
        files.insert(0, p)
        blocks.append(Image(p, "nmse of the best setting against length, per cell kind"))
    blocks += sections

    text = render_markdown(blocks) if fmt == "md" else render_html(blocks, "lstmsearch report: " + ", ".join(names))
    path = folder / f"report.{fmt}"
    path.write_text(text)
    return Report(path, text, files, notes, summaries)
