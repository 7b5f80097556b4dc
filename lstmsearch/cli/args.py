"""What the sub-commands share: the same option spelled and explained the same way, and the
readers of ``ROW`` and comma-separated lists (one-line :class:`~lstmsearch.errors.LstmsearchError`
on bad input)."""

from __future__ import annotations

from ..config import DATA_DIR
from ..errors import MAX_COUNT, LstmsearchError, require

#: ``--data`` of every command.
DATA_HELP = (f"parent folder of study results: a study named NAME is in DATA/NAME unless its study file "
             f"sets [study] out (default {DATA_DIR})")
#: The STUDY positional of every command that reads results.
STUDY_HELP = "study file, study folder, or study name under --data"
#: The ROW positional of every command that reads one row.
ROW_HELP = "row id (lstmsearch top lists them), or best: the row with the smallest nmse"


def add_data_arg(p, default=DATA_DIR) -> None:
    """``--data DATA``, the same everywhere (``run``/``worker`` take None: not given); the commands that
    read results (default ``DATA_DIR``) also take ``--allow-code``."""
    p.add_argument("--data", default=default, metavar="DATA", help=DATA_HELP)
    if default is not None:
        p.add_argument("--allow-code", action="store_true",
                       help="let reading import a template space's module (the study's own code) to rebuild "
                            "rows that keep no weights; without it, reading runs no code of a study")


def add_row_arg(p, **kw) -> None:
    p.add_argument("row", metavar="ROW", help=ROW_HELP, **kw)


def parse_row(text, study, data_dir=DATA_DIR) -> int:
    """A row id from ``ROW``: an integer, or ``best`` (the smallest nmse; ties: the smallest row id)."""
    if isinstance(text, int):
        return text
    if str(text).strip().lower() == "best":
        from ..query import best_row

        return best_row(study, data_dir)
    try:
        row = int(str(text).strip())
    except ValueError:
        raise LstmsearchError(f"ROW must be a row id (an integer; lstmsearch top lists them) or best, "
                              f"got {text!r}") from None
    require(0 <= row < MAX_COUNT, f"ROW must be a row id from 0 to {MAX_COUNT - 1} (lstmsearch top lists them), "
                                  f"got {row}")
    return row


def parse_list(text, conv, what):
    """``1,2,10`` -> [conv(v), ...]; a one-line error naming the option ``what`` otherwise."""
    try:
        out = [conv(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise LstmsearchError(f"{what} must be a comma-separated list, got {text!r}") from None
    require(out, f"{what} is empty")
    for v in out:
        if isinstance(v, float):
            require(v == v and abs(v) < float("inf"), f"{what} must hold finite numbers, got {text!r}")
        elif isinstance(v, int):
            require(abs(v) < MAX_COUNT, f"{what} values must be below {MAX_COUNT}, got {v}")
    return out
