"""The HRG endpoints are described in the app's OpenAPI document with their own structs."""

from __future__ import annotations

from typing import Any

import httpx

from gamewallet.app import create_app
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import open_store

ENDPOINTS = {
    "create_user": ("HrgCreateUserRequest", "HrgCreateUserReply"),
    "get_balance": ("HrgGetBalanceRequest", "HrgBalanceReply"),
    "withdraw": ("HrgWithdrawRequest", "HrgWithdrawReply"),
    "deposit": ("HrgDepositRequest", "HrgDepositReply"),
    "check_transfer_operation": ("HrgCheckTransferRequest", "HrgTransferReply"),
    "get_transfer_operation_log": ("HrgTransferLogRequest", "HrgTransferLogReply"),
    "launch_lobby": ("HrgLaunchLobbyRequest", "HrgLaunchReply"),
    "launch_game": ("HrgLaunchGameRequest", "HrgLaunchReply"),
}


async def _document() -> dict[str, Any]:
    services = Services(Settings(database_url="memory://"), open_store("memory://"))
    app: Any = create_app(services)  # served without a lifespan: no store is needed
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://docs.test") as client:
        response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_endpoint_is_documented() -> None:
    document = await _document()
    schemas = document["components"]["schemas"]
    for name, (request, reply) in ENDPOINTS.items():
        operation = document["paths"][f"/api/{name}"]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{request}"}
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{reply}"}
        assert set(operation["responses"]) == {"200", "401", "413"}
        assert [p["name"] for p in operation["parameters"]] == ["xts"]
        assert request in schemas
        assert reply in schemas


async def test_structs_use_the_vendor_field_names() -> None:
    schemas = (await _document())["components"]["schemas"]
    withdraw = schemas["HrgWithdrawRequest"]
    assert set(withdraw["properties"]) == {
        "agentId",
        "userId",
        "allWithdraw",
        "transactionCode",
        "amount",
        "freeCredit",
    }
    assert set(withdraw["required"]) == {"agentId", "userId", "allWithdraw", "transactionCode"}
    assert set(schemas["HrgBalanceData"]["properties"]) == {"list", "page", "pageSize", "total"}
