"""Start-up time: how long ``lstmsearch`` takes before it does anything.

Times, each in a fresh interpreter (a subprocess), the median of ``--runs`` runs after one
untimed warm-up run (file cache and ``__pycache__`` warm):

- ``lstmsearch --help`` (the console script);
- a one-line user error, ``lstmsearch top no_such_study`` (exit status 2);
- ``python -c "import lstmsearch"``;
- ``python -c "pass"``: the interpreter alone, the floor;
- ``python -c "import scipy.stats"``: the reference, one common scientific import.

and prints a Markdown table: the median, the minimum, and the ratio to ``import scipy.stats``.
The load average is printed before and after: on a busy machine the figures are not comparable.

Run:  ``python benchmarks/startup.py [--runs 11]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable


def _console_script() -> list:
    """The installed ``lstmsearch`` command (beside this interpreter), else ``python -m lstmsearch.cli``."""
    here = Path(PY).parent / "lstmsearch"
    found = str(here) if here.exists() else shutil.which("lstmsearch")
    return [found] if found else [PY, "-m", "lstmsearch.cli"]


def commands(data_dir: str) -> list:
    """``(label, argv, expected exit status)`` of each timed command."""
    cli = _console_script()
    return [
        ("`lstmsearch --help`", cli + ["--help"], 0),
        ("`lstmsearch top no_such_study` (user error)", cli + ["top", "no_such_study", "--data", data_dir], 2),
        ("`python -c \"import lstmsearch\"`", [PY, "-c", "import lstmsearch"], 0),
        ("`python -c \"pass\"` (the interpreter)", [PY, "-c", "pass"], 0),
        ("`python -c \"import scipy.stats\"` (reference)", [PY, "-c", "import scipy.stats"], 0),
    ]


def time_once(argv, expected) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != expected:
        raise SystemExit(f"{' '.join(argv)} exited {p.returncode}, expected {expected}:\n{p.stderr}")
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11, help="timed runs of each command (default 11)")
    args = ap.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as data:
        cmds = commands(data)
        times = {}
        for label, argv, expected in cmds:
            time_once(argv, expected)  # warm-up: file cache, __pycache__
        for _ in range(args.runs):  # interleaved, so that a burst of load hits every command alike
            for label, argv, expected in cmds:
                times.setdefault(label, []).append(time_once(argv, expected))
    load1 = os.getloadavg()
    ref = statistics.median(times[cmds[-1][0]])
    where = subprocess.run([PY, "-c", "import lstmsearch; print(lstmsearch.__file__)"], capture_output=True,
                           text=True).stdout.strip()
    print(f"lstmsearch from {where}; Python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.runs} runs "
          f"each; load average {load0[0]:.2f} before, {load1[0]:.2f} after\n")
    print("| command | median (s) | min (s) | / import scipy.stats |")
    print("|---|---:|---:|---:|")
    for label, _, _ in cmds:
        t = times[label]
        print(f"| {label} | {statistics.median(t):.3f} | {min(t):.3f} | {statistics.median(t) / ref:.2f} |")


if __name__ == "__main__":
    main()
