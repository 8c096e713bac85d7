"""A real worker process killed with SIGKILL between claim and finish, then restarted.

The wallet is a real server process; the worker is ``gamewallet worker`` in a process of its
own, delivering the game's confirm through a proxy that lets the confirm reach the wallet (so it
is applied) and holds the answer back while the test kills the worker. The restarted worker
re-sends after the dead one's lease runs out; the wallet replays it, so the ledger moves once.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.worker.processes import (
    asgi_server,
    environment,
    eventually,
    gamewallet,
    log_of,
    spawn,
    stop,
    uvicorn_process,
)
from tests.worker.support import GAME_PASSWORD, GAME_USER, START_MINOR, count_postings, make_wallet

from gamewallet.clients.seamless import SeamlessClient
from gamewallet.clients.settlement import GameWallet
from gamewallet.core.states import OpState
from gamewallet.service.common import FakeClock, SystemClock
from gamewallet.store import open_store, ops
from gamewallet.store.port import Store, do

LEASE_S = 4
HTTP_TIMEOUT_S = 2


class HoldingProxy:
    """Forwards every request to ``target``; the first ``hold_path`` is forwarded (and thus
    applied) but its answer is held until :attr:`release` is set."""

    def __init__(self, target: str, hold_path: str) -> None:
        self.http = httpx.AsyncClient(base_url=target, timeout=10)
        self.hold_path = hold_path
        self.seen: list[str] = []
        self.applied = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]
                   if k.lower() not in (b"host", b"content-length")]  # fmt: skip
        path: str = scope["path"]
        self.seen.append(path)
        answer = await self.http.request(scope["method"], path, content=body, headers=headers)
        if path == self.hold_path and not self.applied.is_set():
            self.applied.set()
            await self.release.wait()
        await send({"type": "http.response.start", "status": answer.status_code,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer.content})


async def settlement_state(store: Store, ext_id: str) -> tuple[str | None, str | None]:
    record = await store.run(do(ops.GetSettlement(wallet="default", ext_id=ext_id)))
    assert record is not None
    return record.decision, record.outcome


@pytest.mark.slow
async def test_sigkill_between_claim_and_finish(
    wallet_db: str, game_db: str, tmp_path: Path
) -> None:
    clock = FakeClock(SystemClock().now_ms())
    setup = await make_wallet(wallet_db, clock)
    token = setup.token
    await setup.services.close()
    wallet_env = environment(wallet_db, worker_in_process=0)
    with uvicorn_process("gamewallet.app:app_factory", wallet_env, tmp_path / "wallet.log") as url:
        # The game plays a round: withdraw (applied at once), then its decision to confirm.
        game_store = open_store(game_db)
        await game_store.start()
        async with SeamlessClient(url, GAME_USER, GAME_PASSWORD, timeout_s=5) as client:
            sdk = GameWallet(game_store, client, SystemClock(), decide_within_s=600)
            await sdk.withdraw(token, "k1", 25_0000, "EUR")
            await sdk.confirm("k1")
        proxy = HoldingProxy(url, "/wallet/confirmWithdrawal")
        async with asgi_server(proxy) as proxy_url:
            worker_env = environment(
                game_db,
                game_wallet_url=proxy_url,
                game_wallet_username=GAME_USER,
                game_wallet_password=GAME_PASSWORD,
                http_timeout_s=HTTP_TIMEOUT_S,
                worker_lease_s=LEASE_S,
                worker_poll_s=0.2,
            )
            log = tmp_path / "worker.log"
            first = spawn(gamewallet("worker"), worker_env, log)
            try:
                await asyncio.wait_for(proxy.applied.wait(), 30)
            except TimeoutError:
                stop(first)
                raise AssertionError(
                    f"the confirm never reached the wallet:\n{log_of(log)}"
                ) from None
            # Claimed, sent and applied; the answer is on its way: kill -9 now.
            assert stop(first, signal.SIGKILL) == -signal.SIGKILL
            proxy.release.set()
            page, _ = await game_store.run(do(ops.ListOutbox(state="pending")))
            (leased,) = [m for m in page if m.payload["purpose"] == "decision"]
            assert leased.lease_owner is not None
            assert leased.attempts == 1
            assert await settlement_state(game_store, "k1") == ("confirm", None)

            second = spawn(gamewallet("worker"), worker_env, log)
            try:
                await eventually(
                    lambda: _settled(game_store), timeout_s=30, what="the re-send", log=log
                )
            finally:
                assert stop(second) == 0, log_of(log)  # SIGTERM: a clean exit
        await proxy.http.aclose()
        done, _ = await game_store.run(do(ops.ListOutbox(state="done")))
        assert leased.id in [m.id for m in done]
        await game_store.close()
        assert proxy.seen.count("/wallet/confirmWithdrawal") == 2
    # The wallet: confirmed once, one pair of postings, the money taken once.
    wallet_store = open_store(wallet_db)
    await wallet_store.start()
    try:
        operation = await wallet_store.run(
            do(ops.GetOperation(client_id=setup.client.id, ns="wire", ext_id="k1"))
        )
        assert operation is not None
        assert operation.state is OpState.CONFIRMED
        assert await count_postings(wallet_store, operation.id) == 2
        player = await wallet_store.run(
            do(ops.GetPlayer(client_id=setup.client.id, external_id="alice"))
        )
        assert player is not None
        assert player.cash.balance.posted_minor == START_MINOR - 25_0000
        assert player.cash.balance.held_minor == 0
        assert await wallet_store.run(do(ops.Audit())) == []
    finally:
        await wallet_store.close()


async def _settled(store: Store) -> bool:
    return (await settlement_state(store, "k1"))[1] == "confirmed"
