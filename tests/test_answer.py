"""The answer page (lstmsearch.answer): each fact checked against an independent computation --
the verdict against row_verdicts, the named values against the stored z and the space's names,
the worst input against a re-simulation of its sequence, the certificates against simulation."""

import re
from pathlib import Path

import numpy as np
import pytest

from lstmsearch import make_task, run_study
from lstmsearch.analysis.adversary import sequence_errors
from lstmsearch.analysis.verdict import row_verdicts
from lstmsearch.answer import ANSWER_HEADER, answer, answer_lines, answer_row
from lstmsearch.errors import LstmsearchError
from lstmsearch.reproduction import row_setting

ROOT = Path(__file__).resolve().parents[1]
V1 = ROOT / "tests" / "fixtures" / "v1"


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """The quickstart (LSTM H=8, gate-tied, lengths 20 and 21) at a small budget."""
    tmp = tmp_path_factory.mktemp("answer")
    text = (ROOT / "studies" / "quickstart.toml").read_text()
    text = text.replace("sequences = 256", "sequences = 32").replace("heldout = 256", "heldout = 32")
    text = text.replace("settings = 32768", "settings = 512").replace("size = 256", "size = 32")
    p = tmp / "q.toml"
    p.write_text(text)
    run_study(p, out=tmp / "q")
    return tmp / "q"


def test_parity_row_is_not_an_answer_and_every_fact_matches_its_oracle():
    a = answer(V1 / "recall_first_rnn32", 32586, n_sequences=64, with_certificate=False, worst_budget=128)
    v = row_verdicts(V1 / "recall_first_rnn32", [32586], n_sequences=64)[32586]
    assert a.verdict == v and not a.verdict.solved
    cfg, stored, setting = row_setting(V1 / "recall_first_rnn32", 32586)
    assert [n for n, _ in a.named] == list(cfg.space_obj.names) and a.n_searched == 3
    np.testing.assert_array_equal([x for _, x in a.named], np.asarray(stored["z"], np.float64))
    assert sum(a.roles.values()) == cfg.cell.hidden
    for w in a.worst:  # the reported worst input really gives that error when simulated again
        again = sequence_errors(cfg.cell, setting, w.sequence[:, None, :].astype(np.float32)).max()
        assert again == pytest.approx(w.worst, rel=1e-6) and w.worst >= w.random_max
    assert a.worst_error > 0.5  # the parity exploit misses x_1 at n = 21
    assert a.construction is not None and a.construction.solved and a.construction_units == 4
    row = dict(zip(ANSWER_HEADER, answer_row(a)))
    assert row["solved at every checked length"].startswith("no") and row["cell"] == "rnn_tanh H=32"
    assert row["float64 nmse (longest)"] == f"{a.precision.float64:.2g}"
    assert any("not solved" in ln for ln in answer_lines(a))


def test_certificates_hold_against_simulation(small_study):
    a = answer(small_study, n_sequences=64, certify_length=22, worst_budget=128, with_torch=False)
    cfg, _, setting = row_setting(small_study, a.row)
    c = a.certificate
    # every n >= 1 where the proof covers it, else a row searched at n = 20, 21 is asked from n = 20 on
    assert c.min_length == 20 or (c.min_length == 1 and c.kind == "all_n")
    if c.kind in ("all_n", "up_to_n"):
        x, _ = make_task("recall_first", length=max(c.N, 30)).sample(256, seed=11)
        for T in (20, 21, min(c.N, 22) if c.N > 0 else 25):
            assert sequence_errors(cfg.cell, setting, x[:T]).max() <= c.eps
    else:
        seq = c.counterexample.reshape(-1, 1, 1).astype(np.float32)
        assert sequence_errors(cfg.cell, setting, seq).max() == pytest.approx(c.counterexample_error, rel=1e-6)
    # the LSTM construction (2 units) is certified for every n in float32
    assert a.construction_certificate.kind == "all_n"
    x, _ = make_task("recall_first", length=200).sample(128, seed=12)
    from lstmsearch.analysis.constructions import construct

    cell, params = construct("lstm", 2)
    for T in (1, 7, 200):
        assert sequence_errors(cell, params, x[:T]).max() <= a.construction_certificate.eps
    assert any(ln.startswith("Certificate of the construction: For every n >= 1") for ln in answer_lines(a))
    assert a.precision.torch is None and "not asked" in a.precision.torch_skipped


def test_answer_refuses_other_tasks(tmp_path):
    text = (ROOT / "studies" / "adding_lstm.toml").read_text()
    text = re.sub(r"settings = \d+", "settings = 64", text)
    p = tmp_path / "a.toml"
    p.write_text(text)
    run_study(p, out=tmp_path / "a")
    with pytest.raises(LstmsearchError, match="recall_first"):
        answer(tmp_path / "a")


def test_gru_construction_beside_a_gru_study_is_certified_for_every_n():
    """The answer page's GRU construction: solved, and its float32 certificate is for every n
    (the offset memory, kept exactly by the float32 update), checked against simulation."""
    from lstmsearch.analysis.constructions import construct
    from lstmsearch.answer import _certificate_short, construction_facts

    task = make_task("recall_first", length=20)
    v, cert = construction_facts("gru", task, 1e-5, 64, True)
    assert v.solved and cert.kind == "all_n" and cert.arithmetic == "float32"
    assert _certificate_short(cert).startswith("every n >= 1: |y - x_1| <= ")
    cell, params = construct("gru", 2)
    x = np.concatenate([task.with_length(300).sample(64, seed=9)[0], np.ones((300, 1, 1), np.float32)], axis=1)
    assert sequence_errors(cell, params, x).max() <= cert.eps


def test_newer_cells_mgu_construction_and_a_mingru_row_without_one():
    """The MGU has a flag/memory construction beside it, certified for every n in float32 and
    checked against simulation; a minGRU row has none (none can exist: docs/theorems.md), is not
    solved, and its worst input misses x_1 by more than half the box."""
    from lstmsearch.analysis.constructions import construct
    from lstmsearch.answer import NO_CONSTRUCTION, construction_column, construction_facts

    task = make_task("recall_first", length=20)
    v, cert = construction_facts("mgu", task, 1e-5, 64, True)
    assert v.solved and cert.kind == "all_n" and cert.min_length == 1 and cert.arithmetic == "float32"
    cell, params = construct("mgu", 2)
    x = np.concatenate([task.with_length(300).sample(64, seed=9)[0], -np.ones((300, 1, 1), np.float32)], axis=1)
    assert sequence_errors(cell, params, x).max() <= cert.eps
    assert construction_column("mingru", task) == NO_CONSTRUCTION["mingru"]
    assert "theorems.md" in NO_CONSTRUCTION["mingru"]
    a = answer(ROOT / "data" / "examples" / "recall_first_mingru32", n_sequences=64, with_certificate=False,
               with_torch=False, worst_budget=64)
    assert not a.verdict.solved and a.construction is None and a.construction_units == 0
    assert a.worst_error > 1.0


def _make_answer_page():
    import sys

    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import make_answer_page
    finally:
        sys.path.remove(str(ROOT / "docs"))
    return make_answer_page


def test_the_answer_page_leads_with_the_answer_written_from_its_report(tmp_path):
    """docs/answer_page.md opens with the answer (a title, one paragraph, the table per cell kind,
    two plots), then how it was made, then the report. The lead is what make_answer_page writes from
    the report below it (nothing by hand), and each cell's row agrees with the report's table: the
    searched rows solved or not, the construction's certificate quoted as the report words it."""
    mk = _make_answer_page()
    page = (ROOT / "docs" / "answer_page.md").read_text()
    body = page[page.index(mk.REPORT_START):]
    assert mk.write_page(body, tmp_path) == page  # regenerated from the report: the same page
    assert all((tmp_path / p).stat().st_size > 10_000 for p in mk.PLOTS.values())
    blocks = page.split("\n\n")
    assert blocks[0].startswith("# ") and blocks[1].startswith("**Yes") and blocks[2] == "## The answer per cell"
    assert page.index("## The answer per cell") < page.index("## How this page was made") < page.index(
        "## Answer: does a setting exist")
    report = mk.answer_table(body)
    lead = [mk._cells(ln) for ln in page[:page.index("## How this page was made")].splitlines()
            if ln.startswith("| ") and not ln.startswith("| cell |")]
    assert [r[0] for r in lead] == [label for label, _, _ in mk.CELLS.values()]
    by_label = {r[0]: r for r in lead}
    for r in report:
        kind = r["cell"].split()[0]
        row = by_label[mk.CELLS[kind][0]]
        study, number = r["best row"].split(" row ")
        said = re.search(rf"`{study}`, row {number}\): (solved|not solved)", row[4])
        assert said and (said.group(1) == "solved") == (r["solved at every checked length"] == "yes"), (row, r)
        claim = mk.construction_claim(r)
        if claim:
            assert claim.replace(">=", "≥").replace("<=", "≤") in row[3], (claim, row[3])
    assert "every n ≥ 1" in by_label["ReLU RNN"][3] and "Theorem T2" in by_label["ReLU RNN"][3]
    for label in ("minGRU", "minLSTM"):
        assert by_label[label][1] == "**no**" and "Theorem 1" in by_label[label][3]
