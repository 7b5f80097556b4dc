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


class StudyCodeRefused(LstmsearchError):
    """Reading a study needed a template space's module (rows whose settings it rebuilds), which
    reading never imports unless asked (``--allow-code``, :func:`lstmsearch.query.allow_study_code`)."""


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


#: A URL's scheme (``postgresql``, ``postgresql+psycopg``, ``mysql``, ``sqlite``) and its ``://``.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")

#: Connection parameters that carry a secret, in a URL's query (``?password=...``) or in a libpq
#: ``key=value`` string: libpq's ``password`` and ``sslpassword`` (the two it displays as ``*``), its
#: OAuth client secret and SCRAM keys (PostgreSQL 18: either one authenticates), and the names other
#: drivers use for a password (``passwd``: MySQL; ``pwd``: ODBC). A key that names a password, a
#: secret or a token in any other way (``client_secret``, ``access_token``) counts too. Paths to
#: secrets are not secrets (``sslkey``, ``sslcert``, ``sslrootcert``, ``passfile``: a file name, whose
#: contents never pass through lstmsearch), and neither are ``options``, ``service`` or ``user``.
SECRET_PARAMETERS = frozenset({"password", "sslpassword", "oauth_client_secret", "scram_client_key",
                               "scram_server_key", "passwd", "pwd"})
_SECRET_WORD = re.compile(r"passw(or)?d|pwd|secret|token", re.I)

#: ``?key=`` or ``&key=`` in a URL; a value runs to the next ``&name=`` (libpq splits there too).
_PARAM = re.compile(r"[?&]([^?&=]*)=")
_NEXT_PARAM = re.compile(r"&[A-Za-z_][A-Za-z0-9_.%\-]*=")

#: ``password=secret`` or ``password = 'a secret'`` in a libpq ``key=value`` string (outside a URL).
_KEYWORD = re.compile(r"(?<![\w%])(" + "|".join(sorted(SECRET_PARAMETERS)) + r")(\s*=\s*)('(?:[^'\\]|\\.)*'?|\S+)",
                      re.I)

#: ``host:5432/db`` or ``[::1]:5432/db``: an authority without ``@`` whose ``:`` starts a port (digits,
#: then the path, query or next host), not a password. In a message, ``u:12 34@host`` is a password.
_PORT = re.compile(r"(?:\[[^\]]*\]|[^:/?#@\s]*)(?::\d+)?[/?#,]")
_BLANK = re.compile(r"\s")


def _is_secret_key(key: str) -> bool:
    from urllib.parse import unquote

    k = unquote(key).strip().lower()
    return k in SECRET_PARAMETERS or _SECRET_WORD.search(k) is not None


def url_secret_spans(token: str, a: int):
    """The secret spans of the URL ``token`` whose authority starts at ``a`` (after ``://``).

    The userinfo runs to the LAST ``@`` of the URL: a password may hold a raw ``@``, ``/``, ``:``,
    ``?``, ``#`` or ``%``, so no earlier character can end it safely (``postgresql://u:pa/ss@host/db``).
    A raw ``@`` after the host (in a database name) makes everything from the first ``:`` up to it
    count as the password too: more is hidden, never less. A URL whose authority is empty (``sqlite:///path``,
    ``postgresql:///db?host=/run``) has no userinfo. Then every query value whose key names a secret
    (:data:`SECRET_PARAMETERS`), or whose decoded value holds one (``?dbname=password%3Dx``)."""
    from urllib.parse import unquote

    spans = []
    if not token.startswith("/", a):
        at = token.rfind("@", a)
        colon = token.find(":", a, at) if at >= 0 else -1
        if colon >= 0 and colon + 1 < at:
            spans.append((colon + 1, at))
    for m in _PARAM.finditer(token, a):
        v0 = m.end()
        nxt = _NEXT_PARAM.search(token, v0)
        v1 = nxt.start() if nxt else len(token)
        value = token[v0:v1]
        if v1 > v0 and (_is_secret_key(m.group(1)) or _spans(unquote(value))):
            spans.append((v0, v1))
    return spans


def _spans(text: str):
    """The ``(start, end)`` spans of ``text`` that hold a secret (see :func:`redact_url`)."""
    spans = []
    i = 0
    plain = []  # the stretches outside URLs, searched for libpq key=value secrets
    whole = _SCHEME.match(text) is not None  # a string that starts with a URL is one URL
    while True:
        m = _SCHEME.search(text, i)
        if m is None:
            plain.append((i, len(text)))
            break
        plain.append((i, m.start()))
        a = m.end()
        if whole:
            end = len(text)
        else:  # a URL in a message runs to the next blank, unless its password holds one
            nxt = _BLANK.search(text, a)
            end = nxt.start() if nxt else len(text)
            if "@" not in text[a:end] and not text.startswith("/", a) and not _PORT.match(text[a:end]):
                eol = text.find("\n", end)
                at = text.rfind("@", end, len(text) if eol < 0 else eol)
                if at >= 0:
                    nxt = _BLANK.search(text, at)
                    end = nxt.start() if nxt else len(text)
            quote = text[m.start() - 1:m.start()]
            if quote in ("'", '"') and end - 1 > a and text[end - 1] == quote:
                end -= 1  # storage = "postgresql://...": the closing quote is not the URL's
        spans += [(m.start() + s, m.start() + e) for s, e in url_secret_spans(text[m.start():end], a - m.start())]
        i = end
        if whole:
            break
    for s0, s1 in plain:
        for k in _KEYWORD.finditer(text, s0, s1):
            if k.group(3):
                spans.append((k.start(3), k.end(3)))
    return spans


def redact_url(url: str) -> str:
    """``url`` (an Optuna storage, or a message holding one) without its secrets:
    ``postgresql://u:***@host/db``, ``postgresql://u@host/db?password=***&sslmode=require``.

    The one helper every message, log and file that can hold a storage URL goes through. Hidden:
    the password of the userinfo, which runs from the first ``:`` after ``://`` to the LAST ``@`` of
    the URL (so a raw ``@``, ``/``, ``:``, ``?``, ``#`` or ``%`` in it hides with it; an empty user
    name, ``postgresql://:pw@host``, too), the value of every query parameter that carries a secret
    (:data:`SECRET_PARAMETERS`: ``password``, ``sslpassword``, ...), and the same keys in a libpq
    ``key=value`` string. The scheme, user, host, port, database and other parameters are kept.
    Text around a URL (an error message holding one) is kept: there a URL runs to the next blank.
    A string that starts with a URL is one URL, blanks and all. Never raises; hides more rather
    than less when the URL is odd.
    """
    text = str(url)
    try:
        spans = sorted(_spans(text))
    except Exception:  # noqa: BLE001 - never expected; a message must never fail to print
        return "***"
    out, pos = [], 0
    for s, e in spans:
        if out and s <= pos:  # overlapping or touching spans hide as one
            if e > pos:
                pos = e
            continue
        out += [text[pos:s], "***"]
        pos = e
    out.append(text[pos:])
    return "".join(out)


def split_userinfo(url: str):
    """``(scheme://, user, password, rest)`` of a URL with a password in its userinfo (the password
    runs to the last ``@``, as in :func:`redact_url`); None when it has none."""
    m = _SCHEME.match(url)
    if m is None or url.startswith("/", m.end()):
        return None
    at = url.rfind("@", m.end())
    colon = url.find(":", m.end(), at) if at >= 0 else -1
    if colon < 0:
        return None
    return url[:m.end()], url[m.end():colon], url[colon + 1:at], url[at + 1:]


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
        raise LstmsearchError(f"{what} holds the control character {c!r} ({repr(redact_url(text))}); names, "
                              "paths, URLs and row ids cannot: remove it")
    return text


def has_password(url) -> bool:
    """Does the URL ``url`` carry a secret that :func:`redact_url` hides (a password in its userinfo,
    ``scheme://user:password@host``, or a query parameter such as ``?password=`` or ``?sslpassword=``)?"""
    if not isinstance(url, str):
        return False
    try:
        return bool(_spans(url))
    except Exception:  # noqa: BLE001
        return True


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
    """Bytes this process may still allocate (:func:`memory_headroom` without its source)."""
    return memory_headroom()[0]


def memory_headroom():
    """(bytes, source): bytes this process may still allocate, and where that limit comes from, as
    words for a message ("this machine has", "the address-space limit (ulimit -v, RLIMIT_AS) leaves",
    ...). The bytes: what this process may still allocate: the physical memory of this machine, less where the
    process runs under a limit -- its address-space limit (``ulimit -v``, ``RLIMIT_AS``) or data
    limit (``RLIMIT_DATA``) less what it already maps, or its cgroup's ``memory.max`` less what
    the cgroup already uses (a container's memory limit). ``$LSTMSEARCH_MEMORY`` in bytes
    overrides it."""
    import os

    env = os.environ.get("LSTMSEARCH_MEMORY")
    if env:
        try:
            return int(float(env)), "$LSTMSEARCH_MEMORY allows"
        except ValueError:
            raise LstmsearchError(f"LSTMSEARCH_MEMORY must be a number of bytes, got {env!r}") from None
    try:
        limit = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        limit = 1 << 62
    return min([(max(0, limit), "this machine has")] + [(max(0, n), why) for n, why in _process_limits()],
               key=lambda c: c[0])


def _process_limits() -> list:
    """Headroom under the limits this process runs under (see :func:`memory_headroom`): (bytes, source)."""
    import os

    out = []
    try:
        import resource

        with open("/proc/self/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        for rlimit, field, why in ((resource.RLIMIT_AS, "VmSize", "the address-space limit (ulimit -v, RLIMIT_AS) "
                                                                  "leaves this process"),
                                   (resource.RLIMIT_DATA, "VmData", "the data limit (ulimit -d, RLIMIT_DATA) leaves "
                                                                   "this process")):
            soft = resource.getrlimit(rlimit)[0]
            if soft != resource.RLIM_INFINITY and field in status:
                out.append((soft - 1024 * int(status[field].split()[0]), why))
    except (ImportError, OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        pass
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((ln.strip().partition("::")[2] for ln in f if ln.startswith("0::")), None)
        if rel is not None:
            d = os.path.join("/sys/fs/cgroup", rel.lstrip("/"))
            with open(os.path.join(d, "memory.max")) as f:
                cap = f.read().strip()
            if cap != "max":
                with open(os.path.join(d, "memory.current")) as f:
                    out.append((int(cap) - int(f.read().strip()),
                                f"the memory limit of its cgroup ({os.path.join(d, 'memory.max')}) leaves this process"))
    except (OSError, ValueError):
        pass
    return out


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.3g} GiB"


def check_memory(what: str, nbytes: float, fix: str = "make it smaller") -> None:
    """Refuse, before allocating, a size whose footprint (``nbytes``, an estimate) exceeds this
    machine's memory: one line naming the size, the estimate, the limit and where the limit comes from
    (the machine's memory, ``ulimit -v`` / ``-d``, a cgroup's ``memory.max``, ``$LSTMSEARCH_MEMORY``)."""
    limit, source = memory_headroom()
    if not nbytes <= limit:  # also refuses nan / inf
        raise LstmsearchError(f"{what} needs about {_gib(nbytes)} of memory; {source} {_gib(limit)}: {fix}")


#: The largest count a command line or study file accepts (settings, row ids): int64 with room.
MAX_COUNT = 2 ** 62


def install_hint(extra: str) -> str:
    """The command that installs the optional extra ``extra``, as every message shows it.

    >>> install_hint("cuda")
    'pip install "lstmsearch[cuda]"'
    """
    return f'pip install "lstmsearch[{extra}]"'
