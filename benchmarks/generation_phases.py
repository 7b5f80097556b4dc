"""Where one generation of the peers benchmark's lstmsearch run goes: seconds per generation of
the run loop (blind study at H hidden units, sep-CMA-ES, 1024 settings x 256 sequences x 21 steps),
split into the kernel, the readout fit, applying the readout, the rest of evaluate, the strategy
and the writer thread (overlapped), by timers around those calls.

    python benchmarks/generation_phases.py --cell lstm --generations 16

To compare two versions of the package on the same machine, run it from outside the repository
with ``PYTHONPATH`` at each (e.g. a ``git archive`` of the older ``lstmsearch/``), alternately.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cell", default="lstm", choices=("lstm", "gru"))
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--generations", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    os.environ.setdefault("LSTMSEARCH_THREADS", str(a.threads))
    sys.path.insert(0, str(HERE))
    import peers_time_to_solution as peers  # noqa: E402  (the benchmark's own study)

    import lstmsearch
    from lstmsearch import evaluate, readout
    from lstmsearch.kernels import cpu
    from lstmsearch.run import loop
    from lstmsearch.run.coordinator import Coordinator
    from lstmsearch.store import Store
    from lstmsearch.store.manifest import prepare_manifest

    seconds = collections.defaultdict(float)

    def timed(owner, name, key):
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[key] += time.perf_counter() - t0
        setattr(owner, name, wrapper)

    timed(cpu, "run", "kernel (cpu.run)")
    for name, key in (("fit", "readout fit"), ("fit_steps", "readout fit"), ("apply", "readout apply"),
                      ("apply_steps", "readout apply")):
        if hasattr(readout, name):  # fit_steps/apply_steps: releases after 0.1.0
            timed(readout, name, key)
    timed(loop, "_write_batches", "writer thread (overlapped)")
    cfg = peers.study(a.cell, a.hidden, 0)
    evaluate(cfg.cell, cfg.cell.init(8, seed=0), cfg.task, n_sequences=8, n_heldout=8)  # compiled first
    seconds.clear()
    done = [0]

    class Stop(Coordinator):
        def stop_requested(self):
            return done[0] >= a.generations or super().stop_requested()

    class Count(loop.LocalEvaluator):
        def evaluate(self, batch):
            table = super().evaluate(batch)
            done[0] += 1
            return table

    with tempfile.TemporaryDirectory(prefix="phases-") as tmp:
        run_cfg = loop.study_config(cfg, budget=10 ** 8, out=Path(tmp) / cfg.name)
        store = Store(run_cfg.out)
        manifest = prepare_manifest(run_cfg, store)
        messages = store.acquire()
        t0 = time.perf_counter()
        try:
            rep = loop.run_loop(run_cfg, store, manifest, messages, False, lambda s: None, coordinator=Stop(),
                                evaluator=Count(run_cfg))
        finally:
            store.release()
        wall = time.perf_counter() - t0
    n = done[0]
    rest = rep.evaluate_s - seconds["kernel (cpu.run)"] - seconds["readout fit"] - seconds["readout apply"]
    print(f"{a.cell} H={a.hidden}, {n} generations of {cfg.strategy['popsize']} settings, package "
          f"{Path(lstmsearch.__file__).parent}; seconds per generation:")
    rows = [("generation (wall)", wall), ("evaluate", rep.evaluate_s),
            ("  kernel (cpu.run)", seconds["kernel (cpu.run)"]), ("  readout fit", seconds["readout fit"]),
            ("  readout apply", seconds["readout apply"]), ("  rest of evaluate", rest),
            ("strategy", rep.strategy_s), ("writer thread (overlapped)", seconds["writer thread (overlapped)"])]
    for label, s in rows:
        print(f"  {label:28s} {s / n:.3f}")
    print(json.dumps({label.strip(): round(s / n, 4) for label, s in rows}))


if __name__ == "__main__":
    main()
