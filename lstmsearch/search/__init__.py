"""Search spaces and strategies (optuna, cmaes, sweep) behind one small interface.

See :mod:`.base` for the ask -> evaluate -> write -> tell protocol and the class attributes that
say what a strategy can do, :mod:`.spaces` for the spaces, and each strategy's module for its
``[strategy]`` keys. :data:`STRATEGIES` is the registry: a kind's class is looked up by name
(:func:`strategy_named`, :func:`strategy_class`), its module imported on first use; code outside
this package asks the class's attributes, never the kind's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Dict, List, Optional

import numpy as np

from ..errors import LstmsearchError, require
from ..store.rows import full_fidelity
from .base import Batch, Strategy
from .spaces import Space, build_space


def _strategy_module(kind: str):
    """The module of strategy ``kind``, imported on first use: optuna, and cmaes (which imports
    scipy.stats), take a second to import, and a sweep, a query or the command line need neither."""
    if kind == "optuna":
        from . import optuna_search as module
    elif kind == "cmaes":
        from . import cma as module
    else:
        from . import sweep as module
    return module


class _Strategies(Mapping):
    """``kind -> (check, Strategy subclass)``; a strategy's module is imported when its kind is
    first looked up (``kind in STRATEGIES`` and iteration import nothing)."""

    _CLASSES = {"optuna": "OptunaStrategy", "cmaes": "CmaStrategy", "sweep": "SweepStrategy"}

    def __getitem__(self, kind):
        if kind not in self._CLASSES:
            raise KeyError(kind)
        module = _strategy_module(kind)
        return module.check, getattr(module, self._CLASSES[kind])

    def __contains__(self, kind) -> bool:
        return kind in self._CLASSES

    def __iter__(self):
        return iter(self._CLASSES)

    def __len__(self) -> int:
        return len(self._CLASSES)

    def __repr__(self) -> str:
        return f"STRATEGIES({', '.join(self._CLASSES)})"


STRATEGIES = _Strategies()


def check_strategy(spec: Dict, space, chk) -> Dict:
    """Validate a ``[strategy]`` table (errors name the file through ``chk``)."""
    kind = spec.get("kind")
    if kind not in STRATEGIES:
        chk.fail("[strategy] kind", f"must be one of {', '.join(STRATEGIES)}, got {kind!r}")
    return STRATEGIES[kind][0](spec, space, chk)


def make_strategy(cfg, space, store, **options) -> Strategy:
    """The strategy object of a study; ``options`` (heartbeat_s, grace_s, storage_retry_s,
    echo, ...) go to a strategy with a :attr:`~Strategy.shared_storage`, the only kind that takes them."""
    cls = strategy_named(cfg.strategy["kind"])
    if cls is None:  # pragma: no cover - checked when the file is parsed
        raise LstmsearchError(f"unknown strategy {cfg.strategy['kind']!r}")
    return cls(cfg, space, store, cfg.strategy, **(options if cls.shared_storage else {}))


def strategy_class(cfg) -> type:
    """The :class:`Strategy` subclass of ``cfg``'s ``[strategy] kind``."""
    return STRATEGIES[cfg.strategy["kind"]][1]


def strategy_named(kind) -> Optional[type]:
    """The :class:`Strategy` subclass named ``kind`` (a row's ``strategy`` column, a ``[strategy]
    kind``), its module imported; None for any other value (a construction's rows, a typo)."""
    return STRATEGIES[kind][1] if isinstance(kind, str) and kind in STRATEGIES else None


def kinds_with(capability: str) -> List[str]:
    """The strategy kinds whose class has the attribute ``capability`` true (e.g.
    ``"ranks_whole_batches"``), in registry order. Imports every strategy's module: for messages."""
    return [kind for kind in STRATEGIES if getattr(STRATEGIES[kind][1], capability)]


def regenerate_settings(cfg, store, rows) -> np.ndarray:
    """The settings (P, D) of stored rows of ``cfg``'s study, rebuilt by its strategy from what
    the rows keep (z, sweep keys), without opening the strategy's storage."""
    return strategy_class(cfg).regenerate_rows(cfg, cfg.space_obj, store, rows)


def regenerate_search_z(cfg, store, rows) -> np.ndarray:
    """The search vectors z (P, d) of stored rows of ``cfg``'s study: the row's z where kept, else
    rebuilt from its key and the state stored once per generation or trial (an Optuna row's z is
    its trial's centre)."""
    return strategy_class(cfg).regenerate_z(cfg, cfg.space_obj, store, rows)


def best_z(cfg, store, k: int, dim: int, source: str) -> np.ndarray:
    """The z (k, d) of the k best rows of ``cfg``'s study in ``store`` (for warm starts), best first:
    from the z column where rows keep it, else rebuilt by the study's strategy from the rows' keys."""
    import pyarrow.compute as pc

    t = store.read(columns=["nmse"], filter=full_fidelity(cfg))  # racing: full-fidelity rows only
    require(t.num_rows > 0, f"warm start: {source} has no rows")
    best = store.read(filter=pc.field("row").isin(t.sort_by("nmse").slice(0, k).column("row"))).sort_by("nmse")
    try:
        z = regenerate_search_z(cfg, store, best)
    except LstmsearchError as exc:
        raise LstmsearchError(f"warm start: {source} keeps no z for its best rows ({exc})") from exc
    if z.shape[1] != dim:
        raise LstmsearchError(f"warm start: {source} searched a space of dimension {z.shape[1]}; "
                              f"this study's space has dimension {dim} (warm starts need the same space)")
    return z


__all__ = ["Batch", "best_z", "Strategy", "Space", "build_space", "check_strategy", "kinds_with", "make_strategy",
           "regenerate_search_z", "regenerate_settings", "strategy_class", "strategy_named", "STRATEGIES"]
