"""Size limits: request bodies over ``max_body_bytes`` (64 KiB) are refused with 413 in each
protocol's envelope without being read whole; request heads over ``max_header_bytes``
(32 KiB) are refused with 431 by ``gamewallet serve`` (httptools alone accepts a 10 MB
header: see gamewallet.httpserver), and the server keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.security import calls
from tests.security.world import LiveServer, World, build_world

from gamewallet.service.common import SystemClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store

BODY_MAX = 64 * 1024
HEAD_MAX = 32 * 1024


@pytest.mark.parametrize("size", [BODY_MAX + 1, 1024 * 1024])
async def test_oversized_bodies_get_413_in_each_protocols_envelope(
    http: httpx.AsyncClient, world: World, size: int
) -> None:
    s, h = world.seamless[0], world.hrg[0]
    padding = "x" * size
    body = {"token": s.token, "pad": padding}
    response = await http.post("/wallet/getBalance", json=body, headers={"Authorization": s.auth()})
    assert response.status_code == 413
    assert response.json()["errorCode"] == 101
    response = await http.post(
        "/api/get_balance",
        json={**calls.hrg_balance(h), "pad": padding},
        headers={"Authorization": h.auth(), "xts": "x"},
    )
    # Auth and xts are checked before the body; with a bad xts the body is never read.
    assert response.json()["code"] == "1002"
    j = world.jdb[0]
    response = await http.post(calls.JDB_PATH, data={"dc": j.dc, "x": padding})
    assert response.status_code == 413
    assert response.json()["status"] == "8000"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, World]]:
    """``gamewallet serve`` on a SQLite file holding the test world."""
    root = tmp_path_factory.mktemp("limits")
    url = f"sqlite:///{root}/gw.db"
    migrate.upgrade(url)

    async def seed() -> World:
        services = Services(Settings(database_url=url), open_store(url), SystemClock())
        await services.start()
        try:
            return await build_world(services.store, services.clock, services.key)
        finally:
            await services.close()

    world = asyncio.run(seed())
    with LiveServer(url, root / "server.log", serve=True, log_format="console") as server:
        yield server, world


def _raw(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send one request as raw bytes; return what the server answered (empty if closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # The server may refuse and close while we are still sending.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


def _head(extra_headers: str, length: int = 2) -> bytes:
    return (
        "POST /wallet/getBalance HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"{extra_headers}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(f"X-Big: {'a' * (HEAD_MAX + 10)}\r\n", id="one-long-header"),
        pytest.param(f"X-Big: {'a' * 10_000_000}\r\n", id="ten-megabytes"),
        pytest.param("".join(f"X-H{i}: v\r\n" for i in range(20_000)), id="twenty-thousand"),
    ],
)
def test_oversized_request_heads_get_431_and_the_server_lives_on(
    live: tuple[LiveServer, World], headers: str
) -> None:
    server, world = live
    started = time.monotonic()
    answer = _raw(server.port, _head(headers), b"{}")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert time.monotonic() - started < 10
    ok = httpx.post(
        f"{server.url}/wallet/getBalance",
        json={"token": world.seamless[0].token},
        headers={"Authorization": world.seamless[0].auth()},
    )
    assert ok.status_code == 200
    assert "errorCode" not in ok.json()


def test_requests_within_the_limits_are_served(live: tuple[LiveServer, World]) -> None:
    server, world = live
    side = world.seamless[0]
    # Large but allowed headers, and a body just under its limit sent in one write with the
    # head (its bytes must not be mistaken for the head's).
    filler = f"X-Filler: {'b' * (HEAD_MAX - 2048)}\r\n"
    body = ('{"token": "' + side.token + '", "pad": "' + "c" * (BODY_MAX - 200) + '"}').encode()
    head = _head(f"{filler}Authorization: {side.auth()}\r\n", len(body))
    answer = _raw(server.port, head, body)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b'"balance"' in answer


def test_many_requests_on_one_connection_are_not_counted_as_one_head(
    live: tuple[LiveServer, World],
) -> None:
    server, world = live
    side = world.seamless[0]
    with httpx.Client(base_url=server.url, headers={"Authorization": side.auth()}) as client:
        for _ in range(200):
            response = client.post("/wallet/getBalance", json={"token": side.token})
            assert response.status_code == 200


def test_the_log_has_the_refusals(live: tuple[LiveServer, World], tmp_path: Path) -> None:
    server, _ = live
    assert "request head over" in server.log()
