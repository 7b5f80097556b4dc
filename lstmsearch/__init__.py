"""lstmsearch: large-scale search in the weight space of recurrent cells.

Does a setting of an LSTM/GRU/RNN's weights exist that returns the first number of a
real-valued sequence after reading all of it -- and what is it? lstmsearch simulates
millions of settings with Numba kernels, searches gate weights and biases, stores every
result and lets any found setting be reproduced, exported to PyTorch and explained.
"""

from .cells import Cell
from .errors import LstmsearchError
from .evaluate import evaluate, simulate, solutions
from .analysis.verdict import verdict
from .query import load_results, open_study, top_rows
from .reproduction import export, reproduce
from .run import run_study
from .tasks import make_task
from .version import __version__

__all__ = ["Cell", "LstmsearchError", "evaluate", "export", "load_results", "make_task", "open_study", "reproduce",
           "run_study", "simulate", "solutions", "top_rows", "verdict", "__version__"]
