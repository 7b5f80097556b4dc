"""One study's folder (:class:`Store`): its rooms put together.

Layout of a study folder (default ``data/<study name>/``)::

    manifest.json        study file text, identity hash, package versions, seeds, runs, and the
                         record (rows, sha256) of every file below      (store/manifest.py)
    rows/part-w<slot>-<first row>.parquet   one part per evaluated batch (or group of batches)
    rows/damaged/        part files that could not be read, moved aside by a run  (store/parts.py)
    best/w<slot>.parquet the best keep_weights rows of writer w<slot>, full weights  (store/best.py)
    generations/         per-generation (per-trial) search state          (store/generations.py)
    run.lock             the run lock; workers/w<slot>.json a worker's lease  (store/lock.py)
    optuna.journal       the Optuna study (strategy optuna with the default storage)
    cmaes-state.pkl      the CMA-ES optimizer after its last told generation (sealed: store/files.py)

What is verified, and how, is :mod:`lstmsearch.store.integrity`; the row schema is
:mod:`lstmsearch.store.schema`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from ..errors import check_text
from .integrity import Integrity
from .lock import Leases, RunLock
from .manifest import ManifestFile
from .parts import Parts
from .schema import ROWS


class Store(Parts, Integrity, ManifestFile, RunLock, Leases):
    """One study's folder: the append-only Parquet dataset and the manifest.

    ``slot`` names this process's part files (``part-w<slot>-...``) and its row ids
    (``slot * ROW_SLOT + n``); several writers (workers) append to the same dataset, each
    with its own slot (see :meth:`next_row`). The rooms: :class:`~lstmsearch.store.parts.Parts`
    (parts, reads, best rows), :class:`~lstmsearch.store.integrity.Integrity` (verification,
    quarantine), :class:`~lstmsearch.store.manifest.ManifestFile`,
    :class:`~lstmsearch.store.lock.RunLock` and :class:`~lstmsearch.store.lock.Leases`.
    """

    def __init__(self, root, slot: int = 0):
        self.root = Path(check_text(str(root), "the study folder"))
        self.rows_dir = self.root / ROWS
        self.slot = int(slot)
        self.writer = f"w{self.slot}"
        self._rows: Dict[str, int] = {}  # part file name -> rows (parts are immutable)
        self.damaged: Dict[str, str] = {}  # part file name -> why it cannot be read
        self._next_local = None
        self._lock_fd: Optional[int] = None
        self._identity: Dict[str, Optional[str]] = {}  # part file name -> study identity in its metadata
        self._run_ids: Dict[str, Optional[str]] = {}  # part file name -> the id of the run that wrote it
        #: the id of the run writing through this object (its parts carry it; set once the manifest records it)
        self.run_id: Optional[str] = None
        self._written: Dict[str, Dict] = {}  # parts written by this object: rows and sha256 for the manifest
        self._written_files: Dict[str, Dict] = {}  # best/, generations/ files and the journal, likewise
        self._journal: Optional[Dict] = None  # the Optuna journal's length and CRC-32 as last recorded
        self._best = None  # (the usable best rows,) once read
        self._warned_missing = False
        #: the identity of the study this store's rows belong to (set by prepare_manifest; else the manifest's)
        self.identity: Optional[str] = None
