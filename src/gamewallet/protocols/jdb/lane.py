"""The JDB API's fast-lane handler (see :mod:`gamewallet.protocols.lane`): ``apiRequest.do``.

A request is taken when it is a ``POST`` with a JSON ``Content-Type``
(``protocols.lane.is_json``) and no query string, its body carries ``dc``/``x``/``parent`` as
strings, and every check the route makes before the rate limit passes exactly as the route
makes it (known and usable domain, address, payload decrypts and parses, fresh ``ts``, a
served action, the domain's ``parent``). Any doubt up to there declines, and the route answers
(its own status code, logged as it logs it).

Then the domain's rate limiter counts the call (9019 when over, answered here, as the route
would answer a request that passed the same checks), and from that point the handler answers
itself through the route's own action table, :func:`routes.reply_of` and
:func:`routes.error_reply`: the same bytes, result labels and log lines.
"""

from __future__ import annotations

from typing import Any

from gamewallet import observability
from gamewallet.protocols.jdb import schemas
from gamewallet.protocols.jdb.auth import DomainAuth
from gamewallet.protocols.jdb.errors import JdbError
from gamewallet.protocols.jdb.routes import (
    ACTIONS,
    PATH,
    ActionContext,
    JdbApi,
    Served,
    error_reply,
    reply_of,
    request_id_for,
)
from gamewallet.protocols.lane import LaneHandler, LaneRequest, Reply, is_json

__all__ = ["lane_routes"]

_TRANSPORT = ("dc", "x", "parent")


def _transport(body: bytes) -> dict[str, str | None] | None:
    """``dc``/``x``/``parent`` of a JSON body, or None where the route would refuse it."""
    try:
        values = schemas.decode_body(body)
    except JdbError:
        return None
    fields: dict[str, str | None] = dict.fromkeys(_TRANSPORT)
    for key in _TRANSPORT:
        if key in values:
            value = values[key]
            if value is not None and not isinstance(value, str):
                return None
            fields[key] = value
    return fields


def _handler(api: JdbApi) -> LaneHandler:
    auth = api.auth

    async def handle(request: LaneRequest) -> Reply | None:
        headers = request.headers
        if not is_json(headers.get("content-type")):
            return None
        body = await request.body()
        fields = None if body is None else _transport(body)
        if fields is None:
            return None
        now_ms = api.services.clock.now_ms()
        try:
            domain = await auth.find(fields["dc"])
            if domain is None or not auth.address_allowed(
                domain, request.peer, headers.get("x-forwarded-for")
            ):
                return None
            payload: dict[str, Any] = auth.open(domain, fields["x"])
            auth.check_time(payload, now_ms)
            action = schemas.action_of(payload)
            handler = ACTIONS.get(action)
            if handler is None:
                return None
            DomainAuth.check_parent(domain, payload, fields["parent"])
        except Exception:  # noqa: BLE001 - the route answers (and logs) every refusal itself
            return None
        rid = request_id_for(headers.get("x-request-id"))
        # The point of no return: the call is counted, so this handler answers it.
        try:
            auth.check_rate(domain, now_ms)
        except JdbError as exc:  # the route's action is not known yet when it refuses 9019
            return error_reply(exc, Served(rid, None, fields["dc"]))
        observability.set_endpoint(f"action{action}")
        try:
            reply = await handler(
                ActionContext(api.services, api.inflight, domain, payload, now_ms)
            )
        except Exception as exc:  # noqa: BLE001
            return error_reply(exc, Served(rid, action, fields["dc"]))
        return reply_of(rid, reply)

    return handle


def lane_routes(api: JdbApi) -> dict[str, LaneHandler]:
    """The JDB path the lane serves, with its handler."""
    return {PATH: _handler(api)}
