"""The cuda backend equals the cpu backend (within 1e-5) for every cell, task and readout.

Where no GPU is present, tests/conftest.py has set NUMBA_ENABLE_CUDASIM=1 before numba.cuda
is first imported, and these tests run the same kernels under the CUDA simulator (in
Python, so shapes are small: P <= 3, B <= 24, T <= 7, H <= 3). On a machine with a GPU they
run un-simulated on it. The tests of the "no GPU" message and of "auto" falling back to cpu
run in a subprocess without the simulator, and only where no GPU is present.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import lstmsearch
from lstmsearch import Cell, LstmsearchError, make_task
from lstmsearch.kernels import cpu, get_backend, resolve_backend
from lstmsearch.kernels import cuda as kcuda

from lstmsearch.kinds import BUILTIN as KINDS  # every built-in kind, new ones included
ATOL = 1e-5

usable, where = kcuda.gpu_status()
pytestmark = pytest.mark.skipif(not usable, reason=f"cuda backend cannot run here: {where}")
SIMULATED = kcuda.simulating()


def _setup(kind, H, I, P=3, B=4, T=6, scale=1.5, seed=0):
    rng = np.random.default_rng(seed)
    cell = Cell(kind, H, inputs=I)
    params = rng.uniform(-scale, scale, (P, cell.n_params)).astype(np.float32)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    return rng, cell, params, x


def _assert_states_equal(got, want):
    (gh, gc), (wh, wc) = got, want
    assert gh.shape == wh.shape and gh.dtype == np.float32
    np.testing.assert_allclose(gh, wh, rtol=0, atol=ATOL)
    if wc is None:
        assert gc is None
    else:
        np.testing.assert_allclose(gc, wc, rtol=0, atol=ATOL)


@pytest.fixture(params=["unrolled-shared", "loops-global"])
def kernel_path(request, monkeypatch):
    """Both kernel variants: register state + shared weights, and loops + global weights
    with several sequence tiles per setting (as for large H)."""
    if request.param == "loops-global":
        monkeypatch.setattr(kcuda, "UNROLL_MAX_H", 0)
        monkeypatch.setattr(kcuda, "SHARED_MAX_BYTES", 0)
        monkeypatch.setattr(kcuda, "THREADS", 3)
    return request.param


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("H,I", [(3, 1), (2, 2)])
def test_run_matches_cpu_with_initial_state(kind, H, I, kernel_path):
    rng, cell, params, x = _setup(kind, H, I)
    P, (T, B, _) = params.shape[0], x.shape
    h0 = rng.normal(size=(P, B, H)).astype(np.float32)
    c0 = rng.normal(size=(P, B, H)).astype(np.float32)
    steps = np.array([0, 2, 3, T - 1])
    got = kcuda.run(cell, params, x, steps, h0, c0)
    want = cpu.run(cell, params, x, steps, h0, c0)
    _assert_states_equal(got, want)
    # not a vacuous comparison: the states move from step to step and differ by setting
    assert np.abs(np.diff(want[0], axis=1)).max() > 1e-2
    assert np.abs(want[0][0] - want[0][1]).max() > 1e-2


@pytest.mark.parametrize("kind", KINDS)
def test_run_matches_cpu_zero_and_broadcast_state(kind):
    rng, cell, params, x = _setup(kind, 2, 1, seed=1)
    steps = np.arange(x.shape[0])
    _assert_states_equal(kcuda.run(cell, params, x, steps), cpu.run(cell, params, x, steps))
    h0 = np.broadcast_to(rng.normal(size=(x.shape[1], 2)).astype(np.float32), (3, x.shape[1], 2))
    got = kcuda.run(cell, params, x, steps, h0, h0 if kind == "lstm" else None)
    want = cpu.run(cell, params, x, steps, h0, h0 if kind == "lstm" else None)
    _assert_states_equal(got, want)


def test_comparison_is_sensitive():
    """A kernel off by 1e-2 in one recurrent weight would fail the tests above."""
    _, cell, params, x = _setup("lstm", 3, 1)
    steps = np.array([x.shape[0] - 1])
    wrong = params.copy()
    wrong[:, cell.block("weight_hh_l0").start] += 1e-2
    diff = np.abs(kcuda.run(cell, wrong, x, steps)[0] - cpu.run(cell, params, x, steps)[0]).max()
    assert diff > 10 * ATOL


@pytest.mark.parametrize("kind", KINDS)
def test_extreme_and_nan_settings(kind):
    _, cell, params, x = _setup(kind, 2, 1, P=3, T=4, scale=1e4, seed=2)
    params[1, 0] = np.nan
    steps = np.array([1, 3])
    hs, cs = kcuda.run(cell, params, x, steps)
    assert np.isnan(hs[1]).any(), "a NaN weight must give NaN states"
    ok = [0, 2]
    # relu grows without bound at this scale (inf is allowed there); minLSTM's f / (f + i) is 0 / 0
    # where both gates underflow to 0 in float32 (the cpu kernel says NaN too, compared below)
    if kind not in ("rnn_relu", "indrnn", "minlstm"):
        assert np.isfinite(hs[ok]).all()
        if cs is not None:
            assert np.isfinite(cs[ok]).all()
    want = cpu.run(cell, params[ok], x, steps)
    with np.errstate(invalid="ignore"):
        # unbounded relu states of 1e10: a fused and an unfused multiply-add round apart by an ulp or two
        np.testing.assert_allclose(hs[ok], want[0], rtol=1e-5 if kind == "indrnn" else 1e-6, atol=ATOL)


def test_chunks_give_the_same_states(monkeypatch):
    rng, cell, params, x = _setup("lstm", 2, 1, P=3, seed=3)
    h0 = rng.normal(size=(3, x.shape[1], 2)).astype(np.float32)
    steps = np.array([2, 5])
    whole = kcuda.run(cell, params, x, steps, h0, -h0)
    monkeypatch.setattr(kcuda, "_free_bytes", lambda cuda: 1)  # one setting per launch
    assert kcuda.chunk_settings(3, 1000, 1) == 1
    chunked = kcuda.run(cell, params, x, steps, h0, -h0)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])


def test_empty_population_and_simulate_api():
    _, cell, params, x = _setup("gru", 2, 1, P=2, seed=4)
    hs, cs = kcuda.run(cell, params[:0], x, np.array([1]))
    assert hs.shape == (0, 1, x.shape[1], 2) and cs is None
    got = lstmsearch.simulate(cell, params, x, backend="cuda", return_sequence=True)
    want = lstmsearch.simulate(cell, params, x, backend="cpu", return_sequence=True)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


TASKS = [
    ("recall_first", dict(length=5), "lstm"),
    ("recall_lag", dict(length=6, lag=2), "gru"),
    ("next_value", dict(length=5), "rnn_tanh"),
    ("copy", dict(length=7, symbols=2, m=2), "rnn_relu"),
    ("adding", dict(length=6), "lstm"),
    ("recall_first", dict(lengths=(4, 7)), "rnn_tanh"),  # several lengths: states read at steps 3 and 6
]


@pytest.mark.parametrize("readout", ["fit", "given"])
@pytest.mark.parametrize("task_name,task_args,kind", TASKS, ids=[t[0] for t in TASKS])
def test_evaluate_matches_cpu(task_name, task_args, kind, readout):
    task = make_task(task_name, **task_args)
    cell = Cell(kind, 3, inputs=task.n_inputs, outputs=task.n_outputs)
    params = cell.init(3, seed=5, method="uniform", scale=1.0)
    kw = dict(n_sequences=12, seed=7, readout=readout)  # well-posed fit: 12 > H + 1
    got = lstmsearch.evaluate(cell, params, task, backend="cuda", **kw)
    want = lstmsearch.evaluate(cell, params, task, backend="cpu", **kw)
    assert got.schema == want.schema
    assert got.column("finite").to_pylist() == want.column("finite").to_pylist() == [True] * 3
    for col in ("mse", "nmse", "max_abs_err") + (("train_mse", "train_nmse") if readout == "fit" else ()):
        np.testing.assert_allclose(got.column(col).to_numpy(), want.column(col).to_numpy(),
                                   rtol=1e-4, atol=ATOL, err_msg=col)
    if task.lengths is not None:
        by = lambda t: np.array(t.column("nmse_by_length").to_pylist())
        assert by(got).shape == (3, len(task.lengths))
        np.testing.assert_allclose(by(got), by(want), rtol=1e-4, atol=ATOL)
    ro = lambda t: np.stack(t.column("readout").to_numpy(zero_copy_only=False))
    if readout == "given":
        np.testing.assert_array_equal(ro(got), ro(want))
    # A fitted readout's weights are ill-conditioned on 12 sequences (a 1e-7 change in the
    # states moves a weight by 1e-4); what the fit is for, its errors, is compared above.


def test_auto_backend_choice():
    name = resolve_backend("auto")
    from lstmsearch import kernels

    if SIMULATED:
        assert name == "cpu", "auto must never pick the CUDA simulator"
    else:
        assert name == "cuda"
    assert kernels.AUTO_CHOICE[0] == name
    assert get_backend("auto").name == name
    assert f"uses {name}" in kernels.describe_auto()
    with pytest.raises(LstmsearchError, match="unknown backend 'gpu'"):
        get_backend("gpu")


_NO_GPU_SCRIPT = r"""
import numpy as np
from lstmsearch import Cell, LstmsearchError, evaluate, make_task
from lstmsearch.kernels import describe_auto, get_backend
cell = Cell("lstm", 2)
try:
    get_backend("cuda").run(cell, np.zeros((1, cell.n_params), np.float32),
                            np.zeros((3, 2, 1), np.float32), np.array([2]))
except LstmsearchError as err:
    print("ERROR:" + str(err))
print("AUTO:" + get_backend("auto").name)
print("LINE:" + describe_auto())
t = evaluate(cell, cell.init(2, seed=0), make_task("recall_first", length=3), 4, 0, backend="auto")
print("ROWS:%d" % t.num_rows)
"""


@pytest.mark.skipif(not SIMULATED, reason="a GPU is present: there is no 'no GPU' case to test")
def test_no_gpu_message_and_auto_fallback_unsimulated():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _NO_GPU_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)
    err = lines["ERROR"]
    assert "\n" not in err
    assert "no GPU is present" in err and 'pip install "lstmsearch[cuda]"' in err
    assert lines["AUTO"] == "cpu"
    assert lines["LINE"].startswith("backend 'auto' uses cpu (no usable GPU")
    assert lines["ROWS"] == "2"


def test_benchmark_smoke(capsys):
    """benchmarks/bench_cuda.py runs, and its torch bmm population equals the cuda backend."""
    pytest.importorskip("torch")
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("bench_cuda", os.path.join(root, "benchmarks", "bench_cuda.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--smoke", "--cells", "lstm,gru,rnn_tanh", "--hidden", "2"]) == 0
    out = capsys.readouterr().out
    assert "lstm" in out and "rnn_tanh" in out
