"""Demo data for the embedded default: one client of each protocol with a funded player.

``ensure`` is idempotent (existing clients and players are kept), and every run opens a
fresh seamless session so that the printed examples work straight away. The credentials are
public on purpose: never run the demo against a database that holds real money.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.money import parse_amount
from gamewallet.service import admin, backoffice
from gamewallet.service.context import Services

SEAMLESS = {"name": "demo-game", "username": "demo", "password": "demo-pass"}
HRG = {"agent": "hrgag", "client_id": "hrgclient", "secret": "hrg-demo-secret", "currency": "THB"}
JDB = {
    "dc": "jb",
    "parent": "testag",
    "key": "0123456789abcdef",
    "iv": "fedcba9876543210",
    "currency": "RMB",
}
ADMIN = {"user": "admin", "password": "admin-demo"}


async def _client(s: Services, new: admin.NewClient) -> Any:
    try:
        return await s.store.run(admin.create_client(new, s.clock.now_ms(), s.key))
    except WalletError:
        return await s.store.run(admin.get_client(new.protocol, new.name))


async def _player(
    s: Services, client: Any, pid: str, currency: str, cash: str, free: str = "0"
) -> None:
    try:
        await s.store.run(
            admin.create_player(
                client,
                pid,
                currency,
                pid,
                parse_amount(cash, allow_zero=True),
                s.clock.now_ms(),
                free_minor=parse_amount(free, allow_zero=True),
            )
        )
    except WalletError as exc:
        if exc.code is not ErrorCode.PLAYER_EXISTS:
            raise


async def ensure(s: Services) -> dict[str, Any]:
    """Create the demo clients and players if missing; open a fresh seamless session."""
    seamless = await _client(
        s,
        admin.NewClient(
            "seamless",
            SEAMLESS["name"],
            SEAMLESS["username"],
            SEAMLESS["password"],
            config={
                "allow_ips": [],
                "game_url": "https://games.example/launch?token={token}",
                "payment_secret": "MKiLHWZvGPTq2258",
            },
        ),
    )
    await _player(s, seamless, "player1", "XAG", "52030")
    hrg = await _client(
        s,
        admin.NewClient(
            "hrg",
            HRG["agent"],
            HRG["client_id"],
            HRG["secret"],
            HRG["currency"],
            config={"allow_ips": [], "game_url": "https://games.example/hrg?ticket={token}"},
        ),
    )
    await _player(s, hrg, "hrgpl0001", HRG["currency"], "100", "50")
    jdb = await _client(
        s,
        admin.NewClient(
            "jdb",
            JDB["dc"],
            None,
            None,
            JDB["currency"],
            config={
                "parent": JDB["parent"],
                "aes_key": JDB["key"],
                "aes_iv": JDB["iv"],
                "allow_ips": [],
                "game_url": "https://games.example/jdb?ticket={token}",
            },
        ),
    )
    await _player(s, jdb, "testpl01", JDB["currency"], "1000")
    session, _ = await s.store.run(
        admin.open_session(seamless, "player1", 24 * 3600, s.clock.now_ms())
    )
    await _admin_user(s)
    return {
        "seamless": {**SEAMLESS, "player": "player1", "token": session.token},
        "hrg": {**HRG, "player": "hrgpl0001"},
        "jdb": {**JDB, "player": "testpl01"},
        "admin": dict(ADMIN),
    }


async def _admin_user(s: Services) -> None:
    """The demo back-office operator, unless a user of that name exists."""
    if await s.store.run(backoffice.find_user(ADMIN["user"])) is not None:
        return
    digest = await asyncio.to_thread(backoffice.hash_password, ADMIN["password"])
    await s.store.run(
        backoffice.create_user(ADMIN["user"], "operator", digest, s.clock.now_ms(), actor="demo")
    )


def instructions(summary: dict[str, Any], port: int) -> str:
    """Ready-to-paste curl examples for the demo data."""
    base = f"http://127.0.0.1:{port}"
    sm, hr, jd = summary["seamless"], summary["hrg"], summary["jdb"]
    token = sm["token"]
    return f"""gamewallet demo data is ready (SQLite, ./gamewallet.db).

Seamless wallet — client {sm["name"]}, Basic auth {sm["username"]}:{sm["password"]},
player {sm["player"]} (XAG), session token {token} (valid 24 h):

  curl -s -u {sm["username"]}:{sm["password"]} -H 'Content-Type: application/json' \\
    {base}/wallet/getBalance -d '{{"token":"{token}"}}'
  curl -s -u {sm["username"]}:{sm["password"]} -H 'Content-Type: application/json' \\
    {base}/wallet/withdraw -d '{{"token":"{token}","mmTransactionId":"1234abcd",
      "amount":{{"amount":230.00,"currencyCode":"XAG"}}}}'
  curl -s -u {sm["username"]}:{sm["password"]} -H 'Content-Type: application/json' \\
    {base}/wallet/confirmWithdrawal -d '{{"token":"{token}","mmTransactionId":"1234abcd",
      "amount":{{"amount":230.00,"currencyCode":"XAG"}}}}'

HRG transfer API — agent {hr["agent"]}, Basic auth {hr["client_id"]}:{hr["secret"]},
player {hr["player"]} (THB 100 cash + 50 free credit):

  curl -s -u {hr["client_id"]}:{hr["secret"]} -H 'Content-Type: application/json' \\
    -H "xts: $(date +%Y-%m-%dT%H:%M:%S.000%z)" {base}/api/withdraw \\
    -d '{{"agentId":"{hr["agent"]}","userId":"{hr["player"]}","allWithdraw":false,
      "transactionCode":"1660914288283","amount":"100","freeCredit":"50"}}'

JDB transfer API — dc {jd["dc"]}, parent {jd["parent"]}, AES key {jd["key"]}, IV {jd["iv"]},
player {jd["player"]} (RMB 1000):

  ts=$(date +%s%3N)
  x=$(.venv/bin/python -m gamewallet.protocols.jdb.crypto encrypt --key {jd["key"]} \\
    --iv {jd["iv"]} '{{"action":15,"ts":'$ts',"parent":"{jd["parent"]}","uid":"{jd["player"]}"}}')
  curl -s "{base}/apiRequest.do?dc={jd["dc"]}&x=$x"

Back-office — {base}/admin/ (operator {summary["admin"]["user"]} / {summary["admin"]["password"]});
admin API under {base}/admin/api (make a token: .venv/bin/gamewallet admin create-token NAME).

Simulated traffic with faults, checked against an exact model (docs/clients.md):

  .venv/bin/gamewallet simulate --protocol hrg --url {base} --client-id {hr["client_id"]} \\
    --client-secret {hr["secret"]} --agent {hr["agent"]} --players 5 --rounds 20 \\
    --faults drop,dup,timeout,reorder
  .venv/bin/gamewallet simulate --protocol jdb --url {base} --dc {jd["dc"]} --parent \\
    {jd["parent"]} --key {jd["key"]} --iv {jd["iv"]} --players 5 --rounds 20
  .venv/bin/gamewallet simulate --protocol seamless --url {base} --username \\
    {sm["username"]} --password {sm["password"]} --setup-db sqlite:///./gamewallet.db \\
    --players 5 --rounds 20

Check the ledger at any time:  .venv/bin/gamewallet audit
"""
