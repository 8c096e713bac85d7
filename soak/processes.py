"""The processes the soak runs and kills: wallet servers, workers, the game side.

A :class:`Managed` process is started from a fixed command line and environment, its output
goes to a log file, and it can be ``kill -9``ed and started again. Wallet servers are uvicorn
processes serving the same listening socket (``--fd``): the soak holds that socket, so while
one server is dead the kernel keeps queueing connections for the other (and for the
restarted one) instead of refusing them, as a load balancer in front of two hosts would.
A process that dies without being killed by the soak is an *unexpected exit*: counted and
reported, then restarted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

STOP_GRACE_S = 10.0
HEALTH_POLL_S = 0.1


@dataclass
class Managed:
    """One process the soak owns."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    health_url: str | None = None
    pass_fds: tuple[int, ...] = ()
    kills: int = 0
    starts: int = 0
    unexpected_exits: list[str] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start it (its output appended to its log)."""
        assert not self.alive, f"{self.name} is already running"
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._log.write(f"\n===== soak: start #{self.starts + 1} of {self.name}\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(
            list(self.argv),
            env=dict(self.env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            pass_fds=self.pass_fds,
        )
        self.starts += 1

    def kill9(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self.kills += 1
        self._process = None  # down on purpose: not an unexpected exit

    def check_exit(self) -> bool:
        """True (and recorded) if the process died without the soak killing it."""
        if self._process is None or self._process.poll() is None:
            return False
        code = self._process.returncode
        self.unexpected_exits.append(f"{self.name} exited by itself with status {code}")
        self._process = None
        return True

    async def wait_healthy(self, timeout_s: float) -> None:
        """Wait until the health URL answers 200 (or, without one, a short settle time)."""
        if self.health_url is None:
            await asyncio.sleep(0.5)
            return
        async with httpx.AsyncClient(timeout=1.0) as http:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                if not self.alive:
                    raise RuntimeError(f"{self.name} died while starting (see {self.log_path})")
                try:
                    if (await http.get(self.health_url)).status_code == httpx.codes.OK:
                        return
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{self.name} not healthy after {timeout_s:g} s")
                await asyncio.sleep(HEALTH_POLL_S)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; close the log."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def listening_socket() -> socket.socket:
    """A TCP socket listening on a free 127.0.0.1 port, inheritable by child processes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def uvicorn_argv(app: str, *, fd: int | None = None, port: int | None = None) -> list[str]:
    """The command line of one uvicorn process of ``app`` (a factory)."""
    argv = [sys.executable, "-m", "uvicorn", app, "--factory", "--no-access-log"]
    # The request-head bound of ``gamewallet serve`` (httptools has none of its own).
    argv += ["--http", "gamewallet.httpserver:BoundedHttpToolsProtocol"]
    if fd is not None:
        argv += ["--fd", str(fd)]
    else:
        argv += ["--host", "127.0.0.1", "--port", str(port)]
    return argv


def gamewallet_argv(*args: str) -> list[str]:
    """The command line of ``gamewallet ARGS`` with this interpreter."""
    return [sys.executable, "-m", "gamewallet.cli", *args]


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without any GAMEWALLET_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEWALLET_")}
    env.update(extra)
    return env
