"""The first run says what it is doing: with the compiled-kernel cache empty, ``lstmsearch run``
says that it compiles the study's kernel (Numba takes seconds, during which the progress bar
stands at 0%) and where the kernel is cached; a second run, which loads it from that cache,
says nothing of the kind. Two real runs in separate processes, each with a tiny budget."""

from __future__ import annotations

import os
import subprocess
import sys

from search_helpers import write_study


def _run(study, cache, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "NUMBA_CACHE_DIR")}
    env["LSTMSEARCH_CACHE_DIR"] = str(cache)
    proc = subprocess.run([sys.executable, "-m", "lstmsearch.cli", "run", str(study), "--quiet", *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_a_run_with_an_empty_cache_says_it_compiles_and_a_cached_run_does_not(tmp_path):
    study, _ = write_study(tmp_path, cell="gru", hidden=2, budget=50)
    cache = tmp_path / "empty cache"
    first = _run(study, cache)
    said = [ln for ln in first if "compiling" in ln]
    # (the readout's fixed-order sums are named too where no earlier run compiled them: cached beside the package)
    assert len(said) == 1 and said[0] in (
        f"compiling the gru H=2 kernel{sums} (first run only, some seconds; cached in {cache / 'kernels'})"
        for sums in ("", " and the readout sums")), first
    assert first.index(said[0]) < next(i for i, ln in enumerate(first) if ln.startswith("study s: ")), first
    assert any(name.endswith(".nbi") for _, _, files in os.walk(cache) for name in files)  # Numba's index is there

    second = _run(study, cache, "--budget", "100")  # continues the study: simulates again, from the cache
    assert not [ln for ln in second if "compiling" in ln], second
    assert any(ln.startswith("study s: 50 settings evaluated in this run") for ln in second), second
