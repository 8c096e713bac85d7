"""HTTP route of the JDB transfer API: `GET|POST /apiRequest.do` with `dc`, `x` and `parent`.

Thin on purpose: read the transport fields (query string, then a form or JSON body over it),
authenticate the domain and open the payload (auth.py), read the action's fields (schemas.py),
run one use case (service/jdb.py), render plain JSON. Every outcome is HTTP 200 with a JDB
`status`, except a body over the size limit (HTTP 413, status 8000) and other framework-level
refusals (their HTTP status, status 8000). Refusals never change anything; anything unexpected
is 9999 "Failed", logged with the request id that every response carries in `X-Request-ID`.

:class:`JdbApi` holds what the route and the fast lane (:mod:`.lane`) share (the domain cache,
its rate limiter, the in-flight serialNo registry); :func:`reply_of` and :func:`error_reply`
render for both, so the two answer with the same bytes and log the same lines.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

import msgspec
import structlog
from litestar import Request, Response, Router, route
from litestar.datastructures import UploadFile
from litestar.enums import HttpMethod, RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import QueryParameter

from gamewallet import observability
from gamewallet.core.errors import WalletError
from gamewallet.protocols import lane
from gamewallet.protocols.jdb import schemas
from gamewallet.protocols.jdb.auth import Domain, DomainAuth
from gamewallet.protocols.jdb.errors import FAILED, STATUS_TEXT, JdbError, status_of
from gamewallet.protocols.jdb.schemas import (
    BalancesResponse,
    ErrorResponse,
    HistoryRecord,
    HistoryResponse,
    InGame,
    InGameResponse,
    LaunchResponse,
    PlayerInfo,
    PlayerInfoResponse,
    StatusResponse,
    TransferRecord,
    TransferRecordResponse,
    TransferResponse,
    UidBalance,
    money,
)
from gamewallet.protocols.jdb.timefmt import format_jdb_date
from gamewallet.service import jdb
from gamewallet.service.context import Services
from gamewallet.store.port import StoreError

PATH = "/apiRequest.do"
#: Action 61 answers at most this many transfers; a window holding more is 8009 (narrow it).
HISTORY_MAX = 5000
#: Action 65 lists at most this many players in a game.
ONLINE_MAX = 10_000
#: Action 11's URL when the client configures no ``game_url`` template.
DEFAULT_GAME_URL = "/play?ticket={token}"
#: What action 52 says about where the player plays: the launch call comes from the operator's
#: server, so we never see the player's device or address [decided].
LOGIN_FROM = "WEB"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TRANSPORT = ("dc", "x", "parent")
log = structlog.get_logger(__name__)

Reply = msgspec.Struct


@dataclass
class JdbApi:
    """What the route and the fast lane share (one instance per app)."""

    services: Services
    auth: DomainAuth
    inflight: jdb.InFlight

    @classmethod
    def build(cls, services: Services) -> JdbApi:
        """A fresh domain cache, rate limiter and in-flight registry for ``services``."""
        return cls(services, DomainAuth(services), jdb.InFlight())


@dataclass
class ActionContext:
    """What one request's action handler needs."""

    services: Services
    inflight: jdb.InFlight
    domain: Domain
    payload: dict[str, Any]
    now_ms: int


def _date(ms: int, tz: tzinfo) -> str:
    return format_jdb_date(_EPOCH + timedelta(milliseconds=ms), tz)


# --- actions ------------------------------------------------------------------------------


def _launch_url(template: object, **values: str) -> str:
    """Fill a ``game_url`` template; every value is URL-quoted."""
    url = template if isinstance(template, str) and template else DEFAULT_GAME_URL
    for key, value in values.items():
        url = url.replace("{" + key + "}", quote(value, safe=""))
    return url


async def _launch(ctx: ActionContext) -> Reply:
    p = ctx.payload
    uid, lang = schemas.uid(p), schemas.lang(p)
    g_type, m_type = schemas.game_code(p, "gType"), schemas.game_code(p, "mType")
    ticket, _ = await ctx.services.store.run(
        jdb.launch(ctx.domain.client, uid, jdb.encode_game(g_type, m_type), ctx.now_ms)
    )
    url = _launch_url(
        ctx.domain.client.config.get("game_url"),
        token=ticket.token,
        player=uid,
        lang=lang,
        gType=g_type,
        mType=m_type,
    )
    return LaunchResponse(path=url)


async def _create_player(ctx: ActionContext) -> Reply:
    p = ctx.payload
    uid, name, credit = schemas.uid(p), schemas.name(p), schemas.optional_credit(p)
    await ctx.services.store.run(
        jdb.create_player(ctx.domain.client, uid, name, credit, ctx.now_ms)
    )
    return StatusResponse()


async def _player_status(ctx: ActionContext) -> Reply:
    uid, change = schemas.uid(ctx.payload), schemas.operation_code(ctx.payload)
    await ctx.services.store.run(jdb.set_flags(ctx.domain.client, uid, **change))
    return StatusResponse()


async def _player_info(ctx: ActionContext) -> Reply:
    uid = schemas.uid(ctx.payload)
    player = await ctx.services.store.run(jdb.player_info(ctx.domain.client, uid))
    info = PlayerInfo(
        uid=player.external_id,
        balance=money(player.cash.balance.available_minor),
        parent=ctx.domain.parent,
        username=player.nickname,
        currency=player.currency,
        lvl=1,
        locked=int(player.locked),
        closed=int(player.closed),
        jackpot_flag=0,
    )
    return PlayerInfoResponse(data=[info])


async def _kick(ctx: ActionContext) -> Reply:
    uid = schemas.uid(ctx.payload)
    await ctx.services.store.run(jdb.leave_game(ctx.domain.client, uid, ctx.now_ms))
    return StatusResponse()


async def _transfer(ctx: ActionContext) -> Reply:
    p = ctx.payload
    uid, serial_no = schemas.uid(p), schemas.serial_no(p)
    all_out = schemas.all_cash_out(p)
    amount = None if all_out else schemas.amount(p)
    req = jdb.TransferRequest(uid, serial_no, amount, all_out, schemas.remark(p))
    done = await jdb.run_transfer(
        ctx.services.store, ctx.inflight, ctx.domain.client, req, ctx.now_ms
    )
    return TransferResponse(
        user_balance=money(done.user_balance_minor),
        agent_cash_balance=money(done.agent_balance_minor),
        amount=money(done.signed_minor),
        serial_no=serial_no,
        pid=done.operation.id,
        pay_date=_date(done.operation.created_at_ms, ctx.domain.tz),
    )


async def _in_game(ctx: ActionContext) -> Reply:
    uid = schemas.uid(ctx.payload)
    player = await ctx.services.store.run(jdb.in_game(ctx.domain.client, uid))
    assert player.game_type is not None
    assert player.game_since_ms is not None
    g_type, m_type = jdb.decode_game(player.game_type)
    return InGameResponse(
        data=InGame(
            g_type=g_type,
            m_type=m_type,
            login_from=LOGIN_FROM,
            ip_addr="",
            login_time=_date(player.game_since_ms, ctx.domain.tz),
            balance=money(player.cash.balance.available_minor),
        )
    )


async def _check_transfer(ctx: ActionContext) -> Reply:
    serial_no = schemas.serial_no(ctx.payload)
    view = await jdb.run_find_transfer(
        ctx.services.store, ctx.inflight, ctx.domain.client, serial_no
    )
    record = TransferRecord(
        uid=view.uid,
        action=view.operation.kind,
        amount=money(view.signed_minor),
        pls_balance=money(view.before_minor),
        after_balance=money(view.after_minor),
        date=_date(view.operation.created_at_ms, ctx.domain.tz),
        pid=view.operation.id,
        remark=view.remark,
    )
    return TransferRecordResponse(data=[record])


async def _history(ctx: ActionContext) -> Reply:
    p, tz = ctx.payload, ctx.domain.tz
    uid = schemas.uid(p)
    since_ms, until_ms = schemas.window(p, tz)
    views, more = await ctx.services.store.run(
        jdb.history(ctx.domain.client, uid, since_ms, until_ms, HISTORY_MAX)
    )
    if more:
        raise JdbError("8009", reason=f"more than {HISTORY_MAX} transfers in the window")
    return HistoryResponse(
        data=[
            HistoryRecord(
                pid=v.operation.id,
                pay_date=_date(v.operation.created_at_ms, tz),
                action=v.operation.kind,
                amount=money(v.signed_minor),
                balance=money(v.after_minor),
                serial_no=v.operation.ext_id,
                remark=v.remark,
            )
            for v in views
        ]
    )


async def _online(ctx: ActionContext) -> Reply:
    players = await ctx.services.store.run(jdb.online(ctx.domain.client, ONLINE_MAX))
    return BalancesResponse(
        data=[UidBalance(p.external_id, money(p.cash.balance.available_minor)) for p in players]
    )


async def _balances(ctx: ActionContext) -> Reply:
    uids = schemas.uid_list(ctx.payload)
    found, missing = await ctx.services.store.run(jdb.balances(ctx.domain.client, uids))
    if missing:
        raise JdbError("9998", text=f"{STATUS_TEXT['9998']}: [{', '.join(missing)}]")
    return BalancesResponse(
        data=[UidBalance(p.external_id, money(p.cash.balance.available_minor)) for p in found]
    )


#: Every action this API serves.
ACTIONS: dict[int, Callable[[ActionContext], Awaitable[Reply]]] = {
    11: _launch,
    12: _create_player,
    14: _player_status,
    15: _player_info,
    17: _kick,
    19: _transfer,
    52: _in_game,
    55: _check_transfer,
    61: _history,
    65: _online,
    68: _balances,
}


# --- transport ----------------------------------------------------------------------------


async def _transport(
    request: Request[Any, Any, Any], query: dict[str, str | None]
) -> dict[str, str | None]:
    """``dc``/``x``/``parent`` from the query string, overridden by a form or JSON body."""
    fields = dict(query)
    if request.method != HttpMethod.POST:
        return fields
    body = await request.body()  # refused with 413 past request_max_body_size, unread
    if not body.strip():
        return fields
    media_type = request.content_type[0]
    values: dict[str, Any]
    if media_type == RequestEncodingType.MULTI_PART:
        form = await request.form()
        values = {k: form.get(k) for k in _TRANSPORT if k in form}
    elif media_type == RequestEncodingType.JSON or (
        media_type != RequestEncodingType.URL_ENCODED and body.lstrip()[:1] == b"{"
    ):
        values = schemas.decode_body(body)
    else:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            raise JdbError("8000", reason="form body is not UTF-8") from None
        values = {}
        for key, value in pairs:
            values.setdefault(key, value)
    for key in _TRANSPORT:
        if key in values:
            value = values[key]
            if value is not None and (isinstance(value, UploadFile) or not isinstance(value, str)):
                raise JdbError("8000", reason=f"{key} must be a string")
            fields[key] = value
    return fields


def request_id_for(given: str | None) -> str:
    """A request's id: the observability layer's (which also sends it back and puts it on
    every log line), or, when the router runs without it, the caller's or a new one."""
    given = given or ""
    return observability.request_id() or (
        given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    )


def _request_id(request: Request[Any, Any, Any]) -> str:
    rid = request.state.get("jdb_rid")
    if isinstance(rid, str):
        return rid
    rid = request_id_for(request.headers.get("x-request-id"))
    request.state["jdb_rid"] = rid
    return rid


@dataclass(frozen=True, slots=True)
class Served:
    """Who and what a request is, for the refusal log lines: its id, action and domain code
    (None while not known yet)."""

    rid: str
    action: int | None = None
    dc: str | None = None


def _served(request: Request[Any, Any, Any]) -> Served:
    return Served(
        _request_id(request), request.state.get("jdb_action"), request.state.get("jdb_dc")
    )


def reply_of(rid: str, body: msgspec.Struct, status_code: int = 200) -> lane.Reply:
    """A JDB answer (the route's and the lane's), its status named for the metrics."""
    observability.set_result_code(body.status if isinstance(body, ErrorResponse) else "0000")
    return lane.Reply(
        status_code, schemas.ENCODER.encode(body), "application/json", (("X-Request-ID", rid),)
    )


def _reply(
    request: Request[Any, Any, Any], body: msgspec.Struct, status_code: int = 200
) -> Response[bytes]:
    return reply_of(_request_id(request), body, status_code).response()


def _refusal(
    served: Served, status: str, text: str, reason: str, status_code: int = 200
) -> lane.Reply:
    log.info(
        "jdb_refused",
        request_id=served.rid,
        status=status,
        reason=reason,
        action=served.action,
        dc=served.dc,
    )
    return reply_of(served.rid, ErrorResponse(status=status, err_text=text), status_code)


# --- exception handlers: every failure in the JDB envelope --------------------------------


def error_reply(exc: Exception, served: Served) -> lane.Reply:
    """Every failure in the JDB envelope (the route's exception handlers and the lane's),
    chosen as the router's handler table chooses them."""
    if isinstance(exc, JdbError):
        return _refusal(served, exc.status, exc.text, exc.reason)
    if isinstance(exc, WalletError):
        status = status_of(exc.code)
        return _refusal(served, status, STATUS_TEXT[status], exc.detail)
    if isinstance(exc, StoreError):
        log.error("jdb_store_unavailable", request_id=served.rid, error=str(exc))
        return reply_of(served.rid, ErrorResponse(status="9012", err_text=STATUS_TEXT["9012"]))
    if isinstance(exc, HTTPException) and 400 <= exc.status_code < 500:
        # Framework refusals (body too large, bad query string, method not allowed) keep their
        # HTTP status and carry JDB's parameter error.
        return _refusal(served, "8000", STATUS_TEXT["8000"], str(exc.detail), exc.status_code)
    log.error(
        "jdb_unexpected_error",
        request_id=served.rid,
        action=served.action,
        error_type=type(exc).__name__,
        exc_info=exc,
    )
    return reply_of(served.rid, ErrorResponse(status=FAILED, err_text=STATUS_TEXT[FAILED]))


def _on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    return error_reply(exc, _served(request)).response()


# --- the route ----------------------------------------------------------------------------

_DESCRIPTION = """\
JDB transfer API (protocols.md section 3; docs/protocols/jdb.md). `dc` names the operator's
domain; `x` is Base64-URL(AES-128-CBC(JSON payload, space-padded)) with the domain's key and IV;
`parent` (optional here) is the agent. The same fields may come in the query string, a form body
or a JSON body. The decrypted payload carries `action`, `ts` (epoch ms, within 30 s of our clock),
`parent` and the action's fields; served actions: 11, 12, 14, 15, 17, 19, 52, 55, 61, 65, 68.
Responses are plain JSON: `{"status": "0000", ...}` or `{"status": "<code>", "err_text": "..."}`.
"""

_TRANSPORT_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["dc", "x"],
    properties={
        "dc": Schema(type=OpenAPIType.STRING, description="domain code (tenant)"),
        "x": Schema(type=OpenAPIType.STRING, description="encrypted payload"),
        "parent": Schema(type=OpenAPIType.STRING, description="agent id (optional)"),
    },
)


@dataclass
class _ApiRequestOperation(Operation):
    """The OpenAPI operation of apiRequest.do, with the body forms our handler reads itself."""

    def __post_init__(self) -> None:
        if self.request_body is None:
            self.request_body = RequestBody(
                required=False,
                content={
                    media: OpenAPIMediaType(schema=_TRANSPORT_SCHEMA)
                    for media in ("application/x-www-form-urlencoded", "application/json")
                },
            )


_SUCCESS = (
    StatusResponse
    | LaunchResponse
    | PlayerInfoResponse
    | TransferResponse
    | InGameResponse
    | TransferRecordResponse
    | HistoryResponse
    | BalancesResponse
    | ErrorResponse
)


def build_router(services: Services, api: JdbApi | None = None) -> Router:
    """The router of the JDB API, with its domain cache and in-flight serialNo registry
    (``api``'s, shared with the fast lane when there is one)."""
    api = api or JdbApi.build(services)
    auth, inflight = api.auth, api.inflight

    @route(
        PATH,
        http_method=[HttpMethod.GET, HttpMethod.POST],
        summary="JDB apiRequest.do",
        description=_DESCRIPTION,
        operation_class=_ApiRequestOperation,
        status_code=200,
        responses={
            200: ResponseSpec(
                data_container=_SUCCESS, description="a JDB status reply", generate_examples=False
            ),
            400: ResponseSpec(
                data_container=ErrorResponse,
                description="malformed query string (8000)",
                generate_examples=False,
            ),
            413: ResponseSpec(
                data_container=ErrorResponse,
                description="body too large (8000)",
                generate_examples=False,
            ),
        },
        tags=["jdb"],
    )
    async def api_request(
        request: Request[Any, Any, Any],
        dc: Annotated[str | None, QueryParameter(description="domain code")] = None,
        x: Annotated[str | None, QueryParameter(description="encrypted payload")] = None,
        parent: Annotated[str | None, QueryParameter(description="agent")] = None,
    ) -> Response[bytes]:
        _request_id(request)
        fields = await _transport(request, {"dc": dc, "x": x, "parent": parent})
        request.state["jdb_dc"] = fields["dc"]
        now_ms = services.clock.now_ms()
        domain = await auth.domain(fields["dc"])
        peer = request.client.host if request.client else None
        auth.check_address(domain, peer, request.headers.get("x-forwarded-for"))
        auth.check_rate(domain, now_ms)
        payload = auth.open(domain, fields["x"])
        auth.check_time(payload, now_ms)
        action = schemas.action_of(payload)
        request.state["jdb_action"] = action
        handler = ACTIONS.get(action)
        if handler is None:
            raise JdbError("9007", reason=f"action {action} is not served")
        observability.set_endpoint(f"action{action}")
        auth.check_parent(domain, payload, fields["parent"])
        reply = await handler(ActionContext(services, inflight, domain, payload, now_ms))
        return _reply(request, reply)

    @route(
        PATH,
        http_method=[HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE],
        include_in_schema=False,
        status_code=405,
    )
    async def other_methods(request: Request[Any, Any, Any]) -> Response[bytes]:
        # Answered here rather than by the framework so the refusal is in JDB's envelope.
        refused = _refusal(_served(request), "8000", STATUS_TEXT["8000"], "method not allowed", 405)
        response = refused.response()
        response.headers["Allow"] = "GET, POST"
        return response

    return Router(
        path="/",
        route_handlers=[api_request, other_methods],
        exception_handlers={Exception: _on_error},
    )
