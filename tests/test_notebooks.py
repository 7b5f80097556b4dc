"""The notebooks in ``notebooks/`` run from top to bottom without an error.

Each notebook is executed with nbclient in a fresh kernel whose working directory is a
temporary folder, so nothing is written into the repository (the notebooks themselves write
only into ``tempfile.mkdtemp()`` folders). Beyond "no cell raised", a few numbers each notebook
prints are checked. The committed notebooks carry no outputs and no per-user metadata, so that
their diffs stay small; that is checked without running them.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAMES = [p.name for p in NOTEBOOKS]


def _number(text: str, label: str) -> float:
    """The number printed after ``label`` (a regular expression) in ``text``."""
    m = re.search(label + r"\s*([-+0-9.eE]+|inf|nan)", text)
    assert m, f"the notebook did not print {label!r}:\n{text[-2000:]}"
    return float(m.group(1))


def check_getting_started(text: str):
    # the shipped LSTM row holds x_1 at 2n+1 with its stored readout
    assert _number(text, r"shipped LSTM nmse at 2n\+1 = 41:") < 1e-5
    assert "shipped LSTM row solved at every length:    True" in text
    # the quickstart's best row at a small budget is scored, whatever the verdict
    assert re.search(r"quickstart best row solved at every length: (True|False)", text)
    # PyTorch export: same hidden states, both recall x_1 (at n and at 2n+1)
    assert len(re.findall(r"max \|h_n torch - h_n lstmsearch\| = ", text)) == 2


def check_why_gates(text: str):
    # the same small search: some gated cell reaches 1e-5 at n = 10, the tanh RNN does not
    gated = _number(text, r"best nmse over the gated cells:")
    assert gated < 1e-5 < _number(text, r"best nmse, RNN \(tanh, no gates\):")
    assert _number(text, r"hand-built tanh RNN nmse at n = 10:") < 1e-5


def check_weight_guessing(text: str):
    assert _number(text, r"rnn_tanh latch: solved runs") >= 1


def check_memory_throughput(text: str):
    # the hand-built delay line recalls exactly H lags (nmse < 0.01), whatever the cell
    assert _number(text, r"delay line lstm     H = 8: lags recalled") == 8
    for kind in ("lstm    ", "gru     ", "rnn_tanh"):
        assert _number(text, rf"delay line {kind} H = 4: lags recalled") == 4
    # the tiny search holds about H = 4 numbers (capacity), but in fewer than H exact lags
    capacity = _number(text, r"searched LSTM H = 4: lags recalled \d+ of k = 10, capacity")
    assert 3.0 < capacity < 4.5
    assert _number(text, r"searched LSTM H = 4: lags recalled") <= 4


def check_gradient_baseline(text: str):
    # the converted weights score as the torch model does
    pairs = re.findall(r"torch nmse ([0-9.e+-]+)\s+ours ([0-9.e+-]+)", text)
    assert len(pairs) == 4
    for torch_nmse, ours in pairs:
        assert abs(float(torch_nmse) - float(ours)) <= 1e-3 * float(ours)
    # Adam learns something at n; the hand-built GRU and LSTM hold x_1 at n, n+1 and 2n+1
    assert _number(text, r"Adam: gru\s+n=10:") < 0.05
    for kind in ("gru", "lstm"):
        assert _number(text, rf"hand-built {kind}\s+n=10: [0-9.e+-]+  n=11: [0-9.e+-]+  n=21:") < 1e-5
        assert re.search(rf"hand-built {kind}\s+n=10: .*-> solved at every checked length", text)


def check_adding_problem(text: str):
    # the hand-built adding LSTM: none of the 2,560 sequences wrong at T = 100, 500, 1000, inside its bound
    for T in (100, 500, 1000):
        assert _number(text, rf"T =\s+{T}: wrong \(\|err\| >= 0.04\)") == 0
    assert _number(text, r"T = 1000: wrong \(\|err\| >= 0.04\) 0 of 2560, max \|err\|") < 1e-4
    # a weakly shut input gate (big = 4) fails most sequences already at T = 100
    assert _number(text, r"big =\s+4 \(shut gate sigma\(-big\) = [0-9.e+-]+\): wrong of 2560 at T=100:") > 1000


def check_add_a_cell(text: str):
    # the derived executors agree with the notebook's own NumPy oracle
    assert _number(text, r"max \|reference - oracle\| =") < 1e-12
    assert _number(text, r"max \|cpu kernel - oracle\| =") < 1e-5
    assert _number(text, r"max \|torch module - oracle\| =") < 1e-5
    assert re.search(r"searched row solved at every checked length: (True|False)", text)
    # the construction holds at every checked length and is certified in exact arithmetic at least up
    # to n = 1000 (the unrolled steps; certify's linear-growth induction reaches further)
    assert "construction solved at every checked length: True" in text
    assert _number(text, r"construction: n=20:") < 1e-5 and _number(text, r"n=2003:") < 1e-5
    assert _number(text, r"\[real\] certified for n <=") >= 1000
    assert _number(text, r"\[real\] certified for n <= [0-9]+: eps =") <= 1e-3


CHECKS = {
    "00_getting_started.ipynb": check_getting_started,
    "01_why_gates.ipynb": check_why_gates,
    "02_weight_guessing.ipynb": check_weight_guessing,
    "03_memory_throughput.ipynb": check_memory_throughput,
    "04_adding_problem.ipynb": check_adding_problem,
    "05_gradient_baseline.ipynb": check_gradient_baseline,
    "06_add_a_cell.ipynb": check_add_a_cell,
}


def _text(nb) -> str:
    """Everything the code cells printed (streams and plain-text results)."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append(o.text)
            elif o.output_type in ("execute_result", "display_data"):
                out.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


def test_every_notebook_has_its_checks():
    assert NAMES, "no notebooks found"
    assert sorted(CHECKS) == NAMES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_committed_without_outputs(path):
    raw = json.loads(path.read_text())
    assert set(raw["metadata"]) <= {"kernelspec", "language_info"}, raw["metadata"].keys()
    for i, cell in enumerate(raw["cells"]):
        assert cell.get("metadata", {}) == {}, f"cell {i} has metadata {cell['metadata']}"
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"cell {i} has outputs"
    nbformat.validate(nbformat.reads(path.read_text(), as_version=4))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs(path, tmp_path, monkeypatch):
    cwd, scratch = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the kernel's tempfile.mkdtemp() folders land here
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as e:  # the message holds the cell and the traceback
        pytest.fail(f"{path.name}: a cell raised an error\n{e}", pytrace=False)
    print(f"{path.name}: executed in {time.perf_counter() - t0:.1f} s")
    CHECKS[path.name](_text(nb))
    # the notebook wrote into its temporary folders, not into the working directory
    assert list(cwd.iterdir()) == []
    assert any(scratch.glob("lstmsearch-nb*"))
