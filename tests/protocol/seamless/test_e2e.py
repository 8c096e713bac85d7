"""End to end over real HTTP: uvicorn in a subprocess on 127.0.0.1, a SQLite file seeded
through the service layer, the vendor's example bodies sent with httpx.

This is where the IP allowlist's "ignore" is observable: a caller outside the allowlist gets
its connection closed with no response at all (not even a status line), and the server goes
on serving everyone else. After the server stops, the ledger must audit clean.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gamewallet.core.money import UNIT
from gamewallet.service import admin, seamless
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import open_store

START_TIMEOUT_S = 30
SEED_CONFIRM = (
    '{\n    "token": "%s",\n    "mmTransactionId": "1234abcd",\n    "amount": {\n'
    '        "amount": 230.00,\n        "currencyCode": "XAG"\n    }\n}'
)
SEED_ROLLBACK = (
    '{\n    "token": "%s",\n    "mmTransactionId": "1234abcd",\n'
    '    "rollbackReason": "Withdraw request failed."\n}'
)


@dataclass
class Server:
    """A running server and what was seeded for it."""

    url: str
    token: str
    walled_token: str
    database_url: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _seed(database_url: str) -> tuple[str, str]:
    """Clients, a player in XAG with the seed's 52030, and session tokens (real clock)."""
    services = Services(Settings(database_url=database_url), open_store(database_url))
    await services.start()
    try:
        now = services.clock.now_ms()
        game = await services.store.run(
            admin.create_client(
                admin.NewClient("seamless", "game", "JohnDoe", "MyPass"), now, services.key
            )
        )
        walled = await services.store.run(
            admin.create_client(
                admin.NewClient(
                    "seamless",
                    "walled",
                    "walluser",
                    "wallpass",
                    config={"allow_ips": ["10.0.0.0/8"]},
                ),
                now,
                services.key,
            )
        )
        await services.store.run(admin.create_player(game, "p1", "XAG", "P1", 52030 * UNIT, now))
        await services.store.run(admin.create_player(walled, "w1", "XAG", "W1", 0, now))
        token = await services.store.run(seamless.open_game_session(game, "p1", 3600, now))
        other = await services.store.run(seamless.open_game_session(walled, "w1", 3600, now))
        return token.token, other.token
    finally:
        await services.close()


async def _audit(database_url: str) -> list[str]:
    services = Services(Settings(database_url=database_url), open_store(database_url))
    await services.start()
    try:
        return await services.store.run(admin.audit())
    finally:
        await services.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """uvicorn serving gamewallet on a free port of 127.0.0.1."""
    database_url = f"sqlite:///{tmp_path}/e2e.db"
    token, walled_token = asyncio.run(_seed(database_url))
    port = _free_port()
    env = {
        **os.environ,
        "GAMEWALLET_DATABASE_URL": database_url,
        "GAMEWALLET_WORKER_IN_PROCESS": "0",
        "GAMEWALLET_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gamewallet.app:app_factory",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "server.log").read_text())
            time.sleep(0.1)
        yield Server(url, token, walled_token, database_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


@pytest.mark.slow
def test_seed_examples_over_real_http(server: Server) -> None:
    """The seed's bodies get the seed's answers, byte for byte; the audit is clean after."""
    john = _auth("JohnDoe", "MyPass")  # the seed's Basic example: Sm9obkRvZTpNeVBhc3M=
    assert john["Authorization"] == "Basic Sm9obkRvZTpNeVBhc3M="
    with httpx.Client(base_url=server.url, timeout=10) as http:
        verify = http.post("/wallet/verifySession", json={"token": server.token}, headers=john)
        assert verify.content == (
            b'{"playerId":"p1","nickname":"P1","currencyCode":"XAG",'
            b'"balance":{"amount":52030,"currencyCode":"XAG"}}'
        )
        withdraw = http.post(
            "/wallet/withdraw",
            content=b'{"token":"%s","mmTransactionId":"1234abcd",'
            b'"amount":{"amount":230,"currencyCode":"XAG"}}' % server.token.encode(),
            headers=john,
        )
        assert withdraw.status_code == 200
        expected = b'{"mmTransactionId":"1234abcd","balance":{"amount":51800,"currencyCode":"XAG"}}'
        assert withdraw.content == expected
        confirm_body = (SEED_CONFIRM % server.token).encode()
        for _ in range(2):  # the repeat is a byte-exact replay
            confirm = http.post("/wallet/confirmWithdrawal", content=confirm_body, headers=john)
            assert (confirm.status_code, confirm.content) == (200, expected)
            assert confirm.headers["content-type"] == "application/json"
        rollback = http.post(
            "/wallet/rollbackWithdrawal",
            content=(SEED_ROLLBACK % server.token).encode(),
            headers=john,
        )
        assert rollback.content == (
            b'{"errorCode":108,"errorDescription":"Transaction already finalized"}'
        )
        unknown = http.post(
            "/wallet/rollbackWithdrawal",
            json={
                "token": server.token,
                "mmTransactionId": "never-seen",
                "rollbackReason": "Withdraw request failed.",
            },
            headers=john,
        )
        assert unknown.content == (
            b'{"mmTransactionId":"never-seen","balance":{"amount":51800,"currencyCode":"XAG"}}'
        )
        denied = http.post("/wallet/getBalance", json={"token": server.token})
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        too_big = http.post("/wallet/getBalance", content=b"x" * 70_000, headers=john)
        assert too_big.status_code == 413
        assert too_big.json() == {
            "errorCode": 101,
            "errorDescription": "Invalid request: request body too large",
        }
        schema = http.get("/schema/openapi.json").json()
        assert "/wallet/confirmWithdrawal" in schema["paths"]
    assert asyncio.run(_audit(server.database_url)) == []


@pytest.mark.slow
def test_an_address_outside_the_allowlist_gets_no_answer(server: Server) -> None:
    """The connection is closed without a single byte; the server keeps serving."""
    body = b'{"token":"%s"}' % server.walled_token.encode()
    request = (
        b"POST /wallet/getBalance HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Basic d2FsbHVzZXI6d2FsbHBhc3M=\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    host, port = server.url.removeprefix("http://").split(":")
    # A close with unread request bytes in the server's buffer is a reset (RST) rather than a
    # clean end of stream, depending on timing: both mean "no answer".
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(4096):
                received += chunk
    assert received == b""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.post("/wallet/getBalance", content=body, headers=_auth("walluser", "wallpass"))
        still = http.post(
            "/wallet/getBalance", json={"token": server.token}, headers=_auth("JohnDoe", "MyPass")
        )
        assert still.json() == {"balance": {"amount": 52030, "currencyCode": "XAG"}}
