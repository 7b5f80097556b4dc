"""What a plain ``pip install -e .`` promises, without the optional extras.

``.ci/run`` runs this file in a new virtual environment that holds only the base install (plus
pytest): there numba-cuda is truly absent. In the full test environment the API tests hide
numba-cuda instead (``numba_cuda_installed`` answers False), and the command-line tests, which
need a separate process without it, are skipped.

- ``backend="cuda"`` without numba-cuda: a one-line error naming the extra to install, raised
  before any work; on the command line no traceback and no study folder.
- ``backend="auto"`` without numba-cuda: runs on ``cpu`` and says why.
- the quickstart study runs at a tiny budget.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstmsearch as ls
from lstmsearch import kernels
from lstmsearch.errors import LstmsearchError, install_hint
from lstmsearch.kernels import cuda as kcuda

ROOT = Path(__file__).resolve().parents[1]
NUMBA_CUDA_PRESENT = importlib.util.find_spec("numba_cuda") is not None
base_only = pytest.mark.skipif(NUMBA_CUDA_PRESENT, reason="needs an environment without numba-cuda "
                                                          "(.ci/run runs it in the base install)")


@pytest.fixture
def without_numba_cuda(monkeypatch):
    """numba-cuda absent: truly (base install) or hidden from the backend."""
    if NUMBA_CUDA_PRESENT:
        monkeypatch.setattr(kcuda, "numba_cuda_installed", lambda: False)
    monkeypatch.setattr(kernels, "AUTO_CHOICE", None)


def _small():
    cell = ls.Cell("lstm", hidden=4)
    task = ls.make_task("recall_first", length=5)
    return cell, cell.init(3, seed=0), task


def test_cuda_without_numba_cuda_is_one_line_naming_the_extra(without_numba_cuda):
    cell, params, task = _small()
    with pytest.raises(LstmsearchError) as err:
        ls.evaluate(cell, params, task, n_sequences=8, backend="cuda")
    message = str(err.value)
    assert "\n" not in message
    assert "numba-cuda" in message and install_hint("cuda") in message
    assert install_hint("cuda") == 'pip install "lstmsearch[cuda]"'
    with pytest.raises(LstmsearchError, match="numba-cuda"):
        kernels.check_backend("cuda")


def test_auto_without_numba_cuda_runs_on_cpu_and_says_why(without_numba_cuda):
    cell, params, task = _small()
    assert kernels.resolve_backend("auto") == "cpu"
    line = kernels.describe_auto()
    assert line.startswith("backend 'auto' uses cpu") and "numba-cuda" in line and "\n" not in line
    auto = ls.evaluate(cell, params, task, n_sequences=8, seed=1, backend="auto")
    cpu = ls.evaluate(cell, params, task, n_sequences=8, seed=1, backend="cpu")
    np.testing.assert_array_equal(auto["nmse"].to_numpy(), cpu["nmse"].to_numpy())


def _cli(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, "-m", "lstmsearch.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@base_only
def test_cli_cuda_without_numba_cuda_refuses_in_one_line_before_work(tmp_path):
    out = tmp_path / "qs"
    proc = _cli("run", str(ROOT / "studies" / "quickstart.toml"), "--backend", "cuda", "--out", str(out),
                "--quiet", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and install_hint("cuda") in lines[0], proc.stderr
    assert not out.exists()  # refused before any work


@base_only
def test_cli_quickstart_runs_on_auto_at_a_tiny_budget_and_says_why(tmp_path):
    out = tmp_path / "qs"
    proc = _cli("run", str(ROOT / "studies" / "quickstart.toml"), "--backend", "auto", "--budget", "64",
                "--out", str(out), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "backend 'auto' uses cpu (no usable GPU: backend 'cuda' needs numba-cuda" in proc.stdout
    assert "Traceback" not in proc.stderr
    rows = ls.load_results(out)
    assert rows.num_rows >= 64
    assert np.isfinite(rows["nmse"].to_numpy()).any()
