"""Files of a study folder, byte by byte: atomic writes, content hashes, sealed pickles.

Everything the store writes goes through :func:`atomic_write_bytes` (a hidden temporary file,
fsync, rename) or, for row parts, the same steps with a link (:meth:`lstmsearch.store.Store.append`).
:func:`file_sha256` is the content hash recorded for each file in the manifest; a file is hashed
once per process (:func:`hash_known`), since parts never change once written.

A strategy's state file (``cmaes-state.pkl``) is *sealed*: :func:`seal` puts the sha256 of its
bytes in front of them and :func:`unseal` refuses bytes that do not match it, so a flipped bit is
a one-line refusal, never a silently different optimizer.
"""

from __future__ import annotations

import errno
import hashlib
import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from ..errors import DiskFullError

#: (path, size, mtime_ns, sha256) of the files this process has hashed or written: a part is
#: hashed once per process, whatever Store object reads it (parts are immutable).
_HASHED: set = set()

#: What reading a damaged Parquet file may raise (a flipped bit in a footer's column name is a
#: UnicodeDecodeError, a ValueError): every reader catches these and names the file in one line
BAD_FILE = (OSError, ValueError, pa.ArrowException)

#: The first bytes of a sealed file, then 64 hex digits of the sha256 of the rest, then a newline.
SEAL = b"lstmsearch-sealed-sha256:"


def _hash_key(path: Path, sha: str):
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, sha)


def hash_known(path: Path, sha: str) -> bool:
    """True when this process has already found ``path`` (as it is now) to hash to ``sha``."""
    try:
        return _hash_key(path, sha) in _HASHED
    except OSError:
        return False


def remember_hash(path: Path, sha: str) -> None:
    """Note that ``path`` (as it is now) hashes to ``sha`` (see :func:`hash_known`)."""
    try:
        _HASHED.add(_hash_key(path, sha))
    except OSError:  # pragma: no cover - removed meanwhile
        pass


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file's bytes: the content hash recorded per file in the manifest."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parquet_format() -> ds.ParquetFileFormat:
    """Parquet reading that verifies the page checksums (parts written without them read as before)."""
    return ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True))


def disk_full(path: Path, exc: OSError, what: str) -> DiskFullError:
    """The one-line error of a write that found no space left."""
    return DiskFullError(f"no space left on the device of {path.parent} while writing {what} ({exc.strerror}); "
                         "nothing partial was kept and every part written before is intact: free some space "
                         "and run the study again to continue")


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = True):
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(path, exc, path.name) from exc
        raise


def seal(data: bytes) -> bytes:
    """``data`` with its sha256 in front (see :func:`unseal`)."""
    return SEAL + hashlib.sha256(data).hexdigest().encode() + b"\n" + data


def unseal(blob: bytes) -> bytes:
    """The bytes :func:`seal` sealed; ValueError when they do not match their hash. Bytes written
    before sealing (no seal in front) are returned as they are."""
    if not blob.startswith(SEAL[:10]):
        return blob
    head, sep, data = blob.partition(b"\n")
    if not sep or not head.startswith(SEAL) or len(head) != len(SEAL) + 64:
        raise ValueError("its checksum header is damaged")
    if hashlib.sha256(data).hexdigest().encode() != head[len(SEAL):]:
        raise ValueError("its content differs from its recorded sha256")
    return data


def sealed_problem(path: Path) -> str:
    """What is wrong with a sealed file ("" when nothing is; "not sealed" for one written before sealing)."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if not blob.startswith(SEAL[:10]):
        return "not sealed (written before lstmsearch kept its checksum)"
    try:
        unseal(blob)
    except ValueError as exc:
        return f"damaged: {exc}"
    return ""
