"""The quickstart figures the docs quote (docs/analysis.md's report excerpt, the README's
sentence) are what `lstmsearch run studies/quickstart.toml` and `lstmsearch report quickstart`
print today: the study is run and reported here, and every line of the excerpt that is not an
elision must be in the report.

A search's path goes through Optuna's CMA-ES sampler (the ``cmaes`` library, which calls BLAS and
LAPACK), so the run is pinned to OpenBLAS's Haswell kernel and one thread: the same rows on any
x86-64 machine with AVX2 (reproducing a stored row needs no such pin)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1"}


def _cli(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env.update(ENV)
    proc = subprocess.run([sys.executable, "-m", "lstmsearch.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def excerpt_blocks(text: str):
    """The blocks of the quoted report excerpt in docs/analysis.md: table rows one by one, and each
    paragraph joined into one line; elided rows ('| ... |') left out."""
    start = text.index("An excerpt of a real report:")
    lines = text[start:].splitlines()
    quoted = []
    for ln in lines[1:]:
        if ln.startswith(">"):
            quoted.append(ln[1:].strip())
        elif quoted:
            break
    blocks, para = [], []
    for ln in quoted + [""]:
        if ln.startswith("|"):
            if "..." not in ln and not re.fullmatch(r"\|(-+\|)+", ln.replace(" ", "")):
                blocks.append(ln)
        elif ln:
            para.append(ln)
        elif para:
            blocks.append(" ".join(para))
            para = []
    return blocks


@pytest.mark.slow
def test_the_quickstart_excerpt_is_what_run_and_report_print(tmp_path):
    data = tmp_path / "data"
    _cli("run", str(ROOT / "studies" / "quickstart.toml"), "--data", str(data), "--quiet", cwd=tmp_path)
    _cli("report", "quickstart", "--data", str(data), "--out", str(tmp_path / "report"), "--no-plots", cwd=tmp_path)
    page = next((tmp_path / "report").glob("*.md")).read_text()
    flat = " ".join(page.split())
    blocks = excerpt_blocks((ROOT / "docs" / "analysis.md").read_text())
    assert len(blocks) >= 6
    missing = [b for b in blocks if " ".join(b.split()) not in flat]
    assert not missing, "docs/analysis.md quotes lines the report does not print:\n" + "\n".join(missing)
    # the README's sentence names the same best row and its error at every checked length
    best = re.search(r"\| 1 \| (\d+) \| solved at every checked length \| ([0-9.e+-]+) \|", page)
    assert best, page[:3000]
    row, nmse = best.group(1), float(best.group(2))
    m, e = f"{nmse:.1e}".split("e")
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"found row {row} in this release's run: {m}e{int(e)} at every checked length" in readme, (row, nmse)
