"""The game side's HTTP endpoints: the Integration API's auth and answers, the callback checks."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.worker.support import (
    GAME_BASE,
    PAYMENT_SECRET,
    WALLET_PASSWORD_AT_GAME,
    WALLET_USER_AT_GAME,
    asgi,
)

from gamewallet.clients.gameside import create_gameside_app, recorded_payment
from gamewallet.clients.settlement import DEFAULT_WALLET, confirm, open_call
from gamewallet.protocols.seamless.sign import payment_sign
from gamewallet.service.common import FakeClock
from gamewallet.store.port import Store


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


GOOD = basic(WALLET_USER_AT_GAME, WALLET_PASSWORD_AT_GAME)


@pytest.fixture
async def http(game_store: Store, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_gameside_app(
        game_store,
        clock,
        integration_username=WALLET_USER_AT_GAME,
        integration_password=WALLET_PASSWORD_AT_GAME,
        payment_secret=PAYMENT_SECRET,
        manage_store=False,
    )
    async with httpx.AsyncClient(base_url=GAME_BASE, transport=asgi(app)) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(WALLET_USER_AT_GAME, "wrong"),
        basic("someone", WALLET_PASSWORD_AT_GAME),
        {"Authorization": "Bearer x"},
        {"Authorization": "Basic !!!"},
    ],
)
async def test_the_integration_api_needs_the_wallets_credentials(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answer = await http.post(
        "/integration/queryWithdrawal", json={"mmTransactionId": "x"}, headers=headers
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic")


async def test_query_answers(http: httpx.AsyncClient, game_store: Store, clock: FakeClock) -> None:
    now = clock.now_ms()
    await game_store.run(open_call(DEFAULT_WALLET, "withdraw", "w", "t", 5, "EUR", now, now))
    await game_store.run(confirm(DEFAULT_WALLET, "w", now))
    answers = {}
    for path, ext_id in (("queryWithdrawal", "w"), ("queryDeposit", "w"), ("queryWithdrawal", "z")):
        answer = await http.post(
            f"/integration/{path}", json={"mmTransactionId": ext_id}, headers=GOOD
        )
        assert answer.status_code == 200
        body = answer.json()
        assert body["mmTransactionId"] == ext_id
        answers[(path, ext_id)] = body["status"]
    assert answers == {
        ("queryWithdrawal", "w"): "CONFIRMED",
        ("queryDeposit", "w"): "NOT_FOUND",
        ("queryWithdrawal", "z"): "NOT_FOUND",
    }


@pytest.mark.parametrize("body", [b"", b"{}", b'{"mmTransactionId": ""}', b"[1]", b"x" * 100])
async def test_a_bad_query_is_400(http: httpx.AsyncClient, body: bytes) -> None:
    answer = await http.post("/integration/queryDeposit", content=body, headers=GOOD)
    assert answer.status_code == 400


def signed(**changes: str) -> dict[str, str]:
    fields = {
        "uid": "test",
        "serverId": "10001",
        "cpOrderId": "c9c35cf409344312146fa7546a94d1a6",
        "productId": "wm.spin.1",
        "productPrice": "4.99",
        "extParams": "",
        "ts": "1682319749000",
    }
    fields["sign"] = payment_sign(
        fields["cpOrderId"], fields["serverId"], fields["uid"], fields["productPrice"],
        fields["productId"], fields["ts"], PAYMENT_SECRET,
    )  # fmt: skip
    fields.update(changes)
    return fields


async def test_the_vendor_example_callback_is_acknowledged_once(
    http: httpx.AsyncClient, game_store: Store
) -> None:
    fields = signed()
    assert fields["sign"] == "39E27178DE3254875D8470AB7A13D912"  # the vendor's example
    for _ in range(2):  # a re-sent callback is acknowledged again and changes nothing
        answer = await http.post("/payment/callback", data=fields)
        assert (answer.status_code, answer.json()) == (200, {"code": 0})
    assert await recorded_payment(game_store, fields["cpOrderId"]) == fields


@pytest.mark.parametrize(
    "form",
    [
        signed(productPrice="5.99"),  # tampered after signing
        signed(sign="0" * 32),
        {k: v for k, v in signed().items() if k != "sign"},
    ],
)
async def test_an_unverified_callback_is_refused(
    http: httpx.AsyncClient, game_store: Store, form: dict[str, str]
) -> None:
    answer = await http.post("/payment/callback", data=form)
    assert answer.status_code == 400
    assert answer.json()["code"] == 1
    assert await recorded_payment(game_store, "c9c35cf409344312146fa7546a94d1a6") is None


async def test_a_malformed_form_is_refused(http: httpx.AsyncClient) -> None:
    duplicated = "uid=a&uid=b&" + "&".join(f"{k}={v}" for k, v in signed().items() if k != "uid")
    for body in (duplicated, "%zz", "&".join(f"f{n}=1" for n in range(40))):
        answer = await http.post(
            "/payment/callback",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 400, body
