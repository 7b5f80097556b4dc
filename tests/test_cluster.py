"""Sweeps and CMA-ES generations on a Dask cluster: the same rows as a single-process run."""

import pytest

from lstmsearch import load_results, run_study
from lstmsearch.errors import LstmsearchError

from search_helpers import write_study

distributed = pytest.importorskip("distributed", reason="the cluster tests need dask[distributed]")
pytestmark = pytest.mark.slow

COMPARE = ["row", "batch", "index", "key_index", "z", "readout", "mse", "nmse", "max_abs_err", "train_mse",
           "train_nmse", "finite", "weights"]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.parametrize("strategy,budget", [("sweep", 300), ("cmaes", 96)])
def test_dask_run_gives_the_rows_of_a_single_process_run(tmp_path, client, strategy, budget):
    extra = {"sweep": '[strategy]\nkind = "sweep"\nmethod = "sobol"\nbatch = 150\n',
             "cmaes": '[strategy]\nkind = "cmaes"\npopsize = 32\nrestarts = "ipop"\n'}[strategy]
    (tmp_path / "one").mkdir()
    (tmp_path / "dask").mkdir()
    p1, out1 = write_study(tmp_path / "one", strategy_text=extra, budget=budget)
    p2, out2 = write_study(tmp_path / "dask", strategy_text=extra, budget=budget)
    run_study(p1)
    events = []
    from distributed import get_task_stream

    with get_task_stream(client) as ts:
        r = run_study(p2, dask=client, echo=events.append)
    assert r.complete and r.rows == budget
    assert any("Dask cluster" in e for e in events)
    a = load_results(out1, columns=COMPARE)
    b = load_results(out2, columns=COMPARE)
    assert a.equals(b)  # bit for bit: same settings, same errors, same readouts
    # the work really was spread: several tasks, on both workers
    tasks = [t for t in ts.data if t["key"].startswith(("_evaluate_sweep_range", "_evaluate_params"))]
    assert len(tasks) >= 2 * (budget // {"sweep": 150, "cmaes": 32}[strategy])
    assert len({t["worker"] for t in tasks}) == 2
    if strategy == "sweep":
        assert all(t["key"].startswith("_evaluate_sweep_range") for t in tasks)  # index ranges, not settings


def test_unreachable_scheduler_is_one_clear_error(tmp_path):
    from pg_server import free_port

    p, out = write_study(tmp_path, budget=50)
    with pytest.raises(LstmsearchError, match="cannot reach the Dask scheduler"):
        run_study(p, dask=f"tcp://127.0.0.1:{free_port()}")
