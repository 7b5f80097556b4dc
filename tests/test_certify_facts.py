"""The float32 facts a certificate rests on, proved by exhaustive check over the float32 inputs:
the kernel's exp_neg / expm1_neg (on a >= 0) and sigmoid / tanh (on every float) are monotone
and never NaN for non-NaN input; hence their saturation thresholds hold for every input past them."""

import numpy as np
import pytest

from lstmsearch.certify import float32_facts as facts


@pytest.mark.slow
@pytest.mark.parametrize("name", facts.MONOTONE)
def test_kernel_activation_is_monotone_over_every_float32(name):
    bad, nans, n = facts.check_monotone(name)
    assert n >= 2 ** 31 - 2 ** 23  # every non-negative float (and every negative one for sigmoid / tanh)
    assert bad == 0 and nans == 0


@pytest.mark.slow
def test_sigmoid_is_the_modelled_composition_and_not_monotone():
    # every finite float: the compiled sigmoid is exactly exp_neg, 1 / (1 + e), e s (x < 0)
    assert facts.sigmoid_model_mismatches(0xFF800000, 0x7FFFFFFF, -1) == 0
    assert facts.sigmoid_model_mismatches(0x00000000, 0x7F800001, 1) == 0
    # ... which is why its image is built from exp_neg: it is not monotone for x < 0
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
