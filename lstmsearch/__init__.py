"""lstmsearch: large-scale search in the weight space of recurrent cells.

Does a setting of an LSTM/GRU/RNN's weights exist that returns the first number of a
real-valued sequence after reading all of it -- and what is it? lstmsearch simulates
millions of settings with Numba kernels, searches gate weights and biases, stores every
result and lets any found setting be reproduced, exported to PyTorch and explained.

The names of ``__all__`` are imported on first use (PEP 562), so that ``import lstmsearch`` and
``lstmsearch --help`` start at once: the modules behind them import Numba, pyarrow, Optuna and
CMA-ES, which take a second or two. ``from lstmsearch import run_study`` imports what it needs.
"""

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING

from .version import __version__

if TYPE_CHECKING:  # what static tools see; at run time each name is imported on first use
    from .analysis.verdict import verdict
    from .cells import Cell
    from .errors import LstmsearchError
    from .evaluate import evaluate, simulate, solutions
    from .query import load_results, open_study, top_rows
    from .reproduction import export, reproduce
    from .run import run_study
    from .tasks import make_task

__all__ = ["Cell", "LstmsearchError", "evaluate", "export", "load_results", "make_task", "open_study", "reproduce",
           "run_study", "simulate", "solutions", "top_rows", "verdict", "__version__"]

#: Where each public name lives: ``name -> module`` (relative to the package).
_PUBLIC = {"Cell": ".cells", "LstmsearchError": ".errors", "evaluate": ".evaluate", "simulate": ".evaluate",
           "solutions": ".evaluate", "verdict": ".analysis.verdict", "load_results": ".query", "open_study": ".query",
           "top_rows": ".query", "export": ".reproduction", "reproduce": ".reproduction", "run_study": ".run",
           "make_task": ".tasks"}


def __getattr__(name):
    """A public name, imported when first asked for (``lstmsearch.Cell``, ``from lstmsearch import Cell``)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package's module type: a submodule named like the public function it defines
    (``lstmsearch.evaluate``) stays that function when the import system, loading the submodule,
    binds it on the package (as it did when the package imported the function at once)."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _PUBLIC.get(name) == "." + name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
