"""The admin API: JSON under ``/admin/api``, described in the app's OpenAPI.

Authenticated by an API token (``Authorization: Bearer``) or a signed-in session (changes
then need the ``X-CSRF-Token`` header). Viewers read; operators also change: create clients
and rotate their secrets, block and unblock players, post manual adjustments, retry outbox
messages. Each change is written with its entry in the staff-action trail. Refusals are
``{"error": {"code", "message"}}``: 400 unreadable input, 401 not signed in, 403 wrong role
or CSRF token, 404 unknown object, 409 refused by the ledger (funds, id reuse).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.openapi.spec import SecurityRequirement
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from gamewallet.admin import schemas
from gamewallet.admin.actions import Backoffice, names_of
from gamewallet.admin.formats import FormatError, iso, money, parse_signed_amount
from gamewallet.admin.security import add_security_headers, current, make_guard
from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.ledger import Bucket
from gamewallet.service import backoffice
from gamewallet.service.backoffice import OPERATOR, Adjustment

OPERATOR_ONLY = {"role": OPERATOR}
SECURITY: list[SecurityRequirement] = [{"BearerToken": []}, {"SessionCookie": []}]

#: Ledger refusals by HTTP status; anything else a use case refuses is a 409.
STATUS_OF = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.CLIENT_NOT_FOUND: 404,
    ErrorCode.PLAYER_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
}


def _error(status: int, code: str, message: str) -> Response[schemas.ErrorBody]:
    return Response(
        schemas.ErrorBody(schemas.ErrorDetail(code, message)),
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _wallet_error(_: Request[Any, Any, Any], exc: WalletError) -> Response[schemas.ErrorBody]:
    return _error(STATUS_OF.get(exc.code, 409), exc.code.name.lower(), exc.detail)


def _format_error(_: Request[Any, Any, Any], exc: FormatError) -> Response[schemas.ErrorBody]:
    return _error(400, "invalid_request", str(exc))


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[schemas.ErrorBody]:
    codes = {400: "invalid_request", 401: "not_signed_in", 403: "forbidden", 404: "not_found"}
    response = _error(exc.status_code, codes.get(exc.status_code, "error"), exc.detail)
    if isinstance(exc, NotAuthorizedException):
        response.headers["WWW-Authenticate"] = 'Bearer realm="gamewallet-admin"'
    return response


def _operations_page(items: Any, total: int, offset: int, limit: int) -> schemas.OperationPage:
    return schemas.OperationPage([schemas.operation_out(o) for o in items], total, offset, limit)


def build_api(office: Backoffice) -> Router:
    """The ``/admin/api`` router."""
    services = office.services
    store = services.store

    def now_ms() -> int:
        return services.clock.now_ms()

    @get("/me", summary="Who is calling")
    async def me(request: Request[Any, Any, Any]) -> schemas.Me:
        principal = current(request)
        return schemas.Me(principal.actor, principal.role, principal.via)

    # --- clients -----------------------------------------------------------------------

    @get("/clients", summary="List clients (secrets never shown, keys masked)")
    async def clients() -> schemas.ClientList:
        rows = await store.run(backoffice.list_clients())
        return schemas.ClientList([schemas.client_out(c) for c in rows])

    @post("/clients", summary="Create a client", opt=OPERATOR_ONLY, status_code=201)
    async def create_client(
        request: Request[Any, Any, Any], data: JSONBody[schemas.ClientIn]
    ) -> schemas.ClientWithCredentials:
        client, credentials = await office.create_client(data, current(request))
        return schemas.ClientWithCredentials(schemas.client_out(client), credentials)

    @post(
        "/clients/{client_id:int}/rotate-secret",
        summary="New credentials for a client (shown once)",
        opt=OPERATOR_ONLY,
        status_code=200,
    )
    async def rotate_secret(
        request: Request[Any, Any, Any], client_id: FromPath[int]
    ) -> schemas.ClientWithCredentials:
        client, credentials = await office.rotate_secret(client_id, current(request))
        return schemas.ClientWithCredentials(schemas.client_out(client), credentials)

    # --- players -----------------------------------------------------------------------

    @get("/players", summary="Search players by id or nickname")
    async def players(
        client: FromQuery[int | None] = None,
        q: FromQuery[str | None] = None,
        offset: FromQuery[int] = 0,
        limit: FromQuery[int] = 50,
    ) -> schemas.PlayerPage:
        offset, limit = office.page(offset, limit)
        rows, total = await store.run(backoffice.search_players(client, q, offset, limit))
        return schemas.PlayerPage([schemas.player_out(p) for p in rows], total, offset, limit)

    @get("/players/{player_id:int}", summary="A player, its balances and its history")
    async def player(
        player_id: FromPath[int], offset: FromQuery[int] = 0, limit: FromQuery[int] = 50
    ) -> schemas.PlayerDetailOut:
        offset, limit = office.page(offset, limit)
        detail = await store.run(backoffice.player_detail(player_id, offset, limit))
        return schemas.PlayerDetailOut(
            schemas.player_out(detail.player),
            schemas.client_out(detail.client),
            _operations_page(detail.operations, detail.operations_total, offset, limit),
        )

    async def _block(
        request: Request[Any, Any, Any],
        player_id: int,
        blocked: bool,
        data: schemas.BlockIn | None,
    ) -> schemas.PlayerOut:
        reason = data.reason.strip() if data is not None else ""
        player = await store.run(
            backoffice.set_blocked(player_id, blocked, now_ms(), current(request), reason=reason)
        )
        return schemas.player_out(player)

    @post(
        "/players/{player_id:int}/block",
        summary="Block a player (no withdrawals)",
        opt=OPERATOR_ONLY,
        status_code=200,
    )
    async def block(
        request: Request[Any, Any, Any],
        player_id: FromPath[int],
        data: JSONBody[schemas.BlockIn | None] = None,
    ) -> schemas.PlayerOut:
        return await _block(request, player_id, True, data)

    @post(
        "/players/{player_id:int}/unblock",
        summary="Unblock a player",
        opt=OPERATOR_ONLY,
        status_code=200,
    )
    async def unblock(
        request: Request[Any, Any, Any],
        player_id: FromPath[int],
        data: JSONBody[schemas.BlockIn | None] = None,
    ) -> schemas.PlayerOut:
        return await _block(request, player_id, False, data)

    @post(
        "/players/{player_id:int}/end-game",
        summary="End the player's game (JDB; starts the game type's withdrawal cooldown)",
        opt=OPERATOR_ONLY,
        status_code=200,
    )
    async def end_game(
        request: Request[Any, Any, Any],
        player_id: FromPath[int],
        data: JSONBody[schemas.EndGameIn | None] = None,
    ) -> schemas.PlayerOut:
        reason = data.reason.strip() if data is not None else ""
        player = await store.run(
            backoffice.end_game(player_id, now_ms(), current(request), reason=reason)
        )
        return schemas.player_out(player)

    @post(
        "/players/{player_id:int}/adjustments",
        summary="Post a manual adjustment against the house (reason required)",
        opt=OPERATOR_ONLY,
        status_code=201,
    )
    async def adjust(
        request: Request[Any, Any, Any], player_id: FromPath[int], data: JSONBody[schemas.AdjustIn]
    ) -> schemas.PlayerOut:
        change = Adjustment(
            player_id,
            parse_signed_amount(data.amount),
            data.reason,
            Bucket(data.bucket),
            data.requestId or None,
        )
        player = await store.run(backoffice.adjust(change, now_ms(), current(request)))
        office.forget_dashboard()
        return schemas.player_out(player)

    # --- balances and operations -------------------------------------------------------

    @get("/balances", summary="Balance sums per client, currency and bucket")
    async def balances() -> schemas.BalanceList:
        totals, client_rows = await store.run(backoffice.balances())
        names = names_of(client_rows)
        return schemas.BalanceList([schemas.balance_out(t, names) for t in totals])

    @get(
        "/operations",
        summary="Operations history",
        description="Filters: client (id), player (id), kind and state (comma-separated),"
        " since / until (YYYY-MM-DD, until inclusive, or ISO 8601 times), ns.",
    )
    async def operations(
        client: FromQuery[int | None] = None,
        player: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
        wanted_state: Annotated[str | None, QueryParameter(name="state")] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
        ns: FromQuery[str | None] = None,
        offset: FromQuery[int] = 0,
        limit: FromQuery[int] = 50,
    ) -> schemas.OperationPage:
        offset, limit = office.page(offset, limit)
        where = office.operation_filter(
            client=client,
            player=player,
            kind=kind,
            state=wanted_state,
            since=since,
            until=until,
            ns=ns,
        )
        rows, total = await store.run(backoffice.list_operations(where, offset, limit))
        return _operations_page(rows, total, offset, limit)

    @get(
        "/operations/export",
        summary="Operations as CSV (same filters; oldest first)",
        media_type="text/csv",
    )
    async def export(
        client: FromQuery[int | None] = None,
        player: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
        wanted_state: Annotated[str | None, QueryParameter(name="state")] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Stream:
        where = office.operation_filter(
            client=client, player=player, kind=kind, state=wanted_state, since=since, until=until
        )
        return Stream(
            office.export_csv(where),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="operations.csv"'},
        )

    @get("/holds", summary="Outstanding holds and pending credits, oldest first")
    async def holds(
        client: FromQuery[int | None] = None, offset: FromQuery[int] = 0, limit: FromQuery[int] = 50
    ) -> schemas.OperationPage:
        offset, limit = office.page(offset, limit)
        rows, total = await store.run(backoffice.open_operations(client, offset, limit))
        return _operations_page(rows, total, offset, limit)

    @get("/tombstones", summary="Rollbacks of unknown ids (nothing was held)")
    async def tombstones(
        client: FromQuery[int | None] = None, offset: FromQuery[int] = 0, limit: FromQuery[int] = 50
    ) -> schemas.OperationPage:
        offset, limit = office.page(offset, limit)
        rows, total = await store.run(backoffice.tombstones(client, offset, limit))
        return _operations_page(rows, total, offset, limit)

    # --- outbox, reconciliation, audit, trail ------------------------------------------

    @get("/outbox", summary="Outgoing messages with their attempts (state: pending/dead/done)")
    async def outbox(
        wanted_state: Annotated[str | None, QueryParameter(name="state")] = None,
        offset: FromQuery[int] = 0,
        limit: FromQuery[int] = 50,
    ) -> schemas.OutboxPage:
        offset, limit = office.page(offset, limit)
        if wanted_state not in (None, "pending", "dead", "done"):
            raise FormatError("state must be pending, dead or done")
        rows, total = await store.run(backoffice.outbox(wanted_state, offset, limit))
        return schemas.OutboxPage([schemas.outbox_out(m) for m in rows], total, offset, limit)

    @post(
        "/outbox/{outbox_id:int}/retry",
        summary="Deliver a dead or pending message now",
        opt=OPERATOR_ONLY,
        status_code=200,
    )
    async def retry(request: Request[Any, Any, Any], outbox_id: FromPath[int]) -> schemas.Retried:
        retried = await store.run(backoffice.retry_outbox(outbox_id, now_ms(), current(request)))
        if not retried:
            raise WalletError(ErrorCode.NOT_FOUND, "no such message, or it was delivered")
        office.forget_dashboard()
        return schemas.Retried(retried)

    @get("/reconciliations", summary="The reconciler's decisions, newest first")
    async def reconciliations(
        client: FromQuery[int | None] = None, offset: FromQuery[int] = 0, limit: FromQuery[int] = 50
    ) -> schemas.ReconciliationPage:
        offset, limit = office.page(offset, limit)
        rows, total = await store.run(backoffice.reconciliations(client, offset, limit))
        return schemas.ReconciliationPage(
            [schemas.reconciliation_out(r) for r in rows], total, offset, limit
        )

    @post("/audit", summary="Run the ledger audit (every invariant)", status_code=200)
    async def audit(request: Request[Any, Any, Any]) -> schemas.AuditOut:
        violations = await store.run(backoffice.run_audit(now_ms(), current(request)))
        return schemas.AuditOut(not violations, violations)

    @get("/events", summary="The staff-action trail, newest first")
    async def events(
        actor: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        offset: FromQuery[int] = 0,
        limit: FromQuery[int] = 50,
    ) -> schemas.EventPage:
        offset, limit = office.page(offset, limit)
        rows, total = await store.run(backoffice.events(actor, action, offset, limit))
        return schemas.EventPage([schemas.event_out(e) for e in rows], total, offset, limit)

    @get("/dashboard", summary="Dashboard figures (cached for a few seconds)")
    async def dashboard() -> schemas.DashboardOut:
        figures = await office.dashboard()
        return dashboard_out(figures)

    return Router(
        path="/admin/api",
        route_handlers=[
            me,
            clients,
            create_client,
            rotate_secret,
            players,
            player,
            block,
            unblock,
            end_game,
            adjust,
            balances,
            operations,
            export,
            holds,
            tombstones,
            outbox,
            retry,
            reconciliations,
            audit,
            events,
            dashboard,
        ],
        guards=[make_guard(services)],
        tags=["admin"],
        security=SECURITY,
        after_request=add_security_headers,
        exception_handlers={
            WalletError: _wallet_error,
            FormatError: _format_error,
            ValidationException: _http_error,
            NotAuthorizedException: _http_error,
            PermissionDeniedException: _http_error,
            HTTPException: _http_error,
        },
    )


def dashboard_out(figures: backoffice.Dashboard) -> schemas.DashboardOut:
    """The dashboard's figures as JSON."""
    clients = {c.id: c for c in figures.clients}
    calls: dict[tuple[int, str], int] = {}
    for point in figures.calls:
        client = clients.get(point.client_id)
        key = (point.start_ms, client.protocol if client else "?")
        calls[key] = calls.get(key, 0) + point.count
    return schemas.DashboardOut(
        at=iso(figures.now_ms),
        callsPerMinute=[
            schemas.CallsPoint(iso(start), protocol, count)
            for (start, protocol), count in sorted(calls.items())
        ],
        revenuePerDay=[
            schemas.RevenuePoint(
                iso(f.start_ms),
                f.client_id,
                clients[f.client_id].name if f.client_id in clients else "?",
                f.currency,
                money(f.debit_minor),
                money(f.credit_minor),
                money(f.debit_minor - f.credit_minor)
                if f.client_id in clients and clients[f.client_id].protocol == "seamless"
                else None,
            )
            for f in figures.flows
        ],
        open=[
            schemas.OpenOut(
                t.client_id,
                t.currency,
                t.state,
                t.kind,
                t.count,
                money(t.amount_minor),
                money(t.free_minor),
                iso(t.oldest_ms),
            )
            for t in figures.open_totals
        ],
        outboxDepth=dict(figures.outbox_depth),
    )
