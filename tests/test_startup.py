"""Start at once: ``import lstmsearch``, ``lstmsearch --help`` (and every command's ``--help``) and a
one-line user error import none of the heavy modules.

Each check runs in a fresh interpreter (a subprocess) and looks at ``sys.modules`` afterwards.
Never imported there: scipy, cmaes, optuna, torch, matplotlib, duckdb, numba-cuda, sqlalchemy, dask
(each takes from a tenth of a second to seconds to import); nor Numba and pyarrow, which the
commands import when they run. The public API stays whole: every name of ``lstmsearch.__all__``
imports on first use. No timings here: ``benchmarks/startup.py`` measures them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Never imported by ``import lstmsearch``, ``--help`` or a one-line user error.
HEAVY = ("scipy", "cmaes", "optuna", "torch", "matplotlib", "duckdb", "numba_cuda", "numba.cuda", "sqlalchemy",
         "dask", "distributed")
#: Imported by the commands when they run, not before.
DEFERRED = ("numba", "pyarrow")

#: Runs each argv of ``sys.argv[2]`` (a JSON list; null: ``import lstmsearch``) as ``python -m
#: lstmsearch.cli ARGV`` would, in this one process, and writes to the file ``sys.argv[1]`` for each
#: its exit status and the watched modules imported so far.
PROBE = r"""
import json, runpy, sys

out, runs, watched = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
results = []
for argv in runs:
    if argv is None:
        import lstmsearch
        code = 0
    else:
        sys.argv = ["lstmsearch", *argv]
        try:
            runpy.run_module("lstmsearch.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code
    loaded = sorted(w for w in watched if any(m == w or m.startswith(w + ".") for m in sys.modules))
    results.append({"argv": argv, "code": code, "loaded": loaded})
with open(out, "w") as f:
    json.dump(results, f)
"""


def _probe(tmp_path, runs):
    """``[{"argv", "code", "loaded"}]`` of ``runs`` in one fresh interpreter; the process's stderr."""
    out = tmp_path / "probe.json"
    env = {k: v for k, v in os.environ.items() if k != "LSTMSEARCH_STORAGE"}
    p = subprocess.run([sys.executable, "-c", PROBE, str(out), json.dumps(runs), json.dumps(HEAVY + DEFERRED)],
                       cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert out.exists(), p.stderr
    return json.loads(out.read_text()), p.stderr


def _commands():
    from lstmsearch.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return list(sub.choices)


def test_import_lstmsearch_imports_no_heavy_module(tmp_path):
    (result,), _ = _probe(tmp_path, [None])
    assert result["loaded"] == []


def test_help_of_every_command_imports_no_heavy_module(tmp_path):
    runs = [["--help"], ["--version"]] + [[c, "--help"] for c in _commands()]
    results, _ = _probe(tmp_path, runs)
    assert len(results) == len(runs) > 10
    for r in results:  # cumulative: the first run that shows a module imported it
        assert r["code"] == 0, r["argv"]
        assert r["loaded"] == [], f"lstmsearch {' '.join(r['argv'])} imported {r['loaded']}"


@pytest.mark.parametrize("argv, message", [
    (["top", "no_such_study"], "no study 'no_such_study'"),
    (["run", "missing.toml"], "study file 'missing.toml' not found"),
    (["query", "no_such_study"], "no study 'no_such_study'"),
    (["layout", "--cell", "no_such_cell"], "no_such_cell"),
])
def test_a_one_line_user_error_imports_no_heavy_module(tmp_path, argv, message):
    (result,), stderr = _probe(tmp_path, [argv + (["--data", str(tmp_path)] if argv[0] in ("top", "query") else [])])
    assert result["code"] == 2
    assert stderr.startswith("lstmsearch: error: ") and stderr.count("\n") == 1 and message in stderr, stderr
    assert result["loaded"] == []


LAZY_API = r"""
import sys, types
import lstmsearch

assert set(lstmsearch.__all__) <= set(dir(lstmsearch)), sorted(set(lstmsearch.__all__) - set(dir(lstmsearch)))
assert "optuna" not in sys.modules and "pyarrow" not in sys.modules
from lstmsearch import *  # every name of __all__
import lstmsearch.evaluate  # a submodule named like the function it defines: the name stays the function
from lstmsearch.analysis.verdict import verdict as v
from lstmsearch.cells import Cell as C
from lstmsearch.evaluate import evaluate as e
from lstmsearch.run import run_study as r
assert lstmsearch.evaluate is e and evaluate is e and isinstance(e, types.FunctionType)
assert lstmsearch.verdict is v and lstmsearch.Cell is C and lstmsearch.run_study is r and run_study is r
for name in lstmsearch.__all__:
    assert getattr(lstmsearch, name) is globals()[name], name
try:
    lstmsearch.no_such_name
except AttributeError as exc:
    assert "no_such_name" in str(exc)
else:
    raise AssertionError("lstmsearch.no_such_name did not raise AttributeError")
"""


def test_the_public_api_imports_on_first_use(tmp_path):
    p = subprocess.run([sys.executable, "-c", LAZY_API], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr


STRATEGIES = r"""
import sys
from lstmsearch.search import STRATEGIES

heavy = lambda: sorted(m for m in ("optuna", "cmaes", "scipy") if m in sys.modules)
assert list(STRATEGIES) == ["optuna", "cmaes", "sweep"] and len(STRATEGIES) == 3
assert "cmaes" in STRATEGIES and "optuna" in STRATEGIES and "nope" not in STRATEGIES
assert heavy() == [], heavy()
from lstmsearch.search.sweep import SweepStrategy, check
assert STRATEGIES["sweep"] == (check, SweepStrategy)
assert heavy() == [], heavy()
from lstmsearch.search.cma import CmaStrategy
assert STRATEGIES["cmaes"][1] is CmaStrategy
try:
    STRATEGIES["nope"]
except KeyError:
    pass
else:
    raise AssertionError("STRATEGIES['nope'] did not raise KeyError")
"""


def test_a_strategy_module_is_imported_when_its_kind_is_looked_up(tmp_path):
    p = subprocess.run([sys.executable, "-c", STRATEGIES], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr


def test_the_parser_format_choices_are_the_library_formats():
    """The parser writes the choices out (not to import the report or the reproduction at start)."""
    from lstmsearch.cli import build_parser
    from lstmsearch.report import FORMATS as REPORT
    from lstmsearch.reproduction import FORMATS as EXPORT

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    choices = {name: next(a.choices for a in sub.choices[name]._actions if a.dest == "format")
               for name in ("report", "export")}
    assert tuple(choices["report"]) == tuple(REPORT)
    assert tuple(choices["export"]) == tuple(EXPORT)
