"""Certificates (lstmsearch.certify): sound interval arithmetic, soundness of the certified
boxes and bounds against simulation (cpu float32, reference float64) on random and
adversarial sequences, a broken setting refuted, and the CLI."""

from fractions import Fraction

import numpy as np
import pytest

from lstmsearch.analysis.adversary import sequence_errors, worst_inputs
from lstmsearch.analysis.constructions import construct
from lstmsearch.cells import Cell
from lstmsearch.certify import certify
from lstmsearch.certify import intervals as iv
from lstmsearch.errors import LstmsearchError
from lstmsearch.evaluate import simulate
from lstmsearch.tasks import make_task

RNG = np.random.default_rng(5)


def _rand_f32(n, scale):
    return (RNG.standard_normal(n) * scale * 10.0 ** RNG.integers(-3, 3, n)).astype(np.float32).astype(np.float64)


def _box(n, scale):
    a, b = _rand_f32(n, scale), _rand_f32(n, scale)
    return np.minimum(a, b), np.maximum(a, b)


def test_real_interval_ops_contain_exact_results():
    A, B = _box(300, 1.0), _box(300, 1.0)
    for op, fn in ((iv.r_add, lambda x, y: x + y), (iv.r_sub, lambda x, y: x - y), (iv.r_mul, lambda x, y: x * y)):
        lo, hi = op(A, B)
        for i in range(300):
            for _ in range(3):
                x = Fraction(A[0][i]) + (Fraction(A[1][i]) - Fraction(A[0][i])) * Fraction(int(RNG.integers(0, 5)), 4)
                y = Fraction(B[0][i]) + (Fraction(B[1][i]) - Fraction(B[0][i])) * Fraction(int(RNG.integers(0, 5)), 4)
                v = fn(x, y)
                assert Fraction(lo[i]) <= v <= Fraction(hi[i])


def test_matvec_contains_exact_sum():
    W = _rand_f32(6 * 5, 1.0).reshape(6, 5)
    h = _box(4 * 5, 1.0)
    h = (h[0].reshape(4, 5), h[1].reshape(4, 5))
    bias = _rand_f32(6, 1.0)
    lo, hi = iv.r_matvec(W, h, bias)
    for k in range(4):
        pt = [Fraction(h[0][k, j]) for j in range(5)]
        for r in range(6):
            v = Fraction(bias[r]) + sum(Fraction(W[r, j]) * pt[j] for j in range(5))
            assert Fraction(lo[k, r]) <= v <= Fraction(hi[k, r])


def _rn32(fr: Fraction) -> float:
    """Round a Fraction to the nearest float32 exactly (ties to even) via the two neighbours."""
    f = np.float32(float(fr))
    lo = f if Fraction(float(f)) <= fr else np.nextafter(f, np.float32(-np.inf))
    hi = np.nextafter(lo, np.float32(np.inf)) if Fraction(float(lo)) < fr else lo
    dlo, dhi = fr - Fraction(float(lo)), Fraction(float(hi)) - fr
    if dlo < dhi or (dlo == dhi and int(np.array(lo).view(np.uint32)) % 2 == 0):
        return float(lo)
    return float(hi)


def test_float32_fma_and_ops_enclose_the_rounded_results():
    A, B, C = _box(400, 1.0), _box(400, 1.0), _box(400, 1e-3)
    fma = iv.f_fma(A, B, C)
    either = iv.f_fma_either(A, B, C)
    add = iv.f_add(A, C)
    for i in range(400):
        a, b, c = (Fraction(X[j][i]) for X, j in ((A, 0), (B, 1), (C, 0)))
        fused = _rn32(a * b + c)
        split = _rn32(Fraction(_rn32(a * b)) + c)
        assert fma[0][i] <= fused <= fma[1][i]
        assert either[0][i] <= min(fused, split) and max(fused, split) <= either[1][i]
        assert add[0][i] <= _rn32(a + c) <= add[1][i]
    # exactness where the float32 result is exact: c + 0 == c
    c = _rand_f32(50, 1.0)
    z = np.zeros(50)
    lo, hi = iv.f_fma((z, z), (c, c), (c, c))
    assert np.array_equal(lo, c) and np.array_equal(hi, c)


def _slice_of(cert, x1):
    lo, hi = cert.slice_edges
    return np.argmax((lo[None, :] <= x1[:, None]) & (x1[:, None] <= hi[None, :]), axis=1)


def _sequences(T, B, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (T, B, 1)).astype(np.float32)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh_random"])
def test_invariant_contains_every_simulated_state_and_bounds_the_error(kind):
    if kind in ("lstm", "gru"):
        cell, params = construct(kind, 2)
    else:  # a random contracting RNN with a fitted-looking readout: small weights
        cell = Cell("rnn_tanh", 3)
        params = (np.random.default_rng(3).standard_normal(cell.n_params) * 0.3).astype(np.float32)
    cert = certify(cell, params, -1.0, 1.0, arithmetic="float32", slices=401, tol=10.0, counterexample=False)
    assert cert.kind == "all_n", cert.statement
    task = make_task("recall_first", length=30)
    adv = worst_inputs(cell, params, task, lengths=[30], budget=64, seed=1)[0].sequence[:, None, :]
    x = np.concatenate([_sequences(30, 300), adv.astype(np.float32)], axis=1)
    out = simulate(cell, params, x, backend="cpu", return_sequence=True)
    hs = out[0] if cell.kind == "lstm" else out
    k = _slice_of(cert, x[0, :, 0].astype(np.float64))
    lo, hi = cert.state_boxes["h"]
    assert np.all(lo[k][None] <= hs[0]) and np.all(hs[0] <= hi[k][None])
    if cell.kind == "lstm":
        clo, chi = cert.state_boxes["c"]
        assert np.all(clo[k][None] <= out[1][0]) and np.all(out[1][0] <= chi[k][None])
    for T in (1, 2, 7, 30):
        assert sequence_errors(cell, params, x[:T]).max() <= cert.eps


@pytest.mark.parametrize("kind,arith", [("rnn_tanh", "float32"), ("lstm", "real"), ("gru", "real")])
def test_bounds_up_to_N_hold_against_simulation(kind, arith):
    cell, params = construct(kind, 4 if kind == "rnn_tanh" else 2)
    cert = certify(cell, params, -1.0, 1.0, arithmetic=arith, slices=2001, tol=3e-3, max_length=40,
                   counterexample=False)
    assert cert.kind in ("up_to_n", "all_n") and len(cert.eps_by_length) >= 40
    backend = "cpu" if arith == "float32" else "reference"
    task = make_task("recall_first", length=40)
    adv = worst_inputs(cell, params, task, lengths=[40], budget=64, seed=2)[0].sequence[:, None, :]
    x = np.concatenate([_sequences(40, 200, 1), adv.astype(np.float32)], axis=1)
    for T in (1, 3, 17, 40):
        e = sequence_errors(cell, params, x[:T], backend=backend).max()
        assert e <= cert.eps_by_length[T - 1] + (1e-12 if arith == "real" else 0.0)


def test_weakened_forget_gate_is_refuted_with_a_real_counterexample():
    cell, params = construct("lstm", 2)
    p = cell.unflatten(params.reshape(1, -1))
    p = {k: v[0].copy() for k, v in p.items()}
    p["bias_ih_l0"][cell.gate_rows("f").start + 1] = 3.0  # the memory forgets ~5 % per step
    broken = cell.flatten(p)
    cert = certify(cell, broken, -1.0, 1.0, arithmetic="float32", tol=3e-3, slices=2001, max_length=50, budget=128)
    assert cert.kind != "all_n" and cert.N < 50
    assert cert.refuted and cert.counterexample_error > 3e-3
    x = cert.counterexample.reshape(-1, 1, 1)
    assert sequence_errors(cell, broken, x)[0] == pytest.approx(cert.counterexample_error, rel=1e-6)
    assert "refuting" in cert.statement


def test_bad_input_is_refused():
    cell, params = construct("lstm", 2)
    with pytest.raises(LstmsearchError, match="--box"):
        certify(cell, params, -np.inf, 1.0)
    with pytest.raises(LstmsearchError, match="arithmetic"):
        certify(cell, params, -1.0, 1.0, arithmetic="float16")


def test_cli_certify_construction_and_errors(capsys):
    from lstmsearch.cli.main import main

    assert main(["certify", "--cell", "lstm", "--hidden", "2", "--arithmetic", "float32", "--tol", "3e-3"]) == 0
    out = capsys.readouterr().out
    assert "For every n >= 1 and every x_1..x_n in [-1, 1], the float32 cpu kernel's output differs" in out
    assert main(["certify", "--cell", "lstm", "--hidden", "2", "--dist", "normal"]) == 2
    err = capsys.readouterr().err
    assert "unbounded; pass --box LOW HIGH" in err and len(err.strip().splitlines()) == 1
    assert main(["certify", "recall_first_lstm32", "99999999", "--data", "data/examples"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_min_length_claims_only_from_n0_on_and_holds_there():
    # the tanh-RNN relay construction read out from its memory alone: y = m_n / gain is 0 at
    # n = 1 (the memory is written at step 2), so x_1 is missed at n = 1 and held from n = 2 on
    cell, params = construct("rnn_tanh", 4)
    p = {k: v[0].copy() for k, v in cell.unflatten(params.reshape(1, -1)).items()}
    p["weight_out"][0, 1:3] = 0.0  # drop the relays (which carry x_1 at step 1) from the readout
    memory_only = cell.flatten(p)
    task = make_task("recall_first", length=30)
    strict = certify(cell, memory_only, -1.0, 1.0, slices=2001, tol=3e-3, max_length=30, budget=64, task=task)
    assert strict.kind == "not_certified" and strict.refuted and strict.counterexample_length == 1
    assert sequence_errors(cell, memory_only, strict.counterexample.reshape(-1, 1, 1)).max() > 0.5
    late = certify(cell, memory_only, -1.0, 1.0, slices=2001, tol=3e-3, max_length=30, counterexample=False,
                   min_length=2)
    assert late.kind in ("up_to_n", "all_n") and late.min_length == 2 and "2 <= n" in late.statement \
        or late.kind == "all_n" and "n >= 2" in late.statement
    x = np.concatenate([_sequences(30, 200, 3),
                        worst_inputs(cell, memory_only, task, lengths=[30], budget=64, seed=1)[0].sequence[:, None, :]
                        .astype(np.float32)], axis=1)
    for T in (2, 5, 30):
        assert sequence_errors(cell, memory_only, x[:T]).max() <= late.eps
    with pytest.raises(LstmsearchError, match="min_length"):
        certify(cell, memory_only, -1.0, 1.0, max_length=10, min_length=11)


# ------------------------------------------------------------------ the GRU's exact update
def _points_in(box, size, rng):
    """float32 points of a float32 box (K,): both ends and random points between, (K, size)."""
    lo, hi = (np.asarray(b, np.float64)[:, None] for b in box)
    u = rng.uniform(0.0, 1.0, (lo.shape[0], size))
    u[:, 0], u[:, 1] = 0.0, 1.0
    return np.clip((lo + u * (hi - lo)).astype(np.float32), lo.astype(np.float32), hi.astype(np.float32))


def _gru_update_forms(h, n, z):
    """The float32 ``n + z (h - n)`` as the cpu kernel may compile it (fused: one rounding of
    z d + n, computed exactly in float64 and rounded; unfused: RN(RN(z d) + n)) and PyTorch's
    ``(h - n) * z + n``; h, n, z float32 arrays."""
    d = (h - n).astype(np.float32)
    forms = {"fused": (z.astype(np.float64) * d + n.astype(np.float64)).astype(np.float32),
             "unfused": ((z * d).astype(np.float32) + n).astype(np.float32)}
    try:
        import torch
    except ImportError:
        return forms
    th, tn, tz = (torch.from_numpy(np.ascontiguousarray(a)) for a in (h, n, z))
    forms["torch"] = ((th - tn) * tz + tn).numpy()
    return forms


def _sterbenz_boxes(K, rng):
    """Random float32 boxes with n/2 <= h <= 2n for every pair of points, half of them negative."""
    n_lo = iv.rn32(10.0 ** rng.uniform(-40, 30, K))  # subnormal to large
    n_hi = iv.ru32(n_lo * rng.uniform(1.0, 1.9, K))
    a = iv.ru32(n_hi / 2)  # rounded up: halving a subnormal float32 is not exact
    b = iv.rd32(2 * n_lo)
    t = np.sort(rng.uniform(0.0, 1.0, (2, K)), axis=0)
    h_lo, h_hi = iv.ru32(a + t[0] * (b - a)), iv.rd32(a + t[1] * (b - a))
    h_lo, h_hi = np.maximum(h_lo, a), np.minimum(np.maximum(h_hi, h_lo), b)
    neg = rng.uniform(size=K) < 0.5
    flip = lambda lo, hi: (np.where(neg, -hi, lo), np.where(neg, -lo, hi))  # noqa: E731
    return flip(h_lo, h_hi), flip(n_lo, n_hi)


def test_gru_update32_exact_case_returns_h_bit_for_bit():
    """Sterbenz (1974): z == 1.0f and n/2 <= h <= 2n give n + z (h - n) == h exactly, fused or
    not and in PyTorch's order; gru_update32 returns the h box itself there."""
    from lstmsearch.certify.steps import gru_update32

    rng = np.random.default_rng(11)
    K = 400
    h, n = _sterbenz_boxes(K, rng)
    assert np.all(h[0] <= h[1]) and np.all(n[0] <= n[1])
    one = (np.ones(K), np.ones(K))
    lo, hi = gru_update32(one, h, n)
    assert np.array_equal(lo, h[0]) and np.array_equal(hi, h[1])  # not widened
    hp, npt = _points_in(h, 64, rng), _points_in(n, 64, rng)
    forms = _gru_update_forms(hp, npt, np.ones_like(hp))
    assert len(forms) == (3 if "torch" in forms else 2)
    for name, got in forms.items():
        assert np.array_equal(got.view(np.uint32), hp.view(np.uint32)), name
        assert np.all((lo[:, None] <= got) & (got <= hi[:, None])), name
    # the cpu kernel itself (Numba, fastmath contract): one GRU step with z = sigma(20) == 1.0f
    # from random states h_0 in [0.3, 0.9] and candidates n = tanh(x) in [0.45, 0.6]
    cell = Cell("gru", 1)
    p = {k: v[0].copy() for k, v in cell.unflatten(np.zeros((1, cell.n_params), np.float32)).items()}
    p["bias_ih_l0"][cell.gate_rows("z")] = 20.0
    p["weight_ih_l0"][cell.gate_rows("n"), 0] = 1.0
    params = cell.flatten(p)
    B = 4096
    h0 = rng.uniform(0.3, 0.9, (B, 1)).astype(np.float32) * np.where(rng.uniform(size=(B, 1)) < 0.5, -1, 1).astype(np.float32)
    x = (np.arctanh(rng.uniform(0.45, 0.6, (1, B, 1))) * np.sign(h0)[None]).astype(np.float32)
    h1 = simulate(cell, params, x, backend="cpu", h0=h0)[0]
    assert np.array_equal(h1.view(np.uint32), h0.view(np.uint32))


@pytest.mark.parametrize("case", ["opposite signs", "h above 2n"])
def test_gru_update32_outside_the_exact_case_still_encloses_but_widens(case):
    """Just outside the lemma's condition the result is not h in general: the box must still
    enclose every float32 result, and it is wider than the h box."""
    from lstmsearch.certify.steps import gru_update32

    rng = np.random.default_rng(12)
    K = 200
    if case == "opposite signs":
        h = (np.full(K, iv.rn32(0.3)), np.full(K, iv.rn32(0.9)))
        n = (np.full(K, iv.rn32(-0.6)), np.full(K, iv.rn32(-0.45)))
    else:
        h = (np.full(K, iv.rn32(2.5)), np.full(K, iv.rn32(3.7)))
        n = (np.full(K, iv.rn32(1.0)), np.full(K, iv.rn32(1.2)))
    one = (np.ones(K), np.ones(K))
    lo, hi = gru_update32(one, h, n)
    assert np.all((lo < h[0]) | (hi > h[1]))  # widened
    hp, npt = _points_in(h, 256, rng), _points_in(n, 256, rng)
    moved = False
    for name, got in _gru_update_forms(hp, npt, np.ones_like(hp)).items():
        assert np.all((lo[:, None] <= got) & (got <= hi[:, None])), name
        moved |= bool(np.any(got != hp))
    assert moved  # the rounding of h - n does change h here: the condition is needed


def test_gru_construction_is_certified_for_every_n_in_float32_not_in_real_arithmetic():
    from lstmsearch.certify import DEFAULT_TOL

    cell, params = construct("gru", 2)
    cert = certify(cell, params, -1.0, 1.0, arithmetic="float32", counterexample=False)
    assert cert.kind == "all_n" and cert.N == -1 and cert.eps <= DEFAULT_TOL, cert.statement
    assert cert.statement.startswith("For every n >= 1 and every x_1..x_n in [-1, 1], the float32 cpu kernel")
    # the invariant's memory boxes are those after step 1: the update returns h itself
    first_hi = cert.state_boxes["h"][1][:, 1]
    assert np.all(cert.state_boxes["h"][0][:, 1] > 0) and np.all(first_hi < 2 * cert.state_boxes["h"][0][:, 1])
    # in exact arithmetic z = sigma(20) < 1: the memory leaks, and no bound holds for every n
    real = certify(cell, params, -1.0, 1.0, arithmetic="real", max_length=50, counterexample=False)
    assert real.kind == "up_to_n" and real.N >= 50 and real.eps <= DEFAULT_TOL
    assert any("exceeds the tolerance" in note for note in real.notes)


def test_gru_construction_keeps_its_memory_bit_for_bit_for_100003_steps():
    """cpu kernel (and PyTorch's nn.GRU) at n = 100003 on adversarial sequences: h_mem after
    every step equals h_mem after step 1, and |y - x_1| stays within the all-n certificate."""
    cell, params = construct("gru", 2)
    T = 100003
    x = np.empty((T, 6, 1), np.float32)
    x[:, 0], x[:, 1] = 1.0, -1.0                            # constant extremes
    x[:, 2, 0] = np.where(np.arange(T) % 2 == 0, 1.0, -1.0)  # alternating extremes
    x[:, 3, 0] = -x[:, 2, 0]
    x[:, 4, 0] = np.random.default_rng(13).uniform(-1, 1, T)
    x[:, 5], x[0, 5] = 1.0, -1.0                             # x_1 at one end, every later input at the other
    hs = simulate(cell, params, x, backend="cpu", return_sequence=True)[0]  # (T, B, H)
    mem = hs[:, :, 1]
    assert np.all(hs[:, :, 0] == 1.0)  # the flag
    assert np.array_equal(mem.view(np.uint32), np.broadcast_to(mem[0], mem.shape).view(np.uint32))
    cert = certify(cell, params, -1.0, 1.0, arithmetic="float32", counterexample=False)
    assert sequence_errors(cell, params, x).max() <= cert.eps
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        out, _ = cell.torch_model(params).rnn(torch.from_numpy(x))
    tmem = out.numpy()[:, :, 1]
    assert np.array_equal(tmem.view(np.uint32), np.broadcast_to(tmem[0], tmem.shape).view(np.uint32))


def test_gru_update32_exact_zero_gate_returns_the_other_box_bit_for_bit():
    """z == 0.0f: n + 0 (h - n) == n exactly, fused or not (the MGU's shut forget gate keeps h:
    its lerp(f, h, n) = h + f (n - h) is this function with h and n swapped); z just above 0 widens."""
    from lstmsearch.certify.steps import gru_update32

    rng = np.random.default_rng(21)
    K = 300
    n_lo = iv.rn32(rng.uniform(-1, 1, K))
    n_hi = iv.rn32(n_lo + rng.uniform(0, 0.1, K))
    h_lo = iv.rn32(rng.uniform(-1, 1, K))
    h = (h_lo, iv.rn32(h_lo + rng.uniform(0, 0.1, K)))
    zero = (np.zeros(K), np.zeros(K))
    lo, hi = gru_update32(zero, h, (n_lo, n_hi))
    assert np.array_equal(lo, n_lo) and np.array_equal(hi, n_hi)
    tiny = (np.zeros(K), np.full(K, 1e-30))
    lo, hi = gru_update32(tiny, h, (n_lo, n_hi))
    assert np.all(lo <= n_lo) and np.all(hi >= n_hi) and np.any((lo < n_lo) | (hi > n_hi))
    # the kernels' own forms at z = 0.0f return n bit for bit
    hp, npt = _points_in(h, 32, rng), _points_in((n_lo, n_hi), 32, rng)
    for name, got in _gru_update_forms(hp, npt, np.zeros_like(hp)).items():
        assert np.array_equal(got, npt), name


def test_mgu_construction_is_certified_for_every_n_in_float32_and_keeps_its_memory_bit_for_bit():
    """The MGU's memory forget gate is sigma(-120) == 0.0f after step 1: h + 0 (n - h) = h, so the
    float32 invariant closes at the boxes after step 1; in exact arithmetic the gate is e^-120, not 0,
    and the claim is up to the propagation limit. The cpu kernel and the PyTorch export keep the
    memory bit for bit on adversarial sequences."""
    from lstmsearch.analysis.constructions import error_bound
    from lstmsearch.certify import DEFAULT_TOL

    cell, params = construct("mgu", 2)
    cert = certify(cell, params, -1.0, 1.0, arithmetic="float32", counterexample=False)
    assert cert.kind == "all_n" and cert.min_length == 1 and cert.eps <= DEFAULT_TOL, cert.statement
    real = certify(cell, params, -1.0, 1.0, arithmetic="real", max_length=50, counterexample=False)
    assert real.kind == "up_to_n" and real.N >= 50 and real.eps <= DEFAULT_TOL
    assert error_bound("mgu", 10 ** 40) < 1e-4  # the closed form: a leak of e^-120 per step
    T = 20003
    x = np.empty((T, 5, 1), np.float32)
    x[:, 0], x[:, 1] = 1.0, -1.0
    x[:, 2, 0] = np.where(np.arange(T) % 2 == 0, 1.0, -1.0)
    x[:, 3, 0] = np.random.default_rng(13).uniform(-1, 1, T)
    x[:, 4], x[0, 4] = 1.0, -1.0
    hs = simulate(cell, params, x, backend="cpu", return_sequence=True)[0]  # (T, B, H)
    assert np.all(hs[:, :, 0] == 1.0)  # the flag: sigma(20) tanh(20) == 1.0f
    mem = hs[:, :, 1]
    assert np.array_equal(mem.view(np.uint32), np.broadcast_to(mem[0], mem.shape).view(np.uint32))
    assert sequence_errors(cell, params, x).max() <= cert.eps
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        out, _ = cell.torch_model(params).rnn(torch.from_numpy(x))
    tmem = out.numpy()[:, :, 1]  # PyTorch's tanh may round step 1 differently; it then holds it
    assert np.array_equal(tmem.view(np.uint32), np.broadcast_to(tmem[0], tmem.shape).view(np.uint32))
    assert np.abs(tmem[0] - mem[0]).max() <= 1e-9


@pytest.mark.parametrize("case", ["gates near 1/2, c across 0", "wide random boxes"])
def test_lstm_float32_enclosures_contain_the_kernel_and_are_tight_across_zero(case):
    """lstm_cell32 / lstm_hidden32 enclose the cpu kernel's float32 c' and h' (Numba, fastmath
    contract) at points of the boxes, also for a g or c' box across 0 (taken by its two ends) and an
    output gate o < 0 (sigma(o) as the monotone e / (1 + e) within 6 roundings). Near 0 and 1/2 the
    boxes are at most 1.2x the spread of the kernel's values (they were up to 3x, and 2x across 0:
    a sign decided in exact arithmetic came out undecided in float32)."""
    from lstmsearch.certify.steps import lstm_cell32, lstm_hidden32
    from lstmsearch.kernels._fastmath import lstm_update_array

    rng = np.random.default_rng(5)
    K = 300
    if case == "gates near 1/2, c across 0":
        centre = {"ai": 30.0, "af": -30.0, "ag": 0.0, "ao": -1e-3, "c": 0.0}
        half = {"ai": 1e-3, "af": 1e-3, "ag": 1e-3, "ao": 5e-4, "c": 1e-3}
        boxes = {}
        for k in centre:
            mid = centre[k] + rng.uniform(-1, 1, K) * half[k]
            w = rng.uniform(0.2, 1.0, K) * half[k]
            boxes[k] = (iv.rn32(mid - w), iv.rn32(mid + w))
    else:
        boxes = {}
        for k in ("ai", "af", "ag", "ao", "c"):
            a, b = rng.uniform(-6, 6, K), rng.uniform(-6, 6, K)
            boxes[k] = (iv.rn32(np.minimum(a, b)), iv.rn32(np.maximum(a, b)))
    cn_box = lstm_cell32(boxes["ai"], boxes["af"], boxes["ag"], boxes["c"])
    h_box = lstm_hidden32(boxes["ao"], cn_box)
    pts = {k: _points_in(v, 200, rng) for k, v in boxes.items()}
    cn, hn = lstm_update_array(pts["ai"], pts["af"], pts["ag"], pts["ao"], pts["c"])
    cn, hn = cn.astype(np.float64), hn.astype(np.float64)
    assert np.all((cn_box[0][:, None] <= cn) & (cn <= cn_box[1][:, None]))
    assert np.all((h_box[0][:, None] <= hn) & (hn <= h_box[1][:, None]))
    # h' over the c' box itself (points of the cn box, not only the ones the kernel reached)
    cpts = _points_in(cn_box, 200, rng).astype(np.float32)
    _, hc = lstm_update_array(np.full_like(cpts, -30.0), np.full_like(cpts, 30.0), np.zeros_like(cpts),
                              pts["ao"], cpts)  # i shut, f open: c' = c (bit for bit), h' = sigma(o) tanh(c)
    assert np.all((h_box[0][:, None] <= hc) & (hc <= h_box[1][:, None]))
    if case == "gates near 1/2, c across 0":
        spread = hn.max(axis=1) - hn.min(axis=1)
        assert np.all(h_box[1] - h_box[0] <= 1.2 * spread + 1e-9)


def test_gru_update32_a_unit_held_at_zero_stays_exactly_zero():
    """z == 1.0f and h == 0 (a GRU unit held at h_0 = 0 until its step): n + z (h - n) is exactly 0
    for every finite n, fused or not and in PyTorch's order; gru_update32 returns [0, 0] (it used to
    widen it by the rounding of n, which a large self-weight turned into an undecided sign)."""
    from lstmsearch.certify.steps import gru_update32

    rng = np.random.default_rng(13)
    K = 300
    a, b = rng.uniform(-3, 3, K), rng.uniform(-3, 3, K)
    n = (iv.rn32(np.minimum(a, b)), iv.rn32(np.maximum(a, b)))
    zero, one = (np.zeros(K), np.zeros(K)), (np.ones(K), np.ones(K))
    lo, hi = gru_update32(one, zero, n)
    assert np.all(lo == 0.0) and np.all(hi == 0.0)
    npt = _points_in(n, 64, rng)
    for name, got in _gru_update_forms(np.zeros_like(npt), npt, np.ones_like(npt)).items():
        assert np.all(got == 0.0), name
    # z just below 1 moves h towards n: not the exact case, and the box is not [0, 0]
    below = (np.full(K, iv.rn32(1 - 2 ** -24)), np.ones(K))
    lo, hi = gru_update32(below, zero, n)
    assert np.all((lo < 0) | (hi > 0))
