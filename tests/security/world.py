"""A small world for the security, fuzz and reliability tests: two clients of each protocol,
their players and sessions, and the requests that speak each protocol correctly.

Two of each so that a test can try one client's credentials on the other's players.
:func:`build_world` makes it through the service layer in one store; :class:`LiveServer`
runs the real app in a uvicorn process on loopback, its log captured to a file.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from gamewallet.core.money import UNIT
from gamewallet.protocols.hrg.timefmt import format_xts
from gamewallet.protocols.jdb.crypto import encrypt_payload
from gamewallet.service import admin
from gamewallet.service.common import Clock
from gamewallet.store.port import Store

CURRENCY = "THB"
OPENING_MINOR = 1000 * UNIT
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class SeamlessSide:
    """A seamless client: Basic credentials, a player and its live session token."""

    name: str
    username: str
    password: str
    player: str
    token: str

    def auth(self) -> str:
        """The Authorization header value."""
        return basic(self.username, self.password)


@dataclass(frozen=True)
class HrgSide:
    """An HRG agent: its id, Basic credentials and a user."""

    agent: str
    client_id: str
    secret: str
    user: str

    def auth(self) -> str:
        """The Authorization header value."""
        return basic(self.client_id, self.secret)


@dataclass(frozen=True)
class JdbSide:
    """A JDB domain: dc, agent (parent), AES key and IV, and a player."""

    dc: str
    parent: str
    key: str
    iv: str
    uid: str

    def x(self, payload: dict[str, Any]) -> str:
        """``payload`` encrypted with this domain's key."""
        return encrypt_payload(json.dumps(payload), self.key, self.iv)


@dataclass(frozen=True)
class World:
    """Two clients of each protocol."""

    seamless: tuple[SeamlessSide, SeamlessSide]
    hrg: tuple[HrgSide, HrgSide]
    jdb: tuple[JdbSide, JdbSide]
    extra_config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        """Every secret and token of the world (none may appear in a log)."""
        found: list[str] = []
        for s in self.seamless:
            found += [s.password, s.token, s.auth().split(" ", 1)[1]]
        for h in self.hrg:
            found += [h.secret, h.auth().split(" ", 1)[1]]
        for j in self.jdb:
            found += [j.key, j.iv]
        return found


def basic(user: str, password: str) -> str:
    """``Basic base64(user:password)``."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def xts(now_ms: int) -> str:
    """HRG's ``xts`` header for ``now_ms`` (GMT+8)."""
    return format_xts(datetime.fromtimestamp(now_ms / 1000, UTC))


async def build_world(
    store: Store, clock: Clock, key: bytes, *, config: dict[str, dict[str, Any]] | None = None
) -> World:
    """Create the world's clients, players and sessions in ``store``. ``config`` adds client
    config entries by client name (e.g. an allowlist or a rate limit)."""
    extra = config or {}
    now_ms = clock.now_ms()
    seamless: list[SeamlessSide] = []
    for tag in ("a", "b"):
        name = f"game{tag}"
        client = await store.run(
            admin.create_client(
                admin.NewClient(
                    "seamless",
                    name,
                    f"user-{tag}",
                    f"pw-{tag}-Secret123",
                    None,
                    None,
                    extra.get(name, {}),
                ),
                now_ms,
                key,
            )
        )
        player = f"player{tag}"
        await store.run(
            admin.create_player(client, player, CURRENCY, player, OPENING_MINOR, now_ms)
        )
        session, _ = await store.run(admin.open_session(client, player, 24 * 3600, now_ms))
        seamless.append(
            SeamlessSide(name, f"user-{tag}", f"pw-{tag}-Secret123", player, session.token)
        )
    hrg: list[HrgSide] = []
    for tag in ("a", "b"):
        agent = f"agent{tag}"
        client = await store.run(
            admin.create_client(
                admin.NewClient(
                    "hrg",
                    agent,
                    f"hrg-{tag}",
                    f"hrg-secret-{tag}-XYZ",
                    CURRENCY,
                    None,
                    extra.get(agent, {}),
                ),
                now_ms,
                key,
            )
        )
        user = f"user{tag}"
        await store.run(admin.create_player(client, user, CURRENCY, user, OPENING_MINOR, now_ms))
        hrg.append(HrgSide(agent, f"hrg-{tag}", f"hrg-secret-{tag}-XYZ", user))
    jdb: list[JdbSide] = []
    for tag, key16, iv16 in (
        ("a", "KeyA0123456789ab", "IvA0123456789abc"),
        ("b", "KeyB0123456789ab", "IvB0123456789abc"),
    ):
        dc = f"dc{tag}"
        setup = {"parent": f"parent{tag}", "aes_key": key16, "aes_iv": iv16, **extra.get(dc, {})}
        client = await store.run(
            admin.create_client(
                admin.NewClient("jdb", dc, None, None, CURRENCY, None, setup), now_ms, key
            )
        )
        uid = f"uid{tag}"
        await store.run(admin.create_player(client, uid, CURRENCY, uid, OPENING_MINOR, now_ms))
        jdb.append(JdbSide(dc, f"parent{tag}", key16, iv16, uid))
    return World((seamless[0], seamless[1]), (hrg[0], hrg[1]), (jdb[0], jdb[1]), extra)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """The app in a uvicorn process on 127.0.0.1, its log in ``log_path``; a context manager
    that waits for /healthz on entry and stops the process (SIGTERM, then SIGKILL) on exit."""

    def __init__(
        self, database_url: str, log_path: Path, *, serve: bool = False, **settings: object
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEWALLET_")}
        env["GAMEWALLET_DATABASE_URL"] = database_url
        env["GAMEWALLET_WORKER_IN_PROCESS"] = "0"
        for name, value in settings.items():
            env[f"GAMEWALLET_{name.upper()}"] = str(value)
        self.env = env
        #: ``gamewallet serve`` (the production command line) instead of bare uvicorn.
        self.serve = serve
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LiveServer:
        if self.serve:
            argv = [sys.executable, "-m", "gamewallet.cli", "serve", "--port", str(self.port)]
        else:
            argv = [
                *(sys.executable, "-m", "uvicorn", "gamewallet.app:app_factory", "--factory"),
                *("--host", "127.0.0.1", "--port", str(self.port), "--no-access-log"),
            ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise TimeoutError(f"server not healthy in {START_TIMEOUT_S} s: {self.log()[-3000:]}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
