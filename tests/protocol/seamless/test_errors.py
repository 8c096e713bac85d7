"""The error table and the failures no golden case can show: unexpected errors are 100.

Every core error code maps to a documented seamless code; anything unexpected (the database
down, a broken invariant, a missing configuration) is answered HTTP 200 with 100 and a request
id, logged, never with a stack trace, and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gamewallet.core.errors import ErrorCode
from gamewallet.core.money import UNIT
from gamewallet.protocols.seamless.errors import ERROR_CODE, ERROR_TEXT, error_body
from gamewallet.service.context import Services
from gamewallet.store.port import StoreError

from .conftest import Wallet, World


def test_every_core_code_is_mapped() -> None:
    """ERROR_CODE covers the whole enum, onto documented codes only."""
    assert set(ERROR_CODE) == set(ErrorCode)
    assert set(ERROR_CODE.values()) <= set(ERROR_TEXT)


def test_the_table_is_in_precedence_order() -> None:
    """ERROR_TEXT lists the codes as spec 1.5 does (first listed wins), 100 last."""
    assert list(ERROR_TEXT) == [101, 102, 103, 104, 105, 109, 110, 107, 108, 111, 106, 100]


def test_error_body_shape() -> None:
    """The vendor's Error Response Body, detail appended to the default text."""
    assert error_body(106) == b'{"errorCode":106,"errorDescription":"Insufficient funds"}'
    assert error_body(101, "why") == b'{"errorCode":101,"errorDescription":"Invalid request: why"}'


def _failing(exc: BaseException) -> Any:
    async def run(use_case: Any) -> Any:
        use_case.close()
        raise exc

    return run


@pytest.mark.parametrize(
    "failure",
    [
        StoreError("connection lost"),
        AssertionError("ledger invariant violated"),
        RuntimeError("bug"),
    ],
    ids=["store", "invariant", "bug"],
)
async def test_unexpected_failures_are_100_with_a_request_id(
    failure: BaseException,
    wallet: Wallet,
    world: World,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """HTTP 200, errorCode 100, a request id, the failure logged, no trace on the wire."""
    body = {
        "token": world.tokens["$token"],
        "mmTransactionId": "w1",
        "amount": {"amount": 1, "currencyCode": "XAG"},
    }
    with monkeypatch.context() as patch:
        patch.setattr(services.store, "run", _failing(failure))
        status, raw = await wallet.post("withdraw", body)
    assert status == 200
    answer = json.loads(raw)
    assert answer["errorCode"] == 100
    description = answer["errorDescription"]
    assert description.startswith("Other error: request id ")
    request_id = description.rsplit(" ", 1)[1]
    assert "Traceback" not in raw.decode()
    assert str(failure) not in raw.decode()
    logged = capsys.readouterr()
    assert request_id in logged.out + logged.err
    assert await world.available("p1") == 52030 * UNIT


async def test_a_given_request_id_is_used(
    wallet: Wallet, world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An X-Request-Id set by a proxy is the id reported."""
    monkeypatch.setattr(services.store, "run", _failing(StoreError("down")))
    status, raw = await wallet.post(
        "getBalance", {"token": world.tokens["$token"]}, headers={"X-Request-Id": "abc-123"}
    )
    assert (status, json.loads(raw)["errorDescription"]) == (200, "Other error: request id abc-123")


async def test_payment_without_a_secret_is_100_and_moves_nothing(
    wallet: Wallet, world: World
) -> None:
    """A client with no payment_secret cannot sign callbacks: 100, nothing debited."""
    body = {
        "token": world.tokens["$token_o1"],
        "cpOrderId": "o1",
        "serverId": "1",
        "productId": "p",
        "productPrice": 1,
    }
    status, raw = await wallet.post("payment/initiate", body, client="other")
    assert status == 200
    assert json.loads(raw)["errorCode"] == 100
    assert await world.available("o1") == 10 * UNIT


async def test_other_methods_are_not_calls(wallet: Wallet, world: World) -> None:
    """A GET on an endpoint is no protocol call: Litestar's plain 405, no trace."""
    response = await wallet.http.get(
        "/wallet/getBalance", headers={"Authorization": "Basic Z2FtZXVzZXI6Z2FtZS1zZWNyZXQ="}
    )
    assert response.status_code == 405
    assert b"Traceback" not in response.content
