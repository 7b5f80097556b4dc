"""Several lengths in one objective: tasks, evaluate, the readout fit, config, store, verdict.

Oracles: the NumPy float64 reference backend run on each length's truncated sequences, a
closed-form least squares (numpy lstsq) over the stacked states, and a hand-built tanh-RNN
whose unit flips sign every step (a parity exploit).
"""

import tomllib

import numpy as np
import pytest

from lstmsearch import Cell, evaluate, load_results, make_task, reproduce, run_study
from lstmsearch.analysis.verdict import task_check_lengths, verdict
from lstmsearch.cli.main import main as cli_main
from lstmsearch.config import parse_study, study_toml
from lstmsearch.errors import ConfigError, LstmsearchError
from lstmsearch.evaluate import solutions
from lstmsearch.kernels import reference
from lstmsearch.tasks import HELDOUT_STREAM, TRAIN_STREAM, task_from_spec

from search_helpers import study_text

LENGTHS = (5, 6, 9)  # not multiples of each other


def _population(kind="lstm", H=3, P=4, seed=1):
    cell = Cell(kind, H)
    return cell, np.random.default_rng(seed).normal(0, 1.0, (P, cell.n_params)).astype(np.float32)


def _readouts(table, cell):
    return np.stack(table.column("readout").to_numpy(zero_copy_only=False)).astype(np.float64).reshape(-1, cell.n_readout)


def _predict(h, ro, H):
    """y = W_out h + b_out for one output, h (B, H) float64."""
    return h @ ro[:H] + ro[H]


# ------------------------------------------------------------------------- tasks
def test_task_lengths_sample_targets_and_spec_round_trip():
    t = make_task("recall_lag", lengths=(9, 5, 6), lag=2)
    assert t.lengths == LENGTHS and t.length == 9 and t.scored_lengths == LENGTHS
    assert t.output_steps().tolist() == [4, 5, 8] and t.output_lengths().tolist() == list(LENGTHS)
    x, y = t.sample(7, seed=3)
    assert x.shape == (9, 7, 1) and y.shape == (3, 7, 1)
    for j, n in enumerate(LENGTHS):  # x_{n-k} at each n (1-based), index n - 1 - k
        np.testing.assert_array_equal(y[j], x[n - 1 - 2])
    assert task_from_spec(t.spec()) == t and t.spec()["lengths"] == list(LENGTHS) and "length" not in t.spec()
    # one length, however given, is today's task: same spec, same sequences
    one = make_task("recall_first", length=20)
    assert make_task("recall_first", lengths=[20]) == one == task_from_spec(one.spec())
    assert one.spec() == {"kind": "recall_first", "length": 20,
                          "dist": {"kind": "uniform", "low": -1.0, "high": 1.0, "dim": 1}}
    # the prefix of the longest sequences is the sequence of the shorter length (same seed and stream)
    xs, _ = make_task("recall_first", lengths=(5, 9)).sample(4, 2, HELDOUT_STREAM)
    x5, y5 = make_task("recall_first", length=5).sample(4, 2, HELDOUT_STREAM)
    np.testing.assert_array_equal(xs[:5], x5)
    assert make_task("recall_first", lengths=(5, 9)).with_length(7) == make_task("recall_first", length=7)


@pytest.mark.parametrize("params,msg", [
    (dict(lengths=[]), "non-empty list"),
    (dict(lengths=[20, 20]), "repeated length"),
    (dict(lengths=[0, 3]), "positive integers"),
    (dict(lengths=[3, 4.5]), "positive integers"),
    (dict(length=3, lengths=[3, 4]), "not both"),
    (dict(length=20, aggregate="mean"), "needs several lengths"),
    (dict(lengths=[3, 4], aggregate="max"), "aggregate must be one of worst, mean, per_sequence"),
    (dict(length=20, aggregate="per_sequence"), "needs several lengths"),
])
def test_bad_lengths_are_refused(params, msg):
    with pytest.raises(LstmsearchError, match=msg) as e:
        make_task("recall_first", **params)
    assert "\n" not in str(e.value)


def test_tasks_that_take_one_length_say_so():
    for kind, extra in (("copy", dict(symbols=2, m=2)), ("next_value", {}), ("adding", {}), ("parity", {})):
        with pytest.raises(LstmsearchError, match="takes one length only"):
            make_task(kind, lengths=[8, 9], **extra)
    with pytest.raises(LstmsearchError, match="shortest length"):
        make_task("recall_lag", lengths=[3, 9], lag=4)  # lag 4 fits 9 but not 3


# ---------------------------------------------------------------------- evaluate
@pytest.mark.parametrize("aggregate", ["worst", "mean"])
def test_evaluate_equals_each_length_on_its_own(aggregate):
    """Per length: the reference backend on the truncated held-out sequences with the SAME
    (jointly fitted) readout; and evaluate of the one-length task with that readout given."""
    cell, params = _population()
    task = make_task("recall_first", lengths=LENGTHS, aggregate=aggregate)
    t = evaluate(cell, params, task, n_sequences=32, seed=4)
    by = np.array(t.column("nmse_by_length").to_pylist())
    assert by.shape == (4, 3)
    agg = by.max(axis=1) if aggregate == "worst" else by.mean(axis=1)
    np.testing.assert_allclose(t.column("nmse").to_numpy(), agg, rtol=1e-12)
    assert len(np.unique(by.round(6))) > 3  # the lengths really differ: the check is not vacuous
    ro = _readouts(t, cell)
    x, _ = task.sample(32, 4, HELDOUT_STREAM)
    for j, n in enumerate(LENGTHS):
        hs, _ = reference.run(cell, params, x[:n], [n - 1])
        for p in range(4):
            d = _predict(hs[p, 0], ro[p], cell.hidden) - x[0, :, 0].astype(np.float64)
            np.testing.assert_allclose(by[p, j], np.mean(d * d) / (1 / 3), rtol=1e-4)
        alone = evaluate(cell, solutions(t, params, cell), task.with_length(n), n_sequences=32, seed=4,
                         readout="given", backend="reference")
        np.testing.assert_allclose(alone.column("nmse").to_numpy(), by[:, j], rtol=1e-4)
    mae = np.max([evaluate(cell, solutions(t, params, cell), task.with_length(n), n_sequences=32, seed=4,
                           readout="given").column("max_abs_err").to_numpy() for n in LENGTHS], axis=0)
    np.testing.assert_allclose(t.column("max_abs_err").to_numpy(), mae, rtol=1e-6)


def test_lengths_drawn_per_sequence_equal_each_sequence_on_its_own():
    """aggregate = "per_sequence": sequence b is scored at its own drawn length n_b only. Oracle:
    the float64 reference backend run on each sequence truncated to n_b, a numpy lstsq readout
    over the (state at n_b, x_1) training pairs, and the mean over held-out pairs."""
    cell, params = _population(P=3, seed=7)
    lengths = (5, 6, 7, 8, 9, 11)
    task = make_task("recall_first", lengths=lengths, aggregate="per_sequence")
    assert "one drawn per sequence" in task.describe()
    t = evaluate(cell, params, task, n_sequences=64, seed=6, ridge=0.0, backend="reference")

    def pairs(stream):
        x, _ = task.sample(64, 6, stream)
        j = task.drawn_lengths(64, 6, stream)
        assert set(j.tolist()) == set(range(len(lengths)))  # every length drawn by some sequence
        h = np.stack([reference.run(cell, params, x[:lengths[jb], b:b + 1], [lengths[jb] - 1])[0][:, 0, 0]
                      for b, jb in enumerate(j)], axis=1)  # (P, 64, H): each sequence at its own length
        return h, x[0, :, 0].astype(np.float64), j

    h_tr, y_tr, _ = pairs(TRAIN_STREAM)
    h_te, y_te, j_te = pairs(HELDOUT_STREAM)
    for p in range(3):
        phi = np.concatenate([h_tr[p], np.ones((64, 1))], axis=1)
        w = np.linalg.lstsq(phi, y_tr, rcond=None)[0]
        np.testing.assert_allclose(_readouts(t, cell)[p], w, rtol=1e-3, atol=1e-4)
        d = _predict(h_te[p], _readouts(t, cell)[p], cell.hidden) - y_te
        np.testing.assert_allclose(t.column("nmse")[p].as_py(), np.mean(d * d) * 3, rtol=1e-6)
        by = t.column("nmse_by_length")[p].as_py()
        for k in range(len(lengths)):
            np.testing.assert_allclose(by[k], np.mean(d[j_te == k] ** 2) * 3, rtol=1e-6)
    # the drawn lengths are a subset of every (sequence, length) pair: not the mean aggregate's number
    mean = evaluate(cell, params, task.with_lengths(lengths, "mean"), n_sequences=64, seed=6, ridge=0.0,
                    backend="reference")
    assert not np.allclose(mean.column("nmse").to_numpy(), t.column("nmse").to_numpy())
    # the float32 kernel agrees with the float64 reference
    k = evaluate(cell, params, task, n_sequences=64, seed=6, ridge=0.0)
    np.testing.assert_allclose(k.column("nmse").to_numpy(), t.column("nmse").to_numpy(), rtol=1e-3)


def test_a_parity_exploit_fails_lengths_drawn_per_sequence():
    cell, flip = _flipper(-20.0)
    drawn = make_task("latch", lengths=(20, 21), aggregate="per_sequence")
    assert evaluate(cell, flip, drawn, n_sequences=64).column("nmse")[0].as_py() > 0.5
    _, latch = _flipper(20.0)
    assert evaluate(cell, latch, drawn, n_sequences=64).column("nmse")[0].as_py() < 1e-4


def test_one_length_keeps_the_schema_and_numbers():
    cell, params = _population()
    a = evaluate(cell, params, make_task("recall_first", length=6), n_sequences=16)
    b = evaluate(cell, params, make_task("recall_first", lengths=[6]), n_sequences=16)
    assert "nmse_by_length" not in a.column_names and a.equals(b)


def test_readout_is_one_least_squares_over_the_stacked_states():
    cell, params = _population(P=3, seed=2)
    task = make_task("recall_first", lengths=LENGTHS)
    t = evaluate(cell, params, task, n_sequences=48, seed=5, ridge=0.0, backend="reference")
    x, _ = task.sample(48, 5, TRAIN_STREAM)
    hs, _ = reference.run(cell, params, x, task.output_steps())  # (P, S, B, H): one run, every length
    for p in range(3):
        phi = np.concatenate([hs[p].reshape(-1, cell.hidden), np.ones((3 * 48, 1))], axis=1)
        y = np.tile(x[0, :, 0].astype(np.float64), 3)
        w = np.linalg.lstsq(phi, y, rcond=None)[0]
        np.testing.assert_allclose(_readouts(t, cell)[p], w, rtol=1e-3, atol=1e-4)
        train = np.mean((phi @ w - y) ** 2)  # pooled; the worst per length is at least the pooled mean
        assert t.column("train_mse")[p].as_py() >= train * (1 - 1e-4)


def _flipper(self_weight):
    """A 1-unit tanh RNN on the latch task: h_1 = tanh(3 x_1) = +-0.995 holds the class;
    h_t = tanh(w h_{t-1} + 3 x_t) with w = -20 flips the sign every step (a parity exploit),
    with w = +20 it latches."""
    cell = Cell("rnn_tanh", 1)
    p = np.zeros(cell.n_params, np.float32)
    p[0], p[1] = 3.0, self_weight  # weight_ih, weight_hh
    return cell, p[None]


def test_a_parity_exploit_passes_one_length_and_fails_two():
    cell, flip = _flipper(-20.0)
    one = make_task("latch", length=20)
    two = make_task("latch", lengths=(20, 21))
    assert evaluate(cell, flip, one, n_sequences=64).column("nmse")[0].as_py() < 1e-4
    t = evaluate(cell, flip, two, n_sequences=64)
    assert t.column("nmse")[0].as_py() > 0.5  # no one readout reads +s at 20 and -s at 21
    # the honest latch holds at both
    _, latch = _flipper(20.0)
    assert evaluate(cell, latch, two, n_sequences=64).column("nmse")[0].as_py() < 1e-4
    # the verdict of the exploit (readout fitted at 20) names the odd lengths it fails
    fitted = solutions(evaluate(cell, flip, one, n_sequences=64), flip, cell)[0]
    v = verdict(cell, fitted, one, 1e-3, n_sequences=32)
    assert not v.solved and 21 in v.failing and 20 not in v.failing


def test_verdict_checks_every_trained_length_then_beyond_the_longest():
    task = make_task("latch", lengths=(20, 21))
    assert task_check_lengths(task) == [20, 21, 22, 43, 213, 2103]
    assert task_check_lengths(make_task("latch", length=20)) == [20, 21, 41, 203, 2003]
    cell, latch = _flipper(20.0)
    fitted = solutions(evaluate(cell, latch, task, n_sequences=64), latch, cell)[0]
    v = verdict(cell, fitted, task, 1e-3, n_sequences=16)
    assert v.solved and v.lengths[:2] == (20, 21) and v.trained == (20, 21)
    _, flip = _flipper(-20.0)
    v = verdict(cell, solutions(evaluate(cell, flip, task, n_sequences=64), flip, cell)[0], task, 1e-3,
                n_sequences=16)
    assert v.status == "not solved" and "trained length" in v.text


# --------------------------------------------------------------- study files, store
def _doc(tmp_path, task):
    doc = tomllib.loads(study_text("ml", tmp_path / "data" / "ml", strategy="sweep", budget=60, keep_weights=5))
    doc["task"] = task
    return doc


def test_toml_lengths_round_trip_and_identity(tmp_path):
    doc = _doc(tmp_path, {"kind": "recall_first", "lengths": [6, 5], "aggregate": "mean"})
    cfg = parse_study(study_toml(doc))
    assert cfg.task.lengths == (5, 6) and cfg.task.aggregate == "mean"
    doc2 = dict(doc, task=cfg.task.spec())  # the spec written back (as extract does) gives the same task
    assert parse_study(study_toml(doc2)).task == cfg.task
    old = _doc(tmp_path, {"kind": "recall_first", "length": 6})
    assert parse_study(study_toml(old)).task.spec() == {
        "kind": "recall_first", "length": 6, "dist": {"kind": "uniform", "low": -1.0, "high": 1.0, "dim": 1}}
    assert parse_study(study_toml(old)).identity() != parse_study(
        study_toml(_doc(tmp_path, {"kind": "recall_first", "lengths": [5, 6]}))).identity()


def test_a_range_of_lengths_scores_every_length_in_it(tmp_path):
    cfg = parse_study(study_toml(_doc(tmp_path, {"kind": "recall_first", "lengths": {"from": 5, "to": 11, "step": 3}})))
    assert cfg.task.lengths == (5, 8, 11) and cfg.task.length == 11
    # the same task as the list written out, and the spec (what extract writes) is that list
    listed = parse_study(study_toml(_doc(tmp_path, {"kind": "recall_first", "lengths": [5, 8, 11]})))
    assert listed.task == cfg.task and cfg.task.spec()["lengths"] == [5, 8, 11]
    assert parse_study(study_toml(_doc(tmp_path, {"kind": "recall_first", "lengths": {"from": 5, "to": 7}}))
                       ).task.lengths == (5, 6, 7)


def test_a_study_with_lengths_drawn_per_sequence_runs_and_reproduces(tmp_path):
    doc = _doc(tmp_path, {"kind": "recall_first", "lengths": {"from": 5, "to": 30}, "aggregate": "per_sequence"})
    cfg = parse_study(study_toml(doc))
    assert cfg.task.aggregate == "per_sequence" and len(cfg.task.lengths) == 26
    assert parse_study(study_toml(dict(doc, task=cfg.task.spec()))).task == cfg.task
    p = tmp_path / "ml.toml"
    p.write_text(study_toml(doc))
    run_study(p)
    rows = load_results(tmp_path / "data" / "ml")
    by = np.array(rows.column("nmse_by_length").to_pylist(), float)
    assert by.shape == (60, 26) and np.isnan(by).any()  # 24 held-out sequences: some lengths drawn by none
    best = int(rows.column("row")[int(np.argmin(rows.column("nmse").to_numpy()))].as_py())
    rep = reproduce(str(tmp_path / "data" / "ml"), best, check=False)
    assert rep["identical"] and np.array_equal(rep["by_length"]["stored"], rep["by_length"]["same"], equal_nan=True)


@pytest.mark.parametrize("task,msg", [
    ({"kind": "recall_first", "length": 6, "lengths": [5, 6]}, r"\[task\] needs the key 'length'.*not both"),
    ({"kind": "recall_first"}, r"\[task\] needs the key 'length'"),
    ({"kind": "recall_first", "lengths": []}, r"\[task\] lengths must be a non-empty array"),
    ({"kind": "recall_first", "lengths": 6}, r"\[task\] lengths must be a non-empty array"),
    ({"kind": "recall_first", "lengths": [5, "6"]}, r"\[task\] lengths must be integers"),
    ({"kind": "recall_first", "lengths": [5, 0]}, r"\[task\] lengths must be from 1"),
    ({"kind": "recall_first", "lengths": [5, 5]}, r"\[task\] lengths has a repeated length"),
    ({"kind": "recall_first", "lengths": [5, 6], "aggregate": "median"}, r"\[task\].*aggregate must be one of"),
    ({"kind": "recall_first", "length": 6, "aggregate": "mean"}, r"\[task\].*needs several lengths"),
    ({"kind": "copy", "lengths": [9, 10], "m": 2}, r"\[task\].*takes one length only"),
    ({"kind": "recall_first", "lengths": {"from": 9}}, r"\[task\] lengths a range is written"),
    ({"kind": "recall_first", "lengths": {"from": 9, "to": 12, "by": 1}}, r"\[task\] lengths a range is written"),
    ({"kind": "recall_first", "lengths": {"from": 12, "to": 9}}, r"\[task\] lengths a range needs from < to"),
    ({"kind": "recall_first", "lengths": {"from": 9, "to": 12, "step": 0}}, r"\[task\] lengths step must be"),
    ({"kind": "recall_first", "lengths": {"from": 1, "to": 1000}}, r"\[task\] lengths the range scores 1000"),
])
def test_bad_task_tables_are_refused(tmp_path, task, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        parse_study(study_toml(_doc(tmp_path, task)))
    assert "\n" not in str(e.value)


def test_study_with_lengths_end_to_end(tmp_path, capsys):
    p = tmp_path / "ml.toml"
    p.write_text(study_toml(_doc(tmp_path, {"kind": "recall_first", "lengths": [5, 6]})))
    run_study(p)
    out = tmp_path / "data" / "ml"
    t = load_results(out, columns=["row", "nmse", "nmse_by_length", "finite"])
    by = t.column("nmse_by_length").to_pylist()
    assert t.num_rows == 60 and all(len(v) == 2 for v in by)
    nmse = t.column("nmse").to_numpy()
    fin = t.column("finite").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(nmse[fin], np.max(np.array(by), axis=1)[fin])
    best = int(t.column("row")[int(np.argmin(nmse))].as_py())
    rep = reproduce(out, best, n_sequences=16)
    assert rep["identical"] and [f["length"] for f in rep["fresh"]] == [5, 6, 7, 13, 63, 603]
    assert rep["by_length"]["lengths"] == [5, 6] and rep["by_length"]["stored"] == rep["by_length"]["same"]
    assert max(rep["by_length"]["same"]) == rep["same"]["nmse"]
    assert rep["verdict"]["lengths"][:2] == [5, 6] and rep["verdict"]["trained"] == [5, 6]
    capsys.readouterr()
    assert cli_main(["top", str(out), "-k", "3"]) == 0
    head = capsys.readouterr().out.splitlines()[0].split()
    assert head[head.index("nmse") + 1:head.index("nmse") + 3] == ["nmse@5", "nmse@6"] and "solved" in head
