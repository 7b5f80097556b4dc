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


@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh_random"])
def test_invariant_contains_every_simulated_state_and_bounds_the_error(kind):
    if kind == "lstm":
        cell, params = construct("lstm", 2)
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


@pytest.mark.parametrize("kind,arith", [("gru", "float32"), ("rnn_tanh", "float32"), ("lstm", "real"), ("gru", "real")])
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
