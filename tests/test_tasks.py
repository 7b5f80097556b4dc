"""Tasks: shapes, targets, baselines (checked against sample statistics), determinism."""

import numpy as np
import pytest

from lstmsearch import LstmsearchError, make_task
from lstmsearch.tasks import task_from_spec

N = 20000


def empirical_baseline(y):
    """MSE of predicting the per-output mean: the mean per-output variance."""
    return y.reshape(-1, y.shape[-1]).var(axis=0).mean()


@pytest.mark.parametrize("kind,params", [
    ("recall_first", {}),
    ("recall_first", {"dist": {"kind": "normal", "std": 2.0}}),
    ("recall_first", {"dist": {"kind": "bits", "bits": 2, "low": 0, "high": 3}}),
    ("recall_first", {"dist": {"kind": "symbols", "symbols": 5}}),
    ("recall_lag", {"lag": 3}),
    ("next_value", {"dist": {"kind": "uniform", "low": 0, "high": 1}}),
    ("copy", {"symbols": 4, "m": 3}),
    ("adding", {}),
    ("adding", {"low": 0, "high": 1}),
    ("adding", {"scaled": True}),
])
def test_baseline_is_the_variance_of_the_target(kind, params):
    task = make_task(kind, length=12, **params)
    x, y = task.sample(N, seed=1)
    assert x.shape == (12, N, task.n_inputs) and x.dtype == np.float32
    assert y.shape == (len(task.output_steps()), N, task.n_outputs)
    assert empirical_baseline(y) == pytest.approx(task.baseline, rel=0.03)


def test_recall_targets():
    x, y = make_task("recall_first", length=7).sample(50, seed=0)
    np.testing.assert_array_equal(y[0], x[0])
    x, y = make_task("recall_lag", length=7, lag=2).sample(50, seed=0)
    np.testing.assert_array_equal(y[0], x[4])
    task = make_task("next_value", length=7)
    x, y = task.sample(50, seed=0)
    np.testing.assert_array_equal(y, x[1:])
    np.testing.assert_array_equal(task.output_steps(), np.arange(6))


def test_bits_levels():
    x, _ = make_task("recall_first", length=3, dist={"kind": "bits", "bits": 3}).sample(1000, seed=0)
    assert len(np.unique(x)) == 8 and x.min() == -1 and x.max() == 1


def test_copy_layout():
    task = make_task("copy", length=12, symbols=4, m=3)
    x, y = task.sample(20, seed=3)
    assert task.n_inputs == 6 and task.n_outputs == 4
    assert np.all(x.sum(axis=2) == 1), "exactly one channel is on at every step"
    np.testing.assert_array_equal(x[:3, :, :4], y)  # the symbols come back in order
    assert np.all(x[12 - 3 - 1, :, 5] == 1)  # delimiter
    np.testing.assert_array_equal(task.output_steps(), [9, 10, 11])


def test_adding_marks_and_sum():
    x, y = make_task("adding", length=10).sample(100, seed=2)
    marks = x[:, :, 1]
    assert np.all(marks.sum(axis=0) == 2)
    assert np.all(marks[:5].sum(axis=0) == 1)
    np.testing.assert_allclose(y[0, :, 0], (x[:, :, 0] * marks).sum(axis=0), rtol=1e-6)


def test_same_seed_same_sequences_streams_differ():
    task = make_task("recall_first", length=5)
    a, _ = task.sample(10, seed=4)
    b, _ = task.sample(10, seed=4)
    c, _ = task.sample(10, seed=4, stream=1)
    d, _ = task.sample(10, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_spec_roundtrip_and_with_length():
    task = make_task("recall_lag", length=9, lag=2, dist={"kind": "normal", "std": 0.5})
    assert task_from_spec(task.spec()) == task
    longer = task.with_length(90)
    assert longer.length == 90 and longer.lag == 2 and longer.dist == task.dist


@pytest.mark.parametrize("kind,params,match", [
    ("recal_first", {"length": 5}, "unknown task 'recal_first'"),
    ("recall_first", {}, "needs a length"),
    ("recall_first", {"length": 0}, "needs length >= 1"),
    ("recall_first", {"length": 5, "lagg": 1}, "has no parameter 'lagg'"),
    ("recall_lag", {"length": 5, "lag": 5}, "0 <= lag < length"),
    ("copy", {"length": 6, "m": 3}, "needs length >= 7"),
    ("recall_first", {"length": 5, "dist": {"kind": "uniform", "low": 1, "high": 0}}, "low < high"),
    ("recall_first", {"length": 5, "dist": {"kind": "poisson"}}, "unknown input distribution"),
    ("recall_first", {"length": 5, "dist": {"kind": "normal", "std": float("nan")}}, "std > 0"),
])
def test_bad_task_arguments(kind, params, match):
    with pytest.raises(LstmsearchError, match=match):
        make_task(kind, **params)
