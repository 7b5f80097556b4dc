"""Horizons: the linear-growth induction (lstmsearch.certify.horizon) against direct interval
propagation, against settings built to fool it (re-simulated with the float64 reference), and the
shipped rows' table (docs/horizons.md) against recomputation."""

import numpy as np
import pytest

from lstmsearch.analysis.adversary import sequence_errors
from lstmsearch.analysis.constructions import construct
from lstmsearch.certify import _slices, _zero_state, certify
from lstmsearch.certify.horizon import jacobian_bound, linear_growth
from lstmsearch.certify.steps import readout_error, step, weights
from lstmsearch.evaluate import simulate


def _boxes(cell, params, K, n):
    """Slices of x_1, inputs, and the directly propagated boxes after steps 1 .. n (real arithmetic)."""
    w = weights(cell, params)
    x1 = _slices(-1.0, 1.0, K, "real")
    xall = (np.full((K, 1), -1.0), np.full((K, 1), 1.0))
    out = [step(cell, w, _zero_state(cell, K), x1, "real")]
    for _ in range(n - 1):
        out.append(step(cell, w, out[-1], xall, "real"))
    return w, x1, xall, out


@pytest.mark.parametrize("kind,big", [("gru", 10), ("lstm", 10)])
def test_linear_growth_boxes_hold_the_states_and_agree_with_direct_propagation(kind, big):
    """The proved boxes B + r(m) after step n1 + m contain every state of float64-reference runs
    (random and constant-extreme inputs after x_1); they and the directly propagated interval boxes
    both enclose the reachable set, so they intersect, and the proved bound is close to the direct one."""
    cell, params = construct(kind, 2, big=big)
    n1, K, T = 3, 101, 43
    w, x1, xall, boxes = _boxes(cell, params, K, T)
    lg = linear_growth(cell, w, boxes[n1 - 1], xall, x1, tol=0.2, n1=n1, steps=T - n1, keep=True)
    assert lg is not None and lg.M >= T - n1
    rng = np.random.default_rng(0)
    B = 96
    x = rng.uniform(-1, 1, (T, B, 1))
    x[1:, :16] = 1.0
    x[1:, 16:32] = -1.0
    x[1::2, 32:48] = 1.0
    x[2::2, 32:48] = -1.0
    out = simulate(cell, params, x.astype(np.float32), backend="reference", return_sequence=True)
    states = {"h": out[0][0], "c": out[1][0]} if cell.memory else {"h": out[0]}
    k = np.argmax((x1[0][None, :, 0] <= x[0, :, 0, None]) & (x[0, :, 0, None] <= x1[1][None, :, 0]), axis=1)
    for m in (1, 2, 5, 17, 40):
        lo, hi = lg.box(m)
        direct = boxes[n1 + m - 1]
        for name, v in states.items():
            assert np.all(lo[name][k] <= v[n1 + m - 1]) and np.all(v[n1 + m - 1] <= hi[name][k]), (m, name)
            assert np.all(np.maximum(lo[name], direct[name][0]) <= np.minimum(hi[name], direct[name][1]))
        e = readout_error(w["weight_out"], w["bias_out"], direct["h"], (x1[0][:, 0], x1[1][:, 0])).max()
        assert 0.5 * e <= lg.eps_by_m[m - 1] <= 2 * e + 1e-3


def test_jacobian_bound_bounds_finite_differences():
    cell, params = construct("lstm", 2, big=6)
    w = weights(cell, params)
    rng = np.random.default_rng(0)
    lo = {"h": np.full((1, 2), -0.5), "c": np.full((1, 2), -0.5)}
    box = {k: (v, -v) for k, v in lo.items()}
    J = jacobian_bound(cell, w, box, (np.full((1, 1), -1.0), np.full((1, 1), 1.0)))[0]
    for _ in range(50):
        s = rng.uniform(-0.5, 0.5, 4)
        x = rng.uniform(-1, 1)
        for j in range(4):
            d = np.zeros(4)
            d[j] = 1e-6
            f = [step(cell, w, {"h": ((v[:2])[None],) * 2, "c": ((v[2:])[None],) * 2}, (np.full((1, 1), x),) * 2,
                      "real") for v in (s, s + d)]
            num = np.concatenate([(f[1][k][0] - f[0][k][0])[0] for k in ("h", "c")]) / 1e-6
            assert np.all(np.abs(num) <= J[:, j] + 1e-4)


@pytest.mark.parametrize("kind,big", [("lstm", 10), ("gru", 10), ("gru", 12)])
def test_leaky_settings_get_a_horizon_whose_counterexample_fails_beyond_it(kind, big):
    """A memory gate sigma(big) leaks e^-big a step: the horizon is proved by the induction (not
    by the 30 unrolled steps), the search past it finds a sequence that fails by 2N + 1, and the
    float64 reference (an independent oracle) agrees: the error is within tol up to N and above it
    at the counterexample's length."""
    cell, params = construct(kind, 2, big=big)
    tol = 1e-2
    c = certify(cell, params, -1.0, 1.0, arithmetic="real", max_length=30, slices=2001, tol=tol, budget=256)
    assert c.kind == "up_to_n" and c.N > 30
    assert any("linear-growth invariant from n1 = 1" in n for n in c.notes)
    assert c.refuted and c.N < c.counterexample_length <= 2 * c.N + 1
    x = c.counterexample.reshape(-1, 1, 1).astype(np.float32)
    assert sequence_errors(cell, params, x, backend="reference").max() > tol
    # the proof is never past a real failure: every prefix up to N is within tol in float64
    for n in sorted({1, 2, c.N // 2, c.N - 1, c.N}):
        assert sequence_errors(cell, params, x[:n], backend="reference").max() <= c.eps <= tol


def test_shipped_table_matches_recomputation():
    """One row of docs/horizons.md (the real-arithmetic GRU) recomputed: same N, eps, method. The
    stored run's invariant search (i) failed (its claim is up_to_n), so it is skipped here: the
    rest of the path is the same computation."""
    from lstmsearch.certify.shipped import DOC, EXACT, compute_horizon, horizon_rows, horizons_markdown

    rows = horizon_rows()
    assert {(r["study"], r["arithmetic"]) for r in rows} >= {
        (s, a) for s in ("recall_first_lstm32", "recall_first_gru32", "blind_lstm32", "blind_gru32")
        for a in ("real", "float32")}
    assert DOC.read_text() == horizons_markdown(rows)
    stored = next(r for r in rows if r["study"] == "recall_first_gru32" and r["arithmetic"] == "real")
    assert stored["kind"] == "up_to_n"
    got = compute_horizon("recall_first_gru32", "real", counterexample=False, invariant_iterations=0)
    assert {k: got[k] for k in EXACT} == {k: stored[k] for k in EXACT}
    assert got["eps"] == pytest.approx(stored["eps"], rel=1e-12)


def test_readme_quotes_the_proven_horizons():
    """The README's horizons are those of docs/horizons.json (exact arithmetic, gate-tied rows)."""
    from pathlib import Path

    from lstmsearch.certify.shipped import horizon_rows

    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    n = {r["study"]: r["N"] for r in horizon_rows() if r["arithmetic"] == "real"}
    assert (f"proved in exact arithmetic up to n = {n['recall_first_gru32']:,} (GRU) and "
            f"{n['recall_first_lstm32']:,} (LSTM)") in text


def test_a_horizon_proved_up_to_max_length_is_bracketed_by_the_search_past_it():
    """Propagation alone (no induction) proves n <= max_length = 150 for a forget gate sigma(10);
    the search past it (N + 1, 2 N + 1) finds a sequence that fails, re-simulated in the float64
    reference, so the horizon lies in (150, 301]; with search_past=False no search runs."""
    cell, params = construct("lstm", 2, big=10)
    kw = dict(arithmetic="real", max_length=150, slices=2001, tol=1e-2, budget=256, horizon=False)
    c = certify(cell, params, -1.0, 1.0, **kw)
    assert c.kind == "up_to_n" and c.N == 150 and c.refuted and 150 < c.counterexample_length <= 301
    e64 = sequence_errors(cell, params, c.counterexample.reshape(-1, 1, 1).astype(np.float32), backend="reference").max()
    assert e64 > 1e-2 and c.counterexample_error == e64  # a real claim is judged in the float64 reference
    assert f"the horizon lies between n = 150 and {c.counterexample_length}" in c.statement
    assert "(float64 reference)" in c.statement and any("in the float64 reference" in n for n in c.notes)
    quiet = certify(cell, params, -1.0, 1.0, search_past=False, **kw)
    assert quiet.N == 150 and quiet.counterexample_error is None


@pytest.mark.parametrize("arithmetic", ["real", "float32"])
def test_a_slow_leak_is_bracketed_by_the_drift_probe(arithmetic):
    """Forget gate sigma(10): the error grows about 4.6e-5 a step. Proved to max_length = 30
    (tol 1e-2), the search at 31 and 61 finds no failure (about 3e-3); the drift probe at 4 N + 3,
    8 N + 7, ... (constant and alternating tails after x_1 on a grid) fails at n = 247, in the float64
    reference for the real claim, so the horizon lies in (30, 247]."""
    cell, params = construct("lstm", 2, big=10)
    c = certify(cell, params, -1.0, 1.0, arithmetic=arithmetic, max_length=30, slices=2001, tol=1e-2, budget=256,
                horizon=False)
    assert c.kind == "up_to_n" and c.N == 30 and c.refuted and c.counterexample_length == 8 * 31 - 1
    x = c.counterexample.reshape(-1, 1, 1).astype(np.float32)
    backend = "reference" if arithmetic == "real" else "cpu"
    e = sequence_errors(cell, params, x, backend=backend).max()
    assert e == pytest.approx(c.counterexample_error) and e > 1e-2
    assert any(n.startswith("the drift probe at n = 247") for n in c.notes)
    assert "the horizon lies between n = 30 and 247" in c.statement
    # the probe claims no failure that is not one: the memory decays towards 0, so |y - x_1| stays below 1.5
    loose = certify(cell, params, -1.0, 1.0, arithmetic=arithmetic, max_length=30, slices=2001, tol=1.5, budget=64,
                    horizon=False)
    assert not loose.refuted and any(n.startswith("the drift probe found no failure") for n in loose.notes)


def test_readme_quotes_the_constructions_exact_arithmetic_horizons(capsys):
    """README: the 2-unit LSTM and GRU constructions, certified in exact arithmetic by the unrolled
    steps and the linear-growth induction, as `lstmsearch certify --cell KIND --arithmetic real` prints."""
    from pathlib import Path

    from lstmsearch.cli import main

    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    got = {}
    for kind in ("lstm", "gru"):
        assert main(["certify", "--cell", kind, "--arithmetic", "real", "--no-search"]) == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[real] up_to_n"))
        got[kind] = int(line.split(" N ")[1].split(",")[0])
    assert got["lstm"] > 1000 and got["gru"] > 1000
    assert (f"n <= {got['lstm']:,} (LSTM) and n <= {got['gru']:,} (GRU) (`lstmsearch certify --cell KIND "
            "--arithmetic real`)") in text
