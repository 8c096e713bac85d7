"""Calls of each protocol for the security tests: one function per protocol that sends a
request the way a correct caller would, with any part of it replaced by the test.

Every function returns the ``httpx.Response``; the tests look at status, headers and body.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
from tests.security.world import HrgSide, JdbSide, SeamlessSide, xts

from gamewallet.service.common import Clock

JDB_PATH = "/apiRequest.do"


async def seamless(
    http: httpx.AsyncClient,
    side: SeamlessSide,
    endpoint: str,
    body: dict[str, Any] | None = None,
    *,
    authorization: str | None = "default",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``POST /wallet/<endpoint>`` as ``side`` (``authorization=None`` sends none)."""
    sent = dict(headers or {})
    auth = side.auth() if authorization == "default" else authorization
    if auth is not None:
        sent["Authorization"] = auth
    payload = body if body is not None else {"token": side.token}
    return await http.post(f"/wallet/{endpoint}", json=payload, headers=sent)


def seamless_withdraw(
    side: SeamlessSide, amount: str = "1.5", token: str | None = None
) -> dict[str, Any]:
    """A withdraw body of ``side``'s player (a fresh transaction id)."""
    return {
        "token": token or side.token,
        "mmTransactionId": "t" + secrets.token_hex(8),
        "amount": {"amount": json.loads(amount), "currencyCode": "THB"},
    }


async def hrg(
    http: httpx.AsyncClient,
    side: HrgSide,
    name: str,
    body: dict[str, Any],
    clock: Clock,
    *,
    authorization: str | None = "default",
    xts_value: str | None = "default",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``POST /api/<name>`` as agent ``side`` with a fresh ``xts`` (unless replaced)."""
    sent = dict(headers or {})
    auth = side.auth() if authorization == "default" else authorization
    if auth is not None:
        sent["Authorization"] = auth
    stamp = xts(clock.now_ms()) if xts_value == "default" else xts_value
    if stamp is not None:
        sent["xts"] = stamp
    return await http.post(f"/api/{name}", json=body, headers=sent)


def hrg_balance(side: HrgSide, user: str | None = None) -> dict[str, Any]:
    """A get_balance body naming one user (``side``'s by default)."""
    return {"agentId": side.agent, "allUser": False, "userIds": [user or side.user]}


async def jdb(
    http: httpx.AsyncClient,
    side: JdbSide,
    payload: dict[str, Any],
    clock: Clock,
    *,
    dc: str | None = None,
    x: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``POST /apiRequest.do`` (form) for domain ``side``: ``payload`` gets ``ts`` and
    ``parent`` unless it has them, and is encrypted with the domain's key unless ``x`` is
    given."""
    full = {"ts": clock.now_ms(), "parent": side.parent, **payload}
    data = {"dc": dc or side.dc, "x": x if x is not None else side.x(full)}
    return await http.post(JDB_PATH, data=data, headers=headers or {})


async def jdb_status(
    http: httpx.AsyncClient, side: JdbSide, payload: dict[str, Any], clock: Clock, **kw: Any
) -> str:
    """The ``status`` of a JDB call."""
    response = await jdb(http, side, payload, clock, **kw)
    status: str = response.json()["status"]
    return status
