"""The package's shape: imports only point downward, no cycle, no private name crosses a module.

An AST walk over ``lstmsearch/`` (function-level imports included: a lazy import is still an
edge, so none can hide a cycle). Layers, top to bottom::

    cli -> run / query / reproduction / extract / analysis / anchors / report
        -> config / search / store / evaluate
        -> kernels / cells / tasks / readout / torch_export
        -> errors / version

A module may import from its own layer or below, and the whole graph has no cycle. Only the
package itself (``lstmsearch/__init__.py``, the public API) sits above everything, and no
module imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lstmsearch"

LAYERS = {
    "errors": 0, "version": 0,
    "kinds": 1, "kernels": 1, "cells": 1, "tasks": 1, "readout": 1, "torch_export": 1,
    "config": 2, "search": 2, "store": 2, "evaluate": 2,
    "run": 3, "query": 3, "certify": 3, "answer": 3, "reproduction": 3, "extract": 3, "analysis": 3, "anchors": 3, "report": 3,
    "cli": 4,
}


def _modules(root: Path) -> dict:
    """Dotted module name -> path, for every module of the package under ``root``."""
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _edges(root: Path):
    """``(importer, imported module, name, line)`` for every import of the package by itself."""
    mods = _modules(root)
    top = root.name
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target != top and not target.startswith(top + "."):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in mods:
                        yield mod, sub, None, node.lineno
                    else:
                        yield mod, target, alias.name, node.lineno
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == top or alias.name.startswith(top + "."):
                        yield mod, alias.name, None, node.lineno


def _layer(mod: str) -> int:
    parts = mod.split(".")
    if len(parts) == 1:
        return 99  # the package: the public API
    return LAYERS[parts[1]]


def _problems(root: Path):
    mods = _modules(root)
    problems, graph = [], {m: set() for m in mods}
    for src, dst, name, line in _edges(root):
        where = f"{src} (line {line})"
        if dst == root.name and src != root.name:
            problems.append(f"{where} imports the package {root.name} itself; import the module that defines it")
        elif _layer(dst) > _layer(src):
            problems.append(f"{where} imports {dst}, a layer above it")
        if name and name.startswith("_") and not name.startswith("__") and dst != src:
            problems.append(f"{where} imports the private name {name} from {dst}")
        if dst in graph and dst != src:
            graph[src].add(dst)
    # cycles: depth-first search for a back edge
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                problems.append("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return problems


def test_every_module_has_a_layer():
    unknown = sorted({m.split(".")[1] for m in _modules(PACKAGE) if "." in m} - set(LAYERS))
    assert unknown == [], f"add these to LAYERS: {unknown}"


def test_imports_point_down_without_cycles_or_private_names():
    assert _problems(PACKAGE) == []


def _write(root: Path, files: dict):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize("files, expected", [
    ({"cells.py": "def f():\n    from .run import loop\n", "run/__init__.py": "", "run/loop.py": ""},
     "lstmsearch.cells (line 2) imports lstmsearch.run.loop, a layer above it"),
    ({"query.py": "from .report import x\n", "report.py": "def g():\n    from .query import y\n"},
     "import cycle: lstmsearch.query -> lstmsearch.report -> lstmsearch.query"),
    ({"query.py": "from .store.parts import _secret\n", "store/__init__.py": "", "store/parts.py": ""},
     "lstmsearch.query (line 1) imports the private name _secret from lstmsearch.store.parts"),
    ({"run/__init__.py": "from .. import __version__\n"},
     "lstmsearch.run (line 1) imports the package lstmsearch itself; import the module that defines it"),
])
def test_the_check_catches(tmp_path, files, expected):
    root = tmp_path / "lstmsearch"
    _write(root, {"__init__.py": "", **files})
    assert expected in _problems(root)
