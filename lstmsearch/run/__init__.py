"""Running studies: the loop (:mod:`.loop`), its report (:mod:`.report`), local workers
(:mod:`.workers`), Dask (:mod:`.cluster`), and the entry point :func:`run_study` (:mod:`.study`)."""

from .report import RunReport
from .study import run_study

__all__ = ["RunReport", "run_study"]
