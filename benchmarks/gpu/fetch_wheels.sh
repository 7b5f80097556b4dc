#!/usr/bin/env bash
# Download, here (where PyPI is reachable), the wheels that benchmarks/gpu/run_check.sh installs
# offline on a lent GPU machine, into benchmarks/gpu/wheels/ (git-ignored; carry it to the machine).
#
# The GPU image has numba, numba-cuda, llvmlite, numpy, pyarrow, torch and tqdm: none of these is
# downloaded. What it lacks of the project's base dependencies (optuna, cmaes, sqlalchemy and
# their own needs), plus pytest and hypothesis with theirs, and setuptools to build the editable
# install, is downloaded here without dependencies (--no-deps), from the explicit lists below:
#   - pure-Python wheels (py3-none-any) only, for the packages in PURE;
#   - for the compiled packages in COMPILED, manylinux x86_64 wheels for CPython 3.11, 3.12, 3.13.
# scipy (the Sobol sweep only; about 35 MB a wheel) is left out unless --with-scipy (cp312 only:
# the folder grows from about 9 MB to about 45 MB of the 64 MiB that travel; the GPU image has
# scipy anyway). run_check.sh installs the project with --no-deps and then only the requirements
# the machine lacks, so a missing scipy does not stop it.
#
# Usage: bash benchmarks/gpu/fetch_wheels.sh [--with-scipy]      (PYTHON=python3.X to pick pip)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=${WHEELS_DIR:-$here/wheels}
py=${PYTHON:-python3}
with_scipy=0
for arg in "$@"; do
    case $arg in
        --with-scipy) with_scipy=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "fetch_wheels.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

# Keep in step with pyproject.toml (tests/test_gpu_check_script.py checks that each base
# dependency is in ON_IMAGE, PURE or COMPILED). On the GPU image already; never downloaded:
ON_IMAGE=(numba numba-cuda llvmlite numpy pyarrow torch tqdm scipy)
PURE=(
    optuna alembic colorlog mako sqlalchemy cmaes   # optuna and cmaes (base), with their needs
    typing_extensions packaging                     # needed by alembic / sqlalchemy / pytest
    pytest pluggy iniconfig pygments                # pytest
    hypothesis sortedcontainers                     # hypothesis
    setuptools                                      # build backend of the editable install
)
COMPILED=(pyyaml markupsafe)  # needed by optuna, mako (sqlalchemy >= 2.1 needs no greenlet)
PYVERS=(3.11 3.12 3.13)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

mkdir -p "$dest"
rm -f "$dest"/*.whl
dl() { "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$dest" "$@"; }

echo "pure-Python wheels -> $dest"
dl --platform any --implementation py --abi none --python-version 3.11 "${PURE[@]}"
for v in "${PYVERS[@]}"; do
    echo "compiled wheels for CPython $v"
    dl --implementation cp --python-version "$v" --abi "cp${v/./}" "${PLATFORMS[@]}" "${COMPILED[@]}"
done
if [ "$with_scipy" = 1 ]; then
    echo "scipy for CPython 3.12 (the GPU image's python3)"
    dl --implementation cp --python-version 3.12 --abi cp312 "${PLATFORMS[@]}" scipy
fi

# Nothing the GPU image already has may slip in (a second numpy would break the install there).
pattern=$(IFS='|'; echo "${ON_IMAGE[*]//-/_}")
if [ "$with_scipy" = 1 ]; then pattern=${pattern//|scipy/}; fi
if ls "$dest" | grep -Ei "^($pattern)-"; then
    echo "fetch_wheels.sh: the wheels above must not be carried; remove them" >&2
    exit 1
fi
n=$(ls "$dest"/*.whl | wc -l)
echo "$n wheels, $(du -sh "$dest" | cut -f1) in $dest"
