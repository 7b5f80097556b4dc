"""``construct --study NAME`` writes a construction into a study store that top, reproduce and
export read like any searched row."""

import numpy as np
import pytest

from lstmsearch import load_results, reproduce, simulate
from lstmsearch.analysis.constructions import construct
from lstmsearch.cli import main
from lstmsearch.reproduction import export, row_setting
from lstmsearch.store import Store


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_construct_into_a_study(kind, tmp_path, capsys):
    data = tmp_path / "data"
    name = f"built_{kind}"
    argv = ["construct", kind, "--hidden", "4", "--length", "12", "--lengths", "12", "--sequences", "32",
            "--study", name, "--data", str(data)]
    assert main(argv) == 0
    assert f"stored as row 0 of study {name}" in capsys.readouterr().out
    # the same construction again: no duplicate row
    assert main(argv) == 0
    assert Store(data / name).count() == 1

    assert main(["top", name, "--data", str(data)]) == 0
    assert "construction" in capsys.readouterr().out
    t = load_results(name, data_dir=data)
    assert t.num_rows == 1 and t.column("strategy")[0].as_py() == "construction"
    assert t.column("weights")[0].as_py() is not None

    rep = reproduce(name, 0, factors=(1, 10), n_sequences=32, data_dir=data)
    assert rep["identical"] and rep["stored"] == rep["same"] and set(rep["stored"]) >= {"mse", "nmse"}
    assert rep["stored"]["nmse"] < 1e-5 and all(f["nmse"] < 1e-5 for f in rep["fresh"])

    cell, params = construct(kind, 4)
    cfg, r, setting = row_setting(name, 0, data_dir=data)
    assert cfg.cell.kind == kind and cfg.eval.readout == "given" and r["length"] == 12
    np.testing.assert_array_equal(setting, params)

    torch = pytest.importorskip("torch")
    path = export(name, 0, "torch", tmp_path / "m.pt", data_dir=data)
    model = cell.torch_model()
    model.load_state_dict(torch.load(path))
    x = np.random.default_rng(1).uniform(-1, 1, size=(12, 16, 1)).astype(np.float32)
    with torch.no_grad():
        y_torch = model(torch.from_numpy(x)).numpy()
    h = simulate(cell, params[None], x, backend="reference")
    h = h[0] if kind == "lstm" else h  # (h, c) for the LSTM
    H = cell.hidden
    y_ours = h[0] @ params[cell.n_recurrent:cell.n_recurrent + H][:, None] + params[-1]
    assert np.allclose(y_torch, y_ours, atol=1e-5)
    assert np.allclose(y_torch[:, 0], x[0, :, 0], atol=1e-3)  # it recalls x_1


def test_construct_study_bad_input(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["construct", "lstm", "--hidden", "4", "--construction", "nosuch", "--study", "s",
                 "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lstmsearch: error: unknown construction 'nosuch'") and "\n" not in err
    assert not (data / "s").exists()
    # a folder that holds another study (another cell) is refused, not overwritten
    assert main(["construct", "lstm", "--hidden", "4", "--lengths", "10", "--study", "s", "--data", str(data)]) == 0
    assert main(["construct", "gru", "--hidden", "4", "--lengths", "10", "--study", "s", "--data", str(data)]) == 2
    assert "different content" in capsys.readouterr().err
    assert Store(data / "s").count() == 1
