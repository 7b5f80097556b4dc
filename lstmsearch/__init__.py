"""lstmsearch: large-scale search in the weight space of recurrent cells.

Does a setting of an LSTM/GRU/RNN's weights exist that returns the first number of a
real-valued sequence after reading all of it -- and what is it? lstmsearch simulates
millions of settings with Numba kernels, searches gate weights and biases, stores every
result and lets any found setting be reproduced, exported to PyTorch and explained.
"""

from .cells import Cell
from .errors import LstmsearchError
from .evaluate import evaluate, simulate, solutions
from .tasks import make_task


def run_study(*args, **kwargs):
    """Run or continue a study (see :func:`lstmsearch.study.run_study`)."""
    from .study import run_study as _run

    return _run(*args, **kwargs)


def load_results(*args, **kwargs):
    """A study's rows as a pyarrow Table (see :func:`lstmsearch.study.load_results`)."""
    from .study import load_results as _load

    return _load(*args, **kwargs)


def reproduce(*args, **kwargs):
    """Re-simulate a stored row (see :func:`lstmsearch.reproduction.reproduce`)."""
    from .reproduction import reproduce as _rep

    return _rep(*args, **kwargs)

__version__ = "0.1.0"

__all__ = ["Cell", "LstmsearchError", "evaluate", "simulate", "solutions", "make_task", "run_study", "load_results",
           "reproduce", "__version__"]
