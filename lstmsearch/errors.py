"""User-facing errors.

Every mistake a user can make (a wrong size, an unknown name, a bad file) raises
:class:`LstmsearchError` with a one-line message that names the problem and what was
expected. The CLI prints that line and exits with status 2, without a traceback.
"""


class LstmsearchError(ValueError):
    """A user error: the message is one line naming the problem and the fix."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`LstmsearchError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise LstmsearchError(message)


def install_hint(extra: str) -> str:
    """The command that installs the optional extra ``extra``, as every message shows it.

    >>> install_hint("cuda")
    'pip install "lstmsearch[cuda]"'
    """
    return f'pip install "lstmsearch[{extra}]"'
