"""Load: N workers for D seconds against one PostgreSQL-backed study on this machine.

    python benchmarks/load_workers.py                       # 4 workers, 600 s (the issue's load)
    python benchmarks/load_workers.py --workers 4 --seconds 120 --json out.json

It starts a throw-away PostgreSQL server on loopback (tests/pg_server.py: a temporary data
folder, a free port), runs ``lstmsearch worker`` N times on a copy of
``studies/quickstart.toml`` (LSTM, 8 units, Optuna's CMA-ES sampler, batches of 16 trials
of 64 settings) with ``--storage postgresql://...`` and ``--seconds D``, probes the
storage's latency from a separate connection every 0.5 s while they run (one Optuna
``get_all_trials(RUNNING)`` and one ``SELECT 1``), and then audits the result:

* trials/s and settings/s over the wall time of the load;
* storage latency: the probe's percentiles, and the workers' own Optuna time per trial
  (ask + tell + heartbeats, from the manifest);
* rows written, and rows lost: every COMPLETE trial must have its 64 rows in the store
  (``lost``), no (trial, index) may be stored twice (``duplicated``), and no trial may be
  left RUNNING. The script exits 1 if anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--study", default=str(ROOT / "studies" / "quickstart.toml"))
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--kill", type=int, default=0, help="SIGKILL this many workers mid-run (restarting each)")
    args = ap.parse_args(argv)

    import optuna
    import psycopg

    from lstmsearch import load_results
    from lstmsearch.store import Store
    from pg_server import PgServer, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        sys.exit("no PostgreSQL server programs (apt-get install postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="lstmsearch-load-"))
    pg = PgServer(bin_dir).init().start()
    url = pg.create_db("load")
    try:
        text = Path(args.study).read_text()
        import tomllib

        name = tomllib.loads(text)["study"]["name"]
        out = tmp / "data" / name
        study = tmp / "study.toml"
        lines = [ln for ln in text.splitlines() if not ln.strip().startswith("out")]
        study.write_text("\n".join(lines).replace("[study]", f'[study]\nout = "{out.as_posix()}"', 1) + "\n")
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

        def worker(extra=()):
            return subprocess.Popen([sys.executable, "-m", "lstmsearch.cli", "worker", str(study), "--storage", url,
                                     "--budget", str(10 ** 12), "--seconds", str(args.seconds), "--quiet", *extra],
                                    env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        probe = {"optuna_ms": [], "select1_ms": []}
        stop = threading.Event()

        def probing():
            storage = None
            con = None
            while not stop.wait(0.5):
                try:
                    if storage is None:
                        storage = optuna.storages.RDBStorage(url)
                        con = psycopg.connect(url, autocommit=True)
                    t0 = time.perf_counter()
                    con.execute("SELECT 1").fetchall()
                    probe["select1_ms"].append(1e3 * (time.perf_counter() - t0))
                    sid = storage.get_study_id_from_name(name)
                    t0 = time.perf_counter()
                    storage.get_all_trials(sid, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                    probe["optuna_ms"].append(1e3 * (time.perf_counter() - t0))
                except Exception:  # noqa: BLE001 - the study may not exist yet
                    pass

        th = threading.Thread(target=probing, daemon=True)
        t_start = time.time()
        procs = [worker() for _ in range(args.workers)]
        th.start()
        killed = 0
        if args.kill:
            import signal

            for k in range(args.kill):
                time.sleep(args.seconds / (args.kill + 1))
                procs[k % len(procs)].send_signal(signal.SIGKILL)
                procs[k % len(procs)].wait()
                procs[k % len(procs)] = worker()
                killed += 1
        logs = [p.communicate()[0] for p in procs]
        wall = time.time() - t_start
        stop.set()
        th.join()
        codes = [p.returncode for p in procs]

        st = optuna.load_study(study_name=name, storage=url)
        trials = st.get_trials(deepcopy=False)
        states = {}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        t = load_results(out, columns=["row", "batch", "index"])
        keys = list(zip(t.column("batch").to_pylist(), t.column("index").to_pylist()))
        by_trial = {}
        for b, i in keys:
            by_trial[b] = by_trial.get(b, 0) + 1
        import tomllib as _t

        K = int(_t.loads(text)["strategy"].get("region", {}).get("size", 1))
        complete = [tr for tr in trials if tr.state.name == "COMPLETE"]
        lost = sum(max(0, K - by_trial.get(tr.user_attrs.get("rows_of_trial", tr.number), 0)) for tr in complete)
        told = {tr.user_attrs.get("rows_of_trial", tr.number) for tr in complete}
        untold = sum(n for b, n in by_trial.items() if b not in told)
        m = json.loads((out / "manifest.json").read_text())
        runs = [r for r in m["runs"] if r.get("worker")]
        strat_s = sum(r.get("strategy_s", 0.0) for r in runs)
        ev_s = sum(r.get("evaluate_s", 0.0) for r in runs)
        busy = sum(r.get("wall_s", 0.0) for r in runs)

        def pct(v, q):
            return round(float(np.percentile(v, q)), 2) if v else None

        res = {
            "workers": args.workers, "seconds": args.seconds, "wall_s": round(wall, 1), "killed": killed,
            "exit_codes": codes, "trials": states, "trials_per_s": round(len(complete) / wall, 2),
            "settings_per_s": round(t.num_rows / wall, 1), "rows_written": t.num_rows,
            "rows_lost": lost, "rows_duplicated": len(keys) - len(set(keys)),
            "rows_of_untold_trials": untold, "running_left": states.get("RUNNING", 0),
            "row_ids_unique": bool(len(np.unique(t.column("row").to_numpy())) == t.num_rows),
            "optuna_ms_per_trial_in_workers": round(1e3 * strat_s / max(1, len(complete)), 2),
            "share_outside_kernels": round((busy - ev_s) / busy, 3) if busy else None,
            "probe_optuna_running_trials_ms": {"p50": pct(probe["optuna_ms"], 50), "p95": pct(probe["optuna_ms"], 95),
                                               "p99": pct(probe["optuna_ms"], 99), "n": len(probe["optuna_ms"])},
            "probe_select1_ms": {"p50": pct(probe["select1_ms"], 50), "p95": pct(probe["select1_ms"], 95),
                                 "n": len(probe["select1_ms"])},
            "best_nmse": st.best_value if complete else None,
        }
        print(json.dumps(res, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        bad = res["rows_lost"] or res["rows_duplicated"] or not res["row_ids_unique"] or any(codes)
        if any(codes):
            print("\n".join(log[-2000:] for log in logs), file=sys.stderr)
        return 1 if bad else 0
    finally:
        pg.cleanup()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
