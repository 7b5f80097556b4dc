"""Who may write a study: the run lock (one ``run`` per study folder) and the workers' leases.

``run.lock`` is an OS lock (``flock``) that dies with its holder; its text names the holder
(pid, host, mode) for messages. ``workers/w<slot>.json`` is the lease of a running worker
(pid, host, trials in flight): a slot whose lease belongs to a dead process (same host) or is
older than its grace period (other hosts) is taken over.

Both are mixins of :class:`lstmsearch.store.Store`; they need only its ``root``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import LstmsearchError
from .files import atomic_write_bytes
from .schema import WORKERS


def alive(pid) -> bool:
    """Whether a process of this host with id ``pid`` runs."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


class RunLock:
    """The study's run lock (a mixin of :class:`~lstmsearch.store.Store`)."""

    root: Path
    _lock_fd: Optional[int] = None

    def lock_holder(self) -> Optional[Dict]:
        """Who holds the run lock (pid, host, mode), if a live process does: the lock is an OS
        lock (``flock``) on ``run.lock``, which dies with its holder; the file's text names it."""
        import fcntl

        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._lock_text(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)  # nobody holds it: a killed run's file
            return None
        finally:
            os.close(fd)

    def _lock_text(self, fd: int, tries: int = 50) -> Dict:
        """The holder's pid/host/mode from the lock file (written just after the lock is taken)."""
        import platform

        d: Dict = {}
        for _ in range(tries):
            try:
                d = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            except (OSError, ValueError):
                d = {}
            if d.get("pid") and (d.get("host") != platform.node() or alive(d.get("pid"))):
                return d
            time.sleep(0.02)  # the new holder has not written its text yet (or a stale one is there)
        return d

    @property
    def lock_path(self) -> Path:
        return self.root / "run.lock"

    def acquire(self, mode: str = "single") -> List[str]:
        """Take the study's run lock (one ``run`` per study folder at a time).

        The lock is ``flock(LOCK_EX | LOCK_NB)`` on ``run.lock``, held until :meth:`release`
        or the end of this process (a killed run's lock is gone with it: there is no stale
        lock to take over, and two runs started together cannot both get it). The file keeps
        the holder's pid, host and mode for messages. A file left by a killed run is reused,
        and the lock files its Optuna journal storage left behind are removed. Returns
        messages about what was cleaned up.
        """
        import fcntl
        import platform

        self.root.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": platform.node(), "mode": mode}
        messages = []
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = self._lock_text(fd)
                os.close(fd)
                raise LstmsearchError(
                    f"the study in {str(self.root)!r} is being run by process {other.get('pid')} on "
                    f"{other.get('host')}; wait for it to finish") from None
            try:  # the file may have been removed by a holder that released meanwhile: lock the one in place
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            old = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            old = {}
        if old.get("pid"):
            for stale in self.root.glob("*.lock"):
                if stale.name != self.lock_path.name:
                    stale.unlink(missing_ok=True)
            messages.append(f"took over the run lock of process {old.get('pid')}, which no longer runs")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._lock_fd = fd
        return messages

    def release(self):
        """Give the run lock back (the file is removed while still locked, then the lock dropped)."""
        import fcntl

        fd = getattr(self, "_lock_fd", None)
        if fd is None:
            return
        self._lock_fd = None
        try:
            if os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino:
                self.lock_path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class Leases:
    """The workers' leases under ``workers/`` (a mixin of :class:`~lstmsearch.store.Store`)."""

    root: Path

    @property
    def workers_dir(self) -> Path:
        return self.root / WORKERS

    def leases(self) -> List[Dict]:
        """Leases of workers (live or dead): dicts with slot, pid, host, trials, age_s, alive."""
        import platform

        out = []
        if not self.workers_dir.is_dir():
            return out
        host = platform.node()
        for p in sorted(self.workers_dir.glob("w*.json")):
            try:
                d = json.loads(p.read_text())
                age = time.time() - p.stat().st_mtime
            except (OSError, json.JSONDecodeError):
                continue
            grace = float(d.get("grace_s", 60))
            d["age_s"] = age
            d["alive"] = alive(d.get("pid")) if d.get("host") == host else age < grace
            d["path"] = p
            out.append(d)
        return out

    def claim_slot(self, info: Dict, slot: Optional[int] = None) -> int:
        """Claim a free writer slot >= 1 (or the given one) with a lease file; returns it.

        A slot whose lease belongs to a dead process (same host) or is older than its
        grace period (other hosts) is taken over.
        """
        self.workers_dir.mkdir(parents=True, exist_ok=True)
        candidates = [slot] if slot is not None else range(1, 100000)
        for s in candidates:
            path = self.workers_dir / f"w{s}.json"
            for _ in range(2):
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    stale = [d for d in self.leases() if d["path"] == path and not d["alive"]]
                    if stale:
                        path.unlink(missing_ok=True)
                        continue
                    break
                with os.fdopen(fd, "w") as fh:
                    json.dump(dict(info, slot=s), fh)
                return s
            if slot is not None:
                raise LstmsearchError(f"worker slot {slot} of {self.root} is held by a live worker")
        raise LstmsearchError(f"no free worker slot in {self.workers_dir}")  # pragma: no cover

    def write_lease(self, slot: int, info: Dict):
        atomic_write_bytes(self.workers_dir / f"w{slot}.json", json.dumps(dict(info, slot=slot)).encode(),
                            fsync=False)

    def release_slot(self, slot: int):
        (self.workers_dir / f"w{slot}.json").unlink(missing_ok=True)
