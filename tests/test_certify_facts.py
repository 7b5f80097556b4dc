"""The float32 facts a certificate rests on, proved by exhaustive check over the float32 inputs
(every bit pattern in the range, vectorised and in parallel chunks: seconds, not minutes): the
kernel's exp_neg / expm1_neg (on every float32 from +0 to +inf) and tanh (on every float32 from
-inf to +inf) are monotone and never NaN there; its sigmoid is exactly the composition of exp_neg
that sigmoid_image models, on every non-NaN float32; hence the saturation thresholds hold for
every input past them."""

import numpy as np
import pytest

from lstmsearch.certify import float32_facts as facts


@pytest.mark.slow
@pytest.mark.parametrize("name", facts.MONOTONE)
def test_kernel_activation_is_monotone_over_every_float32(name):
    bad, nans, n, example = facts.check_monotone(name)
    # every non-negative float +0 .. +inf (and every negative one -inf .. -0 for tanh)
    assert n == (2 if name == "tanh" else 1) * (0x7F800000 + 1)
    assert (bad, nans) == (0, 0), f"{name}: {bad} steps out of order (e.g. at x = {example!r}), {nans} NaN"


@pytest.mark.slow
def test_sigmoid_is_the_modelled_composition_and_not_monotone():
    # every finite float: the compiled sigmoid is exactly exp_neg, 1 / (1 + e), e s (x < 0)
    assert facts.sigmoid_model_mismatches() == (0, 0, 2 * (0x7F800000 + 1))
    # ... which is why its image is built from exp_neg: it is not monotone for x < 0 (and the
    # exhaustive scan does find such steps: it is not vacuous)
    bad, nans, n, example = facts.check_monotone("sigmoid")
    assert bad > 0 and nans == 0 and example < 0
    pair = np.array([example, np.nextafter(np.float32(example), np.float32(0))], np.float32)
    y_pair = facts.evaluate("sigmoid", pair)
    assert y_pair[0] > y_pair[1]
    x = np.array([-1.9999983, -1.9999982], np.float32)
    y = facts.evaluate("sigmoid", x)
    assert y[1] < y[0]
    lo, hi = facts.sigmoid_image((x[:1].astype(np.float64), x[1:].astype(np.float64)))
    assert lo[0] <= y.min() and y.max() <= hi[0]


def test_saturation_thresholds_follow():
    t_sig = facts.threshold_at("sigmoid", 1.0)
    t_tanh = facts.threshold_at("tanh", 1.0)
    assert 15.0 < t_sig < 18.0 and 8.0 < t_tanh < 10.0
    below = np.nextafter(np.float32(t_sig), np.float32(0))
    assert facts.evaluate("sigmoid", [t_sig])[0] == 1.0 and facts.evaluate("sigmoid", [below])[0] < 1.0
    # exp_neg(a) == 0 for every a past the smallest normal's log: monotone, and 0 there
    assert facts.evaluate("exp_neg", [87.34, np.inf]).tolist() == [0.0, 0.0]
    # the images are the functions at the ends
    lo, hi = facts.image("exp_neg", (np.array([1.0]), np.array([2.0])))
    assert lo[0] == facts.evaluate("exp_neg", [2.0])[0] and hi[0] == facts.evaluate("exp_neg", [1.0])[0]
