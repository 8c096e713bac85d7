"""A throwaway PostgreSQL cluster of the soak's own: initdb in a temporary directory, a free
loopback port, and a crash-restart (``pg_ctl stop -m immediate``) on demand.

Never the machine's shared server: the soak restarts this one. As root the tools run as the
``postgres`` user (PostgreSQL refuses root). ``synchronous_commit`` stays on, so an
acknowledged commit has its WAL handed to the OS before the client hears of it; ``fsync`` is
off because the restart simulates a crash of PostgreSQL's processes, not of the machine, and
the OS keeps what was written either way.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import asyncpg

START_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 5
START_ATTEMPTS_MAX = 3  # the free port may be taken between choosing it and binding it


def pg_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory (``GAMEWALLET_PG_BINDIR`` first)."""
    configured = os.environ.get("GAMEWALLET_PG_BINDIR")
    if configured:
        return Path(configured)
    found = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda bindir: tuple(int(x) for x in bindir.parent.name.split(".") if x.isdigit()),
    )
    if found:
        return found[-1]
    on_path = shutil.which("initdb")
    if on_path is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb); set GAMEWALLET_PG_BINDIR")
    return Path(on_path).parent


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    """One PostgreSQL cluster under ``root`` (deleted by :meth:`destroy`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bindir = pg_bindir()
        self.port = 0
        self.restarts = 0
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        root.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            account = pwd.getpwnam("postgres")
            os.chown(root, account.pw_uid, account.pw_gid)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """A superuser URL of ``database`` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, tool: str, *args: str) -> None:
        command = [*self.run_as, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def _options(self) -> str:
        return (
            f"-h 127.0.0.1 -p {self.port} -k {self.root}"
            " -c fsync=off -c full_page_writes=off -c synchronous_commit=on"
            " -c max_connections=200"
        )

    def _pg_ctl_start(self) -> None:
        self._pg(
            "pg_ctl",
            *("-D", str(self.data), "-l", str(self.log), "-o", self._options()),
            *("-w", "-t", str(START_TIMEOUT_S), "start"),
        )

    def start(self) -> None:
        """initdb, then start on a free port."""
        self._pg(
            "initdb",
            *("-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
            *("--locale=C", "--no-sync", "--no-instructions"),
        )
        for attempt in range(1, START_ATTEMPTS_MAX + 1):
            self.port = free_port()
            try:
                self._pg_ctl_start()
            except RuntimeError:
                if attempt == START_ATTEMPTS_MAX:
                    raise
            else:
                return

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint; the next start replays the WAL."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart_after_crash(self, down_s: float) -> None:
        """Crash, stay down ``down_s`` seconds, start again on the same port."""
        self.crash()
        time.sleep(down_s)
        self._pg_ctl_start()
        self.restarts += 1

    async def create_database(self, name: str) -> str:
        """Create database ``name``; its URL."""
        connection = await asyncpg.connect(self.url(), timeout=CONNECT_TIMEOUT_S)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)

    def destroy(self) -> None:
        """Stop (if running) and delete everything."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
