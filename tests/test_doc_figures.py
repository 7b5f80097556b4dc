"""The figures the README and data/README.md quote are what the tool prints today: each is
recomputed here from the shipped rows (data/examples) or the constructions and compared with the
text, digit for digit as the docs round it. A figure that drifts fails here, with the text it should
read."""

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from lstmsearch.analysis.constructions import construct
from lstmsearch.answer import README_CELLS, readme_row, sci, span
from lstmsearch.analysis.length import length_curve
from lstmsearch.analysis.verdict import CHECK_SEQUENCES
from lstmsearch.certify import certify
from lstmsearch.query import best_row, open_study
from lstmsearch.reproduction import reproduce
from lstmsearch.tasks import make_task

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"
README = (ROOT / "README.md").read_text()
DATA_README = (ROOT / "data" / "README.md").read_text()

#: the README's answer table: (row label, column) -> shipped study (the rows of
#: lstmsearch.answer.README_CELLS are also written whole from the data: test below)
ANSWER = {"LSTM": ("recall_first_lstm32", "blind_lstm32"), "GRU": ("recall_first_gru32", "blind_gru32"),
          "tanh RNN": ("recall_first_rnn32", "blind_rnn32"),
          **{label: studies for label, (_, *studies) in README_CELLS.items()}}
#: the constructions' column: kind, units, and the lengths the README's command uses (factors of n = 20)
CONSTRUCTION = {"LSTM": ("lstm", 2), "GRU": ("gru", 2), "tanh RNN": ("rnn_tanh", 4), "MGU": ("mgu", 2)}
FACTORS = (1, 1.05, 1.1, 2.15, 10.65, 105.15)


@lru_cache(maxsize=None)
def reproduced(study):
    row = best_row(study, EXAMPLES)
    return row, reproduce(study, row, data_dir=EXAMPLES, check=True)


def table_row(text: str, label: str):
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


@pytest.mark.parametrize("label", list(ANSWER))
def test_the_readme_answer_table_is_what_reproduce_prints(label):
    cells = table_row(README, label)
    for column, study in zip(cells[1:3], ANSWER[label]):
        _, rep = reproduced(study)
        assert rep["n_sequences"] == CHECK_SEQUENCES
        solved = rep["verdict"]["solved"]
        word = "**solved**" if solved else "**not solved**"
        want = span([f["nmse"] for f in rep["fresh"]])
        assert column.startswith(word) and want in column, f"{label}/{study}: expected {word} ... {want}, read {column!r}"


@pytest.mark.parametrize("label", list(CONSTRUCTION))
def test_the_readme_construction_column_is_what_lengths_and_certify_print(label):
    kind, units = CONSTRUCTION[label]
    column = table_row(README, label)[3]
    cell, params = construct(kind, units)
    task = make_task("recall_first", length=20)
    t = length_curve(cell, params, task, factors=FACTORS, readout=("given",), n_sequences=1024, seed=1000003)
    nmse = t.column("nmse").to_numpy()
    assert column.startswith(f"**solved**, {units} units: ") and (nmse < 1e-5).all()
    if kind == "rnn_tanh":
        assert f"{sci(nmse[0])} at n = 20, growing to {sci(nmse[-1])} at 2103" in column, column
    else:
        assert f"units: {sci(nmse.max())};" in column, (sci(nmse.max()), column)
    cert = certify(cell, params, task.dist.low, task.dist.high, task=task)
    if cert.kind == "all_n":
        assert f"certified for every n >= {cert.min_length} in {cert.arithmetic}" in column, (cert.min_length, column)
    else:
        assert f"certified for n <= {cert.N} in {cert.arithmetic}" in column, (cert.N, column)


def test_the_readme_construction_certificates_quote_their_bounds():
    task = make_task("recall_first", length=20)
    eps = [certify(*construct(kind, 2), task.dist.low, task.dist.high, task=task).eps for kind in ("lstm", "gru")]
    want = f"the LSTM and GRU constructions within {sci(eps[0])} and {sci(eps[1])} for every n in float32"
    assert want in " ".join(README.split()), want


def test_the_readme_precision_paragraph_is_what_reproduce_prints():
    _, rep = reproduced("recall_first_lstm32")
    pc = rep["precision"]
    assert pc["length"] == 2103
    text = " ".join(README.split())
    want = (f"the gate-tied LSTM row gives {sci(pc['float32'])} in float32, {sci(pc['float64'])} in float64 "
            f"(the reference backend) and {sci(pc['torch'])} in PyTorch's `nn.LSTM`")
    assert want in text, want
    assert f"({pc['float64'] / pc['float32']:.0f}x larger in float64)" in text, pc["float64"] / pc["float32"]


@pytest.mark.parametrize("study", [s for pair in ANSWER.values() for s in pair])
def test_the_data_readme_table_is_what_reproduce_prints(study):
    row, rep = reproduced(study)
    at = {f["length"]: f["nmse"] for f in rep["fresh"]}
    cells = table_row(DATA_README, f"`examples/{study}/`")
    assert cells[4] == str(row), (study, row)
    assert cells[5] == f"{sci(at[20])} / {sci(at[2103])}", (study, f"{sci(at[20])} / {sci(at[2103])}")
    assert cells[6] == ("yes" if rep["verdict"]["solved"] else "no")
    m = open_study(study, EXAMPLES)[1].read_manifest()
    assert cells[3] == f"{m['extracted_from']['source_rows']:,}"


@pytest.mark.parametrize("study", [s for pair in ANSWER.values() for s in pair])
def test_the_answer_page_table_is_what_reproduce_prints(study):
    """docs/answer_page.md is written by docs/make_answer_page.py from a report; its answer table's
    nmse per checked length and float64/PyTorch columns are today's, to the digits it prints."""
    row, rep = reproduced(study)
    page = (ROOT / "docs" / "answer_page.md").read_text()
    line = next(ln for ln in page.splitlines() if f"| {study} row {row} |" in ln)
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    assert cells[2] == ("yes" if rep["verdict"]["solved"] else "no")
    assert cells[3] == ", ".join(f"{f['length']}: {f['nmse']:.2g}" for f in rep["fresh"]), cells[3]
    pc = rep["precision"]
    assert cells[-2:] == [f"{pc['float64']:.2g}", f"{pc['torch']:.2g}"], (cells[-2:], pc)


@pytest.mark.parametrize("label", list(README_CELLS))
def test_the_readme_rows_of_the_newer_cells_are_written_from_the_data(label):
    """The MGU, minGRU, minLSTM and IndRNN rows are lstmsearch.answer.readme_row's output, word for
    word (python docs/make_answer_rows.py writes them): reproduce's verdict and nmse span of both
    shipped studies, the blind study's size, the construction's verdict and certificate, or what
    docs/theorems.md proves instead."""
    line = next(ln for ln in README.splitlines() if ln.startswith(f"| {label} |"))
    assert line == readme_row(label, EXAMPLES, lambda study: reproduced(study)[1]), \
        "stale: run python docs/make_answer_rows.py"
    if README_CELLS[label][0] in ("mingru", "minlstm"):  # the theorem's cells: neither search is solved
        assert line.count("**not solved**") == 2 and "docs/theorems.md" in line


def test_sci_and_span_write_what_the_docs_write():
    assert [sci(v) for v in (6.1e-11, 3.04e-9, 0.0166, 2.64e5, float("inf"))] == ["6.1e-11", "3.0e-9", "1.7e-2",
                                                                                 "2.6e5", "inf"]
    assert span([1.7e-2, 1.66e-2]) == "1.7e-2 at every length" and span([0.3, float("inf")]) == "3.0e-1 to inf"


THEOREMS = (ROOT / "docs" / "theorems.md").read_text()


def fig(v: float) -> str:
    """2 significant digits as docs/theorems.md writes them: 0.58, 0.093, 2.6e5, inf."""
    return f"{v:.2g}" if 1e-2 <= v < 100 else sci(v)


@pytest.mark.parametrize("label", ["minGRU", "minLSTM", "IndRNN"])
def test_the_theorem_pages_search_table_is_what_reproduce_prints(label):
    """docs/theorems.md's table of the failed searches: nmse at 20 / 21 / 2103 of both shipped studies."""
    cells = [label]
    for study in README_CELLS[label][1:]:
        _, rep = reproduced(study)
        at = {f["length"]: f["nmse"] for f in rep["fresh"]}
        assert not rep["verdict"]["solved"]
        cells.append(" / ".join(fig(at[n]) for n in (20, 21, 2103)))
    assert table_row(THEOREMS, label) == cells, (table_row(THEOREMS, label), cells)


def test_the_theorem_pages_fixed_length_figures_are_what_reproduce_prints():
    """The one-length fit (Proposition 3): the shipped blind minGRU study scored at n = 5 only."""
    _, rep = reproduced("fixed_length_mingru32")
    at = {f["length"]: f["nmse"] for f in rep["fresh"]}
    assert sorted(at) == [5, 6, 11, 53, 503] and not rep["verdict"]["solved"]
    want = (f"reaches nmse {sci(at[5])} at n = 5 on fresh sequences with its stored readout, "
            f"and {fig(at[6])} at n = 6, "
            f"{sci(at[11])} at 11, {sci(at[53])} at 53 and {sci(at[503])} at 503")
    assert want in " ".join(THEOREMS.split()), want
    assert at[6] > 1.0 and at[5] < 1e-3  # fits its one length, recalls something else one step later
