"""A real gamewallet server on 127.0.0.1 for end-to-end tests: uvicorn in a child process,
its stdout kept in a file, stopped (and waited for) when the block ends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from gamewallet.observability import uvicorn_log_config

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(
    database_url: str,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    cli: bool = False,
) -> Iterator[str]:
    """Run the app factory with uvicorn (its own lines in JSON too, as ``gamewallet serve``
    configures it), or with ``cli`` the ``gamewallet serve`` command itself; yields its base
    URL once /healthz answers."""
    port = free_port()
    log_config = log.with_suffix(".logging.json")
    log_config.write_text(json.dumps(uvicorn_log_config()))
    where = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if cli:
        command = [str(Path(sys.executable).with_name("gamewallet")), "serve", *where]
    else:
        app = ["-m", "uvicorn", "gamewallet.app:app_factory", "--factory"]
        command = [sys.executable, *app, *where, "--log-config", str(log_config)]
    environment = {
        **os.environ,
        "GAMEWALLET_DATABASE_URL": database_url,
        "GAMEWALLET_WORKER_IN_PROCESS": "0",
        **(env or {}),
    }
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: {log.read_text(errors='replace')}")
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text(errors='replace')}")
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
