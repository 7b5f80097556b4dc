"""The fast CPU backend's own pieces: the vectorisable float32 sigmoid/tanh/exp, the
generated kernels' less common paths (blocked H > KB, I > IMAX, odd batch, initial states,
several recorded steps), and determinism (threads, population slicing, evaluate chunks)."""

import numpy as np
import pytest

from lstmsearch import Cell, evaluate
from lstmsearch.kernels import _codegen, _fastmath, cpu, reference
from lstmsearch.tasks import make_task

TINY = np.float32(1.1754944e-38)  # smallest normal float32


def _ulps(got, ref):
    """|got - ref| in units of the float32 spacing at ref (ref float64)."""
    spacing = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / spacing


def _sample_float32(n=300_000, seed=0):
    """Random bit patterns over every finite float32 magnitude, both signs, plus a dense
    grid where the functions bend."""
    bits = np.random.default_rng(seed).integers(0, 0x7F800000, n, dtype=np.int64).astype(np.int32)
    a = bits.view(np.float32)
    grid = np.linspace(-30, 30, 200_001, dtype=np.float32)
    return np.concatenate([a, -a, grid, np.float32([0.0, 1e4, -1e4, 88.0, -88.0, 87.3, -87.3, 44.0, -44.0])])


def test_sigmoid_accurate_over_float32_range():
    x = _sample_float32()
    got = _fastmath.sigmoid_array(x)
    with np.errstate(over="ignore"):
        ref = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    normal = ref >= TINY
    assert _ulps(got[normal], ref[normal]).max() <= 4
    assert np.abs(got[~normal]).max() <= TINY  # below the normal range: 0
    assert np.all((got >= 0) & (got <= 1))


def test_tanh_accurate_over_float32_range():
    x = _sample_float32(seed=1)
    got = _fastmath.tanh_array(x)
    ref = np.tanh(x.astype(np.float64))
    tiny = np.abs(ref) < TINY  # subnormal results: absolute error only
    assert _ulps(got[~tiny], ref[~tiny]).max() <= 4
    assert np.abs(got[tiny] - ref[tiny]).max() <= TINY
    assert np.all(np.abs(got) <= 1)


def test_exp_neg_accurate():
    a = np.abs(_sample_float32(seed=2))
    got = _fastmath.exp_neg_array(a)
    ref = np.exp(-a.astype(np.float64))
    normal = ref >= TINY
    assert _ulps(got[normal], ref[normal]).max() <= 2
    assert np.all(got[~normal] == 0)


def test_sigmoid_times_tanh_accurate():
    rng = np.random.default_rng(4)
    a = np.concatenate([rng.normal(size=200_000) * 10, np.linspace(-100, 100, 20_001)]).astype(np.float32)
    b = np.concatenate([rng.normal(size=200_000) * 3, rng.permutation(np.linspace(-30, 30, 20_001))]).astype(np.float32)
    got = _fastmath.sigmoid_times_tanh_array(a, b)
    with np.errstate(over="ignore"):
        ref = np.tanh(b.astype(np.float64)) / (1.0 + np.exp(-a.astype(np.float64)))
    normal = np.abs(ref) >= TINY
    assert _ulps(got[normal], ref[normal]).max() <= 6
    assert np.abs(got[~normal] - ref[~normal]).max() <= TINY
    sat = _fastmath.sigmoid_times_tanh_array(np.float32([1e4, -1e4, 1e4, np.inf, -np.inf, np.nan, 1.0]),
                                             np.float32([1e4, 1e4, -1e4, 5.0, 5.0, 1.0, np.nan]))
    np.testing.assert_array_equal(sat[[0, 1, 2, 4]], [1, 0, -1, 0])
    assert abs(sat[3] - np.tanh(5.0)) <= 2e-7  # sigmoid(inf) = 1 exactly
    assert np.isnan(sat[5]) and np.isnan(sat[6])


def test_lstm_update_accurate_and_saturates():
    """c' and h' of one LSTM unit with two divisions (shared denominator for c')."""
    rng = np.random.default_rng(5)
    n = 300_000
    ai, af, ao = (rng.normal(size=n).astype(np.float32) * 6 for _ in range(3))
    ag = (rng.normal(size=n) * 3).astype(np.float32)
    c = (rng.normal(size=n) * 3).astype(np.float32)
    cn, hn = _fastmath.lstm_update_array(ai, af, ag, ao, c)
    A = [v.astype(np.float64) for v in (ai, af, ag, ao, c)]
    with np.errstate(over="ignore"):
        sg = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
        si, sf, so = sg(A[0]), sg(A[1]), sg(A[3])
    rc = sf * A[4] + si * np.tanh(A[2])
    scale = np.abs(sf * A[4]) + np.abs(si * np.tanh(A[2]))  # error relative to the terms
    assert (np.abs(cn - rc) / np.spacing(scale.astype(np.float32))).max() <= 8
    rh = so * np.tanh(cn.astype(np.float64))  # h' from the c' it was given
    big = np.abs(rh) >= TINY
    assert _ulps(hn[big], rh[big]).max() <= 6
    B = np.float32(1e4)
    f32 = lambda *v: np.float32(v)  # noqa: E731
    # (i, f, g, o, c): keep c exactly; forget and write +-1 exactly; NaN anywhere -> NaN
    cn, hn = _fastmath.lstm_update_array(f32(-B, B, -B, B, B, 1, 1, 1, 1),
                                         f32(B, B, -B, -B, np.inf, np.nan, 1, 1, 1),
                                         f32(0.3, B, B, -B, B, 1, np.nan, 1, 1),
                                         f32(B, -B, B, B, -np.inf, 1, 1, np.nan, 1),
                                         f32(0.7, -0.25, 5, 5, 0.5, 1, 1, 1, np.nan))
    np.testing.assert_array_equal(cn[:5], f32(0.7, 0.75, 0, -1, 1.5))
    assert hn[0] == _fastmath.tanh_array(f32(0.7))[0] and hn[1] == 0 and hn[3] == -_fastmath.tanh_array(f32(1))[0]
    assert np.isnan(cn[[5, 6, 8]]).all() and np.isnan(hn[5:]).all()


def test_saturation_and_non_finite():
    x = np.float32([1e4, -1e4, np.inf, -np.inf, 100.0, -100.0, np.nan])
    s = _fastmath.sigmoid_array(x)
    t = _fastmath.tanh_array(x)
    np.testing.assert_array_equal(s[:6], [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(t[:6], [1, -1, 1, -1, 1, -1])
    assert np.isnan(s[6]) and np.isnan(t[6])  # NaN in -> NaN out: the setting gets flagged
    assert np.isnan(_fastmath.exp_neg_array(np.float32([np.nan]))[0])


# One case per less common code path of the generated kernels (each compiles one kernel).
PATHS = [
    ("lstm", _codegen.KB + 3, 1),  # blocked recurrent sum (H > KB), remainder block
    ("gru", 3, _codegen.IMAX + 1),  # input term in a loop (I > IMAX), GRU's separate n-gate input
    ("rnn_relu", 2 * _codegen.KB, 2),  # two full blocks, no remainder
    ("lstm", 5, _codegen.IMAX + 2),  # LSTM with the input term in a loop, H not a multiple of 4
    ("rnn_tanh", 3, 1),  # one unit per pass (H odd)
]


@pytest.mark.parametrize("kind,H,I", PATHS)
def test_generated_paths_match_reference(kind, H, I):
    cell = Cell(kind, H, inputs=I)
    P, T, B = 3, 9, 7  # odd B: the half-tiles differ in size
    rng = np.random.default_rng(3)
    params = cell.init(P, seed=4)  # PyTorch init scale: bounded states
    x = rng.uniform(-1, 1, (T, B, I)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (P, B, H)).astype(np.float32)
    c0 = rng.uniform(-1, 1, (P, B, H)).astype(np.float32) if kind == "lstm" else None
    steps = np.array([0, 3, T - 1])
    hs, cs = cpu.run(cell, params, x, steps, h0, c0)
    rh, rc = reference.run(cell, params, x, steps, h0, c0)
    assert hs.shape == (P, 3, B, H) and hs.dtype == np.float32
    np.testing.assert_allclose(hs, rh, rtol=0, atol=2e-6)
    if kind == "lstm":
        np.testing.assert_allclose(cs, rc, rtol=0, atol=2e-6)
    else:
        assert cs is None


@pytest.mark.parametrize("kind,H,I", [("lstm", _codegen.KB + 3, 1), ("gru", 6, 2), ("rnn_tanh", 32, 1)])
def test_eight_float_vectors_give_the_same_bits(kind, H, I, tmp_path, monkeypatch):
    """The kernel shaped for CPUs without AVX-512 (8-float vectors, 2 sequence parts) sums in
    the same order as the default one: same bits."""
    cell = Cell(kind, H, inputs=I)
    src = _codegen.source(cell.kind, H, I, lanes=8)
    assert "lanes=8" in src and src != _codegen.source(cell.kind, H, I, lanes=16)
    simulate8 = _codegen.load_uncached(src, tmp_path, f"k8_{kind}_{H}")
    rng = np.random.default_rng(7)
    P, T, B = 3, 6, 37  # B: partial vectors in every part
    params = cell.init(P, seed=8)
    x = rng.uniform(-1, 1, (T, B, I)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (P, B, H)).astype(np.float32)
    steps = np.array([2, T - 1])
    want_h, want_c = cpu.run(cell, params, x, steps, h0)
    monkeypatch.setattr(cpu, "kernel", lambda code, H, I: simulate8)
    got_h, got_c = cpu.run(cell, params, x, steps, h0)
    np.testing.assert_array_equal(got_h, want_h)
    if kind == "lstm":
        np.testing.assert_array_equal(got_c, want_c)


def test_bit_identical_across_threads_and_slicing(monkeypatch):
    cell = Cell("lstm", 4)
    params = cell.init(40, seed=1, method="uniform", scale=3.0)
    x = np.random.default_rng(0).uniform(-1, 1, (30, 300, 1)).astype(np.float32)  # B > one tile
    steps = np.array([10, 29])
    monkeypatch.setenv("LSTMSEARCH_THREADS", "2")
    a, ac = cpu.run(cell, params, x, steps)
    monkeypatch.setenv("LSTMSEARCH_THREADS", "1")
    b, bc = cpu.run(cell, params, x, steps)
    c, cc = cpu.run(cell, params[17:23], x, steps)
    assert np.array_equal(a, b) and np.array_equal(ac, bc)
    assert np.array_equal(a[17:23], c) and np.array_equal(ac[17:23], cc)


def test_non_finite_setting_flags_only_itself():
    cell = Cell("gru", 3)
    params = cell.init(4, seed=2)
    params[1, 5] = np.nan  # NaN weight: that setting's states are NaN
    params[2, :] = 1e30  # huge weights: the gates saturate, the states stay finite
    x = np.random.default_rng(1).uniform(-1, 1, (6, 5, 1)).astype(np.float32)
    hs, _ = cpu.run(cell, params, x, np.array([5]))
    assert np.isfinite(hs).all(axis=(1, 2, 3)).tolist() == [True, False, True, True]
    assert np.isnan(hs[1]).any()
    ref = reference.run(cell, params[[0, 3]], x, np.array([5]))[0]
    np.testing.assert_allclose(hs[[0, 3]], ref, rtol=0, atol=2e-6)


def test_evaluate_chunks_give_identical_table():
    cell = Cell("lstm", 3)
    task = make_task("recall_first", length=6)
    params = cell.init(10, seed=3)
    one = evaluate(cell, params, task, n_sequences=16, seed=1)
    chunked = evaluate(cell, params, task, n_sequences=16, seed=1, chunk_size=3)
    assert one.equals(chunked)
