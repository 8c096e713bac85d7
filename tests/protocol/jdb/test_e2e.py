"""End to end over real HTTP: uvicorn serving the app, an operator script on the other side.

The database is a SQLite file seeded through the service layer before the server starts. The
operator script knows only the vendor's documentation: it builds ``x`` with its own AES code
(AES-128-CBC, JSON space-padded to 16 bytes, Base64-URL without ``=``), sends GET and POST
requests with httpx and reads plain JSON. It creates a player, deposits, withdraws, retries a
serialNo (6005) and looks the transfer up with action 55. One request's ``x`` is built with the
documented command line instead. After the server stops, the ledger must audit clean.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from tests.protocol.jdb.caller import create_domain, domain_config, start_services

from gamewallet.service import admin
from gamewallet.service.common import SystemClock

DC, KEY, IV, PARENT = "e2e", "e2eKey0123456789", "e2eIV01234567890", "testag"
START_TIMEOUT_S = 30


# --- the operator's side, from the vendor's documentation only ----------------------------


def encrypt(payload: dict[str, Any], key: str, iv: str) -> str:
    """x = Base64-URL(AES-128-CBC(JSON right-padded with spaces to 16 bytes)), no '='."""
    data = json.dumps(payload).encode("utf-8")
    data += b" " * (-len(data) % 16)
    encryptor = Cipher(
        algorithms.AES(key.encode().ljust(16, b"\0")), modes.CBC(iv.encode())
    ).encryptor()
    return (
        base64.urlsafe_b64encode(encryptor.update(data) + encryptor.finalize()).decode().rstrip("=")
    )


class Operator:
    """What an operator's integration does: build x, call apiRequest.do, read the JSON."""

    def __init__(self, base_url: str, dc: str = DC) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self.dc = dc

    def close(self) -> None:
        self.http.close()

    def call(self, action: int, post: bool = False, **fields: Any) -> dict[str, Any]:
        payload = {"action": action, "ts": int(time.time() * 1000), "parent": PARENT, **fields}
        params = {"dc": self.dc, "x": encrypt(payload, KEY, IV)}
        if post:
            response = self.http.post("/apiRequest.do", data=params)
        else:
            response = self.http.get("/apiRequest.do", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        reply: dict[str, Any] = response.json()
        return reply


def operator_script(base_url: str) -> dict[str, Any]:
    """The operator's day: returns what it saw, for the test to check."""
    op = Operator(base_url)
    seen: dict[str, Any] = {}
    seen["create"] = op.call(12, uid="player01", name="Player One")
    seen["deposit"] = op.call(
        19,
        uid="player01",
        serialNo="D20260101001",
        allCashOutFlag="0",
        amount=1000.0,
        remark="first deposit",
    )
    seen["withdraw"] = op.call(
        19, post=True, uid="player01", serialNo="W20260101001", amount=-250.125
    )
    seen["retry"] = op.call(19, uid="player01", serialNo="W20260101001", amount=-250.125)
    seen["lookup"] = op.call(55, serialNo="W20260101001")
    seen["unknown"] = op.call(55, serialNo="NEVERSENT1")
    seen["info"] = op.call(15, uid="player01")
    op.close()
    return seen


# --- the server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _seed(url: str) -> None:
    services = await start_services(url, SystemClock())
    try:
        now = services.clock.now_ms()
        await create_domain(services, now, DC, _e2e_config(allow_ips=["127.0.0.1/32"]))
        await create_domain(services, now, "faraway", _e2e_config(allow_ips=["10.0.0.0/8"]))
    finally:
        await services.close()


def _e2e_config(**extra: Any) -> dict[str, Any]:
    return {**domain_config(**extra), "aes_key": KEY, "aes_iv": IV}


@contextlib.contextmanager
def running_server(url: str, log_path: Path) -> Iterator[str]:
    """uvicorn on a free port over the database at ``url``; yields its base URL, stops it."""
    port = _free_port()
    env = {**os.environ, "GAMEWALLET_DATABASE_URL": url, "GAMEWALLET_LOG_FORMAT": "console"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "gamewallet.app:app_factory", "--factory",
             "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, process, log_path)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("server did not start:\n" + log_path.read_text())
        time.sleep(0.1)


async def _audit(url: str) -> list[str]:
    services = await start_services(url, SystemClock())
    try:
        return await services.store.run(admin.audit())
    finally:
        await services.close()


@pytest.mark.slow
def test_operator_script_over_real_http(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/e2e.db"
    asyncio.run(_seed(url))
    with running_server(url, tmp_path / "server.log") as base:
        _operate(base)
    assert asyncio.run(_audit(url)) == []


def _operate(base: str) -> None:
    seen = operator_script(base)
    assert seen["create"] == {"status": "0000"}
    assert seen["deposit"]["status"] == "0000"
    assert seen["deposit"]["userBalance"] == 1000.0
    assert seen["deposit"]["serialNo"] == "D20260101001"
    assert seen["withdraw"]["status"] == "0000"
    assert seen["withdraw"]["amount"] == -250.125
    assert seen["withdraw"]["userBalance"] == 749.875
    assert seen["withdraw"]["agentCashBalance"] == -749.875
    assert seen["retry"] == {"status": "6005", "err_text": "Repeat serial number"}
    record = seen["lookup"]["data"][0]
    assert seen["lookup"]["status"] == "0000"
    assert record["pid"] == seen["withdraw"]["pid"]
    assert (record["uid"], record["action"], record["amount"]) == ("player01", "withdraw", -250.125)
    assert (record["plsBalance"], record["afterBalance"]) == (1000.0, 749.875)
    assert record["date"] == seen["withdraw"]["payDate"]
    assert seen["unknown"] == {"status": "9015", "err_text": "Data does not exist"}
    assert seen["info"]["data"][0]["balance"] == 749.875

    # The exact number text on the wire, not just its value.
    balances = {
        "action": 68,
        "ts": int(time.time() * 1000),
        "parent": PARENT,
        "uidList": ["player01"],
    }
    raw = httpx.get(base + "/apiRequest.do", params={"dc": DC, "x": encrypt(balances, KEY, IV)})
    assert raw.text == '{"status":"0000","data":[{"uid":"player01","balance":749.875}]}'

    # The documented command line builds the same kind of x.
    payload = json.dumps({"action": 15, "ts": int(time.time() * 1000), "parent": PARENT,
                          "uid": "player01"})  # fmt: skip
    cli = subprocess.run(
        [sys.executable, "-m", "gamewallet.protocols.jdb.crypto", "encrypt",
         "--key", KEY, "--iv", IV, payload],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    reply = httpx.get(base + "/apiRequest.do", params={"dc": DC, "x": cli.stdout.strip()}).json()
    assert reply["status"] == "0000"

    # A domain that only accepts 10.0.0.0/8 refuses us.
    faraway = Operator(base, dc="faraway")
    assert faraway.call(65) == {"status": "9001", "err_text": "No authorized to access"}
    faraway.close()
