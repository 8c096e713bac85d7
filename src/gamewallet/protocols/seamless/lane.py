"""The seamless API's fast-lane handlers (see :mod:`gamewallet.protocols.lane`).

For withdraw, deposit, their confirms and rollbacks, getBalance and verifySession, a request
is taken when its ``Content-Type`` is JSON (``protocols.lane.is_json``: alone or with a UTF-8
charset), its Basic credentials and address pass exactly as the router's ``before`` hook
checks them, and its body decodes with the same strict schema into a valid wallet call. Any
doubt up to there declines, and the route answers (with its own 401, 101 or silence). Then
the shared rate limiter counts the call, and from that point the handler answers itself: the
use case's bytes, or :func:`routes.error_reply`'s envelope for whatever it raised, exactly as
the route's exception handler would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gamewallet.protocols.lane import LaneHandler, LaneRequest, Reply, is_json
from gamewallet.protocols.seamless import schemas
from gamewallet.protocols.seamless.routes import (
    SeamlessApi,
    confirming,
    error_reply,
    opening,
    rate_limited,
    rolling_back,
)
from gamewallet.service import seamless
from gamewallet.store.records import ClientRecord

__all__ = ["lane_routes"]

PREFIX = "/wallet/"
#: The use case of a decoded request, ready to run once the call is counted.
Prepared = Callable[[], Awaitable[bytes]]
Prepare = Callable[[SeamlessApi, ClientRecord, Any], Prepared]


def _wallet(
    endpoint: str,
    kind: str,
    build: Callable[[ClientRecord, str, str, Any], seamless.WalletCall],
) -> Prepare:
    def prepare(api: SeamlessApi, client: ClientRecord, data: Any) -> Prepared:
        call = build(client, endpoint, kind, data)  # InvalidRequest: declined, the route says 101
        return lambda: api.wallet(call)

    return prepare


def _balance(api: SeamlessApi, client: ClientRecord, data: Any) -> Prepared:
    return lambda: api.balance(client, data.token)


def _session(api: SeamlessApi, client: ClientRecord, data: Any) -> Prepared:
    return lambda: api.session(client, data.token)


W, D = seamless.KIND_WITHDRAW, seamless.KIND_DEPOSIT
#: endpoint -> (request struct, how to prepare its use case)
_ROUTES: dict[str, tuple[type[msgspec.Struct], Prepare]] = {
    "withdraw": (schemas.SeamlessOpenRequest, _wallet("withdraw", W, opening)),
    "confirmWithdrawal": (
        schemas.SeamlessConfirmRequest,
        _wallet("confirmWithdrawal", W, confirming),
    ),
    "rollbackWithdrawal": (
        schemas.SeamlessRollbackRequest,
        _wallet("rollbackWithdrawal", W, rolling_back),
    ),
    "deposit": (schemas.SeamlessOpenRequest, _wallet("deposit", D, opening)),
    "confirmDeposit": (schemas.SeamlessConfirmRequest, _wallet("confirmDeposit", D, confirming)),
    "rollbackDeposit": (
        schemas.SeamlessRollbackRequest,
        _wallet("rollbackDeposit", D, rolling_back),
    ),
    "getBalance": (schemas.SeamlessTokenRequest, _balance),
    "verifySession": (schemas.SeamlessTokenRequest, _session),
}


def _handler(api: SeamlessApi, struct: type[msgspec.Struct], prepare: Prepare) -> LaneHandler:
    async def handle(request: LaneRequest) -> Reply | None:
        headers = request.headers
        if not is_json(headers.get("content-type")):
            return None
        try:
            client = await api.client(
                headers.get("authorization"), request.peer, headers.get("x-forwarded-for")
            )
        except Exception:  # noqa: BLE001 - 401, allowlist, directory: the route's to answer
            return None
        body = await request.body()
        if body is None:
            return None
        try:
            run = prepare(api, client, schemas.decode(body, struct))
        except Exception:  # noqa: BLE001 - the route answers 101 (or whatever it answers) itself
            return None
        # The point of no return: the call is counted, so this handler answers it.
        if not api.limiter.allow(client):
            return rate_limited()
        try:
            return Reply(200, await run())
        except Exception as exc:  # noqa: BLE001
            return error_reply(exc, request.path)

    return handle


def lane_routes(api: SeamlessApi) -> dict[str, LaneHandler]:
    """The seamless paths the lane serves, with their handlers."""
    return {
        PREFIX + endpoint: _handler(api, struct, prepare)
        for endpoint, (struct, prepare) in _ROUTES.items()
    }
