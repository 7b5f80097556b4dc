"""The kernels generated from the cell kinds' definitions (issue 22) are the kernels of release 0.2
bit for bit: every stored row reproduces as before.

The oracle is the old source generator itself, frozen in benchmarks/legacy_codegen.py, compiled
without cache next to today's kernel, on settings and inputs chosen to hurt: weights of 1000s
(saturated gates), +-inf inputs (NaN states), and the code paths of the generator: one-gate
cells with 4 units per pass (H = 4) and one (H = 3), inputs summed in a loop (I = 9 > IMAX),
the recurrent sum in blocks (H = 33 > KB). Equal means equal bits, except that any NaN equals
any NaN (IEEE 754 leaves the payload of a NaN from arithmetic unspecified, and LLVM's order of
independent operations may pass on another one).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import lstmsearch as ls
from lstmsearch.kernels import _codegen

LEGACY = Path(__file__).resolve().parents[1] / "benchmarks" / "legacy_codegen.py"
#: The old generator's integer codes of the kinds.
OLD_CODES = {"rnn_tanh": 0, "rnn_relu": 1, "lstm": 2, "gru": 3}
CASES = [("lstm", 4, 1), ("gru", 9, 9), ("rnn_tanh", 4, 1), ("rnn_relu", 3, 1), ("lstm", 33, 1)]


def legacy():
    spec = importlib.util.spec_from_file_location("lstmsearch_legacy_codegen", LEGACY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def same_bits(a, b):
    nan = np.isnan(a) & np.isnan(b)
    return np.array_equal(np.where(nan, 0, a.view(np.int32)), np.where(nan, 0, b.view(np.int32)))


def outputs(fn, cell, params, x, steps):
    P, H, B = params.shape[0], cell.hidden, x.shape[1]
    out_h = np.full((P, len(steps), H, B), 7.0, np.float32)
    out_c = np.full((P, len(steps), H, B) if cell.memory else (1, 1, 1, 1), 7.0, np.float32)
    h0 = np.zeros((1, H, B), np.float32)
    fn(params, np.ascontiguousarray(x.transpose(0, 2, 1)), steps, h0, h0, out_h, out_c)
    return out_h, out_c


@pytest.mark.parametrize("kind,H,I", CASES)
def test_generated_kernels_are_the_old_ones_bit_for_bit(kind, H, I, tmp_path):
    old = legacy()
    cell = ls.Cell(kind, H, I)
    rng = np.random.default_rng(H + I)
    params = (rng.standard_normal((5, cell.n_params)) * 3).astype(np.float32)
    params[0] *= 1000.0  # saturated gates
    params[1] *= 0.01
    x = (rng.standard_normal((9, 300, I)) * 2).astype(np.float32)
    x[2, :5] = np.inf
    x[3, 5:9] = -np.inf
    steps = np.array([0, 3, 8], np.int64)
    old_fn = old.load_uncached(old.source(OLD_CODES[kind], H, I), str(tmp_path), f"legacy_{kind}_{H}_{I}")
    got_old = outputs(old_fn, cell, params, x, steps)
    got_new = outputs(_codegen.kernel(kind, H, I), cell, params, x, steps)
    assert np.isfinite(got_new[0]).mean() > 0.5  # most states finite: the comparison is not NaN against NaN
    for a, b in zip(got_old, got_new):
        assert same_bits(a, b)


def test_the_comparison_sees_one_bit():
    a = np.array([1.0, np.nan], np.float32)
    b = a.copy()
    assert same_bits(a, b)
    b[0] = np.nextafter(np.float32(1.0), np.float32(2.0))
    assert not same_bits(a, b)
