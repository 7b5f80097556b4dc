#!/usr/bin/env bash
# The GPU check of the cuda backend, in one command, from the repository root:
#
#   bash benchmarks/gpu/run_check.sh              # on a machine with an NVIDIA GPU
#   bash benchmarks/gpu/run_check.sh --simulate   # here, on the CPU, under the CUDA simulator
#
# Needs no package registry: the project is installed from the working tree, and what the
# machine lacks from benchmarks/gpu/wheels/ (made by fetch_wheels.sh), into a scratch venv that
# sees the machine's own numba, numba-cuda, torch and pyarrow. Then, each step with its own
# time limit: tests/test_cuda.py, benchmarks/bench_cuda.py against PyTorch, the quickstart study
# on backend cuda and `lstmsearch top`. Logs and summary.md go to --out DIR, else $OUT, else
# benchmarks/gpu/out/. A failed step is recorded and the next one runs; the exit status is
# non-zero when any step failed. See benchmarks/gpu/README.md.
#
# Options: --simulate   tiny shapes under NUMBA_ENABLE_CUDASIM=1 (checks the script, measures nothing)
#          --out DIR    output folder
#          PYTHON=...   interpreter whose packages are reused (default python3)
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF="$ROOT/benchmarks/gpu/run_check.sh"
WHEELS="$ROOT/benchmarks/gpu/wheels"

SIMULATE=0
OUTDIR=${OUT:-$ROOT/benchmarks/gpu/out}
while [ $# -gt 0 ]; do
    case $1 in
        --simulate) SIMULATE=1 ;;
        --out) OUTDIR=$2; shift ;;
        --step) STEP=$2; shift ;;  # internal: run one step (see below)
        -h|--help) sed -n '2,18p' "$SELF"; exit 0 ;;
        *) echo "run_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# Time limits (s). On the GPU they add up to 440 s, and with 5 s of grace each for a step
# that ignores SIGTERM, to 480 s: the whole check stays within 8 minutes.
if [ "$SIMULATE" = 1 ]; then
    T_INFO=60 T_INSTALL=300 T_PROBE=120 T_PYTEST=900 T_BENCH_A=300 T_BENCH_B=300 T_RUN=600 T_TOP=60
else
    T_INFO=10 T_INSTALL=45 T_PROBE=40 T_PYTEST=160 T_BENCH_A=70 T_BENCH_B=45 T_RUN=55 T_TOP=15
fi

# ---------------------------------------------------------------------------- the steps
# Each runs as `bash run_check.sh --step NAME` under `timeout`, with the variables below set.

step_info() {
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(uname -srm)"
    echo "python: $("$BASEPY" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    else
        echo "nvidia-smi: not found"
        [ "$SIMULATE" = 1 ]  # only a failure on the GPU
    fi
}

step_install() {
    set -e
    # A venv that sees the machine's packages (pip among them) behind its own: a .pth file
    # adds each site-packages folder of $BASEPY with site.addsitedir, which also runs the .pth
    # files there (numba-cuda's redirector of numba.cuda is one). Not --system-site-packages:
    # where python3 is itself a venv (the GPU image's is /opt/torch/.venv) that would reach
    # the base interpreter's packages instead of the ones python3 sees.
    local sp
    if [ -z "${GPU_CHECK_NO_VENV:-}" ] && "$BASEPY" -m venv --without-pip "$VENV"; then
        sp=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        "$BASEPY" -c 'import site
print("".join(f"import site; site.addsitedir({p!r})\n" for p in site.getsitepackages()), end="")' \
            > "$sp/_gpu_check_parent.pth"
        echo "venv $VENV over the packages of $BASEPY:"
        cat "$sp/_gpu_check_parent.pth"
    else
        # No venv (or GPU_CHECK_NO_VENV set): install into $BASEPY's own environment (a lent
        # machine is thrown away afterwards); $VENV/bin only holds wrappers for the steps.
        echo "NOTE: no venv; installing into the environment of $BASEPY"
        rm -rf "$VENV"; mkdir -p "$VENV/bin"
        local py; py=$("$BASEPY" -c 'import sys; print(sys.executable)')
        printf '#!/bin/sh\nexec "%s" "$@"\n' "$py" > "$VENV/bin/python"
        printf '#!/bin/sh\nexec "%s" -m lstmsearch.cli "$@"\n' "$py" > "$VENV/bin/lstmsearch"
        chmod +x "$VENV/bin/python" "$VENV/bin/lstmsearch"
    fi
    "$VENV/bin/python" -m pip --version
    [ -d "$WHEELS" ] || { echo "no $WHEELS: run benchmarks/gpu/fetch_wheels.sh and carry that folder"; exit 1; }
    # The requirements (base, and pytest/hypothesis of the test extra) that are not installed.
    # Present ones are used as they are, even off the pins (noted): pip never replaces the
    # machine's numpy/numba/torch. scipy (Sobol sweep only) may be missing without a wheel.
    "$VENV/bin/python" - "$ROOT/pyproject.toml" "$WHEELS" > "$SCRATCH/reqs.txt" <<'PY'
import re, sys, tomllib
from importlib import metadata
from pathlib import Path
proj = tomllib.loads(Path(sys.argv[1]).read_text())["project"]
wheels = [p.name.lower() for p in Path(sys.argv[2]).glob("*.whl")]
test = [r for r in proj["optional-dependencies"]["test"] if re.match(r"(pytest|hypothesis)\b", r)]
try:
    from packaging.requirements import Requirement
except ImportError:
    Requirement = None
for req in proj["dependencies"] + test:
    name = re.split(r"[ <>=!~;\[]", req, maxsplit=1)[0]
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        if name == "scipy" and not any(w.startswith("scipy-") for w in wheels):
            print(f"# optional, absent: {req} (only the Sobol sweep needs it; no wheel carried)", file=sys.stderr)
        else:
            print(req)
        continue
    off = Requirement is not None and not Requirement(req).specifier.contains(have, prereleases=True)
    print(f"# present: {name} {have}" + (f"  (NOTE: off the pin {req})" if off else ""), file=sys.stderr)
PY
    echo "to install from $WHEELS: $(tr '\n' ' ' < "$SCRATCH/reqs.txt")"
    # Only the wheels folder: no index, and no pip configuration of the machine (find-links,
    # constraints) that would make the result differ from one machine to the next.
    unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT PIP_REQUIREMENT
    export PIP_CONFIG_FILE=/dev/null
    local pipi=("$VENV/bin/python" -m pip install --no-index --find-links "$WHEELS" --disable-pip-version-check)
    if [ -s "$SCRATCH/reqs.txt" ]; then
        "${pipi[@]}" -r "$SCRATCH/reqs.txt"
    fi
    # The project itself with --no-deps: its pins (e.g. numpy < 2.5) must not make pip replace
    # the machine's packages. Build isolation takes setuptools from the wheels folder.
    "${pipi[@]}" --no-deps -e "$ROOT" || "${pipi[@]}" --no-deps --no-build-isolation -e "$ROOT"
    "$VENV/bin/lstmsearch" --version
}

step_probe() {
    python - <<'PY'
import os, sys
from importlib import metadata
def v(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
for pkg in ("lstmsearch", "numba", "numba-cuda", "llvmlite", "numpy", "torch", "pyarrow", "optuna", "cmaes", "scipy"):
    print(f"INFO {pkg}: {v(pkg)}")
print(f"INFO NUMBA_ENABLE_CUDASIM: {os.environ.get('NUMBA_ENABLE_CUDASIM', 'unset')}; CUDA_HOME: {os.environ.get('CUDA_HOME', 'unset')}")
import torch
print(f"INFO torch CUDA: {torch.version.cuda}; available: {torch.cuda.is_available()}"
      + (f"; {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
from lstmsearch.kernels import cuda as kcuda
ok, where = kcuda.gpu_status()
print(f"INFO lstmsearch cuda backend: usable={ok}; {where}; simulated={kcuda.simulating()}")
if not ok:
    sys.exit(1)
from numba import cuda
cuda.detect()
if not kcuda.simulating():
    try:
        from numba.cuda.cudadrv import driver, runtime
        print(f"INFO CUDA driver API: {driver.driver.get_version()}; "
              f"numba-cuda's runtime: {runtime.runtime.get_version()}")
    except Exception as err:  # the versions are informative only
        print(f"INFO CUDA versions from numba-cuda: unavailable ({type(err).__name__}: {err})")
    print(f"INFO numba device: {cuda.get_current_device().name}")

@cuda.jit
def one(a):
    a[cuda.grid(1)] += 1.0

import numpy as np
a = cuda.to_device(np.zeros(64, np.float32))
one[2, 32](a)
assert (a.copy_to_host() == 1).all(), "a trivial kernel gave a wrong result"
print("INFO a trivial numba-cuda kernel compiled and ran")
want_sim = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
sys.exit(0 if ok and kcuda.simulating() == want_sim else 1)
PY
}

step_pytest() {
    python -m pytest -q -p no:cacheprovider tests/test_cuda.py
}

step_bench() {  # $1: cells
    if [ "$SIMULATE" = 1 ]; then
        python benchmarks/bench_cuda.py --smoke --cells "$1" --hidden 2
    else
        python benchmarks/bench_cuda.py --cells "$1" --hidden 4,32
    fi
}

step_run() {
    local study="$ROOT/studies/quickstart.toml" budget=()
    if [ "$SIMULATE" = 1 ]; then
        # A tiny copy of the quickstart: a few settings on a few sequences (the simulator runs
        # every GPU thread in Python).
        study="$SCRATCH/quickstart.toml"
        sed -e 's/^sequences = 256 /sequences = 6 /' -e 's/^heldout = 256 /heldout = 6 /' \
            -e 's/^lengths = \[20, 21\].*$/lengths = [5, 6]/' -e 's/^batch = 16$/batch = 4/' \
            -e 's/region = { size = 256,/region = { size = 2,/' -e 's/popsize = 16/popsize = 4/' \
            "$ROOT/studies/quickstart.toml" > "$study"
        [ "$(diff "$ROOT/studies/quickstart.toml" "$study" | grep -c '^>')" = 6 ] \
            || { echo "studies/quickstart.toml changed: the simulation's edits no longer apply"; exit 1; }
        budget=(--budget 16)
    fi
    lstmsearch run "$study" --backend cuda --out "$SCRATCH/quickstart" --quiet ${budget[@]+"${budget[@]}"}
}

step_top() {
    lstmsearch top "$SCRATCH/quickstart" -k 5
}

if [ -n "${STEP:-}" ]; then
    case $STEP in
        info) step_info ;; install) step_install ;; probe) step_probe ;; pytest) step_pytest ;;
        bench_lstm) step_bench lstm ;; bench_others) step_bench gru,rnn_tanh ;;
        run) step_run ;; top) step_top ;;
        *) echo "unknown step $STEP" >&2; exit 2 ;;
    esac
    exit
fi

# ---------------------------------------------------------------------------- the driver
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
# At most 8 files come back from a lent machine's $OUT: these five, and no folders.
rm -f "$OUTDIR"/{summary.md,setup.log,pytest.log,bench.log,quickstart.log}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/lstmsearch-gpu-check.XXXXXX")
MODE=(); [ "$SIMULATE" = 1 ] && MODE=(--simulate)
export ROOT SCRATCH WHEELS VENV="$SCRATCH/venv" BASEPY="${PYTHON:-python3}"
# A fresh cache of compiled cpu kernels (lstmsearch/kernels/_codegen.py): times are cold-start
# times, as on a fresh machine, and the user's cache is left alone.
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 XDG_CACHE_HOME="$SCRATCH/cache"
if [ "$SIMULATE" = 1 ]; then
    export NUMBA_ENABLE_CUDASIM=1 LSTMSEARCH_TEST_CUDASIM=1
else
    # Never the simulator: tests/conftest.py leaves a set NUMBA_ENABLE_CUDASIM alone, so
    # without a usable GPU the tests skip (and the step fails) instead of passing simulated.
    export NUMBA_ENABLE_CUDASIM=0
    unset LSTMSEARCH_TEST_CUDASIM
    # numba-cuda looks for NVVM/libdevice there when no nvidia-cuda-nvcc wheel provides them
    if [ -z "${CUDA_HOME:-}" ] && [ -d /usr/local/cuda ]; then export CUDA_HOME=/usr/local/cuda; fi
fi
cd "$ROOT"

NAMES=() RCS=() WALLS=() LIMITS=()
FAILED=0
step() {  # NAME LIMIT LOG
    local name=$1 limit=$2 log="$OUTDIR/$3" t0 t1 rc wall
    echo "==== $name (limit ${limit}s) ====" | tee -a "$log"
    t0=$(date +%s.%N)
    if [ "$name" = info ] || [ "$name" = install ]; then
        timeout -k 5 "$limit" bash "$SELF" ${MODE[@]+"${MODE[@]}"} --step "$name" 2>&1 | tee -a "$log"
    else  # in the venv
        PATH="$VENV/bin:$PATH" timeout -k 5 "$limit" bash "$SELF" ${MODE[@]+"${MODE[@]}"} --step "$name" 2>&1 | tee -a "$log"
    fi
    rc=${PIPESTATUS[0]}
    t1=$(date +%s.%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    # Steps that "pass" without touching a GPU have failed (on the GPU; simulated, the same).
    case $name in
        pytest) if [ "$rc" = 0 ] && grep -q "cuda backend cannot run here" "$log"; then rc=3; fi ;;
        bench_*) if [ "$rc" = 0 ] && grep -q "nothing measured" "$log"; then rc=3; fi ;;
    esac
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && echo "!!!! $name: timed out after ${limit}s" | tee -a "$log"
    echo "==== $name: exit $rc, ${wall}s ====" | tee -a "$log"
    NAMES+=("$name") RCS+=("$rc") WALLS+=("$wall") LIMITS+=("$limit")
    [ "$rc" = 0 ] || FAILED=1
    return "$rc"
}

T_START=$(date +%s)
step info "$T_INFO" setup.log
if step install "$T_INSTALL" setup.log; then
    step probe "$T_PROBE" setup.log
    step pytest "$T_PYTEST" pytest.log
    step bench_lstm "$T_BENCH_A" bench.log
    step bench_others "$T_BENCH_B" bench.log
    step run "$T_RUN" quickstart.log && step top "$T_TOP" quickstart.log
else
    echo "install failed: the other steps are skipped" | tee -a "$OUTDIR/setup.log"
fi
T_TOTAL=$(( $(date +%s) - T_START ))

# ---------------------------------------------------------------------------- summary.md
{
    if [ "$SIMULATE" = 1 ]; then
        echo "# GPU check of the cuda backend: SIMULATED (CUDA simulator on the CPU; no figure is a GPU measurement)"
    else
        echo "# GPU check of the cuda backend"
    fi
    echo
    if commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
        git -C "$ROOT" diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"
    else
        commit="unknown (no git repository)"
    fi
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, total ${T_TOTAL}s"
    echo
    echo '## Machine'
    echo
    if command -v nvidia-smi >/dev/null; then
        echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1) (name, driver, memory)"
        echo "- nvidia-smi CUDA version: $(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1)"
    else
        echo "- GPU: none (nvidia-smi not found)"
    fi
    grep -h '^INFO ' "$OUTDIR/setup.log" 2>/dev/null | sed 's/^INFO /- /'
    grep -h '^# present: .*NOTE' "$OUTDIR/setup.log" 2>/dev/null | sed 's/^# present: /- off the pins: /'
    echo
    echo '## Steps'
    echo
    echo '| step | exit | wall s | limit s | log |'
    echo '| --- | --- | --- | --- | --- |'
    for i in "${!NAMES[@]}"; do
        case ${NAMES[$i]} in
            info|install|probe) log=setup.log ;; pytest) log=pytest.log ;;
            bench_*) log=bench.log ;; *) log=quickstart.log ;;
        esac
        echo "| ${NAMES[$i]} | ${RCS[$i]} | ${WALLS[$i]} | ${LIMITS[$i]} | $log |"
    done
    echo
    echo "Exit 124/137: timed out; 3: ran but measured or tested nothing on the device."
    echo
    echo '## tests/test_cuda.py'
    echo
    echo '```'
    grep -E '(passed|failed|error|skipped)' "$OUTDIR/pytest.log" 2>/dev/null | grep -E '^(=|[0-9]|FAILED|ERROR|SKIPPED)' | tail -15
    echo '```'
    echo
    echo '## benchmarks/bench_cuda.py (cell-steps per second)'
    echo
    echo '```'
    grep -E '^(device:|cell |-----|lstm|gru|rnn_tanh|target|CUDA SIM|smoke|torch runs|bench_cuda:|!!!!)' "$OUTDIR/bench.log" 2>/dev/null
    echo '```'
    echo
    echo '## lstmsearch run studies/quickstart.toml --backend cuda, then top'
    echo
    echo '```'
    grep -vE '^(====|!!!!)' "$OUTDIR/quickstart.log" 2>/dev/null | tail -25
    echo '```'
} > "$OUTDIR/summary.md"

echo
cat "$OUTDIR/summary.md"
rm -rf "$SCRATCH"
exit "$FAILED"
