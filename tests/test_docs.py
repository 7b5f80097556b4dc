"""The documentation site builds with warnings as errors (``sphinx -W``).

Needs the ``docs`` extra (sphinx, myst-parser, sphinx-argparse), which the ``test`` extra
also installs. The build imports the package (autodoc) and renders the argparse parser.
"""

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("sphinxarg")
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(out), "-d", str(tmp_path / "doctrees")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"sphinx -W failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    for page in ["index.html", "api.html", "cli.html", "results.html", "concepts.html",
                 "guide.html", "analysis.html", "performance.html", "anchors/why_gates.html"]:
        assert (out / page).is_file(), page
    api = (out / "api.html").read_text(encoding="utf-8")
    assert "lstmsearch.cells.Cell" in api and "run_study" in api
    cli = html.unescape(re.sub(r"<[^>]+>", "", (out / "cli.html").read_text(encoding="utf-8")))
    for command in ["run", "reproduce", "lengths", "explain", "report"]:
        assert f"lstmsearch {command}" in cli, command
