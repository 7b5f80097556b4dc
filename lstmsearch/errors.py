"""User-facing errors.

Every mistake a user can make (a wrong size, an unknown name, a bad file) raises
:class:`LstmsearchError` with a one-line message that names the problem and what was
expected. The CLI prints that line and exits with status 2, without a traceback.
"""

import importlib
import re


class LstmsearchError(ValueError):
    """A user error: the message is one line naming the problem and the fix."""


class ConfigError(LstmsearchError):
    """A study-file error (one line naming the file and the key)."""


class DiskFullError(LstmsearchError):
    """The disk filled up while writing; nothing partial was left behind."""


class DamagedPartWarning(UserWarning):
    """A part file of a study's store could not be read and was skipped."""


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


def redact_url(url: str) -> str:
    """A URL (an Optuna storage, say) without its password: ``postgresql://u:***@host/db``."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", str(url))


def install_hint(extra: str) -> str:
    """The command that installs the optional extra ``extra``, as every message shows it.

    >>> install_hint("cuda")
    'pip install "lstmsearch[cuda]"'
    """
    return f'pip install "lstmsearch[{extra}]"'
