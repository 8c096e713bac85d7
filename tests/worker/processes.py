"""Real processes on loopback for the worker and end-to-end tests: servers, workers, waiting.

Every process listens on 127.0.0.1 only, writes its output to a log file in the test's
directory (shown when something fails), and is stopped at the end: SIGTERM, then SIGKILL
after a bound. Waits are bounded too; nothing here can hang a test run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(database_url: str, **settings: object) -> dict[str, str]:
    """This process's environment plus ``GAMEWALLET_DATABASE_URL`` and ``GAMEWALLET_<NAME>``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEWALLET_")}
    env["GAMEWALLET_DATABASE_URL"] = database_url
    env["GAMEWALLET_LOG_FORMAT"] = "console"
    for name, value in settings.items():
        env[f"GAMEWALLET_{name.upper()}"] = str(value)
    return env


def log_of(path: Path) -> str:
    return path.read_text(errors="replace")[-6000:] if path.exists() else "(no log)"


def spawn(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``args`` with its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(args, env=dict(env), stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Signal ``process`` and wait for it (SIGKILL after the bound); its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
    return process.returncode


def gamewallet(*args: str) -> list[str]:
    """The command line of ``gamewallet <args>`` with this interpreter."""
    return [sys.executable, "-c", "from gamewallet.cli import main; main()", *args]


def run_cli(env: Mapping[str, str], *args: str) -> str:
    """Run ``gamewallet <args>`` to completion; its standard output (fails on non-zero)."""
    done = subprocess.run(
        gamewallet(*args), env=dict(env), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``base_url``/healthz answers 200 (or fail with the process's log)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log_of(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"server did not become healthy:\n{log_of(log)}")


@contextlib.contextmanager
def uvicorn_process(
    factory: str, env: Mapping[str, str], log: Path, port: int | None = None
) -> Iterator[str]:
    """``factory`` (``module:function``) served by uvicorn on loopback; yields its base URL."""
    port = port or free_port()
    args = [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
            "--port", str(port)]  # fmt: skip
    process = spawn(args, env, log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process, log)
        yield base_url
    finally:
        stop(process)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str, log: Path | None = None
) -> None:
    """Poll ``check`` every 0.1 s until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    detail = f"\n{log_of(log)}" if log is not None else ""
    raise AssertionError(f"timed out waiting for {what}{detail}")


@contextlib.asynccontextmanager
async def asgi_server(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI ``app`` on loopback from this event loop (real HTTP); yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    # Leave signal handling to this process's owner (pytest), not to the test server.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise AssertionError("the test server did not start")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STOP_TIMEOUT_S)
