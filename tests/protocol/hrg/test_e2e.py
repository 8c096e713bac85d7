"""End to end: the real server (uvicorn in a subprocess) on a SQLite file seeded beforehand
through the service layer, called over real HTTP on 127.0.0.1; the audit is clean after."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gamewallet.protocols.hrg.schemas import xts
from gamewallet.service import admin
from gamewallet.service.common import SystemClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import open_store

from .conftest import CREDENTIALS, basic, seed
from .test_transfers import SEED_RESPONSE, SEED_WITHDRAW

START_TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _seed(url: str) -> None:
    services = Services(Settings(database_url=url), open_store(url))
    await services.start()
    try:
        await seed(services, SystemClock().now_ms())
    finally:
        await services.close()


async def _audit(url: str) -> list[str]:
    services = Services(Settings(database_url=url), open_store(url))
    await services.start()
    try:
        return await services.store.run(admin.audit())
    finally:
        await services.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of a running server; stopped afterwards."""
    url = f"sqlite:///{tmp_path}/e2e.db"
    asyncio.run(_seed(url))
    port = _free_port()
    env = {
        **os.environ,
        "GAMEWALLET_DATABASE_URL": url,
        "GAMEWALLET_WORKER_IN_PROCESS": "0",
        "GAMEWALLET_LOG_FORMAT": "console",
    }
    command = [sys.executable, "-m", "uvicorn", "gamewallet.app:app_factory", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited: {(tmp_path / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not start")
            time.sleep(0.1)
        yield base, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _headers() -> dict[str, str]:
    return {
        "Authorization": basic(*CREDENTIALS["hrgag"]),
        "xts": xts(SystemClock().now_ms()),
        "Content-Type": "application/json",
    }


def test_seed_example_over_real_http(server: tuple[str, str]) -> None:
    base, url = server
    with httpx.Client(base_url=base, timeout=10) as client:
        first = client.post("/api/withdraw", json=SEED_WITHDRAW, headers=_headers())
        assert (first.status_code, first.content) == (200, SEED_RESPONSE)
        again = client.post("/api/withdraw", json=SEED_WITHDRAW, headers=_headers())
        assert again.content == SEED_RESPONSE

        check = client.post(
            "/api/check_transfer_operation",
            json={"agentId": "hrgag", "transactionCode": SEED_WITHDRAW["transactionCode"]},
            headers=_headers(),
        )
        assert check.json()["data"]["afterBalance"] == "0.0"

        unauthorized = client.post("/api/withdraw", json=SEED_WITHDRAW)
        assert unauthorized.status_code == 401
        assert unauthorized.headers["www-authenticate"].startswith("Basic")
        assert unauthorized.json() == {"code": "1001", "desc": "Authorization failed"}

        def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
            for _ in range(100):
                yield b" " * 1024

        too_large = client.post("/api/deposit", content=chunks(), headers=_headers())
        assert too_large.status_code == 413
        assert too_large.json() == {
            "code": "2001",
            "desc": "Invalid parameter: request body too large",
        }

        balance = client.post(
            "/api/get_balance",
            json={"agentId": "hrgag", "allUser": False, "userIds": ["hrgpl0001"]},
            headers=_headers(),
        )
        assert balance.json()["data"]["list"][0]["balance"] == "0.0"
    assert asyncio.run(_audit(url)) == []
