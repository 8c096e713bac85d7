"""HTTP routes of the seamless wallet API: ``POST /wallet/<endpoint>``, Basic auth, JSON.

Thin by design: a router-level hook authenticates the client (and drops callers outside its
IP allowlist) before the body is read; each handler decodes the body strictly, turns wire
amounts into minor units, runs one use case of :mod:`gamewallet.service.seamless` and sends
the bytes it returns (rendered once, and stored for replays inside the same transaction).
Every failure leaves through :func:`error_reply` in the protocol's envelope: 401 for
credentials, 413 + 101 for an oversized body, HTTP 200 + errorCode for the rest, and an
unexpected failure is logged with a request id and answered 100, never with a stack trace.

:class:`SeamlessApi` holds what the routes and the fast lane (:mod:`.lane`) share: the rate
limiter, authentication and the use-case calls; :func:`error_reply` and
:func:`rate_limited` render for both, so the two answer with the same bytes.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
import structlog
from litestar import Request, Response, Router, post
from litestar.datastructures import State
from litestar.dto import MsgspecDTO
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation, Reference, Schema
from litestar.params import JSONBody
from litestar.typing import FieldDefinition

from gamewallet.core.errors import WalletError
from gamewallet.core.states import Call
from gamewallet.observability import request_id, set_result_code
from gamewallet.protocols.lane import Reply
from gamewallet.protocols.seamless import schemas
from gamewallet.protocols.seamless.auth import Ignored, Unauthorized, authenticate
from gamewallet.protocols.seamless.errors import (
    INVALID_REQUEST,
    OTHER_ERROR,
    SeamlessErrorBody,
    error_body,
    for_core,
)
from gamewallet.protocols.seamless.sign import payment_sign
from gamewallet.service import seamless
from gamewallet.service.context import Services
from gamewallet.service.ratelimit import RateLimiter
from gamewallet.store.records import ClientRecord, PlayerRecord

log = structlog.get_logger(__name__)

JSON = "application/json"
_CLIENT_KEY = "seamless_client"
#: How many event-loop turns to wait for the server to notice a dropped connection.
_DROP_TURNS_MAX = 10
T = TypeVar("T", bound=msgspec.Struct)

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator


class StrictBody(MsgspecDTO[T], Generic[T]):
    """Decodes a request body with our strict msgspec decoder (exact numbers, 101 on any
    error), and documents the wire struct itself in OpenAPI.

    Litestar's DTO would describe a transfer model it builds from the struct, which loses
    the wire names (``rename="camel"``) and the "number" type of raw amounts; describing the
    struct directly gives one shared component per struct, exactly as on the wire.
    """

    def decode_bytes(self, value: bytes) -> Any:
        return schemas.decode(value, self.model_type)

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        del handler_id
        return schema_creator.for_field_definition(
            FieldDefinition.from_annotation(
                cls.model_type, kwarg_definition=field_definition.kwarg_definition
            )
        )


@dataclass
class _Operation(Operation):
    """OpenAPI operation without Litestar's generic 400: bad input is errorCode 101."""

    def __post_init__(self) -> None:
        if self.responses:
            self.responses.pop("400", None)


def _responses(reply: type[msgspec.Struct]) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(
            data_container=reply,
            generate_examples=False,
            description="Success. Refusals also use HTTP 200, with the Error Response Body"
            ' {"errorCode": <number>, "errorDescription": "<text>"} (see SeamlessErrorBody).',
        ),
        401: ResponseSpec(
            data_container=None,
            generate_examples=False,
            description="Missing or invalid Basic credentials (WWW-Authenticate: Basic).",
        ),
        413: ResponseSpec(
            data_container=SeamlessErrorBody,
            generate_examples=False,
            description="Body over the size limit: errorCode 101.",
        ),
    }


def _json(body: bytes) -> Response[bytes]:
    return Response(content=body, media_type=JSON, status_code=200)


def _client(request: Request[Any, Any, State]) -> ClientRecord:
    client: ClientRecord = request.state[_CLIENT_KEY]
    return client


def _render_tx(outcome: seamless.Outcome) -> bytes:
    amount = schemas.wire_amount(outcome.balance_minor, outcome.currency)
    return schemas.encode(schemas.SeamlessTransactionResponse(outcome.ext_id, amount))


def _render_payment(outcome: seamless.PaymentOutcome) -> bytes:
    amount = schemas.wire_amount(outcome.balance_minor, outcome.currency)
    return schemas.encode(schemas.SeamlessPaymentResponse(outcome.order_id, amount))


def _balance(player: PlayerRecord) -> schemas.SeamlessAmount:
    return schemas.wire_amount(player.cash.balance.available_minor, player.currency)


def opening(
    client: ClientRecord, endpoint: str, kind: str, data: schemas.SeamlessOpenRequest
) -> seamless.WalletCall:
    minor, _ = schemas.amount_minor(data.amount.amount)
    description = schemas.text(data.tx_description, "txDescription")
    return seamless.WalletCall(
        client,
        endpoint,
        kind,
        Call.OPEN,
        data.token,
        data.mm_transaction_id,
        minor,
        data.amount.currency_code,
        description,
    )


def confirming(
    client: ClientRecord, endpoint: str, kind: str, data: schemas.SeamlessConfirmRequest
) -> seamless.WalletCall:
    minor, _ = schemas.amount_minor(data.amount.amount)
    return seamless.WalletCall(
        client,
        endpoint,
        kind,
        Call.CONFIRM,
        data.token,
        data.mm_transaction_id,
        minor,
        data.amount.currency_code,
    )


def rolling_back(
    client: ClientRecord, endpoint: str, kind: str, data: schemas.SeamlessRollbackRequest
) -> seamless.WalletCall:
    reason = schemas.text(data.rollback_reason, "rollbackReason")
    return seamless.WalletCall(
        client, endpoint, kind, Call.ROLLBACK, data.token, data.mm_transaction_id, note=reason
    )


async def _drop_connection(request: Request[Any, Any, State]) -> bool:
    """Close the caller's TCP connection without a response, if the server lets us.

    ASGI has no "drop" message. uvicorn's receive callable is a method of its per-request
    cycle, which holds the transport; closing it makes the server see a disconnect, after
    which it sends nothing (not even its own 500). Any other server, or a wrapped receive,
    gets False and the caller answers an empty 403 instead (spec 1.1 allows that).
    """
    cycle: Any = getattr(request.receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    # Duck-typed: uvloop's transports are not asyncio.BaseTransport subclasses.
    close = getattr(transport, "close", None)
    if not callable(close) or not isinstance(getattr(cycle, "disconnected", None), bool):
        return False
    close()
    for _ in range(_DROP_TURNS_MAX):
        if cycle.disconnected:
            return True
        await asyncio.sleep(0)
    return bool(cycle.disconnected)


def _refusal(
    code: int, detail: str | None = None, *, status: int = 200, headers: tuple[Any, ...] = ()
) -> Reply:
    """An Error Response Body, with the code named for the request's metrics and log line."""
    set_result_code(code)
    return Reply(status, error_body(code, detail), JSON, headers)


def rate_limited() -> Reply:
    """A client over its rate (service/ratelimit.py): HTTP 429 and errorCode 100, answered
    before the body is read; nothing was applied, so the game may simply retry."""
    return _refusal(OTHER_ERROR, "rate limit exceeded", status=429, headers=(("Retry-After", "1"),))


def _on_error(request: Request[Any, Any, State], exc: Exception) -> Response[bytes]:
    """Every failure of this router, in the seamless envelope."""
    return error_reply(exc, request.url.path).response()


def error_reply(exc: Exception, path: str) -> Reply:
    """The answer to a failure while serving ``path`` (the routes' and the lane's)."""
    if isinstance(exc, Unauthorized):
        set_result_code(401)
        challenge = ("WWW-Authenticate", 'Basic realm="gamewallet", charset="UTF-8"')
        return Reply(401, b"", "text/plain", (challenge,))
    if isinstance(exc, Ignored):
        # Only reached when the connection could not be dropped (or the server already saw it
        # go): an empty 403, which a dropped connection never sends.
        set_result_code("ignored")
        return Reply(403, b"", "text/plain")
    if isinstance(exc, schemas.InvalidRequest):
        return _refusal(INVALID_REQUEST, exc.reason)
    if isinstance(exc, WalletError):
        detail = exc.detail if exc.detail != exc.code.value else None
        return _refusal(for_core(exc.code), detail)
    if isinstance(exc, ValidationException):
        # Our DTO decodes every non-empty body itself; Litestar only refuses an empty one.
        return _refusal(INVALID_REQUEST, "the body is empty")
    if isinstance(exc, HTTPException) and exc.status_code == 413:
        return _refusal(INVALID_REQUEST, "request body too large", status=413)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return _refusal(INVALID_REQUEST, str(exc.detail), status=exc.status_code)
    rid = request_id() or uuid.uuid4().hex
    log.error(
        "seamless call failed",
        request_id=rid,
        path=path,
        error=type(exc).__name__,
        exc_info=exc,
    )
    return _refusal(OTHER_ERROR, f"request id {rid}")


class SeamlessApi:
    """What the routes and the fast lane share: one rate limiter, authentication, and the
    use cases with their rendering (one instance per app)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.limiter = RateLimiter(
            services.clock,
            lambda: services.settings.rate_limit_per_client,
            shared=services.rate_buckets,
        )

    async def client(
        self, authorization: str | None, peer: str | None, forwarded_for: str | None
    ) -> ClientRecord:
        """The calling client (:class:`Unauthorized` / :class:`Ignored` otherwise)."""
        return await authenticate(self.services, authorization, peer, forwarded_for)

    async def wallet(self, call: seamless.WalletCall) -> bytes:
        """One two-phase call in one transaction; the bytes are the stored answer."""
        services = self.services
        use_case = seamless.wallet_call(
            call, services.clock.now_ms(), services.settings.idempotency_retention_s, _render_tx
        )
        return await services.store.run(use_case)

    async def session(self, client: ClientRecord, token: str) -> bytes:
        """verifySession's answer: the player, its currency and available balance."""
        services = self.services
        player = await services.store.run(
            seamless.live_player(client, token, services.clock.now_ms())
        )
        reply = schemas.SeamlessSessionResponse(
            player.external_id, player.nickname, player.currency, _balance(player)
        )
        return schemas.encode(reply)

    async def balance(self, client: ClientRecord, token: str) -> bytes:
        """getBalance's answer: the available balance of a live session's player."""
        services = self.services
        player = await services.store.run(
            seamless.live_player(client, token, services.clock.now_ms())
        )
        return schemas.encode(schemas.SeamlessBalanceResponse(_balance(player)))


def build_router(services: Services, api: SeamlessApi | None = None) -> Router:
    """The router of the seamless wallet API, mounted at ``/wallet``; ``api`` is shared with
    the fast lane when there is one."""
    settings = services.settings
    api = api or SeamlessApi(services)
    limiter = api.limiter

    async def before(request: Request[Any, Any, State]) -> Response[bytes] | None:
        try:
            client = await api.client(
                request.headers.get("authorization"),
                request.client.host if request.client else None,
                request.headers.get("x-forwarded-for"),
            )
        except Ignored as exc:
            dropped = await _drop_connection(request)
            log.warning(
                "seamless call from an address not allowed",
                client=exc.client,
                address=str(exc.address),
                dropped=dropped,
            )
            raise
        request.state[_CLIENT_KEY] = client
        if not limiter.allow(client):
            return rate_limited().response()
        return None

    async def run(call: seamless.WalletCall) -> Response[bytes]:
        return _json(await api.wallet(call))

    # --- session and balance -------------------------------------------------------------

    @post(
        "/verifySession",
        operation_id="seamless_verifySession",
        summary="verifySession",
        dto=StrictBody[schemas.SeamlessTokenRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.SeamlessSessionResponse),
        operation_class=_Operation,
    )
    async def verify_session(
        request: Request[Any, Any, State], data: JSONBody[schemas.SeamlessTokenRequest]
    ) -> Response[bytes]:
        """Check a live session token; answer the player, its currency and available balance
        (102 unknown token, 103 expired)."""
        return _json(await api.session(_client(request), data.token))

    @post(
        "/getBalance",
        operation_id="seamless_getBalance",
        summary="getBalance",
        dto=StrictBody[schemas.SeamlessTokenRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.SeamlessBalanceResponse),
        operation_class=_Operation,
    )
    async def get_balance(
        request: Request[Any, Any, State], data: JSONBody[schemas.SeamlessTokenRequest]
    ) -> Response[bytes]:
        """The available balance (posted − held) of a live session's player."""
        return _json(await api.balance(_client(request), data.token))

    # --- withdrawals -----------------------------------------------------------------------

    @post(
        "/withdraw",
        operation_id="seamless_withdraw",
        summary="withdraw",
        dto=StrictBody[schemas.SeamlessOpenRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.SeamlessTransactionResponse),
        operation_class=_Operation,
    )
    async def withdraw(
        request: Request[Any, Any, State], data: JSONBody[schemas.SeamlessOpenRequest]
    ) -> Response[bytes]:
        """Place a hold: the available balance drops at once; confirmWithdrawal posts it,
        rollbackWithdrawal voids it. Needs a live session and an unblocked player."""
        return await run(opening(_client(request), "withdraw", seamless.KIND_WITHDRAW, data))

    @post(
        "/confirmWithdrawal",
        operation_id="seamless_confirmWithdrawal",
        summary="confirmWithdrawal",
        dto=StrictBody[schemas.SeamlessConfirmRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.SeamlessTransactionResponse),
        operation_class=_Operation,
    )
    async def confirm_withdrawal(
        request: Request[Any, Any, State], data: JSONBody[schemas.SeamlessConfirmRequest]
    ) -> Response[bytes]:
        """Post a held withdrawal (same amount and currency as the withdraw, else 109)."""
        client = _client(request)
        return await run(confirming(client, "confirmWithdrawal", seamless.KIND_WITHDRAW, data))

    @post(
        "/rollbackWithdrawal",
        operation_id="seamless_rollbackWithdrawal",
        summary="rollbackWithdrawal",
        dto=StrictBody[schemas.SeamlessRollbackRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.SeamlessTransactionResponse),
        operation_class=_Operation,
    )
    async def rollback_withdrawal(
        request: Request[Any, Any, State], data: JSONBody[schemas.SeamlessRollbackRequest]
    ) -> Response[bytes]:
        """Void a held withdrawal. An unknown id succeeds and leaves a tombstone, so that a
        late withdraw with that id is refused (110)."""
        client = _client(request)
        return await run(rolling_back(client, "rollbackWithdrawal", seamless.KIND_WITHDRAW, data))

    # --- deposits --------------------------------------------------------------------------

    @post(
        "/deposit",
        operation_id="seamless_deposit",
        summary="deposit",
        dto=StrictBody[schemas.SeamlessOpenRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.SeamlessTransactionResponse),
        operation_class=_Operation,
    )
    async def deposit(
        request: Request[Any, Any, State], data: JSONBody[schemas.SeamlessOpenRequest]
    ) -> Response[bytes]:
        """Record a pending credit (not spendable until confirmDeposit posts it)."""
        return await run(opening(_client(request), "deposit", seamless.KIND_DEPOSIT, data))

    @post(
        "/confirmDeposit",
        operation_id="seamless_confirmDeposit",
        summary="confirmDeposit",
        dto=StrictBody[schemas.SeamlessConfirmRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.SeamlessTransactionResponse),
        operation_class=_Operation,
    )
    async def confirm_deposit(
        request: Request[Any, Any, State], data: JSONBody[schemas.SeamlessConfirmRequest]
    ) -> Response[bytes]:
        """Post a pending credit (same amount and currency as the deposit, else 109)."""
        client = _client(request)
        return await run(confirming(client, "confirmDeposit", seamless.KIND_DEPOSIT, data))

    @post(
        "/rollbackDeposit",
        operation_id="seamless_rollbackDeposit",
        summary="rollbackDeposit",
        dto=StrictBody[schemas.SeamlessRollbackRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.SeamlessTransactionResponse),
        operation_class=_Operation,
    )
    async def rollback_deposit(
        request: Request[Any, Any, State], data: JSONBody[schemas.SeamlessRollbackRequest]
    ) -> Response[bytes]:
        """Drop a pending credit; an unknown id succeeds and leaves a tombstone."""
        client = _client(request)
        return await run(rolling_back(client, "rollbackDeposit", seamless.KIND_DEPOSIT, data))

    # --- payment ---------------------------------------------------------------------------

    @post(
        "/payment/initiate",
        operation_id="seamless_paymentInitiate",
        summary="payment/initiate",
        dto=StrictBody[schemas.SeamlessPaymentRequest],
        return_dto=None,
        status_code=200,
        responses=_responses(schemas.SeamlessPaymentResponse),
        operation_class=_Operation,
    )
    async def payment_initiate(
        request: Request[Any, Any, State], data: JSONBody[schemas.SeamlessPaymentRequest]
    ) -> Response[bytes]:
        """Debit the player once per cpOrderId and queue the signed payment callback to the
        game. A repeat returns the original answer; other content with the same cpOrderId
        is 109."""
        client = _client(request)
        minor, price_text = schemas.amount_minor(data.product_price, allow_string=True)
        secret = client.config.get("payment_secret")
        if not isinstance(secret, str) or not secret:
            raise LookupError(f"client {client.name} has no payment_secret configured")
        now_ms = services.clock.now_ms()
        ts = str(now_ms)

        def callback(uid: str) -> dict[str, str]:
            """The callback's POST fields, signed as the vendor specifies (spec 1.6)."""
            sign = payment_sign(
                data.cp_order_id, data.server_id, uid, price_text, data.product_id, ts, secret
            )
            return {
                "uid": uid,
                "serverId": data.server_id,
                "cpOrderId": data.cp_order_id,
                "productId": data.product_id,
                "productPrice": price_text,
                "extParams": data.ext_params,
                "ts": ts,
                "sign": sign,
            }

        payment = seamless.Payment(
            client,
            data.token,
            data.cp_order_id,
            data.server_id,
            data.product_id,
            minor,
            price_text,
            data.ext_params,
            callback,
        )
        body = await services.store.run(
            seamless.initiate_payment(
                payment, now_ms, settings.idempotency_retention_s, _render_payment
            )
        )
        return _json(body)

    return Router(
        path="/wallet",
        route_handlers=[
            verify_session,
            get_balance,
            withdraw,
            confirm_withdrawal,
            rollback_withdrawal,
            deposit,
            confirm_deposit,
            rollback_deposit,
            payment_initiate,
        ],
        before_request=before,
        exception_handlers={Exception: _on_error},
        tags=["Seamless wallet API"],
    )
