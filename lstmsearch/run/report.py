"""What one run did and where its time went (:class:`RunReport`), and its progress bar
(:class:`Progress`): one place for both, whether one process ran the study or many workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple


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
    stopped_by: Optional[str] = None  # the signal that stopped the run (after its batch in progress)
    verdict: Optional[str] = None  # the best row's verdict (lstmsearch.analysis.verdict), one line

    @classmethod
    def build(cls, cfg, store, settings: int, complete: bool, best: Tuple[float, Optional[int]], wall_s: float,
              evaluate_s: float, strategy_s: float, io_s: float, messages: List[str],
              busy_s: Optional[float] = None) -> "RunReport":
        """The report of a run of ``cfg``'s study into ``store``; ``busy_s`` is the time the shares
        are of (the workers' summed wall time; default ``wall_s``)."""
        busy = wall_s if busy_s is None else busy_s
        return cls(study=cfg.name, store=str(store.root), settings=settings, rows=store.count(), complete=complete,
                   best_row=best[1], best_nmse=best[0], wall_s=wall_s, evaluate_s=evaluate_s, strategy_s=strategy_s,
                   io_s=io_s, outside_share=(busy - evaluate_s) / busy if busy > 0 else 0.0,
                   strategy_ms_per_setting=1e3 * strategy_s / settings if settings else 0.0,
                   settings_per_s=settings / wall_s if wall_s > 0 else 0.0, messages=messages,
                   budget=cfg.budget_settings)

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
            if self.verdict:
                out.append(f"verdict  row {self.best_row}: {self.verdict}")
        if self.settings:
            out.append(f"time     {self.wall_s:.2f} s wall, {self.settings_per_s:,.0f} settings/s; "
                       f"evaluate {self.evaluate_s:.2f} s, strategy {self.strategy_s:.2f} s, I/O {self.io_s:.2f} s")
            out.append(f"overhead {self.outside_share:.1%} of wall time outside the kernels; "
                       f"strategy {self.strategy_ms_per_setting:.3f} ms per setting")
        return out


class Progress:
    """The progress bar of a run (tqdm): settings in the store against the budget, best nmse."""

    def __init__(self, cfg, store, progress: bool, desc: Optional[str] = None):
        from tqdm.auto import tqdm

        self.target = cfg.budget_settings
        self.bar = tqdm(total=self.target, initial=min(store.count(), self.target or 0), unit="settings",
                        unit_scale=True, disable=not progress, dynamic_ncols=True, desc=desc or cfg.name)

    def show(self, rows: int, best_nmse: Optional[float] = None, added: int = 0) -> None:
        """``rows`` in the store now (or, without a budget, ``added`` more); the best nmse so far."""
        self.bar.n = min(rows, self.target) if self.target else self.bar.n + added
        self.bar.update(0)
        if best_nmse is not None:
            self.bar.set_postfix_str(f"best nmse {best_nmse:.3g}")

    def close(self) -> None:
        self.bar.close()
