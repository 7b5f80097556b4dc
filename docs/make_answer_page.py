"""Write docs/answer_page.md, its plots and its HTML form from a fresh ``lstmsearch report`` of the shipped H = 32 studies.

    python docs/make_answer_page.py            # runs the report (about 25 minutes on 2 cores)
    python docs/make_answer_page.py --page DIR/report.md   # from a report already written
    python docs/make_answer_page.py --from-page            # the report already in docs/answer_page.md

The page leads with the answer: a paragraph a teacher can read aloud, then one row per cell kind
(the weights, and the certificate or the theorem that says what they do; what search found at
H = 32), then two plots, all made from the report's answer table (and, for the ReLU RNN, which
has no shipped study, from ``certify`` run here on its construction). The details follow: the
report as the tool writes it, less its PNG plots and the *pruned form* tables of each best setting
(thousands of lines of weights for the blind studies), under a short header that says how it was
made. Nothing is edited by hand.

Written: ``docs/answer_page.md``, its plots ``docs/answer_page_nmse.png`` and
``docs/answer_page_certificates.png``, and ``docs/answer_page.html`` (the same page, one
self-contained file with the plots inlined; tests/test_answer_browser.py opens it in Chromium).
"""

from __future__ import annotations

import argparse
import base64
import html
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))

STUDIES = ["recall_first_lstm32", "recall_first_gru32", "recall_first_rnn32", "blind_lstm32", "blind_gru32",
           "blind_rnn32", "recall_first_mgu32", "recall_first_mingru32", "recall_first_minlstm32",
           "recall_first_indrnn32", "blind_mgu32", "blind_mingru32", "blind_minlstm32", "blind_indrnn32"]
COMMAND = f"lstmsearch report {' '.join(STUDIES)} --data data/examples --out /tmp/answer_page --force"
#: The plots of the lead, beside the page.
PLOTS = {"nmse": "answer_page_nmse.png", "certificates": "answer_page_certificates.png"}
#: Where the report's body starts in a page written by this script (``--from-page``).
REPORT_START = "**lstmsearch report:"

#: The cell kinds of the lead table, in its order, with what the data cannot say: the weights'
#: command, and the theorem (docs/theorems.md) that settles what no setting can do.
CELLS = {
    "lstm": ("LSTM", "`lstmsearch construct lstm` (2 units: a flag shuts the memory's input gate after step 1)",
             "in exact arithmetic, every n ≥ 20: \\|y - x_1\\| ≤ 6.3e-4 with 32 units, x_1 as 13 latched Gray-code "
             "bits (`lstmsearch certify --cell lstm --hidden 32 --construction attractor --arithmetic real "
             "--min-length 20`); error 0 is impossible ([Theorem T1](theorems.md))"),
    "gru": ("GRU", "`lstmsearch construct gru` (2 units: a flag shuts the memory's update gate after step 1)",
            "in exact arithmetic, every n ≥ 20: \\|y - x_1\\| ≤ 5.1e-4 with 32 units, x_1 as 12 latched Gray-code "
            "bits (`--construction attractor`); error 0 is impossible ([Theorem T1](theorems.md))"),
    "mgu": ("MGU", "`lstmsearch construct mgu` (2 units: a flag shuts the memory's one gate after step 1)",
            "error 0 is impossible ([Theorem T1](theorems.md))"),
    "rnn_tanh": ("tanh RNN", "`lstmsearch construct rnn_tanh` (4 units: flag, relay pair, memory; no gate, "
                 "only saturation)", "error 0 is impossible ([Theorem T1](theorems.md))"),
    "rnn_relu": ("ReLU RNN", "`lstmsearch construct rnn_relu` (3 units: flag, relay, memory)",
                 "**exact** at every n: error 0 in exact arithmetic, the same float at every n in float32, "
                 "within 2^-24 of x_1 ([Theorem T2](theorems.md))"),
    "mingru": ("minGRU", "none can exist", "**no setting** recalls x_1 at every n, at any size: the error tends "
               "to half the box ([Theorem 1](theorems.md))"),
    "minlstm": ("minLSTM", "none can exist", "**no setting** recalls x_1 at every n, at any size: the error "
                "tends to half the box ([Theorem 1](theorems.md))"),
    "indrnn": ("IndRNN", "none known", "**open**: impossible if every recurrent weight is in (-1, 1) "
               "([Proposition 4](theorems.md)); no proof covers the rest"),
}
ANSWERS = {
    "lstm": "**yes**", "gru": "**yes**", "mgu": "**yes**",
    "rnn_tanh": "**for n <= 1,000** (float32); every n: to within 0.032 (32 latches), 1e-3 not known",
    "rnn_relu": "**yes, exactly**", "mingru": "**no**", "minlstm": "**no**", "indrnn": "**not known**",
}

TEACHER = (
    "**Yes — for the LSTM, the GRU and the MGU, and we can show you the weights.** Two units are enough: "
    "one unit, a *flag*, notices that the first step is over and shuts the gate of the other, the *memory*, "
    "which then keeps x_1 however long the sequence goes on. For those weights a computer proof (a "
    "*certificate*: interval arithmetic over every input sequence in [-1, 1]) shows that the output is within "
    "{eps} of x_1 at every length, in float32, the arithmetic PyTorch uses; a search over 32-unit "
    "networks finds settings that do as well on every length we checked. In exact arithmetic a shut gate "
    "still leaks a little each step; an LSTM or a GRU of 32 units that turns x_1 into 13 or 12 latched bits "
    "keeps it to within 6.3e-4 forever (from step 20 on), proved too. No network of sigmoids and tanhs "
    "can return x_1 *exactly*: its output is a smooth, bounded function of x_1, and such a function cannot "
    "equal x_1 on a whole interval (Theorem T1). A ReLU network can, with three units (Theorem T2). A plain "
    "tanh RNN has no gate; our four-unit construction holds for 1,000 steps, 32 latches hold x_1 to within "
    "0.032 forever, and the searches reach 0.117. minGRU "
    "and minLSTM cannot do it at any size, because their gates see only the current input (Theorem 1); for "
    "IndRNN nobody knows yet: the searches fail, and no proof covers every setting."
)


def page_from_report(text: str) -> str:
    """The report's Markdown, less images and pruned-form sections, its title in bold."""
    out, skip = [], False
    for line in text.splitlines():
        heading = re.match(r"(#+) ", line)
        if heading and skip and len(heading.group(1)) <= 3:
            skip = False
        if line.startswith("### Pruned form"):
            skip = True
        if skip or re.match(r"!\[.*\]\(.*\)$", line.strip()):
            continue
        if line.startswith("# "):
            line = f"**{line[2:]}**"
        out.append(line.replace("the pruned form below", "the pruned form of the full page"))
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _cells(line: str) -> list:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def answer_table(report: str) -> list:
    """The report's answer table (``lstmsearch.answer.ANSWER_HEADER``) as one dict per study row."""
    lines = report.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| cell | best row |"))
    header = _cells(lines[start])
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append(dict(zip(header, _cells(ln))))
    return rows


def nmse_per_length(row: dict) -> list:
    """[(length, nmse)] of one answer-table row."""
    out = []
    for part in row["nmse per checked length (stored readout)"].split(", "):
        n, v = part.split(": ")
        out.append((int(n), float(v)))
    return out


def construction_claim(row: dict) -> str:
    """The construction's certificate as the answer table words it ('every n >= 1: |y - x_1| <= 0.00032')."""
    text = row["construction beside it"]
    return text.split("; ", 1)[1] if "; " in text else ""


def claim_eps(claim: str) -> float:
    return float(claim.rsplit("<= ", 1)[1])


def relu_certificate():
    """``lstmsearch certify --cell rnn_relu --hidden 3`` in float32 (the ReLU RNN has no shipped study)."""
    from lstmsearch.analysis.constructions import construct
    from lstmsearch.certify import certify

    cell, params = construct("rnn_relu", 3)
    return certify(cell, params, -1.0, 1.0, arithmetic="float32")


def _search_text(rows: list) -> str:
    from lstmsearch.answer import sci

    parts = []
    for r in rows:
        study, row = r["best row"].split(" row ")
        kind = "gate-tied" if study.startswith("recall_first") else "blind"
        values = [v for _, v in nmse_per_length(r)]
        word = "solved" if r["solved at every checked length"] == "yes" else "not solved"
        parts.append(f"{kind} (`{study}`, row {row}): {word}, nmse {sci(min(values))} to {sci(max(values))}")
    return "; ".join(parts) if parts else "not searched at H = 32"


def horizons_section() -> str:
    """How long the searched LSTM and GRU rows are proved to hold ([horizons](horizons.md))."""
    from lstmsearch.certify.shipped import horizon_rows, horizon_sentence

    lines = [f"- {horizon_sentence(r)}" for r in horizon_rows()]
    return "\n\n".join([
        "## How long the searched rows hold",
        "The best searched LSTM and GRU rows are certified for every length from 20 up to a proven N "
        "(exact arithmetic: the unrolled steps, then a linear-growth induction; float32: the unrolled "
        "steps), and the worst input found past N is given (for a real row its error in the float64 "
        "reference; where N + 1 and 2N + 1 show no failure, a drift probe runs at 4N + 3, 8N + 7, ...); "
        "[horizons](horizons.md) has the table and its command.",
        "\n".join(lines)])


def lead(rows: list, relu_cert) -> tuple:
    """(Markdown of the lead, {kind: (certificate claim, eps, kind of claim)} for the plot)."""
    from lstmsearch.answer import sci

    by_kind = {}
    for r in rows:
        by_kind.setdefault(r["cell"].split()[0], []).append(r)
    claims = {}
    for kind, rs in by_kind.items():
        c = construction_claim(rs[0])
        if c:
            claims[kind] = (c, claim_eps(c), "every" if c.startswith("every") else "up to")
    claims["rnn_relu"] = (f"every n >= {relu_cert.min_length}: |y - x_1| <= {relu_cert.eps:.2g}", relu_cert.eps,
                          "every" if relu_cert.kind == "all_n" else "up to")
    table = ["| cell | does a setting exist? | the weights | what is proved about them | what search found at H = 32 "
             "(best row, nmse over n = 20 ... 2,103, stored readout) |", "|---|---|---|---|---|"]
    for kind, (label, weights, theorem) in CELLS.items():
        cert = ""
        if kind in claims:
            c = claims[kind][0].replace("|", "\\|").replace(">=", "≥").replace("<=", "≤")
            cert = f"certificate (`lstmsearch certify --cell {kind}`): {c} (float32); "
        table.append(f"| {label} | {ANSWERS[kind]} | {weights} | {cert}{theorem} | {_search_text(by_kind.get(kind, []))} |")
    gated = [claims[k][1] for k in ("lstm", "gru", "mgu") if k in claims and claims[k][2] == "every"]
    eps = sci(max(gated)) if gated else "0.001"
    md = "\n\n".join([
        "# Does a setting of a recurrent network's weights exist that outputs x_1 after reading x_1..x_n?",
        TEACHER.format(eps=eps),
        "## The answer per cell",
        "1-D inputs in [-1, 1], a linear readout of the last hidden state. *Certificate*: a proof by "
        "`lstmsearch certify` over every input sequence in the box (float32 semantics of the cpu kernel); "
        "*theorem*: a proof on paper in [theorems](theorems.md). Which claim holds in which arithmetic "
        "(error 0; error <= 1e-3 at every n in float32; the same in exact arithmetic; n <= N only) is "
        "[what is possible, what is not](possible.md).",
        "\n".join(table),
        f"![nmse of the best searched row of each study at every checked length]({PLOTS['nmse']})",
        f"![certified error bound of each cell's construction]({PLOTS['certificates']})",
        horizons_section(),
        "The details below are the `lstmsearch report` of the fourteen shipped studies: per study, the "
        "verdict, the certificates of the best row and of the construction, the worst inputs found, "
        "float64 and PyTorch at 2,103 steps, the length table and the units.",
    ])
    return md, claims


def header() -> str:
    return f"""## How this page was made

This page is the output of `lstmsearch report` on the fourteen H = 32 studies shipped in `data/examples/`
(see [the canonical question](results.md) for how to read it), written by
`python docs/make_answer_page.py`, which runs

```bash
{COMMAND}
```

About 25 minutes on 2 shared cores (most of it the certificates; `--no-certificates` skips them).
The lead above is made from the report's answer table. The minGRU and minLSTM rows cannot be solved
at every length by any setting (exact arithmetic: [the theorem](theorems.md)); the IndRNN's are the
best its searches found. The copy below is the report less its PNG plots and the *pruned form*
tables of each best setting (several thousand lines of weights for the blind studies: `lstmsearch
explain STUDY ROW --data data/examples` prints them); "the pruned form below" reads "the pruned form
of the full page". Its nmse values come from the same 1,024 fresh sequences per length that every
verdict uses, so `lstmsearch reproduce STUDY ROW --data data/examples` prints the same digits.

"""


def plots(rows: list, claims: dict, folder: Path) -> None:
    """The lead's two plots: nmse per checked length of each study's best row, and each cell's
    certified error bound (float32) beside what the theorems say."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colours = dict(zip(CELLS, plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=100)
    top = 1e12
    for r in rows:
        kind = r["cell"].split()[0]
        study = r["best row"].split(" row ")[0]
        n, v = zip(*nmse_per_length(r))
        v = np.minimum(np.where(np.isfinite(v), v, top), top)
        ax.plot(n, v, "o-" if study.startswith("recall_first") else "s--", color=colours[kind], lw=1.6,
                label=f"{CELLS[kind][0]} ({'gate-tied' if study.startswith('recall_first') else 'blind'})")
    ax.axhline(1e-5, color="k", lw=1, ls=":")
    ax.text(22, 2e-5, "solved below 1e-5", fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="sequence length n", ylabel="nmse (stored readout, fresh sequences)",
           title="Best searched H = 32 row of each study (inf drawn at 1e12)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(folder / PLOTS["nmse"])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    kinds = list(CELLS)
    for i, kind in enumerate(kinds):
        label = CELLS[kind][0]
        if kind in claims:
            _, eps, scope = claims[kind]
            ax.barh(i, eps, color=colours[kind], hatch="" if scope == "every" else "//", edgecolor="k")
            note = "every n" if scope == "every" else "n <= 1000 only"
            if kind == "rnn_relu":
                note += " (slice width; exact by Theorem T2)"
            ax.text(eps * 1.15, i, f"{eps:.2g}, {note}", va="center", fontsize=8)
        else:
            text = "open: none known" if kind == "indrnn" else "impossible (Theorem 1)"
            ax.text(1.2e-5, i, text, va="center", fontsize=8, color="firebrick")
    ax.set_yticks(range(len(kinds)), [CELLS[k][0] for k in kinds])
    ax.set_ylim(len(kinds) - 0.5, -0.5)
    ax.set(xscale="log", xlim=(1e-5, 1e-1), xlabel="certified bound on |y - x_1| over the box [-1, 1] (float32)",
           title="What the constructions are proved to do")
    fig.tight_layout()
    fig.savefig(folder / PLOTS["certificates"])
    plt.close(fig)


_CSS = ("body{font-family:sans-serif;max-width:80em;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.4}"
        "table{border-collapse:collapse;margin:0.5em 0;font-size:0.9em}td,th{border:1px solid #bbb;"
        "padding:3px 6px;vertical-align:top}th{background:#eee}pre{background:#f6f6f6;padding:0.5em;"
        "overflow-x:auto}img{max-width:100%}code{background:#f2f2f2}")


def to_html(markdown: str, folder: Path) -> str:
    """The page as one self-contained HTML file: Markdown rendered by markdown-it (CommonMark and
    tables), the plots inlined as data: URIs, the answer table marked ``id="answer"``."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    for name in PLOTS.values():
        data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
        body = body.replace(f'src="{name}"', f'src="data:image/png;base64,{data}"')
    body = body.replace("<table>", '<table id="answer">', 1)
    title = "lstmsearch: the answer page"
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n{body}</body></html>\n")


def write_page(report_body: str, folder: Path = DOCS, relu_cert=None) -> str:
    """Write answer_page.md, its plots and answer_page.html into ``folder`` from the report's body
    (:func:`page_from_report`'s output); returns the Markdown."""
    rows = answer_table(report_body)
    lead_md, claims = lead(rows, relu_cert or relu_certificate())
    plots(rows, claims, folder)
    page = lead_md + "\n\n" + header() + report_body
    (folder / "answer_page.md").write_text(page)
    (folder / "answer_page.html").write_text(to_html(page, folder))
    return page


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", default=None, help="a report.md already written by the command above")
    ap.add_argument("--from-page", action="store_true",
                    help="re-lead the report already in docs/answer_page.md (no new report)")
    args = ap.parse_args(argv)
    if args.from_page:
        text = (DOCS / "answer_page.md").read_text()
        body = text[text.index(REPORT_START):]
    else:
        if args.page is None:
            out = Path(tempfile.mkdtemp()) / "answer_page"
            subprocess.run([sys.executable, "-m", "lstmsearch.cli", "report", *STUDIES, "--data", "data/examples",
                            "--out", str(out), "--force"], cwd=ROOT, check=True)
            args.page = out / "report.md"
        body = page_from_report(Path(args.page).read_text())
    page = write_page(body)
    print(f"wrote docs/answer_page.md ({len(page.splitlines())} lines), docs/answer_page.html and "
          f"{', '.join('docs/' + p for p in PLOTS.values())}")


if __name__ == "__main__":
    main()
