"""The game side's HTTP endpoints (protocols.md 1.6): what a seamless wallet calls on the game.

:func:`create_gameside_app` is a small Litestar app a game embeds (mount its handlers) or runs
on its own (``uvicorn gamewallet.clients.gameside:app_factory --factory``):

- ``POST /integration/queryWithdrawal`` and ``/integration/queryDeposit`` answer the wallet's
  final-state question from the game's settlement records (``CONFIRMED`` / ``ROLLED_BACK`` /
  ``NOT_FOUND``; an undecided call is rolled back first, so the answer is final). Basic auth
  with the wallet's credentials at the game; anything else is HTTP 401.
- ``POST /payment/callback`` receives the wallet's payment notification (form fields), checks
  its ``sign`` with the shared secret, hands it to the game's hook and answers HTTP 200
  ``{"code": 0}``; a bad sign is HTTP 400 ``{"code": 1}`` (the wallet will retry, in vain).

With ``run_worker`` the app also runs the settlement worker in-process (as ``serve`` does).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State

from gamewallet.clients.seamless import QueryStatus
from gamewallet.clients.settlement import (
    DEFAULT_WALLET,
    KIND_DEPOSIT,
    KIND_WITHDRAW,
    final_status,
)
from gamewallet.protocols.seamless.auth import basic_credentials
from gamewallet.protocols.seamless.sign import verify_payment_sign
from gamewallet.service.common import Clock, SystemClock
from gamewallet.settings import Settings
from gamewallet.store import open_store, ops
from gamewallet.store.port import Store, do
from gamewallet.worker.build import in_process_worker

__all__ = ["PaymentHook", "app_factory", "create_gameside_app", "recorded_payment"]

log = logging.getLogger(__name__)

#: Largest request body the game side reads.
BODY_MAX_BYTES: Final = 64 * 1024
#: Most form fields a payment callback may carry (it has 8).
FORM_FIELDS_MAX: Final = 32
#: Key prefix of the default payment hook's records in the ``meta`` table.
PAYMENT_META_PREFIX: Final = "payment:"

#: Called with a verified callback's fields; must be idempotent per ``cpOrderId`` (the wallet
#: re-sends a callback until it is acknowledged).
PaymentHook = Callable[[Mapping[str, str]], Awaitable[None]]

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _QueryRequest(msgspec.Struct, rename="camel"):
    mm_transaction_id: _Id


_query_decoder = msgspec.json.Decoder(_QueryRequest)


def _json(data: Mapping[str, Any], status_code: int = 200) -> Response[bytes]:
    return Response(
        msgspec.json.encode(data), media_type="application/json", status_code=status_code
    )


def _unauthorized() -> Response[bytes]:
    return Response(
        b"",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="integration"'},
        media_type="text/plain",
    )


def _authorized(header: str | None, username: str | None, password: str | None) -> bool:
    """Constant-time check of Basic credentials; no credentials configured = nobody gets in."""
    if not username or not password:
        return False
    given = basic_credentials(header)
    if given is None:
        return False
    user_ok = hmac.compare_digest(given[0].encode(), username.encode())
    password_ok = hmac.compare_digest(given[1].encode(), password.encode())
    return user_ok and password_ok


def record_payment(store: Store) -> PaymentHook:
    """The default payment hook: keep the first callback of each ``cpOrderId`` in ``meta``.

    Durable and idempotent (the first record wins), so a re-sent callback changes nothing. A
    real game replaces it with the hook that grants the product, keyed by ``cpOrderId`` too.
    """

    async def hook(fields: Mapping[str, str]) -> None:
        value = json.dumps(dict(fields), sort_keys=True, separators=(",", ":"))
        key = PAYMENT_META_PREFIX + fields["cpOrderId"]
        await store.run(do(ops.SetMetaIfAbsent(key, value)))

    return hook


async def recorded_payment(store: Store, cp_order_id: str) -> dict[str, str] | None:
    """The callback fields the default hook recorded for ``cp_order_id``, or None."""
    value = await store.run(do(ops.GetMeta(PAYMENT_META_PREFIX + cp_order_id)))
    if value is None:
        return None
    fields: dict[str, str] = json.loads(value)
    return fields


def create_gameside_app(
    store: Store,
    clock: Clock,
    *,
    integration_username: str | None,
    integration_password: str | None,
    payment_secret: str | None,
    wallet: str = DEFAULT_WALLET,
    on_payment: PaymentHook | None = None,
    manage_store: bool = True,
    worker_settings: Settings | None = None,
) -> Litestar:
    """The game side's app; ``worker_settings`` runs the settlement worker inside it."""
    hook = on_payment or record_payment(store)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if manage_store:
            await store.start()
        try:
            if worker_settings is not None:
                async with in_process_worker(store, clock, worker_settings):
                    yield
            else:
                yield
        finally:
            if manage_store:
                await store.close()

    async def query(request: Request[Any, Any, State], kind: str) -> Response[bytes]:
        auth = request.headers.get("authorization")
        if not _authorized(auth, integration_username, integration_password):
            return _unauthorized()
        try:
            data = _query_decoder.decode(await request.body())
        except msgspec.DecodeError as exc:
            return _json({"error": f"invalid request: {exc}"}, 400)
        status: QueryStatus = await store.run(
            final_status(wallet, kind, data.mm_transaction_id, clock.now_ms())
        )
        return _json({"mmTransactionId": data.mm_transaction_id, "status": status})

    @post("/integration/queryWithdrawal", status_code=200)
    async def query_withdrawal(request: Request[Any, Any, State]) -> Response[bytes]:
        """The final state of a withdrawal: CONFIRMED, ROLLED_BACK or NOT_FOUND."""
        return await query(request, KIND_WITHDRAW)

    @post("/integration/queryDeposit", status_code=200)
    async def query_deposit(request: Request[Any, Any, State]) -> Response[bytes]:
        """The final state of a deposit: CONFIRMED, ROLLED_BACK or NOT_FOUND."""
        return await query(request, KIND_DEPOSIT)

    @post("/payment/callback", status_code=200)
    async def payment_callback(request: Request[Any, Any, State]) -> Response[bytes]:
        """A payment notification from the wallet: verify the sign, hand it over, acknowledge."""
        if not payment_secret:
            log.error("payment callback received but no payment secret is configured")
            return _json({"code": 1, "msg": "payments not configured"}, 503)
        try:
            pairs = parse_qsl(
                (await request.body()).decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=True,
                max_num_fields=FORM_FIELDS_MAX,
            )
        except ValueError:  # bad UTF-8, bad encoding, too many fields
            return _json({"code": 1, "msg": "invalid form"}, 400)
        fields = dict(pairs)
        if len(fields) != len(pairs) or not verify_payment_sign(fields, payment_secret):
            return _json({"code": 1, "msg": "invalid sign"}, 400)
        await hook(fields)
        return _json({"code": 0})

    @get("/healthz", include_in_schema=False, sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        route_handlers=[query_withdrawal, query_deposit, payment_callback, healthz],
        lifespan=[lifespan],
        request_max_body_size=BODY_MAX_BYTES,
        debug=False,
    )


def app_factory() -> Litestar:
    """The game side as a process of its own, configured from the environment.

    ``GAMEWALLET_DATABASE_URL`` is the game's database; ``GAMEWALLET_GAME_INTEGRATION_*`` the
    wallet's credentials here; ``GAMEWALLET_GAME_PAYMENT_SECRET`` the callback key; with
    ``GAMEWALLET_GAME_WALLET_*`` set and ``GAMEWALLET_WORKER_IN_PROCESS`` on, the settlement
    worker runs inside.
    """
    settings = Settings.from_env()
    store = open_store(settings.database_url, pool_size=settings.db_pool_size)
    return create_gameside_app(
        store,
        SystemClock(),
        integration_username=settings.game_integration_username,
        integration_password=settings.game_integration_password,
        payment_secret=settings.game_payment_secret,
        worker_settings=settings if settings.worker_in_process else None,
    )
