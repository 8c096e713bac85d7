"""No secret or token in the logs: a real server at DEBUG level serves good and bad calls of
every protocol and the back-office, and its whole output is searched for every secret used.

Secrets: Basic passwords (and the base64 header values carrying them), HRG client secrets,
JDB AES keys and IVs, seamless session tokens, the back-office password, session cookie and
API token. Failures are part of the run on purpose: refused credentials, undecryptable
payloads and an unexpected server error are where secrets tend to leak.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx
from tests.security import calls
from tests.security.world import LiveServer, World, basic, build_world

from gamewallet.service.common import SystemClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store

ADMIN_PASSWORD = "Admin-Pass-4b7e19"


async def _seed(url: str) -> World:
    services = Services(Settings(database_url=url), open_store(url), SystemClock())
    await services.start()
    try:
        return await build_world(services.store, services.clock, services.key)
    finally:
        await services.close()


def _cli(url: str, *args: str) -> str:
    env = {"GAMEWALLET_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "gamewallet.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


async def _traffic(base: str, world: World) -> list[str]:
    """Good and bad calls of every protocol and the back-office; the secrets they revealed
    to us (session cookie) that must not be logged either."""
    clock = SystemClock()
    found: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        s = world.seamless[0]
        await calls.seamless(http, s, "getBalance")
        await calls.seamless(http, s, "withdraw", calls.seamless_withdraw(s))
        await calls.seamless(http, s, "getBalance", authorization=basic(s.username, "wrong-pw"))
        await calls.seamless(http, s, "getBalance", authorization="Basic " + "%" * 50)
        await calls.seamless(http, s, "getBalance", {"token": s.token + "x"})
        await calls.seamless(http, s, "withdraw", {"token": s.token, "amount": "NaN"})
        # payment/initiate of a client without a payment secret: an unexpected failure (100).
        body = {
            "token": s.token,
            "cpOrderId": "o1",
            "serverId": "1",
            "productId": "p",
            "productPrice": 1.5,
            "extParams": "",
        }
        await calls.seamless(http, s, "payment/initiate", body)
        h = world.hrg[0]
        await calls.hrg(http, h, "get_balance", calls.hrg_balance(h), clock)
        await calls.hrg(
            http,
            h,
            "get_balance",
            calls.hrg_balance(h),
            clock,
            authorization=basic(h.client_id, "nope"),
        )
        j = world.jdb[0]
        await calls.jdb(http, j, {"action": 15, "uid": j.uid}, clock)
        await calls.jdb(http, j, {"action": 15, "uid": j.uid}, clock, x="garbage" * 5)
        await calls.jdb(http, world.jdb[1], {"action": 15, "uid": j.uid}, clock, dc=j.dc)
        for password in ("wrong-admin-password", ADMIN_PASSWORD):
            form = await http.get("/admin/login")
            match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert match is not None
            await http.post(
                "/admin/login",
                data={
                    "username": "olga",
                    "password": password,
                    "csrf_token": match.group(1),
                    "next": "/admin/",
                },
            )
        cookie = http.cookies.get("gw_admin")
        assert cookie, "the admin sign-in worked"
        found.append(cookie)
        await http.get("/admin/")
        await http.get("/admin/api/players", headers={"Authorization": "Bearer gwa_not-a-token"})
    return found


def test_no_secret_or_token_is_ever_logged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    migrate.upgrade(url)
    world = asyncio.run(_seed(url))
    _cli(url, "admin", "create-user", "olga", "--role", "operator", "--password", ADMIN_PASSWORD)
    token_out = _cli(url, "admin", "create-token", "script", "--role", "viewer")
    api_token = re.search(r"gwa_[A-Za-z0-9_\-]+", token_out)
    assert api_token is not None, token_out
    log = tmp_path / "server.log"
    with LiveServer(url, log, log_level="DEBUG") as server:
        revealed = asyncio.run(_traffic(server.url, world))
        with httpx.Client(base_url=server.url) as http:
            assert (
                http.get(
                    "/admin/api/players", headers={"Authorization": f"Bearer {api_token.group(0)}"}
                ).status_code
                == 200
            )
    text = server.log()
    # The traffic was logged (refusals and the unexpected failure included): the search below
    # is over something.
    assert "jdb_refused" in text
    assert "seamless call failed" in text
    secrets = [
        *world.secrets(),
        ADMIN_PASSWORD,
        "wrong-admin-password",
        api_token.group(0),
        *revealed,
    ]
    leaked = [secret for secret in secrets if secret in text]
    assert leaked == [], f"secrets in the server log: {leaked}"
