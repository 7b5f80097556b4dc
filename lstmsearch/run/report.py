"""What one run did and where its time went: :class:`RunReport`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional


@dataclass
class RunReport:
    """What one ``run`` did and where its time went."""

    study: str
    store: str
    settings: int  # evaluated in this run
    rows: int  # in the store after the run
    complete: bool  # the settings budget is spent
    best_row: Optional[int]
    best_nmse: float
    wall_s: float
    evaluate_s: float
    strategy_s: float
    io_s: float
    outside_share: float  # (wall - evaluate) / wall
    strategy_ms_per_setting: float
    settings_per_s: float
    messages: List[str]
    budget: Optional[int] = None  # the settings budget of the run ([budget] settings or --budget)

    def lines(self) -> List[str]:
        if self.complete and not self.settings and self.budget is not None:
            # run again at a spent budget: say so, and how to go on
            out = [f"study {self.study}: the budget of {self.budget} settings is spent ({self.rows} rows in "
                   f"{self.store}); run with --budget N (N > {self.rows}) to continue"]
        else:
            out = [f"study {self.study}: {self.settings} settings evaluated in this run, {self.rows} rows in "
                   f"{self.store}" + (" (budget spent)" if self.complete else "")]
        if self.best_row is not None:
            out.append(f"best     nmse {self.best_nmse:.4g} (row {self.best_row})")
        if self.settings:
            out.append(f"time     {self.wall_s:.2f} s wall, {self.settings_per_s:,.0f} settings/s; "
                       f"evaluate {self.evaluate_s:.2f} s, strategy {self.strategy_s:.2f} s, I/O {self.io_s:.2f} s")
            out.append(f"overhead {self.outside_share:.1%} of wall time outside the kernels; "
                       f"strategy {self.strategy_ms_per_setting:.3f} ms per setting")
        return out

