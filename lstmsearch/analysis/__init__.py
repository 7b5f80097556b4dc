"""Answers: hand-built constructions, length generalisation, explanations and plots.

- :mod:`.constructions` -- readable settings that solve recall_first, with error bounds
- :mod:`.length` -- error of fixed settings against sequence length (given / refitted readout)
- :mod:`.verdict` -- solved means solved: the one definition (n, n+1, 2n+1, 10n+k, 100n+k), float64 and PyTorch checks
- :mod:`.explain` -- gate traces, unit roles, ablation, magnitude pruning
- :mod:`.plots` -- PNG plots (optional matplotlib)

A library only: the report page is :mod:`lstmsearch.report`, the anchor studies are in
:mod:`lstmsearch.anchors`, the commands in :mod:`lstmsearch.cli`.
"""

from .constructions import construct, error_bound
from .explain import ablate, explain, prune, traces, unit_roles
from .length import format_length_curve, length_curve
from .verdict import check_lengths, precision_check, row_verdicts, task_check_lengths, verdict, verdicts

__all__ = ["construct", "error_bound", "length_curve", "format_length_curve", "traces", "unit_roles",
           "ablate", "prune", "explain", "check_lengths", "task_check_lengths", "verdict", "verdicts", "row_verdicts",
           "precision_check"]
