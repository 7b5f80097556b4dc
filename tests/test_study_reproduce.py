"""Reading, reproducing and exporting stored rows; other readers; multi-objective; warm start."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstmsearch import load_results, reproduce, run_study, simulate
from lstmsearch.errors import LstmsearchError
from lstmsearch.reproduction import export, row_setting
from lstmsearch.query import parse_where, sql

from search_helpers import write_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("repro")
    p, out = write_study(tmp, name="r", strategy="sweep", budget=150, keep_weights=3)
    run_study(p)
    return p, out


def _best(out):
    t = load_results(out, columns=["row", "nmse"]).sort_by("nmse")
    return int(t.column("row")[0].as_py()), float(t.column("nmse")[0].as_py())


def test_reproduce_is_identical_on_the_stored_sequences(study):
    p, out = study
    t = load_results(out, columns=["row", "nmse", "weights"])
    no_weights = [r for r, w in zip(t.column("row").to_pylist(), t.column("weights").to_pylist()) if w is None]
    for row in (_best(out)[0], no_weights[0]):  # a kept row and a row rebuilt from its sweep key
        rep = reproduce(out, row, factors=(1, 3), n_sequences=16)
        assert rep["identical"], rep
        assert rep["same"]["nmse"] == rep["stored"]["nmse"]
        assert [f["length"] for f in rep["fresh"]] == [6, 18]


def test_reproduce_fresh_matches_reference_backend(study):
    """The fresh-sequence errors agree with the float64 NumPy oracle (an independent simulator)."""
    p, out = study
    row, _ = _best(out)
    a = reproduce(out, row, factors=(2,), n_sequences=32)
    b = reproduce(out, row, factors=(2,), n_sequences=32, backend="reference")
    assert abs(a["fresh"][0]["mse"] - b["fresh"][0]["mse"]) <= 1e-5 * max(1.0, b["fresh"][0]["mse"])


def test_export_torch_gives_the_same_outputs(study, tmp_path):
    torch = pytest.importorskip("torch")
    p, out = study
    row, _ = _best(out)
    cfg, r, setting = row_setting(out, row)
    path = export(out, row, "torch", tmp_path / "m.pt")
    sd = torch.load(path)
    model = cfg.cell.torch_model()
    model.load_state_dict(sd)  # strict: every key and shape matches nn.LSTM + nn.Linear
    x = np.random.default_rng(0).uniform(-1, 1, size=(6, 40, 1)).astype(np.float32)
    with torch.no_grad():
        y_torch = model(torch.from_numpy(x)).numpy()
    h, _ = simulate(cfg.cell, setting[None], x, backend="reference")
    H = cfg.cell.hidden
    y_ours = h[0] @ setting[cfg.cell.n_recurrent:cfg.cell.n_recurrent + H][:, None] + setting[-1]
    assert np.allclose(y_torch, y_ours, atol=1e-5)
    # torch's error on the task equals the stored held-out error's order (same weights, same readout)
    xs, ys = cfg.task.sample(24, cfg.eval.seed, 1)
    with torch.no_grad():
        pred = model(torch.from_numpy(xs)).numpy()
    mse = float(np.mean((pred - ys[0]) ** 2))
    assert mse == pytest.approx(r["mse"], rel=1e-4, abs=1e-7)


def test_export_npz_and_json_round_trip(study, tmp_path):
    p, out = study
    row, _ = _best(out)
    cfg, r, setting = row_setting(out, row)
    z = np.load(export(out, row, "npz", tmp_path / "m.npz"))
    assert np.array_equal(cfg.cell.flatten({k: z[k] for k in z.files if k != "meta"}), setting)
    j = json.loads(export(out, row, "json", tmp_path / "m.json").read_text())
    assert j["cell"]["kind"] == "lstm" and j["row"] == row
    assert np.array_equal(cfg.cell.flatten(j["weights"]), setting)
    with pytest.raises(LstmsearchError, match="no row 999999"):
        export(out, 999999, "json", tmp_path / "x.json")


def test_duckdb_reads_the_store_as_it_is(study):
    duckdb = pytest.importorskip("duckdb")
    p, out = study
    t = load_results(out, columns=["row", "nmse"])
    con = duckdb.connect()
    n, best, nw = con.execute(
        f"SELECT count(*), min(nmse), count(weights) FROM read_parquet('{out.as_posix()}/rows/*.parquet')").fetchone()
    assert n == t.num_rows == 150 and best == pytest.approx(t.column("nmse").to_numpy().min(), rel=0, abs=0)
    assert nw == 0  # the parts keep keys; the best keep_weights rows' weights are in best/
    kept = con.execute(
        f"SELECT b.row, b.nmse, len(b.weights), len(b.readout), r.nmse FROM read_parquet('{out.as_posix()}/best/*.parquet') b "
        f"JOIN read_parquet('{out.as_posix()}/rows/*.parquet') r ON r.row = b.row ORDER BY b.nmse, b.row").fetchall()
    three = t.sort_by([("nmse", "ascending"), ("row", "ascending")]).slice(0, 3)
    assert [k[0] for k in kept] == three.column("row").to_pylist()  # exactly the best 3, joined to their rows
    assert all(k[1] == k[4] and k[2] == 4 * 3 * (1 + 3 + 2) + 3 + 1 and k[3] == 3 + 1 for k in kept)  # LSTM H = 3
    q = sql(out, "SELECT count(*) AS n FROM rows WHERE nmse < 0.9")
    assert q.column("n")[0].as_py() == int((t.column("nmse").to_numpy() < 0.9).sum())


def test_where_filters(study):
    p, out = study
    nmse = load_results(out, columns=["nmse"]).column("nmse").to_numpy()
    t = load_results(out, where="nmse < 0.9 and finite == true", columns=["nmse"])
    assert t.num_rows == int((nmse < 0.9).sum())
    with pytest.raises(LstmsearchError, match="cannot read the (filter|value)"):
        parse_where("nmse <<< 3")
    with pytest.raises(LstmsearchError, match="unknown column"):
        load_results(out, columns=["nope"])


def test_cli_top_query_show_reproduce_export(study, tmp_path):
    p, out = study
    row, best = _best(out)

    def cli(*args):
        r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", *map(str, args)], capture_output=True,
                           text=True, cwd=ROOT, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    top = cli("top", out, "-k", "3")
    assert top.splitlines()[1].split()[0] == str(row) and len(top.splitlines()) == 4
    assert "rows" in cli("query", out, "--where", "nmse < 0.5")
    assert "weight_hh_l0" in cli("show", out, row)
    rep = cli("reproduce", out, row, "--factors", "1,10", "--sequences", "16")
    assert "identical to the stored errors: yes" in rep and "60" in rep
    assert (tmp_path / "x.pt").name in cli("export", out, row, "--format", "torch", "-o", tmp_path / "x.pt")
    r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", "show", out, "10000"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 2 and "no row 10000" in r.stderr and "Traceback" not in r.stderr


def test_multi_objective_optuna(tmp_path):
    import optuna

    strategy = ('[strategy]\nkind = "optuna"\nsampler = "random"\nbatch = 4\nobjectives = ["nmse", "nmse_long"]\n'
                'long_factor = 3\nregion = { size = 4, scale = 0.1 }\n')
    p, out = write_study(tmp_path, strategy_text=strategy, budget=32)
    run_study(p)
    t = load_results(out, columns=["batch", "nmse", "nmse_long", "long_length"])
    long = t.column("nmse_long").to_numpy(zero_copy_only=False)
    # one long evaluation per trial: its best row, at 3x the length
    assert np.sum(~np.isnan(long)) == 8 and set(t.column("long_length").drop_null().to_pylist()) == {18}
    st = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal"))))
    assert len(st.directions) == 2 and len(st.best_trials) >= 1
    tr = st.trials[0]
    rows = t.filter(np.array(t.column("batch").to_pylist()) == tr.number)
    assert tr.values[0] == pytest.approx(np.log10(min(rows.column("nmse").to_pylist())))


def test_warm_start_cmaes_from_optuna(tmp_path):
    import optuna

    from lstmsearch.search import best_z, make_strategy
    from lstmsearch.query import open_study

    p1, out1 = write_study(tmp_path, name="a", strategy="optuna", budget=64)
    run_study(p1)
    # the best row's trial parameters, from the Optuna journal (the rows keep only the trial number)
    trial = load_results(out1).sort_by("nmse").column("batch")[0].as_py()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out1 / "optuna.journal")))
    params = optuna.load_study(study_name="a", storage=storage).trials[trial].params
    extra = f'[warm_start]\nstudy = "{out1.as_posix()}"\nk = 1\n'
    p2, out2 = write_study(tmp_path, name="b", strategy="cmaes", budget=16, extra=extra)
    cfg, store = open_study(p2)
    want = np.float32([params[n] for n in cfg.space_obj.names]).astype(np.float64)
    strategy = make_strategy(cfg, cfg.space_obj, store)
    cfg_a, other = open_study(out1)
    z = best_z(cfg_a, other, 1, cfg.space_obj.dim, "a")
    assert np.array_equal(z[0], want)
    assert "warm start" in strategy.warm_start(z, "a")
    assert np.allclose(strategy.state["opt"].mean, want)  # CMA-ES starts at the other study's best z
    r = run_study(p2)
    assert any("warm start" in m for m in r.messages) and r.rows == 16
