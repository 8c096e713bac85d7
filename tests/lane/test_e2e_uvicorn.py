"""The fast lane under ``gamewallet serve``, over real HTTP on loopback.

What only a real server shows: a body arriving in several reads (the lane's reassembly), a
declined request whose body the lane already read reaching the route intact (the wrapped
``receive``), keep-alive connections carrying lane and route answers one after the other,
and an address outside a seamless client's allowlist still getting its connection dropped
(the lane passes uvicorn's own ``receive`` when it declines before reading the body).
Both servers, with and without the lane, must give the same answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.security.world import LiveServer, World, build_world, xts

from gamewallet.service.common import SystemClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store

pytestmark = pytest.mark.slow

CONFIG = {"gameb": {"allow_ips": ["10.9.0.0/16"]}}


def _seed(url: str) -> World:
    migrate.upgrade(url)

    async def seed() -> World:
        services = Services(Settings(database_url=url), open_store(url), SystemClock())
        await services.start()
        try:
            return await build_world(services.store, services.clock, services.key, config=CONFIG)
        finally:
            await services.close()

    return asyncio.run(seed())


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, World]]:
    """``gamewallet serve`` (the lane on, by default) on a SQLite file holding the world."""
    root = tmp_path_factory.mktemp("lane")
    url = f"sqlite:///{root}/gw.db"
    world = _seed(url)
    with LiveServer(url, root / "lane.log", serve=True, log_level="WARNING") as server:
        yield server, world


def _raw(port: int, request: bytes, *, pause_after: int | None = None) -> bytes:
    """Send one request as raw bytes (optionally in two writes, apart); what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if pause_after is None:
            sock.sendall(request)
        else:
            sock.sendall(request[:pause_after])
            time.sleep(0.2)
            sock.sendall(request[pause_after:])
        chunks = []
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_the_lane_serves_real_http(servers: tuple[LiveServer, World]) -> None:
    server, world = servers
    s, h, j = world.seamless[0], world.hrg[0], world.jdb[0]
    auth = {"Authorization": s.auth()}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        before = http.post("/wallet/getBalance", json={"token": s.token}, headers=auth).json()
        body: dict[str, Any] = {
            "token": s.token,
            "mmTransactionId": "e2e-w1",
            "amount": {"amount": 12.5, "currencyCode": "THB"},
        }
        withdrawn = http.post("/wallet/withdraw", json=body, headers=auth)
        assert withdrawn.status_code == 200
        assert withdrawn.headers["content-type"] == "application/json"
        assert withdrawn.headers["x-request-id"]
        assert http.post("/wallet/withdraw", json=body, headers=auth).content == withdrawn.content
        confirmed = http.post("/wallet/confirmWithdrawal", json=body, headers=auth)
        assert confirmed.json()["balance"]["amount"] == before["balance"]["amount"] - 12.5
        # Declined (a bad body, then bad credentials) on the same keep-alive connection.
        refused = http.post("/wallet/withdraw", content=b"{", headers=auth)
        assert refused.json()["errorCode"] == 101
        wrong = http.post("/wallet/withdraw", json=body, headers={"Authorization": "Basic x"})
        assert wrong.status_code == 401
        given = http.post(
            "/wallet/getBalance", json={"token": s.token}, headers={**auth, "X-Request-ID": "e2e-1"}
        )
        assert given.headers["x-request-id"] == "e2e-1"
        hrg_body = {"agentId": h.agent, "userId": h.user, "transactionCode": "E1", "amount": "3"}
        stamp = xts(int(time.time() * 1000))
        deposited = http.post(
            "/api/deposit", json=hrg_body, headers={"Authorization": h.auth(), "xts": stamp}
        )
        assert deposited.json()["code"] == "0000"
        payload = {
            "action": 19,
            "ts": int(time.time() * 1000),
            "parent": j.parent,
            "uid": j.uid,
            "serialNo": "e2e1",
            "amount": 4,
        }
        jdb = http.post("/apiRequest.do", json={"dc": j.dc, "x": j.x(payload)})
        assert jdb.json()["status"] == "0000"
    # A body in two reads, served by the lane; then one the lane declines after reading it.
    body2 = json.dumps({**body, "mmTransactionId": "e2e-w2"}).encode()
    head = {"Authorization": s.auth(), "Content-Type": "application/json"}
    answer = _raw(server.port, _post("/wallet/withdraw", body2, head), pause_after=200)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b'"mmTransactionId":"e2e-w2"' in answer
    wrong_type = {"amount": "12.5", "currencyCode": "THB"}
    bad = json.dumps({**body, "mmTransactionId": "e2e-w3", "amount": wrong_type}).encode()
    answer = _raw(server.port, _post("/wallet/withdraw", bad, head), pause_after=150)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b'"errorCode":101' in answer
    # An address outside gameb's allowlist: dropped without an answer, as without the lane.
    other = world.seamless[1]
    dropped = _raw(
        server.port,
        _post(
            "/wallet/getBalance",
            json.dumps({"token": other.token}).encode(),
            {"Authorization": other.auth(), "Content-Type": "application/json"},
        ),
    )
    assert dropped == b""
