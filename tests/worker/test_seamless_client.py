"""The seamless clients: every endpoint against the real wallet, every failure typed."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from tests.worker.support import GAME_PASSWORD, GAME_USER, START_MINOR, WALLET_BASE, Wallet

from gamewallet.clients.seamless import (
    REFUSALS,
    AlreadyFinalized,
    AlreadyRolledBack,
    AuthFailed,
    Balance,
    CurrencyMismatch,
    GameClient,
    IdReused,
    InsufficientFunds,
    InvalidToken,
    OutcomeUnknown,
    SeamlessClient,
    TransactionNotFound,
    UnexpectedResponse,
    WalletRefused,
    refusal,
)
from gamewallet.store import ops
from gamewallet.store.port import do


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def client_of(transport: httpx.AsyncBaseTransport, timeout_s: float = 2.0) -> SeamlessClient:
    return SeamlessClient(
        WALLET_BASE, GAME_USER, GAME_PASSWORD, timeout_s=timeout_s, transport=transport
    )


# --- against the real wallet -----------------------------------------------------------------


async def test_session_and_balance(wallet: Wallet) -> None:
    async with wallet.seamless_client() as client:
        session = await client.verify_session(wallet.token)
        balance = await client.get_balance(wallet.token)
    assert (session.player_id, session.nickname, session.currency) == ("alice", "Alice", "EUR")
    assert session.balance == balance == Balance(START_MINOR, "EUR")


async def test_withdraw_confirm_and_rollback(wallet: Wallet) -> None:
    async with wallet.seamless_client() as client:
        held = await client.withdraw(wallet.token, "w-1", 12_3450, "EUR", "bet")
        assert held.mm_transaction_id == "w-1"
        assert held.balance == Balance(START_MINOR - 12_3450, "EUR")
        confirmed = await client.confirm_withdrawal(wallet.token, "w-1", 12_3450, "EUR")
        assert confirmed.balance == held.balance
        await client.withdraw(wallet.token, "w-2", 5_0000, "EUR")
        rolled = await client.rollback_withdrawal(wallet.token, "w-2", "round cancelled")
        assert rolled.balance == Balance(START_MINOR - 12_3450, "EUR")
    player = await wallet.player()
    assert player.cash.balance.posted_minor == START_MINOR - 12_3450
    assert player.cash.balance.held_minor == 0
    assert await wallet.audit() == []


async def test_deposit_confirm_and_rollback(wallet: Wallet) -> None:
    async with wallet.seamless_client() as client:
        pending = await client.deposit(wallet.token, "d-1", 7_5000, "EUR", "win")
        assert pending.balance == Balance(START_MINOR, "EUR")  # not spendable yet
        confirmed = await client.confirm_deposit(wallet.token, "d-1", 7_5000, "EUR")
        assert confirmed.balance == Balance(START_MINOR + 7_5000, "EUR")
        await client.deposit(wallet.token, "d-2", 1, "EUR")
        rolled = await client.rollback_deposit(wallet.token, "d-2", "void")
        assert rolled.balance == Balance(START_MINOR + 7_5000, "EUR")
    assert await wallet.audit() == []


async def test_payment_initiate(wallet: Wallet) -> None:
    async with wallet.seamless_client() as client:
        paid = await client.initiate_payment(
            wallet.token, "c9c35cf409344312146fa7546a94d1a6", "10001", "wm.spin.1", "4.99", "x=1"
        )
    assert paid.cp_order_id == "c9c35cf409344312146fa7546a94d1a6"
    assert paid.balance == Balance(START_MINOR - 4_9900, "EUR")
    messages, _ = await wallet.store.run(do(ops.ListOutbox()))
    assert [m.topic for m in messages] == ["payment_callback"]
    assert messages[0].payload["productPrice"] == "4.99"


async def test_each_refusal_is_its_own_exception(wallet: Wallet) -> None:
    async with wallet.seamless_client() as client:
        with pytest.raises(InvalidToken) as invalid:
            await client.get_balance("no-such-token")
        assert invalid.value.code == 102
        with pytest.raises(InsufficientFunds):
            await client.withdraw(wallet.token, "big", START_MINOR + 1, "EUR")
        with pytest.raises(CurrencyMismatch):
            await client.withdraw(wallet.token, "usd", 1_0000, "USD")
        with pytest.raises(TransactionNotFound):
            await client.confirm_withdrawal(wallet.token, "never", 1_0000, "EUR")
        await client.withdraw(wallet.token, "w", 1_0000, "EUR")
        with pytest.raises(IdReused) as reused:
            await client.confirm_withdrawal(wallet.token, "w", 2_0000, "EUR")
        assert reused.value.code == 109
        await client.confirm_withdrawal(wallet.token, "w", 1_0000, "EUR")
        with pytest.raises(AlreadyFinalized):
            await client.rollback_withdrawal(wallet.token, "w")
        await client.rollback_withdrawal(wallet.token, "ghost", "timed out")  # tombstone
        with pytest.raises(AlreadyRolledBack):
            await client.withdraw(wallet.token, "ghost", 1_0000, "EUR")


async def test_wrong_credentials_are_auth_failed(wallet: Wallet) -> None:
    wrong = SeamlessClient(
        WALLET_BASE, GAME_USER, "nope", timeout_s=2, transport=wallet.transport()
    )
    async with wrong:
        with pytest.raises(AuthFailed):
            await wrong.get_balance(wallet.token)


# --- the table and the wire --------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_refusal_table(code: int) -> None:
    error = refusal(code, "text")
    assert type(error) is REFUSALS[code]
    assert (error.code, error.description) == (code, "text")
    assert isinstance(error, WalletRefused)


def test_unknown_codes_keep_their_number() -> None:
    error = refusal(999, "new")
    assert type(error) is WalletRefused
    assert error.code == 999
    assert set(REFUSALS) == set(range(100, 112))


async def test_amounts_travel_as_exact_json_numbers() -> None:
    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        assert request.url.path == "/wallet/withdraw"
        assert request.headers["authorization"].startswith("Basic ")
        return httpx.Response(
            200,
            content=b'{"mmTransactionId":"x","balance":{"amount":51569.5,"currencyCode":"XAG"}}',
        )

    async with client_of(mock(answer)) as client:
        result = await client.withdraw("t", "x", 230_0100, "XAG")
    assert result.balance == Balance(51569_5000, "XAG")
    assert b'"amount":230.01,' in seen[0]
    assert json.loads(seen[0])["amount"]["currencyCode"] == "XAG"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"oops", "HTTP 500"),
        (403, b"", "HTTP 403"),
        (200, b"<html>", "not a JSON object"),
        (200, b'{"balance": 1}', "unexpected answer"),
        (200, b'{"errorCode": "101", "errorDescription": "x"}', "errorCode is not a number"),
        (200, b'{"balance":{"amount":1e3,"currencyCode":"EUR"}}', "not an exact amount"),
        (200, b'{"balance":{"amount":' + b"1" * 70_000 + b',"currencyCode":"E"}}', "larger"),
    ],
)
async def test_answers_that_are_not_the_protocol(status: int, body: bytes, reason: str) -> None:
    async with client_of(mock(lambda _: httpx.Response(status, content=body))) as client:
        with pytest.raises(UnexpectedResponse, match=reason) as caught:
            await client.get_balance("t")
    assert isinstance(caught.value, OutcomeUnknown)  # the call may have been applied


async def test_refusal_body_is_raised_typed() -> None:
    body = b'{"errorCode": 106, "errorDescription": "Insufficient funds"}'
    async with client_of(mock(lambda _: httpx.Response(200, content=body))) as client:
        with pytest.raises(InsufficientFunds, match="106: Insufficient funds"):
            await client.withdraw("t", "x", 1, "EUR")


async def test_transport_errors_are_outcome_unknown() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with client_of(mock(fail)) as client:
        with pytest.raises(OutcomeUnknown, match="timed out"):
            await client.confirm_deposit("t", "x", 1, "EUR")


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_real_timeout_is_outcome_unknown(silent_port: int) -> None:
    client = SeamlessClient(f"http://127.0.0.1:{silent_port}", "u", "p", timeout_s=0.3)
    async with client:
        with pytest.raises(OutcomeUnknown, match="timed out"):
            await client.withdraw("t", "x", 1, "EUR")


async def test_a_refused_connection_is_outcome_unknown() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with SeamlessClient(f"http://127.0.0.1:{port}", "u", "p", timeout_s=2) as client:
        with pytest.raises(OutcomeUnknown, match="transport failed"):
            await client.rollback_withdrawal("t", "x")


# --- the wallet calling the game ---------------------------------------------------------------


async def test_game_client_queries() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["mmTransactionId"]
        status = {"a": "CONFIRMED", "b": "ROLLED_BACK", "c": "NOT_FOUND", "d": "MAYBE"}[asked]
        other = "zzz" if request.url.path.endswith("queryDeposit") else asked
        return httpx.Response(200, json={"mmTransactionId": other, "status": status})

    async with GameClient(
        "http://127.0.0.1:10/game", "u", "p", timeout_s=2, transport=mock(answer)
    ) as game:
        assert await game.query_withdrawal("a") == "CONFIRMED"
        assert await game.query_withdrawal("b") == "ROLLED_BACK"
        assert await game.query_withdrawal("c") == "NOT_FOUND"
        with pytest.raises(UnexpectedResponse, match="unknown status"):
            await game.query_withdrawal("d")
        with pytest.raises(UnexpectedResponse, match="another id"):
            await game.query_deposit("a")


async def test_game_client_auth_and_path() -> None:
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(401)

    async with GameClient(
        "http://127.0.0.1:10/game", "u", "p", timeout_s=2, transport=mock(answer)
    ) as game:
        with pytest.raises(AuthFailed):
            await game.query_deposit("x")
    assert paths == ["/game/integration/queryDeposit"]


@pytest.mark.parametrize(
    ("status", "body", "acknowledged"),
    [
        (200, b'{"code": 0}', True),
        (200, b'{"code": 0, "msg": "ok"}', True),
        (200, b'{"code": "0"}', False),
        (200, b'{"code": false}', False),
        (200, b'{"code": 1}', False),
        (200, b"[0]", False),
        (200, b"ok", False),
        (500, b'{"code": 0}', False),
    ],
)
async def test_payment_callback_acknowledgement(
    status: int, body: bytes, acknowledged: bool
) -> None:
    forms: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        forms.append(request.content)
        return httpx.Response(status, content=body)

    async with GameClient(None, None, None, timeout_s=2, transport=mock(answer)) as game:
        send = game.send_payment_callback("http://127.0.0.1:10/cb", {"uid": "a b", "ts": "1"})
        if acknowledged:
            await send
        else:
            with pytest.raises(UnexpectedResponse):
                await send
    assert forms == [b"uid=a+b&ts=1"]


async def test_any_2xx_with_the_success_body_is_success() -> None:
    body = b'{"mmTransactionId":"x","balance":{"amount":10,"currencyCode":"EUR"}}'
    async with client_of(mock(lambda _: httpx.Response(202, content=body))) as client:
        result = await client.confirm_withdrawal("t", "x", 1, "EUR")
    assert result.balance == Balance(10_0000, "EUR")
