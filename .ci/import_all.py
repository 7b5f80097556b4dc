"""Import every module of the lstmsearch package; exit 1 naming each one that fails.

Run by .ci/run in a new virtual environment holding only ``pip install -e .``: a module
that imports something no base requirement provides fails CI here. The optional extras'
packages (torch, matplotlib, numba-cuda, duckdb, psycopg, dask) are imported inside the
functions that need them, so every module imports in the base install.
"""

import importlib
import pkgutil
import sys

import lstmsearch

failed = []
names = [m.name for m in pkgutil.walk_packages(lstmsearch.__path__, "lstmsearch.")
         if not m.name.endswith(".__main__")]  # runs the command line
for name in names:
    try:
        importlib.import_module(name)
    except Exception as err:  # noqa: BLE001 - every failure is reported
        failed.append(f"{name}: {type(err).__name__}: {err}")
print(f"imported {len(names) - len(failed)} of {len(names)} lstmsearch modules in the base install")
for line in failed:
    print(f"  FAILED {line}")
sys.exit(1 if failed else 0)
