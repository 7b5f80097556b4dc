"""Shared fixtures. The conformance tests count the (setting, sequence) pairs they compare
and those they exclude as ill-conditioned; the counts are printed at the end of the run."""

from collections import defaultdict

import numpy as np
import pytest

_COUNTS = defaultdict(lambda: np.zeros(2, dtype=np.int64))


@pytest.fixture
def conformance_counts():
    return _COUNTS


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS:
        return
    terminalreporter.section("conformance: pairs compared / excluded as ill-conditioned")
    for (kind, scale), (kept, excluded) in sorted(_COUNTS.items()):
        terminalreporter.write_line(f"{kind:<9} scale={scale:<6} compared {kept:5d}  excluded {excluded:5d}")
