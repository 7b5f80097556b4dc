"""Two-class long-lag tasks (latch, two_sequence, parity): inputs, targets, baselines, balance."""

import numpy as np
import pytest

from lstmsearch import LstmsearchError, make_task
from lstmsearch.tasks import takes_dist, task_from_spec


@pytest.mark.parametrize("kind,params,targets", [
    ("latch", {}, (-1.0, 1.0)),
    ("two_sequence", {}, (0.0, 1.0)),
    ("two_sequence", {"relevant": 3, "noise_var": 0.5}, (0.0, 1.0)),
    ("parity", {}, (0.0, 1.0)),
])
def test_targets_balance_and_baseline(kind, params, targets):
    task = make_task(kind, length=9, **params)
    x, y = task.sample(2000, seed=4)
    assert x.shape == (9, 2000, 1) and y.shape == (1, 2000, 1)
    assert set(np.unique(y)) == set(targets)
    assert np.sum(y == targets[1]) == 1000, "classes are exactly balanced"
    assert y.var() == pytest.approx(task.baseline, rel=1e-12)
    assert task.threshold() == pytest.approx(sum(targets) / 2)
    assert task_from_spec(task.spec()) == task
    assert not takes_dist(kind)


@pytest.mark.parametrize("kind", ["latch", "two_sequence"])
def test_latch_inputs_carry_the_class_then_noise(kind):
    task = make_task(kind, length=400, relevant=2, noise_var=0.2)
    x, y = task.sample(500, seed=1)
    cls = y[0, :, 0] == task.targets[1]
    np.testing.assert_array_equal(x[:2, :, 0], np.where(cls, 1.0, -1.0)[None].repeat(2, 0))
    noise = x[2:, :, 0]
    assert noise.var() == pytest.approx(0.2, rel=0.02) and abs(noise.mean()) < 0.01
    # the noise is independent of the class
    assert abs(noise[:, cls].mean() - noise[:, ~cls].mean()) < 0.01


def test_parity_target_is_the_parity_of_the_ones():
    x, y = make_task("parity", length=13).sample(3000, seed=2)
    assert set(np.unique(x)) == {-1.0, 1.0}
    odd = (x[:, :, 0] > 0).sum(axis=0) % 2 == 1
    np.testing.assert_array_equal(y[0, :, 0], odd.astype(float))
    # every step, the last included, is a fair coin
    assert np.all(np.abs((x[:, :, 0] > 0).mean(axis=1) - 0.5) < 0.04)


def test_bad_parameters_are_one_line_errors():
    with pytest.raises(LstmsearchError, match="relevant"):
        make_task("two_sequence", length=5, relevant=0)
    with pytest.raises(LstmsearchError, match="length"):
        make_task("latch", length=2, relevant=3)
    with pytest.raises(LstmsearchError, match="noise_var"):
        make_task("latch", length=5, noise_var=-1.0)
    with pytest.raises(LstmsearchError, match="no parameter"):
        make_task("parity", length=5, dist="uniform")
