"""`lstmsearch extract`: the best rows of a study, with full weights, in a small study folder;
and the shipped examples under data/examples reproduce with the current kernels."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lstmsearch.analysis.verdict import CHECK_SEQUENCES
from lstmsearch.cli import main
from lstmsearch.errors import LstmsearchError
from lstmsearch.evaluate import evaluate
from lstmsearch.extract import extract
from lstmsearch.reproduction import reproduce, row_setting
from lstmsearch import load_results, open_study, run_study

from search_helpers import write_study

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "examples"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extract")
    # a sweep keeping the weights of only 5 rows: most extracted settings must be rebuilt
    path, out = write_study(tmp, "ex", strategy="sweep", budget=300, keep_weights=5)
    run_study(path, progress=False)
    return path, out


def test_extract_top_rows_keeps_ids_errors_and_full_weights(study, tmp_path):
    path, out = study
    dest = extract(path, tmp_path, top=12)
    t = pq.read_table(next((dest / "rows").glob("part-*.parquet")))
    src = load_results(path)
    finite = src.filter(src.column("finite"))
    best = finite.sort_by([("nmse", "ascending"), ("row", "ascending")]).slice(0, 12)
    assert sorted(t.column("row").to_pylist()) == sorted(best.column("row").to_pylist())
    assert t.column("weights").null_count == 0
    cfg, store = open_study(path)
    # the stored weights give exactly the source rows' errors when evaluated again
    w = np.asarray(t.column("weights").to_pylist(), np.float32)
    ev = cfg.eval
    again = evaluate(cfg.cell, w, cfg.task, n_sequences=ev.sequences, seed=ev.seed, readout=ev.readout,
                     n_heldout=ev.heldout, ridge=ev.ridge)
    np.testing.assert_array_equal(again.column("nmse").to_numpy(), t.column("nmse").to_numpy())
    assert (dest / "study.toml").read_text() == path.read_text()


def test_extracted_folder_serves_the_result_commands(study, tmp_path, capsys):
    path, out = study
    dest = extract(path, tmp_path / "ex", rows=[3, 17, 250])
    rep = reproduce(dest, 17, factors=(1,))
    assert rep["identical"]
    _, _, a = row_setting(path, 250)
    _, _, b = row_setting(dest, 250)
    np.testing.assert_array_equal(a, b)
    assert main(["top", "ex", "--data", str(tmp_path / "ex")]) == 0
    assert "250" in capsys.readouterr().out
    # its manifest records its own part, not the source's: the store check passes
    assert main(["check", str(dest)]) == 0
    assert "missing" not in capsys.readouterr().out


def test_extract_refuses_bad_requests(study, tmp_path):
    path, _ = study
    with pytest.raises(LstmsearchError, match="no row 999999"):
        extract(path, tmp_path, rows=[1, 999999])
    few = extract(path, tmp_path / "few", rows=[3, 17, 250])
    with pytest.raises(LstmsearchError, match=r"no row 4 \(row ids 3, 17, 250;"):
        row_setting(few, 4)
    with pytest.raises(LstmsearchError, match="either top"):
        extract(path, tmp_path, top=2, rows=[1])
    dest = extract(path, tmp_path, top=2)
    with pytest.raises(LstmsearchError, match="already holds a study"):
        extract(path, tmp_path, top=2)
    with pytest.raises(LstmsearchError, match="extracted from study"):
        run_study(dest / "study.toml", out=dest, progress=False)


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir() if (p / "manifest.json").is_file()))
def test_shipped_examples_reproduce(name):
    folder = EXAMPLES / name
    assert (folder / "manifest.json").is_file() and (folder / "study.toml").is_file()
    t = load_results(folder)
    best = t.sort_by("nmse").to_pylist()[0]
    # the verdict's own number of fresh sequences: the blind recall-lag LSTM's row has nmse ~8.5e-6
    # (1,024 sequences), and 64 sequences read it at 1.2e-5 -- noise at the threshold, not a failure
    rep = reproduce(folder, best["row"], factors=(1,), n_sequences=CHECK_SEQUENCES)
    # bit for bit on any machine: the readout is fitted in a fixed order, not through BLAS
    # (tests/test_reproduce_anywhere.py runs this under other OpenBLAS kernels and thread counts)
    assert open_study(folder)[0].eval.readout_fit == "fixed-order"
    assert rep["identical"] and rep["same"]["nmse"] == best["nmse"], rep["differences"]
    cfg, _ = open_study(folder)
    # the examples of cells whose gate sees h_{t-1} (LSTM, GRU, MGU) are answers: solved at every
    # checked length on fresh sequences (data/README.md); the tanh RNN's and IndRNN's are the best the
    # searches found, and minGRU's and minLSTM's cannot be answers (docs/theorems.md): not solved
    assert rep["verdict"]["status"] == ("solved at every checked length" if cfg.cell.kind in ("lstm", "gru", "mgu")
                                        else "not solved")


def test_report_of_an_extracted_folder_says_so(study, tmp_path):
    from lstmsearch.report import build_report

    path, _ = study
    dest = extract(path, tmp_path / "ex", top=4)
    rep = build_report([dest], out=tmp_path / "rep", plots=False)
    assert "| 4 of 300 (extracted) |" in rep.path.read_text()
    assert rep.summaries[0].best_nmse == pytest.approx(min(load_results(dest).column("nmse").to_pylist()))


def test_lengths_of_a_study_row_starts_at_the_stored_error(tmp_path, capsys):
    """lengths STUDY ROW: at factor 1 with the stored readout it scores the row on the study's
    own held-out sequences, so it gives back the stored nmse; then longer lengths."""
    folder = EXAMPLES / "recall_first_gru32"
    best = load_results(folder).sort_by("nmse").to_pylist()[0]
    out = tmp_path / "l.parquet"
    assert main(["lengths", "recall_first_gru32", str(best["row"]), "--data", str(EXAMPLES),
                 "--factors", "1,10", "--out", str(out)]) == 0
    rows = {(r["factor"], r["readout"]): r for r in pq.read_table(out).to_pylist()}
    assert rows[(1.0, "given")]["nmse"] == pytest.approx(best["nmse"], rel=1e-3)
    n = open_study(folder)[0].task.length  # the longest trained length (21 for lengths [20, 21])
    assert rows[(10.0, "given")]["length"] == 10 * n and rows[(10.0, "given")]["n_sequences"] == best["heldout"]
    assert main(["lengths", "recall_first_gru32", "--data", str(EXAMPLES)]) == 2
    assert "needs a ROW too" in capsys.readouterr().err
