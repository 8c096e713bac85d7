"""The seamless endpoints in the app's OpenAPI document, with their wire schemas."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Wallet

ENDPOINTS = {
    "verifySession": ("SeamlessTokenRequest", "SeamlessSessionResponse"),
    "getBalance": ("SeamlessTokenRequest", "SeamlessBalanceResponse"),
    "withdraw": ("SeamlessOpenRequest", "SeamlessTransactionResponse"),
    "confirmWithdrawal": ("SeamlessConfirmRequest", "SeamlessTransactionResponse"),
    "rollbackWithdrawal": ("SeamlessRollbackRequest", "SeamlessTransactionResponse"),
    "deposit": ("SeamlessOpenRequest", "SeamlessTransactionResponse"),
    "confirmDeposit": ("SeamlessConfirmRequest", "SeamlessTransactionResponse"),
    "rollbackDeposit": ("SeamlessRollbackRequest", "SeamlessTransactionResponse"),
    "payment/initiate": ("SeamlessPaymentRequest", "SeamlessPaymentResponse"),
}


def _ref(content: dict[str, Any]) -> str:
    ref: str = content["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


async def test_openapi_describes_the_wire(wallet: Wallet) -> None:
    """Each endpoint's request and response are the wire structs, named as on the wire."""
    response = await wallet.http.get("/schema/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content)
    schemas = document["components"]["schemas"]
    for endpoint, (request, reply) in ENDPOINTS.items():
        operation = document["paths"][f"/wallet/{endpoint}"]["post"]
        assert _ref(operation["requestBody"]["content"]) == request
        assert _ref(operation["responses"]["200"]["content"]) == reply
        assert set(operation["responses"]) == {"200", "401", "413"}
    amount = schemas["SeamlessAmount"]
    assert amount["properties"]["amount"]["type"] == "number"
    assert amount["required"] == ["amount", "currencyCode"]
    assert set(schemas["SeamlessOpenRequest"]["properties"]) == {
        "token",
        "mmTransactionId",
        "amount",
        "txDescription",
    }
    assert set(schemas["SeamlessSessionResponse"]["properties"]) == {
        "playerId",
        "nickname",
        "currencyCode",
        "balance",
    }
    assert set(schemas["SeamlessErrorBody"]["properties"]) == {"errorCode", "errorDescription"}
