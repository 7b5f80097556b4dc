"""Every import is declared: the package, its tests, benchmarks and study scripts import only
the standard library, their own modules and distributions that ``pyproject.toml`` names.

A static check over the source (an AST walk, function-level imports included), so that a
missing declaration fails here even where the package happens to be installed by hand. Rules:

- ``lstmsearch/``: a module-level import must come from a base requirement (the base install
  imports every module: ``.ci/import_all.py`` proves it in a venv with only ``pip install -e .``);
  an import inside a function may come from an optional extra.
- ``tests/``: base requirements and the ``test`` extra.
- ``benchmarks/``, ``studies/``: base requirements and any extra.

A distribution counts only when it is named directly: one that merely comes along with another
(llvmlite with numba, sqlalchemy with optuna) can disappear in the next release of its carrier.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements) -> set:
    return {_normalise(re.match(r"[A-Za-z0-9._-]+", r.strip()).group(0)) for r in requirements}


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
BASE = _names(PROJECT["dependencies"])
EXTRAS = {extra: _names(reqs) for extra, reqs in PROJECT["optional-dependencies"].items()}
ANY_EXTRA = set().union(*EXTRAS.values())
PROVIDERS = {top: {_normalise(d) for d in dists} for top, dists in metadata.packages_distributions().items()}
#: Modules whose name does not say their distribution: numba still ships its own deprecated
#: ``numba.cuda``, which imports without numba-cuda but lacks what the cuda backend uses.
SUBMODULE_PROVIDERS = {"numba.cuda": "numba-cuda"}


def _top(dotted: str) -> str:
    """The name the providers are looked up by: a known submodule, else the top-level name."""
    for sub in SUBMODULE_PROVIDERS:
        if dotted == sub or dotted.startswith(sub + "."):
            return sub
    return dotted.split(".")[0]


SCRIPT_FOLDERS = ("tests", "benchmarks", "studies", "docs")
#: Requirements of the extras the test environment leaves out (``bench``: jax and evosax, for the
#: side-by-side benchmark) whose import name is their distribution name: they cannot be looked up
#: among the installed distributions, so an import of one counts as that requirement.
NOT_IN_TEST_ENV = EXTRAS.get("bench", set()) - EXTRAS["test"]


def _local_modules() -> set:
    """The project's own script modules, which scripts import through ``sys.path`` (test
    helpers, study scripts)."""
    return {p.stem for folder in SCRIPT_FOLDERS for p in (ROOT / folder).rglob("*.py")}


def _imports(path: Path):
    """``(top-level module name, at module level?, line)`` of each absolute import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    nested = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops = [_top(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops = [_top(node.module)] + [_top(f"{node.module}.{a.name}") for a in node.names
                                           if _top(f"{node.module}.{a.name}") in SUBMODULE_PROVIDERS]
        else:
            continue
        for top in tops:
            yield top, id(node) not in nested, node.lineno


def _undeclared(folder: str, module_level_allowed: set, nested_allowed: set, local: set):
    """Lines ``file:line imports X (...)`` for each import no allowed requirement provides."""
    problems = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for top, module_level, line in _imports(path):
            if top in sys.stdlib_module_names or top in local or top == "lstmsearch":
                continue
            allowed = module_level_allowed if module_level else nested_allowed
            where = f"{path.relative_to(ROOT)}:{line} imports {top}"
            dists = {SUBMODULE_PROVIDERS[top]} if top in SUBMODULE_PROVIDERS else PROVIDERS.get(top)
            if not dists and _normalise(top) in NOT_IN_TEST_ENV:
                dists = {_normalise(top)}  # declared in an extra CI does not install; named as it imports
            if not dists:
                problems.append(f"{where}, which no installed distribution provides")
            elif not dists & allowed:
                scope = "at module level " if module_level and dists & nested_allowed else ""
                problems.append(f"{where} {scope}from {'/'.join(sorted(dists))}, which is not declared there")
    return problems


def test_the_package_imports_only_declared_requirements():
    assert _undeclared("lstmsearch", BASE, BASE | ANY_EXTRA, set()) == []


def test_the_tests_import_only_the_base_and_the_test_extra():
    allowed = BASE | EXTRAS["test"]
    assert _undeclared("tests", allowed, allowed, _local_modules()) == []


@pytest.mark.parametrize("folder", ["benchmarks", "studies"])
def test_scripts_import_only_declared_requirements(folder):
    allowed = BASE | ANY_EXTRA
    assert _undeclared(folder, allowed, allowed, _local_modules()) == []


def test_the_check_sees_an_undeclared_import(tmp_path, monkeypatch):
    """The walk itself: a module-level extra import and an unknown module are both caught."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text("import numpy\nimport torch\nfrom numba import cuda\n\n"
                              "def f():\n    import torch\n    import nosuchthing\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    problems = _undeclared("pkg", BASE, BASE | ANY_EXTRA, set())
    assert len(problems) == 3, problems
    assert "m.py:2 imports torch at module level" in problems[0]
    assert "m.py:3 imports numba.cuda at module level from numba-cuda" in problems[1]
    assert "m.py:7 imports nosuchthing, which no installed distribution provides" in problems[2]


def test_the_test_extra_installs_every_optional_extra():
    """The README's test command must exercise every extra's code path (the cuda extra as plain
    numba-cuda: the CUDA simulator needs no CUDA runtime wheels)."""
    for extra, names in EXTRAS.items():
        if extra in ("test", "docs", "bench"):
            continue
        assert names <= EXTRAS["test"], f"extra {extra}: {sorted(names - EXTRAS['test'])} missing from test"
