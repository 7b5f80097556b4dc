"""Shared fixtures. The conformance tests count the (setting, sequence) pairs they compare
and those they exclude as ill-conditioned; the counts are printed at the end of the run."""

import ctypes
import os
from collections import defaultdict

import numpy as np
import pytest

_COUNTS = defaultdict(lambda: np.zeros(2, dtype=np.int64))


@pytest.fixture(autouse=True)
def part_per_batch(request, monkeypatch):
    """Most store tests damage, count, or stop a run between the parts of a small study: their
    in-process runs write one part per batch (lstmsearch.run.writer.MIN_PART_ROWS = 1). Tests
    marked ``gathered`` (and every ``lstmsearch`` subprocess) gather small batches into parts of
    2,048 rows, as a real run does."""
    if request.node.get_closest_marker("gathered") is None:
        from lstmsearch.run import writer

        monkeypatch.setattr(writer, "MIN_PART_ROWS", 1)


@pytest.fixture
def conformance_counts():
    return _COUNTS


@pytest.fixture(scope="module")
def pg():
    """A throw-away PostgreSQL server on loopback for one test module (tests/pg_server.py installs
    its programs with apt-get where they are missing); skipped without psycopg or the programs."""
    pytest.importorskip("psycopg", reason="the PostgreSQL tests need psycopg (pip install -e .[test])")
    from pg_server import PgServer, find_pg_bin

    b = find_pg_bin()
    if b is None:
        pytest.skip("no PostgreSQL server programs (initdb, pg_ctl) and apt-get could not install them")
    server = PgServer(b).init().start()
    yield server
    server.cleanup()


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS:
        return
    terminalreporter.section("conformance: pairs compared / excluded as ill-conditioned")
    for (kind, scale), (kept, excluded) in sorted(_COUNTS.items()):
        terminalreporter.write_line(f"{kind:<9} scale={scale:<6} compared {kept:5d}  excluded {excluded:5d}")


# ---- CUDA backend: real GPU or the CUDA simulator ---------------------------------------
# numba.cuda decides once, when it is first imported, whether it drives a real GPU or the
# CUDA simulator (NUMBA_ENABLE_CUDASIM=1). This conftest is loaded before any test module,
# so it settles that here, with a cheap probe of the CUDA driver (no numba import):
# - a GPU is present: nothing is set; tests/test_cuda.py runs un-simulated on it;
# - no GPU: NUMBA_ENABLE_CUDASIM=1 is set, so the cuda backend's tests run simulated.
# Other tests are not affected: lstmsearch imports numba.cuda only for backend "cuda" or
# "auto", and "auto" never picks the simulator (it falls back to cpu as without a GPU).
# LSTMSEARCH_TEST_CUDASIM=1 forces the simulator even where a GPU is present.


def _gpu_present() -> bool:
    """True when the CUDA driver loads and reports at least one device."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        if lib.cuInit(0) != 0:
            return False
        count = ctypes.c_int(0)
        return lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except (OSError, AttributeError):
        return False


if "NUMBA_ENABLE_CUDASIM" not in os.environ:
    if os.environ.get("LSTMSEARCH_TEST_CUDASIM") == "1" or not _gpu_present():
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
# ---- end of the CUDA piece ---------------------------------------------------------------
