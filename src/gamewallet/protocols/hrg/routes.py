"""HTTP routes of the HRG transfer API: ``POST /api/<name>``, Basic auth, ``xts``, JSON.

Thin by design: a router-level hook authenticates the agent and checks ``xts`` before the
body is read; each handler decodes the body strictly, checks the agent and the user id,
runs one use case of :mod:`gamewallet.service.hrg` and renders the envelope. The order of
those steps is the precedence of the status codes (see :mod:`.errors`). Every failure,
expected or not, leaves through :func:`error_reply` as an HRG envelope; an unexpected one is
logged with a request id and answered 9999, never with a stack trace.

:class:`HrgApi` holds what the routes and the fast lane (:mod:`.lane`) share: the rate
limiter, the caller checks, and the transfer use cases with their rendering, so that both
answer with the same bytes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
import structlog
from litestar import Request, Response, Router, post
from litestar.datastructures import State
from litestar.dto import AbstractDTO, DTOFieldDefinition
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation, Reference, Schema
from litestar.params import HeaderParameter, JSONBody
from litestar.typing import FieldDefinition

from gamewallet.core.errors import WalletError
from gamewallet.observability import request_id, set_result_code
from gamewallet.protocols.hrg import schemas
from gamewallet.protocols.hrg.auth import authenticate, caller_address, check_xts
from gamewallet.protocols.hrg.errors import (
    AGENT_NOT_FOUND,
    AUTH_FAILED,
    INVALID_PARAMETER,
    SUCCESS,
    UNKNOWN_ERROR,
    HrgError,
    HrgErrorReply,
    error_body,
    from_core,
    http_status,
)
from gamewallet.protocols.lane import Reply
from gamewallet.service import hrg
from gamewallet.service.context import Services
from gamewallet.service.ratelimit import RateLimiter
from gamewallet.store.records import ClientRecord, PlayerRecord

if TYPE_CHECKING:  # Litestar's DTO hooks are typed with these private names; types only.
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.dto._backend import DTOBackend

log = structlog.get_logger(__name__)

JSON = "application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CLIENT_KEY = "hrg_client"
T = TypeVar("T", bound=msgspec.Struct)


class StrictBody(AbstractDTO[T], Generic[T]):
    """The request body as a msgspec struct, decoded strictly.

    Litestar's own conversion is lax (it would take ``"true"`` for a boolean) and its msgspec
    DTO rebuilds the struct; this one decodes the bytes with :func:`schemas.decode` and lets
    OpenAPI describe the struct itself. It never builds a transfer model.
    """

    @classmethod
    def generate_field_definitions(cls, model_type: type[Any]) -> Generator[DTOFieldDefinition]:
        """Unused: there is no transfer model."""
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        """Unused: there is no transfer model."""
        return False

    @classmethod
    def create_for_field_definition(
        cls,
        field_definition: FieldDefinition,
        handler_id: str,
        backend_cls: type[DTOBackend] | None = None,
    ) -> None:
        """Nothing to prepare: :meth:`decode_bytes` decodes straight into the struct."""

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        """The struct's own schema."""
        return schema_creator.for_field_definition(FieldDefinition.from_annotation(cls.model_type))

    def decode_bytes(self, value: bytes) -> Any:
        """The body as the struct, or 2001."""
        return schemas.decode(value, self.model_type)


@dataclass
class _Operation(Operation):
    """OpenAPI operation without Litestar's generic 400: HRG answers bad input with 2001."""

    def __post_init__(self) -> None:
        if self.responses:
            self.responses.pop("400", None)


def _responses(reply: type[msgspec.Struct]) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(
            data_container=reply,
            generate_examples=False,
            description='Success ({"code": "0000", "data": …}); refusals are'
            ' {"code", "desc"} with HTTP 200 too',
        ),
        401: ResponseSpec(
            data_container=HrgErrorReply,
            generate_examples=False,
            description="1001 Authorization failed",
        ),
        413: ResponseSpec(
            data_container=HrgErrorReply,
            generate_examples=False,
            description="2001 Invalid parameter: body too large",
        ),
    }


def _ok(data: msgspec.Struct, reply: Callable[[str, Any], msgspec.Struct]) -> bytes:
    set_result_code(SUCCESS)  # the result label of the request's metrics and log line
    return msgspec.json.encode(reply(SUCCESS, data))


def _json(body: bytes) -> Response[bytes]:
    return Response(content=body, media_type=JSON, status_code=200)


def agent(client: ClientRecord, agent_id: str) -> ClientRecord:
    """The authenticated agent, which the body's ``agentId`` must name (else 2002: we do not
    tell a caller whether some other agent of that name exists)."""
    if agent_id != client.name:
        raise HrgError(AGENT_NOT_FOUND)
    return client


def _agent(request: Request[Any, Any, State], agent_id: str) -> ClientRecord:
    return agent(request.state[_CLIENT_KEY], agent_id)


def rate_limited() -> Reply:
    """Over the agent's rate (service/ratelimit.py): HTTP 429 + 9999, body unread, nothing
    applied; an operator's recovery (lookup, re-send) is safe."""
    return _error(UNKNOWN_ERROR, "Rate limit exceeded", status=429, headers=(("Retry-After", "1"),))


def withdraw_command(client: ClientRecord, data: schemas.HrgWithdrawRequest) -> hrg.WithdrawRequest:
    """A withdraw body as the use case's command (HrgError for bad fields or agent)."""
    cash = schemas.amount_minor(data.amount, "amount")
    free = schemas.amount_minor(data.free_credit, "freeCredit")
    if not data.all_withdraw and not (cash or free):
        raise HrgError(INVALID_PARAMETER, "amount or freeCredit must be above zero")
    agent(client, data.agent_id)
    return hrg.WithdrawRequest(
        schemas.user_id(data.user_id),
        data.transaction_code,
        data.all_withdraw,
        0 if data.all_withdraw else cash,
        0 if data.all_withdraw else free,
    )


def deposit_command(client: ClientRecord, data: schemas.HrgDepositRequest) -> hrg.DepositRequest:
    """A deposit body as the use case's command (HrgError for bad fields or agent)."""
    cash = schemas.amount_minor(data.amount, "amount")
    free = schemas.amount_minor(data.free_credit, "freeCredit")
    if not (cash or free):
        raise HrgError(INVALID_PARAMETER, "amount or freeCredit must be above zero")
    agent(client, data.agent_id)
    return hrg.DepositRequest(schemas.user_id(data.user_id), data.transaction_code, cash, free)


class HrgApi:
    """What the routes and the fast lane share: one rate limiter, the caller checks, and the
    transfer use cases with their rendering (one instance per app)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.limiter = RateLimiter(
            services.clock,
            lambda: services.settings.rate_limit_per_client,
            shared=services.rate_buckets,
        )

    def now_ms(self) -> int:
        """The service clock's time."""
        return self.services.clock.now_ms()

    async def client(
        self,
        authorization: str | None,
        peer: str | None,
        forwarded_for: str | None,
        xts: str | None,
    ) -> ClientRecord:
        """The calling agent, with a fresh ``xts``; HrgError 1001 / 1002 otherwise."""
        settings = self.services.settings
        address = caller_address(peer, forwarded_for, settings.trusted_proxies)
        client = await authenticate(self.services, authorization, address)
        check_xts(xts, self.now_ms(), settings.hrg_xts_skew_s)
        return client

    async def withdraw(self, client: ClientRecord, command: hrg.WithdrawRequest) -> bytes:
        """Run a withdraw; its envelope (stored for replays)."""

        def render(t: hrg.Transfer) -> bytes:
            out = schemas.HrgWithdrawData(
                agent_id=client.name,
                user_id=t.user_id,
                currency=t.currency,
                withdraw_amount=schemas.money(t.total_minor),
                current_balance=schemas.money(t.after_cash_minor),
                current_free_credit=schemas.money(t.after_free_minor),
            )
            return _ok(out, schemas.HrgWithdrawReply)

        return await self.services.store.run(hrg.withdraw(client, command, self.now_ms(), render))

    async def deposit(self, client: ClientRecord, command: hrg.DepositRequest) -> bytes:
        """Run a deposit; its envelope (stored for replays)."""

        def render(t: hrg.Transfer) -> bytes:
            out = schemas.HrgDepositData(
                agent_id=client.name,
                user_id=t.user_id,
                currency=t.currency,
                deposit_amount=schemas.money(t.total_minor),
                current_balance=schemas.money(t.after_cash_minor),
                current_free_credit=schemas.money(t.after_free_minor),
            )
            return _ok(out, schemas.HrgDepositReply)

        return await self.services.store.run(hrg.deposit(client, command, self.now_ms(), render))


def build_router(services: Services, api: HrgApi | None = None) -> Router:
    """The router of the HRG transfer API, mounted at ``/api``; ``api`` is shared with the
    fast lane when there is one."""
    api = api or HrgApi(services)
    now_ms = api.now_ms
    limiter = api.limiter

    async def before(request: Request[Any, Any, State]) -> Response[bytes] | None:
        client = await api.client(
            request.headers.get("authorization"),
            request.client.host if request.client else None,
            request.headers.get("x-forwarded-for"),
            request.headers.get("xts"),
        )
        request.state[_CLIENT_KEY] = client
        if not limiter.allow(client):
            return rate_limited().response()
        return None

    def player_data(client: ClientRecord, player: PlayerRecord) -> schemas.HrgBalanceItem:
        return schemas.HrgBalanceItem(
            agent_id=client.name,
            user_id=player.external_id,
            currency=player.currency,
            balance=schemas.money(player.cash.balance.available_minor),
            free_credit=schemas.money(player.free.balance.available_minor),
        )

    def record(client: ClientRecord, t: hrg.Transfer) -> schemas.HrgTransferRecord:
        return schemas.HrgTransferRecord(
            transaction_code=t.transaction_code,
            agent_id=client.name,
            user_id=t.user_id,
            type=t.kind,
            amount=schemas.money(t.cash_minor),
            free_credit=schemas.money(t.free_minor),
            pre_balance=schemas.money(t.pre_cash_minor),
            pre_free_credit=schemas.money(t.pre_free_minor),
            after_balance=schemas.money(t.after_cash_minor),
            after_free_credit=schemas.money(t.after_free_minor),
            created_at=schemas.xts(t.created_at_ms),
        )

    @post(
        "/create_user",
        dto=StrictBody[schemas.HrgCreateUserRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.HrgCreateUserReply),
        operation_class=_Operation,
    )
    async def create_user(
        request: Request[Any, Any, State], data: JSONBody[schemas.HrgCreateUserRequest]
    ) -> Response[bytes]:
        """Create a player; an opening ``balance`` / ``freeCredit`` is a deposit from the
        agent. An existing user is 3002."""
        cash = schemas.amount_minor(data.balance, "balance")
        free = schemas.amount_minor(data.free_credit, "freeCredit")
        client = _agent(request, data.agent_id)
        user_id = schemas.user_id(data.user_id)
        player = await services.store.run(hrg.create_user(client, user_id, cash, free, now_ms()))
        item = player_data(client, player)
        user = schemas.HrgUserData(item.agent_id, item.user_id, item.balance, item.free_credit)
        return _json(_ok(user, schemas.HrgCreateUserReply))

    @post(
        "/get_balance",
        dto=StrictBody[schemas.HrgGetBalanceRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.HrgBalanceReply),
        operation_class=_Operation,
    )
    async def get_balance(
        request: Request[Any, Any, State], data: JSONBody[schemas.HrgGetBalanceRequest]
    ) -> Response[bytes]:
        """Balances of the named users (all must exist, else 3001), or of every user with
        ``allUser``; ``filterNonZeroBalance`` keeps users with money in either bucket."""
        if not data.all_user and not data.user_ids:
            raise HrgError(INVALID_PARAMETER, "userIds is required unless allUser is true")
        client = _agent(request, data.agent_id)
        names = None if data.all_user else [schemas.user_id(u) for u in data.user_ids or ()]
        players, total = await services.store.run(
            hrg.get_balances(
                client,
                names,
                non_zero=data.filter_non_zero_balance,
                page=data.page,
                page_size=data.page_size,
            )
        )
        page = schemas.HrgBalanceData(
            [player_data(client, p) for p in players], data.page, data.page_size, total
        )
        return _json(_ok(page, schemas.HrgBalanceReply))

    @post(
        "/withdraw",
        dto=StrictBody[schemas.HrgWithdrawRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.HrgWithdrawReply),
        operation_class=_Operation,
    )
    async def withdraw(
        request: Request[Any, Any, State], data: JSONBody[schemas.HrgWithdrawRequest]
    ) -> Response[bytes]:
        """Take money back to the agent: everything with ``allWithdraw``, else ``amount``
        and/or ``freeCredit`` (at least one above zero). Idempotent per transactionCode."""
        client: ClientRecord = request.state[_CLIENT_KEY]
        return _json(await api.withdraw(client, withdraw_command(client, data)))

    @post(
        "/deposit",
        dto=StrictBody[schemas.HrgDepositRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.HrgDepositReply),
        operation_class=_Operation,
    )
    async def deposit(
        request: Request[Any, Any, State], data: JSONBody[schemas.HrgDepositRequest]
    ) -> Response[bytes]:
        """Move money from the agent to the player's cash and/or free credit (at least one
        above zero). Idempotent per transactionCode."""
        client: ClientRecord = request.state[_CLIENT_KEY]
        return _json(await api.deposit(client, deposit_command(client, data)))

    @post(
        "/check_transfer_operation",
        dto=StrictBody[schemas.HrgCheckTransferRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.HrgTransferReply),
        operation_class=_Operation,
    )
    async def check_transfer_operation(
        request: Request[Any, Any, State], data: JSONBody[schemas.HrgCheckTransferRequest]
    ) -> Response[bytes]:
        """The transfer made with a transactionCode (4004 if none): how an agent learns the
        outcome of a call it got no answer to."""
        client = _agent(request, data.agent_id)
        found = await services.store.run(hrg.check_transfer(client, data.transaction_code))
        return _json(_ok(record(client, found), schemas.HrgTransferReply))

    @post(
        "/get_transfer_operation_log",
        dto=StrictBody[schemas.HrgTransferLogRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.HrgTransferLogReply),
        operation_class=_Operation,
    )
    async def get_transfer_operation_log(
        request: Request[Any, Any, State], data: JSONBody[schemas.HrgTransferLogRequest]
    ) -> Response[bytes]:
        """Transfers with ``startTime <= createdAt <= endTime`` (at most 31 days), oldest
        first, paged; optionally of one user."""
        since = schemas.xts_ms(data.start_time, "startTime")
        until = schemas.xts_ms(data.end_time, "endTime")
        if until < since:
            raise HrgError(INVALID_PARAMETER, "endTime is before startTime")
        if until - since > schemas.LOG_RANGE_MAX_MS:
            raise HrgError(INVALID_PARAMETER, "the time range is longer than 31 days")
        client = _agent(request, data.agent_id)
        user_id = None if data.user_id is None else schemas.user_id(data.user_id)
        transfers, total = await services.store.run(
            hrg.transfer_log(
                client, user_id, since, until + 1, page=data.page, page_size=data.page_size
            )
        )
        page = schemas.HrgTransferLogData(
            [record(client, t) for t in transfers], data.page, data.page_size, total
        )
        return _json(_ok(page, schemas.HrgTransferLogReply))

    @post(
        "/launch_lobby",
        dto=StrictBody[schemas.HrgLaunchLobbyRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.HrgLaunchReply),
        operation_class=_Operation,
    )
    async def launch_lobby(
        request: Request[Any, Any, State], data: JSONBody[schemas.HrgLaunchLobbyRequest]
    ) -> Response[bytes]:
        """A one-time ticket URL opening the game lobby for the player."""
        client = _agent(request, data.agent_id)
        url = await services.store.run(
            hrg.launch(client, schemas.user_id(data.user_id), now_ms(), lang=data.lang)
        )
        return _json(_ok(schemas.HrgLaunchData(url), schemas.HrgLaunchReply))

    @post(
        "/launch_game",
        dto=StrictBody[schemas.HrgLaunchGameRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.HrgLaunchReply),
        operation_class=_Operation,
    )
    async def launch_game(
        request: Request[Any, Any, State], data: JSONBody[schemas.HrgLaunchGameRequest]
    ) -> Response[bytes]:
        """A one-time ticket URL opening one game (``gameCode``) for the player."""
        client = _agent(request, data.agent_id)
        url = await services.store.run(
            hrg.launch(
                client, schemas.user_id(data.user_id), now_ms(), lang=data.lang, game=data.game_code
            )
        )
        return _json(_ok(schemas.HrgLaunchData(url), schemas.HrgLaunchReply))

    return Router(
        path="/api",
        route_handlers=[
            create_user,
            get_balance,
            withdraw,
            deposit,
            check_transfer_operation,
            get_transfer_operation_log,
            launch_lobby,
            launch_game,
        ],
        before_request=before,
        exception_handlers={Exception: _on_error},
        parameters={
            "xts": HeaderParameter(
                name="xts",
                annotation=str,
                required=True,
                description="Request time, yyyy-MM-ddTHH:mm:ss.SSS+HHMM, within 300 s of ours",
            )
        },
        tags=["HRG transfer API"],
    )


def _error(
    code: str,
    detail: str | None = None,
    *,
    status: int | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    set_result_code(code)  # the result label of the request's metrics and log line
    if code == AUTH_FAILED:
        headers = (("WWW-Authenticate", 'Basic realm="hrg"'), *headers)
    return Reply(status or http_status(code), error_body(code, detail), JSON, headers)


def _on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    given = request.headers.get("x-request-id")
    return error_reply(exc, request.url.path, given).response()


def error_reply(exc: Exception, path: str, given_request_id: str | None) -> Reply:
    """Every failure as an HRG envelope: expected refusals by their code, the rest 9999
    (the routes' exception handler and the lane's)."""
    if isinstance(exc, HrgError):
        return _error(exc.code, exc.detail)
    if isinstance(exc, WalletError):
        return _error(from_core(exc.code))
    if isinstance(exc, RequestEntityTooLarge):
        return _error(INVALID_PARAMETER, "request body too large", status=413)
    if isinstance(exc, ValidationException):
        # Litestar's only remaining check: a missing (empty) body.
        return _error(INVALID_PARAMETER, "request body is empty")
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return _error(INVALID_PARAMETER, exc.detail)
    rid = _request_id(given_request_id)
    log.error(
        "hrg request failed",
        request_id=rid,
        path=path,
        error=type(exc).__name__,
        exc_info=exc,
    )
    return _error(UNKNOWN_ERROR, headers=(("X-Request-ID", rid),))


def _request_id(given: str | None) -> str:
    """The id this request is logged under: the observer's, else the caller's
    ``X-Request-ID`` when it is a plain short token, else a new one."""
    bound = request_id()
    if bound:
        return bound
    given = given or ""
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
