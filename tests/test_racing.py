"""Racing (``[eval] racing``, successive halving): rows of every rung with their fidelity, full-fidelity
values equal to a plain evaluate(), rank-comparable told values, racing off unchanged, bad configs
refused, and top / best / verdict / summary on full-fidelity rows only."""

import math
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import lstmsearch
from lstmsearch.config import parse_study, study_toml
from lstmsearch.errors import ConfigError
from lstmsearch.evaluate import evaluate
from lstmsearch.query import best_row, load_results, open_study, settings_of, top_rows
from lstmsearch.run import racing
from lstmsearch.search import regenerate_settings

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "racing_off"
RUNGS, KEEP, POP = [[4, 3], [8, 5]], 0.25, 32


def race_doc(name="race", strategy=None, racing_spec=None, budget=2 * POP):
    return {"study": {"name": name}, "cell": {"kind": "lstm", "hidden": 2},
            "task": {"kind": "recall_first", "lengths": [6, 7]},
            "eval": {"sequences": 16, "heldout": 12, "seed": 3,
                     "racing": racing_spec or {"rungs": RUNGS, "keep": KEEP}},
            "space": {"kind": "full"},
            "strategy": strategy or {"kind": "cmaes", "variant": "sep", "popsize": POP, "seed": 1},
            "budget": {"settings": budget}, "store": {"keep_weights": 3}}


def run(tmp_path, doc, budget=None, name="s"):
    p = tmp_path / f"{name}.toml"
    p.write_text(study_toml(doc))
    out = tmp_path / name
    report = lstmsearch.run_study(str(p), out=str(out), progress=False, budget=budget)
    return out, report


@pytest.fixture(scope="module")
def raced(tmp_path_factory):
    out, report = run(tmp_path_factory.mktemp("race"), race_doc())
    return out, report


def test_rows_of_every_rung_are_stored_with_their_fidelity(raced):
    out, _ = raced
    t = load_results(out, columns=["batch", "index", "fidelity", "sequences", "heldout", "length", "nmse",
                                   "nmse_by_length"])
    ladder = [(4, 4, 3), (8, 8, 5), (16, 12, 7)]  # (sequences, heldout, length) of rungs 0, 1, 2 (full)
    for g in (0, 1):
        gen = t.filter(pc.field("batch") == g)
        fid = gen.column("fidelity").to_numpy()
        sizes = [POP]
        for _ in RUNGS:
            sizes.append(math.ceil(KEEP * sizes[-1]))
        assert [int(np.sum(fid == r)) for r in range(3)] == sizes  # 32, 8, 2
        for r, (s, h, n) in enumerate(ladder):
            rows = gen.filter(pc.field("fidelity") == r)
            assert set(rows.column("sequences").to_pylist()) == {s}
            assert set(rows.column("heldout").to_pylist()) == {h}
            assert set(rows.column("length").to_pylist()) == {n}
            assert (rows.column("nmse_by_length").null_count == 0) == (r == 2)  # low rungs score one length
        for r in (0, 1):  # the promoted ones are the best of the rung below, by its stored values
            low = gen.filter(pc.field("fidelity") == r)
            nmse, idx = low.column("nmse").to_numpy(), low.column("index").to_numpy()
            best = set(idx[np.argsort(nmse, kind="stable")[:sizes[r + 1]]].tolist())
            assert set(gen.filter(pc.field("fidelity") == r + 1).column("index").to_pylist()) == best


def test_every_rung_equals_a_plain_evaluate_of_the_same_settings(raced):
    out, _ = raced
    cfg, store = lstmsearch.open_study(str(out))
    t = load_results(out)
    settings = regenerate_settings(cfg, store, t)  # from the keys: the rung does not change the setting
    with_readout = settings_of(cfg, store, t)
    assert 0 < t.column("readout").null_count < t.num_rows
    fid = t.column("fidelity").to_numpy()
    for r, (s, n) in enumerate(RUNGS + [[None, None]]):
        sel = np.flatnonzero(fid == r)
        if r < len(RUNGS):
            ref = evaluate(cfg.cell, settings[sel], cfg.task.with_length(n), n_sequences=s, n_heldout=s, seed=3)
        else:  # full fidelity: exactly the study's own scoring
            ref = evaluate(cfg.cell, settings[sel], cfg.task, n_sequences=16, n_heldout=12, seed=3)
        np.testing.assert_array_equal(t.column("nmse").to_numpy()[sel], ref.column("nmse").to_numpy())
        # the readout of each row (stored with kept weights, else fitted again at the row's rung)
        np.testing.assert_array_equal(with_readout[sel, cfg.cell.n_recurrent:],
                                      np.stack(ref.column("readout").to_numpy(zero_copy_only=False)))
    # one setting promoted to full fidelity has the same settings (batch, index) at every rung
    full = t.filter(pc.field("fidelity") == 2)
    b, i = full.column("batch")[0].as_py(), full.column("index")[0].as_py()
    same = np.flatnonzero((t.column("batch").to_numpy() == b) & (t.column("index").to_numpy() == i))
    assert len(same) == 3 and all(np.array_equal(settings[same[0]], settings[k]) for k in same)


def test_told_values_rank_full_fidelity_first_then_each_rung_in_its_own_order():
    rng = np.random.default_rng(0)
    fidelity = rng.integers(0, 3, 200)
    nmse = 10.0 ** rng.uniform(-40, 8, 200)  # beyond objective's caps on both sides
    nmse[:5] = np.inf
    order = np.argsort(racing.told_values(fidelity, nmse, full=2), kind="stable")
    capped = np.clip(np.log10(np.maximum(nmse, 1e-30)), -30, 6)  # objective's rank, ties by position
    oracle = sorted(range(200), key=lambda k: (-fidelity[k], capped[k], k))
    assert order.tolist() == oracle


def test_promote_keeps_the_best_finite_fraction():
    nmse = np.array([0.5, np.inf, 0.1, 0.3, np.nan, 0.1, 2.0, 0.05])
    assert racing.promote(nmse, 0.5).tolist() == [2, 3, 5, 7]  # ceil(0.5 * 8) = 4 best, ties by position
    assert racing.promote(nmse, 0.9).tolist() == [0, 2, 3, 5, 6, 7]  # never a non-finite one
    assert racing.promote(np.array([np.inf, np.nan]), 0.5).tolist() == []


def test_top_best_and_summary_ignore_low_fidelity_rows(raced):
    out, report = raced
    t = load_results(out, columns=["fidelity", "nmse"])
    fid, nmse = t.column("fidelity").to_numpy(), t.column("nmse").to_numpy()
    assert fid[np.argmin(nmse)] < 2  # the smallest nmse of all is a low-fidelity row (short, few sequences)
    full_best = np.min(nmse[fid == 2])
    top = top_rows(out, 5, columns=["row", "nmse", "fidelity"])
    assert set(top.column("fidelity").to_pylist()) == {2}
    assert top.column("nmse")[0].as_py() == full_best
    assert report.best_nmse == full_best and report.best_row == best_row(str(out))
    assert load_results(out, columns=["fidelity"], where=f"row == {report.best_row}").column("fidelity")[0].as_py() == 2
    from lstmsearch.report import summarize

    s = summarize(str(out))
    assert s.best_nmse == full_best and s.best_row == report.best_row and s.rows == t.num_rows
    # only full-fidelity rows keep full weights
    w = load_results(out, columns=["fidelity", "weights"])
    kept = w.filter(pc.is_valid(w.column("weights")))
    assert kept.num_rows > 0 and set(kept.column("fidelity").to_pylist()) == {2}


def test_the_run_verdict_is_of_the_best_full_fidelity_row(raced):
    """The run summary's verdict is the verdict of the best full-fidelity row (scored again at full
    fidelity on fresh held-out sequences at every checked length), never of a low-fidelity row."""
    from lstmsearch.analysis.verdict import row_verdicts

    out, report = raced
    full = load_results(out, columns=["row", "nmse"], where="fidelity == 2")
    assert report.best_row == full.column("row")[int(np.argmin(full.column("nmse").to_numpy()))].as_py()
    v = row_verdicts(str(out), [report.best_row])[report.best_row]
    assert report.verdict is not None and v.text in report.verdict and {6, 7} <= set(v.lengths)


def test_continuing_a_raced_study_asks_the_same_generations(tmp_path):
    cols = ["row", "batch", "index", "fidelity", "nmse", "readout"]
    a, _ = run(tmp_path, race_doc(budget=3 * POP), name="a")
    b, _ = run(tmp_path, race_doc(budget=3 * POP), budget=POP, name="b")
    b, rep = run(tmp_path, race_doc(budget=3 * POP), name="b")
    assert rep.settings == 2 * POP  # the budget counts settings, not rows of every rung
    assert load_results(a, columns=cols).equals(load_results(b, columns=cols))


def test_a_raced_sweep_stores_every_rung(tmp_path):
    out, _ = run(tmp_path, race_doc(strategy={"kind": "sweep", "method": "random", "batch": 40}, budget=80))
    t = load_results(out, columns=["fidelity", "key_index"])
    fid = t.column("fidelity").to_numpy()
    assert [int(np.sum(fid == r)) for r in range(3)] == [80, 20, 6]
    assert len(set(t.column("key_index").to_pylist())) == 80


@pytest.mark.parametrize("key", ["cmaes", "sweep"])
def test_racing_off_is_bit_identical_to_before(tmp_path, key):
    """The rows of a study without racing equal those the code before racing wrote (a stored
    fixture, tests/fixtures/racing_off/make.py), every column but the times."""
    p = tmp_path / "s.toml"
    p.write_text((FIXTURE / f"{key}.toml").read_text())
    lstmsearch.run_study(str(p), out=str(tmp_path / "out"), progress=False)
    got = load_results(str(tmp_path / "out")).drop(["time", "wall_s"])
    want = pq.read_table(FIXTURE / f"{key}.parquet")
    assert got.schema.names == want.schema.names and "fidelity" not in got.schema.names
    # the rows now keep the readout only with the weights (the others fit it again when needed)
    assert got.drop(["readout"]).equals(want.drop(["readout"]))
    kept = got.column("weights").is_valid()
    assert got.column("readout").is_valid().equals(kept)
    assert got.column("readout").filter(kept).equals(want.column("readout").filter(kept))
    lost = pa.array(np.flatnonzero(~np.array(kept)))
    if not len(lost):  # (a fixture that keeps every row's weights)
        return
    cfg, store = open_study(str(tmp_path / "out"))
    settings = settings_of(cfg, store, got.take(lost))
    assert np.array_equal(settings[:, cfg.cell.n_recurrent:],
                          np.stack(want.column("readout").take(lost).to_numpy(zero_copy_only=False)))


@pytest.mark.parametrize("spec, words", [
    ({"rungs": RUNGS, "keep": 1.0}, "keep must be between 0 and 1"),
    ({"rungs": RUNGS, "keep": 0}, "keep must be between 0 and 1"),
    ({"rungs": [], "keep": 0.5}, "at least one low-fidelity rung"),
    ({"rungs": [[4]], "keep": 0.5}, "pairs [sequences, length]"),
    ({"rungs": [[4, 2.5]], "keep": 0.5}, "pairs [sequences, length]"),
    ({"rungs": [[1, 3]], "keep": 0.5}, "give 2 to 12"),
    ({"rungs": [[13, 3]], "keep": 0.5}, "give 2 to 12"),
    ({"rungs": [[4, 8]], "keep": 0.5}, "give 1 to 7"),
    ({"rungs": [[8, 5], [4, 3]], "keep": 0.5}, "each rung must cost more than the one before"),
    ({"rungs": [[12, 7]], "keep": 0.5}, "less than full fidelity"),
    ({"rungs": RUNGS}, "needs the key 'keep'"),
    ({"rungs": RUNGS, "keep": 0.5, "eta": 3}, "has no key 'eta'"),
])
def test_bad_racing_is_refused_in_one_line(spec, words):
    with pytest.raises(ConfigError) as e:
        parse_study(study_toml(race_doc(racing_spec=spec)), "s.toml")
    assert words in str(e.value) and "[eval] racing" in str(e.value) and "\n" not in str(e.value)


def test_racing_with_optuna_is_refused():
    doc = race_doc(strategy={"kind": "optuna", "sampler": "random", "batch": 4})
    with pytest.raises(ConfigError, match=r"racing needs a strategy that ranks whole batches .*Optuna"):
        parse_study(study_toml(doc), "s.toml")


def test_racing_is_off_by_default():
    doc = race_doc()
    del doc["eval"]["racing"]
    assert parse_study(study_toml(doc), "s.toml").eval.racing is None
