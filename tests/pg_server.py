"""A throw-away PostgreSQL server on loopback for the worker tests.

:func:`find_pg_bin` looks for ``initdb``/``pg_ctl``/``postgres`` (PATH, then Debian's
``/usr/lib/postgresql/<v>/bin``); when there are none and we are root on a Debian-like
system, it installs them with ``apt-get install -y postgresql`` (what a fresh CI machine
needs). :class:`PgServer` makes a data directory in a temporary folder, starts the server
on 127.0.0.1 and a free port (trust authentication, loopback only), and can be stopped and
started again on the same port (the lost-connection test). PostgreSQL refuses to run as
root, so as root the data directory is handed to the ``postgres`` user (made if missing)
and the server runs as that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

_TOOLS = ("initdb", "pg_ctl", "postgres")


def _bin_dir() -> Optional[Path]:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all((Path(d) / t).exists() for t in _TOOLS):
            return Path(d)
    return None


def find_pg_bin(install: bool = True) -> Optional[Path]:
    """The folder of PostgreSQL's server programs, installing them with apt-get if allowed."""
    d = _bin_dir()
    if d is not None or not install:
        return d
    if os.geteuid() != 0 or not shutil.which("apt-get") or os.environ.get("LSTMSEARCH_NO_PG_INSTALL"):
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"], env=env,
                       check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError):
        return None
    return _bin_dir()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bin_dir: Path, root: Optional[Path] = None):
        self.bin = Path(bin_dir)
        self.root = Path(root or tempfile.mkdtemp(prefix="lstmsearch-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user = None
        if os.geteuid() == 0:
            self.as_user = "postgres"
            if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
            os.chmod(self.root, 0o777)

    def _run(self, *cmd, check=True, timeout=120):
        cmd = [str(c) for c in cmd]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--"] + cmd
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)

    def init(self):
        self._run(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = ''\n"
                     "fsync = off\nfull_page_writes = off\nmax_connections = 100\n")
        return self

    def start(self):
        self._run(self.bin / "pg_ctl", "-D", self.data, "-l", self.root / "log.txt", "-w", "-t", "60", "start")
        return self

    def stop(self, mode="fast"):
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def create_db(self, name="lstmsearch"):
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(cond, timeout=60.0, step=0.1):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return True
        time.sleep(step)
    return False
