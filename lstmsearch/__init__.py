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

__version__ = "0.1.0"

__all__ = ["Cell", "LstmsearchError", "evaluate", "simulate", "solutions", "make_task", "__version__"]
