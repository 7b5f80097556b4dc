"""User-facing errors.

Every mistake a user can make (a wrong size, an unknown name, a bad file) raises
:class:`LstmsearchError` with a one-line message that names the problem and what was
expected. The CLI prints that line and exits with status 2, without a traceback.
"""

import importlib
import re
from pathlib import Path


class LstmsearchError(ValueError):
    """A user error: the message is one line naming the problem and the fix."""


class ConfigError(LstmsearchError):
    """A study-file error (one line naming the file and the key)."""


class DiskFullError(LstmsearchError):
    """The disk filled up while writing; nothing partial was left behind."""


class StopRequested(KeyboardInterrupt):
    """A signal asked the command to stop (SIGTERM): handled like Ctrl-C, with the signal's name."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class DamagedPartWarning(UserWarning):
    """A part file of a study's store could not be read and was skipped."""


class ManifestRebuiltWarning(DamagedPartWarning):
    """A study's manifest.json was missing or damaged and has been rebuilt from its parts (printed as one line)."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`LstmsearchError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise LstmsearchError(message)


def import_optional(module: str, extra: str, needed_for: str):
    """``module``, imported; or :class:`LstmsearchError` naming the extra that installs it.

    ``import_optional("torch", "torch", "export to PyTorch")`` without PyTorch raises
    ``export to PyTorch needs torch, which is not installed: pip install "lstmsearch[torch]"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise LstmsearchError(f"{needed_for} needs {module.split('.')[0]}, which is not installed: "
                              f"{install_hint(extra)}") from exc


#: ``scheme://user:password@host...``: the password runs to the LAST ``@`` of the authority,
#: so a raw ``@`` inside it (``postgresql://u:p@ss@host/db``) is hidden too.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):([^/\s]*)@")


def redact_url(url: str) -> str:
    """A URL (an Optuna storage, say) without its password: ``postgresql://u:***@host/db``.

    The one helper every message, log and file that can hold a storage URL goes through. The
    password is everything between ``://user:`` and the last ``@`` before the host, so a raw
    ``@`` in it does not leak its tail (``postgresql://u:p@ss@host/db`` -> ``postgresql://u:***@host/db``).
    Text around the URL (an error message holding one) is kept.
    """
    return _URL_PASSWORD.sub(r"\1:***@", str(url))


#: Control characters (NUL, ESC, ...): never part of a name, a path, a URL or a row id.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def control_character(text, allow: str = "") -> "str | None":
    """The first control character (NUL, ESC, ...) in ``text`` that ``allow`` does not list, or None."""
    if not isinstance(text, str):
        return None
    return next((c for c in _CONTROL.findall(text) if c not in allow), None)


def check_text(text, what: str, allow: str = ""):
    """``text``, or a one-line :class:`LstmsearchError` when it holds a control character (a NUL
    in a study name, a path, a storage URL or a row id): ``what`` names where it came from."""
    c = control_character(text, allow)
    if c is not None:
        raise LstmsearchError(f"{what} holds the control character {c!r} ({redact_url(repr(text))}); names, "
                              "paths, URLs and row ids cannot: remove it")
    return text


def has_password(url) -> bool:
    """Does the URL ``url`` carry a password (``scheme://user:password@host``)?"""
    return isinstance(url, str) and _URL_PASSWORD.search(url) is not None


def study_folder_of(path) -> "Path | None":
    """The study folder (a folder holding ``manifest.json``) that ``path`` is in or is; else None."""
    p = Path(path).expanduser().resolve()
    for d in [p, *p.parents]:
        if (d / "manifest.json").is_file():
            return d
    return None


def check_output(path, force: bool = False, option: str = "--output", folder: bool = False) -> Path:
    """``path`` as a place to write a new file (``folder``: a new folder's contents), or a one-line
    :class:`LstmsearchError`: an existing path is refused unless ``force``, and a path inside a study
    folder (a folder holding manifest.json, the manifest itself included) always is."""
    p = Path(path)
    study = study_folder_of(p)
    if study is not None:
        raise LstmsearchError(f"{option} {str(p)!r} is inside the study folder {str(study)!r}; lstmsearch never "
                              f"writes there: give a path outside it")
    if p.exists() and not force and not (folder and p.is_dir() and not any(p.iterdir())):
        raise LstmsearchError(f"{option} {str(p)!r} already exists; pass --force to overwrite it, or give another path")
    return p


def memory_limit() -> int:
    """Bytes of physical memory of this machine (``$LSTMSEARCH_MEMORY`` in bytes overrides it)."""
    import os

    env = os.environ.get("LSTMSEARCH_MEMORY")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise LstmsearchError(f"LSTMSEARCH_MEMORY must be a number of bytes, got {env!r}") from None
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 62


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.3g} GiB"


def check_memory(what: str, nbytes: float, fix: str = "make it smaller") -> None:
    """Refuse, before allocating, a size whose footprint (``nbytes``, an estimate) exceeds this
    machine's memory: one line naming the size, the estimate and the limit."""
    limit = memory_limit()
    if not nbytes <= limit:  # also refuses nan / inf
        raise LstmsearchError(f"{what} needs about {_gib(nbytes)} of memory; this machine has {_gib(limit)}: {fix}")


#: The largest count a command line or study file accepts (settings, row ids): int64 with room.
MAX_COUNT = 2 ** 62


def install_hint(extra: str) -> str:
    """The command that installs the optional extra ``extra``, as every message shows it.

    >>> install_hint("cuda")
    'pip install "lstmsearch[cuda]"'
    """
    return f'pip install "lstmsearch[{extra}]"'
