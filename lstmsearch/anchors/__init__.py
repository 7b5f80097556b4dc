"""Published-task studies, our numbers beside the papers' (see ``docs/anchors/``).

- :mod:`.guessing` -- weight guessing (Hochreiter & Schmidhuber 1996)
- :mod:`.why_gates` -- the LSTM without input, forget or output gate (Greff et al. 2017)
- :mod:`.smallest` -- the fewest hidden units at which blind search finds a solution
- :mod:`.memory` -- memory throughput (Collins, Sohl-Dickstein & Sussillo 2017)
- :mod:`.gradient` -- a gradient-descent baseline in PyTorch
"""
