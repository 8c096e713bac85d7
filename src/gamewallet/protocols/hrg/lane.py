"""The HRG API's fast-lane handlers (see :mod:`gamewallet.protocols.lane`): deposit, withdraw.

A request is taken when its ``Content-Type`` is JSON (``protocols.lane.is_json``), its agent
passes the router's ``before`` checks exactly (Basic credentials, allowlist, ``xts``), and its
body decodes with the same strict schema into a valid command for that agent. Any doubt up to
there declines, and the route answers with its own envelope. Then the shared rate limiter counts the
call, and from that point the handler answers itself: the use case's envelope, or
:func:`routes.error_reply`'s for whatever it raised, as the route's exception handler would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gamewallet.protocols.hrg import schemas
from gamewallet.protocols.hrg.routes import (
    HrgApi,
    deposit_command,
    error_reply,
    rate_limited,
    withdraw_command,
)
from gamewallet.protocols.lane import LaneHandler, LaneRequest, Reply, is_json
from gamewallet.store.records import ClientRecord

__all__ = ["lane_routes"]

Prepared = Callable[[], Awaitable[bytes]]
Prepare = Callable[[HrgApi, ClientRecord, Any], Prepared]


def _withdraw(api: HrgApi, client: ClientRecord, data: Any) -> Prepared:
    command = withdraw_command(client, data)
    return lambda: api.withdraw(client, command)


def _deposit(api: HrgApi, client: ClientRecord, data: Any) -> Prepared:
    command = deposit_command(client, data)
    return lambda: api.deposit(client, command)


_ROUTES: dict[str, tuple[type[msgspec.Struct], Prepare]] = {
    "/api/withdraw": (schemas.HrgWithdrawRequest, _withdraw),
    "/api/deposit": (schemas.HrgDepositRequest, _deposit),
}


def _handler(api: HrgApi, struct: type[msgspec.Struct], prepare: Prepare) -> LaneHandler:
    async def handle(request: LaneRequest) -> Reply | None:
        headers = request.headers
        if not is_json(headers.get("content-type")):
            return None
        try:
            client = await api.client(
                headers.get("authorization"),
                request.peer,
                headers.get("x-forwarded-for"),
                headers.get("xts"),
            )
        except Exception:  # noqa: BLE001 - 1001, 1002, the directory failing: the route's to answer
            return None
        body = await request.body()
        if body is None:
            return None
        try:
            run = prepare(api, client, schemas.decode(body, struct))
        except Exception:  # noqa: BLE001 - 2001, 2002, ...: the route's to answer
            return None
        # The point of no return: the call is counted, so this handler answers it.
        if not api.limiter.allow(client):
            return rate_limited()
        try:
            return Reply(200, await run())
        except Exception as exc:  # noqa: BLE001
            return error_reply(exc, request.path, headers.get("x-request-id"))

    return handle


def lane_routes(api: HrgApi) -> dict[str, LaneHandler]:
    """The HRG paths the lane serves, with their handlers."""
    return {path: _handler(api, struct, prepare) for path, (struct, prepare) in _ROUTES.items()}
