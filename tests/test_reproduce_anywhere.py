"""Reproduction does not depend on the machine: the readout's float64 sums run in one fixed order
(lstmsearch.kernels.fixed_order), checked against pure-Python sums in the same order (bit for bit)
and against LAPACK (to rounding); whole reproductions are run under other OpenBLAS kernels and
thread counts in fresh interpreters; old studies keep the fit they recorded."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstmsearch import readout, run_study
from lstmsearch.extract import refit_extracted
from lstmsearch.kernels import fixed_order
from lstmsearch.query import best_row, load_results, open_study
from lstmsearch.reproduction import format_reproduction, reproduce, ulps_apart

from search_helpers import write_study

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"
V1 = Path(__file__).resolve().parent / "fixtures" / "v1"


def _python_normal_equations(states, y):
    """Phi^T Phi (upper triangle) and Phi^T y of one setting, in Python floats, n in order."""
    N, H = states.shape
    phi = [[float(v) for v in row] + [1.0] for row in states]
    G = [[0.0] * (H + 1) for _ in range(H + 1)]
    R = [0.0] * (H + 1)
    for n in range(N):
        for i in range(H + 1):
            for j in range(i, H + 1):
                G[i][j] = G[i][j] + phi[n][i] * phi[n][j]
            R[i] = R[i] + phi[n][i] * float(y[n])
    return G, R


def test_normal_equations_are_the_python_sums_in_order_bit_for_bit():
    rng = np.random.default_rng(5)
    for P, N, H in [(3, 7, 2), (2, 13, 5), (1, 9, 9)]:  # N not a multiple of the 4-sample passes
        states = np.tanh(rng.standard_normal((P, N, H)) * 3)
        y = rng.uniform(-1, 1, (N, 1))
        gram, rhs = np.empty((P, H + 1, H + 1)), np.empty((P, H + 1, 1))
        fixed_order.accumulate(states, y, gram, rhs)
        for p in range(P):
            G, R = _python_normal_equations(states[p], y[:, 0])
            for i in range(H + 1):
                assert rhs[p, i, 0] == R[i]
                for j in range(i, H + 1):
                    assert gram[p, i, j] == G[i][j], (P, N, H, p, i, j)


def test_readout_outputs_are_the_python_sums_in_order_bit_for_bit():
    rng = np.random.default_rng(6)
    states = rng.standard_normal((2, 5, 7))
    ro = rng.standard_normal((2, 2 * 7 + 2)).astype(np.float32)
    out = readout.apply(states, ro, 2)
    for p in range(2):
        W = ro[p, :14].reshape(2, 7).astype(float)
        b = ro[p, 14:].astype(float)
        for n in range(5):
            for o in range(2):
                s = 0.0
                for h in range(7):
                    s = s + float(states[p, n, h]) * float(W[o, h])
                assert out[p, n, o] == s + float(b[o])


def test_fixed_order_fit_solves_the_ridge_problem():
    """Against LAPACK's least squares on the stacked problem [Phi; sqrt(reg)] w = [y; 0]: the
    module doc's ridge, to float64 rounding."""
    rng = np.random.default_rng(7)
    P, N, H = 4, 200, 6
    states = np.tanh(rng.standard_normal((P, N, H)) * rng.uniform(0.1, 3, (P, 1, H)))
    y = rng.uniform(-1, 1, (N, 1))
    ridge = 1e-3
    gram, rhs, w = np.empty((P, H + 1, H + 1)), np.empty((P, H + 1, 1)), np.empty((P, H + 1, 1))
    fixed_order.accumulate(states, y, gram, rhs)
    fixed_order.solve(gram, rhs, ridge, float(N), w)
    for p in range(P):
        phi = np.hstack([states[p], np.ones((N, 1))])
        d = (phi * phi).sum(0)
        reg = ridge * (d - N * phi.mean(0) ** 2) + 1e-12 * (1 + d)
        reg[H] = 0.0
        A = np.vstack([phi, np.diag(np.sqrt(reg))])
        oracle = np.linalg.lstsq(A, np.concatenate([y[:, 0], np.zeros(H + 1)]), rcond=None)[0]
        np.testing.assert_allclose(w[p, :, 0], oracle, rtol=1e-9, atol=1e-12)
    # and the float32 readout of fit() is that solution rounded
    ro = readout.fit(states, y, ridge)
    np.testing.assert_array_equal(ro[:, :H], w[:, :H, 0].astype(np.float32))
    np.testing.assert_array_equal(ro[:, H], w[:, H, 0].astype(np.float32))


def test_solve_falls_back_to_pivoting_and_refuses_a_singular_matrix():
    # an indefinite "Gram" (Cholesky fails at the second pivot): Gaussian elimination solves it
    gram = np.array([[[1.0, 3.0, 0.5], [0.0, 1.0, 0.25], [0.0, 0.0, 2.0]]])
    rhs = np.array([[[1.0], [2.0], [3.0]]])
    w = np.empty((1, 3, 1))
    fixed_order.solve(gram, rhs, 0.0, 4.0, w)
    A = np.triu(gram[0]) + np.triu(gram[0], 1).T
    A[0, 0] += 1e-12 * 2 + 0.0  # the 1e-12 (1 + d) floor of the units (ridge 0)
    A[1, 1] += 1e-12 * 2
    np.testing.assert_allclose(w[0, :, 0], np.linalg.solve(A, rhs[0, :, 0]), rtol=1e-12)
    # all-zero units and no samples: singular, so no readout (NaN), never a wrong number
    fixed_order.solve(np.zeros((1, 2, 2)), np.zeros((1, 2, 1)), 0.0, 1.0, w[:, :2])
    assert np.isnan(w[0, :2]).all()


def test_fit_does_not_depend_on_the_population_around_a_setting_or_its_layout():
    rng = np.random.default_rng(8)
    states = np.tanh(rng.standard_normal((6, 40, 5))).astype(np.float32)
    y = rng.uniform(-1, 1, (40, 1))
    together = readout.fit(states, y)
    alone = np.concatenate([readout.fit(states[p:p + 1], y) for p in range(6)])
    strided = readout.fit(np.asfortranarray(states)[::-1][::-1], y)
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together, strided)
    with pytest.raises(ValueError, match="unknown readout fit"):
        readout.fit(states, y, method="qr")


def test_fit_and_apply_on_step_major_states_in_place_are_bit_for_bit_the_copies():
    """evaluate reads the kernels' (P, S, B, H) states in place (a transposed float32 view): the
    same sums as on the float64 copy states[:, :, lo:hi].reshape(P, -1, H), threads or not."""
    rng = np.random.default_rng(9)
    P, S, B, H, O = 11, 3, 23, 5, 2
    hs = np.tanh(rng.standard_normal((P, S, H, B)) * 3).astype(np.float32).transpose(0, 1, 3, 2)
    for lo, hi in [(0, 9), (9, 23), (0, 23), (4, 5)]:  # N = S (hi - lo): multiples of 4 and not
        flat = np.ascontiguousarray(hs[:, :, lo:hi].reshape(P, -1, H), np.float64)
        y = rng.uniform(-1, 1, (flat.shape[1], O))
        gram, rhs = np.empty((P, H + 1, H + 1)), np.empty((P, H + 1, O))
        fixed_order.accumulate_steps(hs, lo, hi, y, gram, rhs)
        for p in range(P):  # the Python sums over the copy, n in order
            for o in range(O):
                G, R = _python_normal_equations(flat[p], y[:, o])
                assert [rhs[p, i, o] for i in range(H + 1)] == R
                assert all(gram[p, i, j] == G[i][j] for i in range(H + 1) for j in range(i, H + 1))
        ro = readout.fit(flat, y, 1e-4)
        assert readout.fit_steps(hs, lo, hi, y, 1e-4).tobytes() == ro.tobytes()
        assert readout.apply_steps(hs, lo, hi, ro, O).tobytes() == readout.apply(flat, ro, O).tobytes()
        for method in readout.FIT_METHODS:
            np.testing.assert_array_equal(readout.fit_steps(hs, lo, hi, y, 1e-4, method),
                                          readout.fit(flat, y, 1e-4, method))


def test_ulps_apart():
    assert ulps_apart(1.0, 1.0) == 0 and ulps_apart(0.0, -0.0) == 0
    assert ulps_apart(1.0, np.nextafter(1.0, 2.0)) == 1
    assert ulps_apart(np.nextafter(0.0, -1.0), np.nextafter(0.0, 1.0)) == 2
    assert ulps_apart(1.0, np.nan) is None and ulps_apart(np.nan, np.nan) == 0


def test_a_new_study_records_the_fixed_order_fit_and_an_old_one_keeps_blas(tmp_path):
    path, out = write_study(tmp_path, "fitrec", strategy="sweep", budget=40)
    run_study(path)
    m = json.loads((out / "manifest.json").read_text())
    assert m["eval"]["readout_fit"] == readout.FIXED_ORDER
    assert open_study(out)[0].eval.readout_fit == readout.FIXED_ORDER
    assert open_study(V1 / "recall_first_lstm32")[0].eval.readout_fit == readout.BLAS  # written by 0.1.0


def test_refit_of_an_extracted_folder_keeps_the_settings_and_reproduces(tmp_path):
    shutil.copytree(V1 / "recall_first_lstm32", tmp_path / "recall_first_lstm32")
    before = load_results("recall_first_lstm32", data_dir=tmp_path).sort_by("row")
    entry = refit_extracted(tmp_path / "recall_first_lstm32")
    assert entry["from"] == readout.BLAS and entry["to"] == readout.FIXED_ORDER
    after = load_results("recall_first_lstm32", data_dir=tmp_path).sort_by("row")
    cfg = open_study(tmp_path / "recall_first_lstm32")[0]
    assert cfg.eval.readout_fit == readout.FIXED_ORDER
    wb = np.stack(before.column("weights").to_numpy(zero_copy_only=False))
    wa = np.stack(after.column("weights").to_numpy(zero_copy_only=False))
    nr = cfg.cell.n_recurrent
    np.testing.assert_array_equal(wa[:, :nr], wb[:, :nr])  # the searched weights are kept
    np.testing.assert_array_equal(wa[:, nr:], np.stack(after.column("readout").to_numpy(zero_copy_only=False)))
    np.testing.assert_allclose(after.column("nmse").to_numpy(), before.column("nmse").to_numpy(), rtol=0.2)
    rep = reproduce("recall_first_lstm32", after.column("row")[0].as_py(), data_dir=tmp_path, check=False,
                    factors=[1])
    assert rep["identical"] and rep["differences"] == [] and rep["cause"] is None
    assert refit_extracted(tmp_path / "recall_first_lstm32") == {}  # once is enough


def test_a_reproduction_that_differs_says_what_by_how_many_ulps_and_why(tmp_path):
    shutil.copytree(V1 / "recall_first_lstm32", tmp_path / "recall_first_lstm32")
    row = best_row("recall_first_lstm32", tmp_path)
    rep = reproduce("recall_first_lstm32", row, data_dir=tmp_path, check=False, factors=[1])
    rep["identical"] = False  # as on a machine whose BLAS rounds otherwise
    rep["differences"] = [{"quantity": "nmse", "stored": 2.3047e-7, "reproduced": 2.3102e-7,
                           "ulps": ulps_apart(2.3047e-7, 2.3102e-7)}]
    from lstmsearch.reproduction import likely_cause

    cfg = open_study("recall_first_lstm32", tmp_path)[0]
    rep["cause"] = likely_cause("recall_first_lstm32", cfg, "cpu", tmp_path)
    text = "\n".join(format_reproduction(rep))
    assert "identical to the stored errors: NO" in text
    assert "nmse: 2.3047e-07 stored, 2.3102e-07 reproduced (" in text and " ulp apart, relative 0.0024)" in text
    assert "likely cause: the study's readouts were fitted through BLAS" in text
    # a fixed-order study reproduced on another backend names that instead
    refit_extracted(tmp_path / "recall_first_lstm32")
    cfg = open_study("recall_first_lstm32", tmp_path)[0]
    assert "evaluated on the cpu backend, this on reference" in likely_cause("recall_first_lstm32", cfg, "reference",
                                                                            tmp_path)
    # and a changed stored number with nothing else different points at the files
    assert "lstmsearch check" in likely_cause("recall_first_lstm32", cfg, "cpu", tmp_path)


# ---- whole reproductions in fresh interpreters under other BLAS kernels and thread counts ----

ENVIRONMENTS = {
    "Sandybridge, 1 thread": {"OPENBLAS_CORETYPE": "Sandybridge", "OPENBLAS_NUM_THREADS": "1",
                              "LSTMSEARCH_THREADS": "1", "NUMBA_NUM_THREADS": "1"},
    "Prescott, 2 threads": {"OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_NUM_THREADS": "2",
                            "LSTMSEARCH_THREADS": "2", "NUMBA_NUM_THREADS": "2"},
}

CHILD = r"""
import json, sys
from lstmsearch.reproduction import reproduce
out = []
for study, row in json.loads(sys.argv[2]):
    rep = reproduce(study, row, data_dir=sys.argv[1], check=False, factors=[1])
    out.append([study, row, rep["identical"], rep["differences"]])
print(json.dumps(out))
"""


def _reproduce_in(env_extra, data_dir, rows):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(data_dir), json.dumps(rows)], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_shipped_best_row_and_rows_rebuilt_from_keys_reproduce_under_other_blas_kernels(tmp_path):
    """The shipped examples (full weights kept) and a fresh CMA-ES study's rows below keep_weights
    (rebuilt from keys, readout fitted again) give the stored errors bit for bit in interpreters
    whose OpenBLAS uses another kernel (the old BLAS fit differed there) and other thread counts."""
    shipped = [[p.name, best_row(p.name, EXAMPLES)] for p in sorted(EXAMPLES.iterdir())
               if (p / "manifest.json").exists()]
    assert len(shipped) >= 9
    path, out = write_study(tmp_path, "keys", strategy="cmaes", budget=96, keep_weights=4)
    run_study(path)
    rows = load_results(out, columns=["row", "weights"])
    kept = np.array([w is not None for w in rows.column("weights").to_pylist()])
    rebuilt = rows.column("row").to_numpy()[~kept]
    assert kept.sum() == 4 and len(rebuilt) >= 90
    from_keys = [[str(out), int(r)] for r in rebuilt[:: max(1, len(rebuilt) // 6)]]
    for name, extra in ENVIRONMENTS.items():
        got = _reproduce_in(extra, EXAMPLES, shipped) + _reproduce_in(extra, tmp_path, from_keys)
        bad = [(s, r, d) for s, r, ok, d in got if not ok]
        assert not bad, f"{name}: {bad}"


def test_the_exported_model_applies_the_readout_as_it_was_judged():
    """The PyTorch export's readout is float64, as :func:`readout.apply` applies it: on states whose
    float32 readout would lose digits (weights of 1e4 that cancel), the two agree to float64."""
    torch = pytest.importorskip("torch")
    from lstmsearch import Cell

    cell = Cell("lstm", hidden=4)
    rng = np.random.default_rng(9)
    setting = rng.standard_normal(cell.n_params).astype(np.float32)
    setting[cell.n_recurrent:] = np.array([1e4, -1e4, 3e-3, 1.0, 0.25], np.float32)
    model = cell.torch_model(setting)
    assert model.readout.weight.dtype == torch.float64
    h = (rng.uniform(-1, 1, (64, 4)) * [1, 1 + 1e-6, 1, 1]).astype(np.float32)
    ours = readout.apply(h[None], setting[None, cell.n_recurrent:], 1)[0]
    with torch.no_grad():
        theirs = model.readout(torch.from_numpy(h).double()).numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-12, atol=1e-12)
    x = rng.uniform(-1, 1, (5, 3, 1)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x))
    assert y.dtype == torch.float64 and y.shape == (3, 1)
