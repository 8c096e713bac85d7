"""The back-office web pages under ``/admin``: server-rendered Jinja2, no JavaScript.

Sign-in, dashboard (charts drawn as inline SVG), player search and detail (block, unblock,
manual adjustment), operations history with filters and CSV export, outstanding holds and
tombstones, the outbox (retry now), clients (create, rotate secret), reconciliation
decisions, and the audit page (run the ledger audit; the staff-action trail).

Every form that changes something carries the session's CSRF token and is refused without
it (see :mod:`gamewallet.admin.security`); viewers see no change forms, and the guard refuses
their changes anyway. A successful change redirects (post/redirect/get) with a notice code
from a fixed table, so no text from the query string ever reaches a page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response, Router, get, post
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Stream

from gamewallet.admin import charts, schemas
from gamewallet.admin.actions import Backoffice, names_of
from gamewallet.admin.api import STATUS_OF, dashboard_out
from gamewallet.admin.formats import (
    FormatError,
    day_label,
    minute_label,
    money_grouped,
    parse_signed_amount,
    short_time,
)
from gamewallet.admin.security import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    add_security_headers,
    current,
    expired_session_cookie,
    login_cookie,
    make_guard,
    principal_of,
    same_secret,
    session_cookie,
)
from gamewallet.core.errors import WalletError
from gamewallet.core.ledger import Bucket
from gamewallet.core.money import SCALE
from gamewallet.service import backoffice
from gamewallet.service.backoffice import (
    DAY_MS,
    MINUTE_MS,
    OPERATOR,
    Adjustment,
    Dashboard,
    LoginPolicy,
)
from gamewallet.store.records import ClientRecord

HTML = "text/html; charset=utf-8"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
OPERATOR_ONLY = {"role": OPERATOR}
PAGE = 50
#: Size of the drawings of wide charts on phones (labels stay readable once scaled down).
NARROW_WIDTH, NARROW_HEIGHT = 420, 240
#: A player page shows its newest operations; older ones are a page further.
HISTORY_PAGE = 25

#: Notices shown after a redirect, by code (never text taken from the request).
NOTICES = {
    "adjusted": "Adjustment posted.",
    "blocked": "Player blocked: withdrawals are refused until unblocked.",
    "unblocked": "Player unblocked.",
    "game-ended": "Game ended: withdrawals open after the game type's cooldown.",
    "retried": "Message queued for delivery now.",
    "signed-out": "You are signed out.",
}

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["money"] = money_grouped
_environment.filters["time"] = short_time
_environment.globals["nav"] = (
    ("/admin/", "Dashboard"),
    ("/admin/players", "Players"),
    ("/admin/operations", "Operations"),
    ("/admin/holds", "Holds"),
    ("/admin/outbox", "Outbox"),
    ("/admin/clients", "Clients"),
    ("/admin/reconciliation", "Reconciliation"),
    ("/admin/audit", "Audit"),
)


def render(
    template: str,
    request: Request[Any, Any, Any] | None,
    status: int = 200,
    **context: Any,
) -> Response[str]:
    """A page with the signed-in principal (if any), the current path and the notice."""
    principal = None
    path = ""
    notice = None
    if request is not None:
        principal = request.scope.get("state", {}).get("admin_principal")
        path = request.url.path
        notice = NOTICES.get(request.query_params.get("notice", ""))
    html = _environment.get_template(template).render(
        principal=principal, path=path, notice=notice, csrf_field=CSRF_FIELD, **context
    )
    return Response(html, media_type=HTML, status_code=status)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: only back-office paths of this site."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin/"


def _query(**values: Any) -> str:
    """A query string of the values that are set."""
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _pages(total: int, offset: int, limit: int, **filters: Any) -> dict[str, Any]:
    """Pagination links for a list page."""
    return {
        "total": total,
        "first": offset + 1 if total else 0,
        "last": min(offset + limit, total),
        "prev": _query(**filters, offset=max(offset - limit, 0)) if offset > 0 else None,
        "next": _query(**filters, offset=offset + limit) if offset + limit < total else None,
    }


def _dashboard_charts(figures: Dashboard) -> dict[str, Any]:
    """The dashboard's four charts from its figures."""
    clients = {c.id: c for c in figures.clients}
    minutes = [figures.calls_since_ms + i * MINUTE_MS for i in range(figures.minutes)]
    # A fixed order, so that each protocol keeps its colour and dash whatever the data.
    present = {c.protocol for c in figures.clients}
    protocols = [p for p in ("seamless", "hrg", "jdb") if p in present]
    per_minute: dict[str, list[float]] = {p: [0.0] * len(minutes) for p in protocols}
    for point in figures.calls:
        client = clients.get(point.client_id)
        index = (point.start_ms - figures.calls_since_ms) // MINUTE_MS
        if client is not None and 0 <= index < len(minutes):
            per_minute[client.protocol][index] += point.count
    calls_args = (
        "Wallet calls per minute, by protocol",
        f"Operations opened per minute over the last {figures.minutes} minutes (UTC).",
        [minute_label(m) for m in minutes],
        [charts.Series(p, per_minute[p]) for p in protocols],
    )
    calls = charts.line_chart("calls", *calls_args, label_every=10)
    calls.narrow = charts.line_chart(
        "calls-n", *calls_args, label_every=20, width=NARROW_WIDTH, height=NARROW_HEIGHT
    ).svg
    days = [figures.flows_since_ms + i * DAY_MS for i in range(figures.days)]
    revenue: dict[str, list[float]] = {}
    for flow in figures.flows:
        client = clients.get(flow.client_id)
        if client is None or client.protocol != "seamless":
            continue  # transfer clients move money in and out; stakes are not seen here
        name = f"{client.name} ({flow.currency})"
        index = (flow.start_ms - figures.flows_since_ms) // DAY_MS
        if 0 <= index < len(days):
            values = revenue.setdefault(name, [0.0] * len(days))
            values[index] += (flow.debit_minor - flow.credit_minor) / 10**SCALE
    ggr_args = (
        "Gross gaming revenue per day, by seamless client",
        f"Player stakes minus payouts posted per UTC day over the last {figures.days} days.",
        [day_label(d) for d in days],
        [charts.Series(name, values) for name, values in sorted(revenue.items())],
    )
    ggr = charts.bar_chart("ggr", *ggr_args, fmt=lambda v: f"{v:,.2f}", label_every=2)
    ggr.narrow = charts.bar_chart(
        "ggr-n",
        *ggr_args,
        fmt=lambda v: f"{v:,.2f}",
        label_every=4,
        width=NARROW_WIDTH,
        height=NARROW_HEIGHT,
    ).svg
    holds = _hbars(
        "holds",
        "Outstanding holds and pending credits",
        "Open operations per client and state, with the amount they hold.",
        [
            (
                _open_label(clients, t.client_id, t.state),
                t.count,
                f"{t.count} · {money_grouped(t.amount_minor)} {t.currency}",
            )
            for t in figures.open_totals
        ],
    )
    outbox = _hbars(
        "outbox",
        "Outbox depth",
        "Messages waiting for delivery (pending) and given up (dead).",
        [
            (state, figures.outbox_depth.get(state, 0), str(figures.outbox_depth.get(state, 0)))
            for state in ("pending", "dead")
        ],
    )
    return {"calls": calls, "ggr": ggr, "holds": holds, "outbox": outbox}


def _hbars(
    chart_id: str, title: str, description: str, items: list[tuple[str, float, str]]
) -> charts.Chart:
    """Horizontal bars, with a narrower drawing for phones."""
    chart = charts.hbar_chart(chart_id, title, description, items)
    chart.narrow = charts.hbar_chart(
        chart_id + "-n", title, description, items, width=330, value_w=110, stacked=True
    ).svg
    return chart


def _open_label(clients: Mapping[int, ClientRecord], client_id: int, state: str) -> str:
    name = clients[client_id].name if client_id in clients else str(client_id)
    return f"{name} · {'holds' if state == 'held' else 'pending credits'}"


def build_pages(office: Backoffice) -> Router:
    """The ``/admin`` pages router."""
    services = office.services
    store = services.store
    settings = services.settings
    secure = settings.admin_cookie_secure

    def now_ms() -> int:
        return services.clock.now_ms()

    async def client_rows() -> list[ClientRecord]:
        return await store.run(backoffice.list_clients())

    # --- signing in and out ------------------------------------------------------------

    @get("/login", opt={"public": True})
    async def login_form(
        request: Request[Any, Any, Any],
        target: Annotated[str | None, QueryParameter(name="next")] = None,
    ) -> Response[Any]:
        if await principal_of(request, services) is not None:
            return Redirect(_safe_next(target))
        token = backoffice.new_session_secret()
        response = render("login.html", request, next=_safe_next(target), login_csrf=token)
        response.set_cookie(login_cookie(token, secure=secure))
        return response

    @post("/login", opt={"public": True}, status_code=303)
    async def login(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        name = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "")))
        given = str(form.get(CSRF_FIELD, ""))
        if not same_secret(given, request.cookies.get(LOGIN_COOKIE)):
            return _login_again(
                request, target, "Your sign-in form expired. Please try again.", 403
            )
        user = await store.run(backoffice.find_user(name))
        ok = await asyncio.to_thread(
            backoffice.verify_password, user.password_hash if user else None, password
        )
        if user is None:
            return _login_again(request, target, "Wrong user name or password.", 401)
        cookie = backoffice.new_session_secret()
        policy = LoginPolicy(
            settings.admin_login_failures_max,
            settings.admin_login_lockout_s * 1000,
            settings.admin_session_ttl_s * 1000,
        )
        peer = request.client.host if request.client else ""
        result = await store.run(
            backoffice.finish_login(
                user.id,
                ok,
                backoffice.secret_hash(cookie, services.key),
                backoffice.new_session_secret(),
                policy,
                now_ms(),
                address=peer,
            )
        )
        if not result.ok:
            message = (
                "Too many failed attempts: this account is locked for a while."
                if result.reason == "locked"
                else "Wrong user name or password."
            )
            return _login_again(request, target, message, 401)
        response: Response[Any] = Redirect(target, status_code=303)
        response.set_cookie(session_cookie(cookie, settings.admin_session_ttl_s, secure=secure))
        response.set_cookie(login_cookie("", secure=secure, max_age_s=0))
        return response

    def _login_again(
        request: Request[Any, Any, Any], target: str, error: str, status: int
    ) -> Response[Any]:
        token = backoffice.new_session_secret()
        response = render("login.html", request, status, next=target, login_csrf=token, error=error)
        response.set_cookie(login_cookie(token, secure=secure))
        return response

    @post("/logout", status_code=303)
    async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
        principal = current(request)
        cookie = request.cookies.get(SESSION_COOKIE, "")
        await store.run(
            backoffice.logout(
                backoffice.secret_hash(cookie, services.key), now_ms(), actor=principal.actor
            )
        )
        response: Response[Any] = Redirect("/admin/login?notice=signed-out", status_code=303)
        response.set_cookie(expired_session_cookie(secure=secure))
        return response

    # --- dashboard ---------------------------------------------------------------------

    @get("/")
    async def dashboard(request: Request[Any, Any, Any]) -> Response[str]:
        figures = await office.dashboard()
        summary = dashboard_out(figures)
        return render(
            "dashboard.html",
            request,
            figures=figures,
            summary=summary,
            charts=_dashboard_charts(figures),
            clients={c.id: c for c in figures.clients},
        )

    # --- players -----------------------------------------------------------------------

    @get("/players")
    async def players(
        request: Request[Any, Any, Any],
        q: FromQuery[str | None] = None,
        client_field: Annotated[str | None, QueryParameter(name="client")] = None,
        offset: FromQuery[int] = 0,
    ) -> Response[str]:
        offset, limit = office.page(offset, PAGE)
        client = _optional_id(client_field)
        rows, total = await store.run(backoffice.search_players(client, q, offset, limit))
        clients = await client_rows()
        return render(
            "players.html",
            request,
            q=q or "",
            client=client,
            clients=clients,
            names=names_of(clients),
            players=rows,
            pages=_pages(total, offset, limit, q=q, client=client),
        )

    async def _player_page(
        request: Request[Any, Any, Any],
        player_id: int,
        offset: int = 0,
        status: int = 200,
        **extra: Any,
    ) -> Response[str]:
        offset, limit = office.page(offset, HISTORY_PAGE)
        detail = await store.run(backoffice.player_detail(player_id, offset, limit))
        return render(
            "player.html",
            request,
            status,
            detail=detail,
            player=detail.player,
            client=detail.client,
            pages=_pages(detail.operations_total, offset, limit),
            request_id=backoffice.new_session_secret(),
            **extra,
        )

    @get("/players/{player_id:int}")
    async def player(
        request: Request[Any, Any, Any], player_id: FromPath[int], offset: FromQuery[int] = 0
    ) -> Response[str]:
        return await _player_page(request, player_id, offset)

    async def _set_blocked(
        request: Request[Any, Any, Any], player_id: int, blocked: bool
    ) -> Response[Any]:
        form = await request.form()
        await store.run(
            backoffice.set_blocked(
                player_id,
                blocked,
                now_ms(),
                current(request),
                reason=str(form.get("reason", "")).strip()[:500],
            )
        )
        notice = "blocked" if blocked else "unblocked"
        return Redirect(f"/admin/players/{player_id}?notice={notice}", status_code=303)

    @post("/players/{player_id:int}/block", opt=OPERATOR_ONLY, status_code=303)
    async def block(request: Request[Any, Any, Any], player_id: FromPath[int]) -> Response[Any]:
        return await _set_blocked(request, player_id, True)

    @post("/players/{player_id:int}/unblock", opt=OPERATOR_ONLY, status_code=303)
    async def unblock(request: Request[Any, Any, Any], player_id: FromPath[int]) -> Response[Any]:
        return await _set_blocked(request, player_id, False)

    @post("/players/{player_id:int}/end-game", opt=OPERATOR_ONLY, status_code=303)
    async def end_game(request: Request[Any, Any, Any], player_id: FromPath[int]) -> Response[Any]:
        form = await request.form()
        reason = str(form.get("reason", "")).strip()[:500]
        await store.run(backoffice.end_game(player_id, now_ms(), current(request), reason=reason))
        return Redirect(f"/admin/players/{player_id}?notice=game-ended", status_code=303)

    @post("/players/{player_id:int}/adjust", opt=OPERATOR_ONLY, status_code=303)
    async def adjust(request: Request[Any, Any, Any], player_id: FromPath[int]) -> Response[Any]:
        form = await request.form()
        values = {k: str(form.get(k, "")) for k in ("amount", "reason", "bucket", "request_id")}
        try:
            change = Adjustment(
                player_id,
                parse_signed_amount(values["amount"]),
                values["reason"],
                Bucket(values["bucket"]) if values["bucket"] == "free" else Bucket.CASH,
                values["request_id"] or None,
            )
            await store.run(backoffice.adjust(change, now_ms(), current(request)))
        except (FormatError, WalletError) as exc:
            message = str(exc) if isinstance(exc, FormatError) else exc.detail
            return await _player_page(
                request, player_id, status=422, adjust_error=message, adjust_values=values
            )
        office.forget_dashboard()
        return Redirect(f"/admin/players/{player_id}?notice=adjusted", status_code=303)

    # --- operations, holds, CSV --------------------------------------------------------

    @get("/operations")
    async def operations(
        request: Request[Any, Any, Any],
        client_field: Annotated[str | None, QueryParameter(name="client")] = None,
        kind: FromQuery[str | None] = None,
        wanted_state: Annotated[str | None, QueryParameter(name="state")] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
        offset: FromQuery[int] = 0,
    ) -> Response[str]:
        offset, limit = office.page(offset, PAGE)
        client = _optional_id(client_field)
        filters = {
            "client": client,
            "kind": kind,
            "state": wanted_state,
            "since": since,
            "until": until,
        }
        clients = await client_rows()
        error = None
        try:
            where = office.operation_filter(
                client=client, kind=kind, state=wanted_state, since=since, until=until
            )
            rows, total = await store.run(backoffice.list_operations(where, offset, limit))
        except FormatError as exc:
            error, rows, total = str(exc), [], 0
        players = await store.run(backoffice.player_names(o.player_id for o in rows))
        return render(
            "operations.html",
            request,
            400 if error else 200,
            filters=filters,
            error=error,
            clients=clients,
            names=names_of(clients),
            players=players,
            operations=rows,
            pages=_pages(total, offset, limit, **filters),
            export=_query(**filters),
        )

    @get("/operations.csv")
    async def export(
        client_field: Annotated[str | None, QueryParameter(name="client")] = None,
        kind: FromQuery[str | None] = None,
        wanted_state: Annotated[str | None, QueryParameter(name="state")] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Stream:
        where = office.operation_filter(
            client=_optional_id(client_field),
            kind=kind,
            state=wanted_state,
            since=since,
            until=until,
        )
        name = f"operations-{since or 'start'}-{until or 'now'}.csv".replace(":", "")
        return Stream(
            office.export_csv(where),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{_filename(name)}"'},
        )

    @get("/holds")
    async def holds(
        request: Request[Any, Any, Any], offset: FromQuery[int] = 0, toffset: FromQuery[int] = 0
    ) -> Response[str]:
        offset, limit = office.page(offset, PAGE)
        toffset, _ = office.page(toffset, PAGE)
        open_rows, open_total = await store.run(backoffice.open_operations(None, offset, limit))
        dead_rows, dead_total = await store.run(backoffice.tombstones(None, toffset, limit))
        clients = await client_rows()
        players = await store.run(
            backoffice.player_names(o.player_id for o in [*open_rows, *dead_rows])
        )
        return render(
            "holds.html",
            request,
            names=names_of(clients),
            players=players,
            holds=open_rows,
            pages=_pages(open_total, offset, limit, toffset=toffset or None),
            tombstones=dead_rows,
            tpages=_tomb_pages(dead_total, toffset, limit, offset),
            now=now_ms(),
        )

    # --- outbox ------------------------------------------------------------------------

    @get("/outbox")
    async def outbox(
        request: Request[Any, Any, Any],
        wanted_state: Annotated[str | None, QueryParameter(name="state")] = None,
        offset: FromQuery[int] = 0,
    ) -> Response[str]:
        offset, limit = office.page(offset, PAGE)
        state = wanted_state if wanted_state in ("pending", "dead", "done") else None
        rows, total = await store.run(backoffice.outbox(state, offset, limit))
        return render(
            "outbox.html",
            request,
            state=state or "",
            messages=rows,
            names=names_of(await client_rows()),
            pages=_pages(total, offset, limit, state=state),
        )

    @post("/outbox/{outbox_id:int}/retry", opt=OPERATOR_ONLY, status_code=303)
    async def retry(request: Request[Any, Any, Any], outbox_id: FromPath[int]) -> Response[Any]:
        retried = await store.run(backoffice.retry_outbox(outbox_id, now_ms(), current(request)))
        if not retried:
            raise NotFoundException("no such message, or it was already delivered")
        office.forget_dashboard()
        form = await request.form()
        state = str(form.get("state", ""))
        back = _query(state=state if state in ("pending", "dead", "done") else None)
        return Redirect(f"/admin/outbox?{back}&notice=retried".replace("?&", "?"), status_code=303)

    # --- clients -----------------------------------------------------------------------

    async def _clients_page(
        request: Request[Any, Any, Any], status: int = 200, **extra: Any
    ) -> Response[str]:
        totals, rows = await store.run(backoffice.balances())
        return render(
            "clients.html",
            request,
            status,
            clients=rows,
            balances=totals,
            names=names_of(rows),
            **extra,
        )

    @get("/clients")
    async def clients(request: Request[Any, Any, Any]) -> Response[str]:
        return await _clients_page(request)

    @get("/clients/{client_id:int}/rotate", opt=OPERATOR_ONLY)
    async def confirm_rotate(
        request: Request[Any, Any, Any], client_id: FromPath[int]
    ) -> Response[str]:
        client = await store.run(backoffice.get_client(client_id))
        return render("rotate.html", request, client=client)

    @post("/clients", opt=OPERATOR_ONLY, status_code=200)
    async def create_client(request: Request[Any, Any, Any]) -> Response[str]:
        form = await request.form()
        values = {
            k: str(form.get(k, "")).strip()
            for k in (
                "protocol",
                "name",
                "username",
                "currency",
                "credit_limit",
                "parent",
                "game_url",
            )
        }
        config: dict[str, Any] = {}
        if values["game_url"]:
            config["game_url"] = values["game_url"]
        if values["protocol"] == "jdb" and values["parent"]:
            config["parent"] = values["parent"]
        try:
            if values["protocol"] not in ("seamless", "hrg", "jdb"):
                raise FormatError("choose a protocol")
            data = schemas.ClientIn(
                protocol=values["protocol"],  # type: ignore[arg-type]
                name=values["name"],
                username=values["username"] or None,
                currency=values["currency"].upper() or None,
                creditLimit=values["credit_limit"] or None,
                config=config,
            )
            client, credentials = await office.create_client(data, current(request))
        except (FormatError, WalletError) as exc:
            message = str(exc) if isinstance(exc, FormatError) else exc.detail
            return await _clients_page(request, 422, create_error=message, create_values=values)
        return render(
            "credentials.html", request, client=client, credentials=credentials, created=True
        )

    @post("/clients/{client_id:int}/rotate", opt=OPERATOR_ONLY, status_code=200)
    async def rotate(request: Request[Any, Any, Any], client_id: FromPath[int]) -> Response[str]:
        client, credentials = await office.rotate_secret(client_id, current(request))
        return render(
            "credentials.html", request, client=client, credentials=credentials, created=False
        )

    # --- reconciliation, audit ---------------------------------------------------------

    @get("/reconciliation")
    async def reconciliation(
        request: Request[Any, Any, Any], offset: FromQuery[int] = 0
    ) -> Response[str]:
        offset, limit = office.page(offset, PAGE)
        rows, total = await store.run(backoffice.reconciliations(None, offset, limit))
        clients = await client_rows()
        return render(
            "reconciliation.html",
            request,
            decisions=rows,
            names=names_of(clients),
            pages=_pages(total, offset, limit),
        )

    async def _audit_page(
        request: Request[Any, Any, Any],
        offset: int,
        actor: str | None,
        violations: list[str] | None,
    ) -> Response[str]:
        offset, limit = office.page(offset, PAGE)
        rows, total = await store.run(backoffice.events(actor or None, None, offset, limit))
        return render(
            "audit.html",
            request,
            violations=violations,
            events=[schemas.event_out(e) for e in rows],
            actor=actor or "",
            pages=_pages(total, offset, limit, actor=actor),
        )

    @get("/audit")
    async def audit(
        request: Request[Any, Any, Any],
        offset: FromQuery[int] = 0,
        actor: FromQuery[str | None] = None,
    ) -> Response[str]:
        return await _audit_page(request, offset, actor, None)

    @post("/audit", status_code=200)
    async def run_audit(request: Request[Any, Any, Any]) -> Response[str]:
        violations = await store.run(backoffice.run_audit(now_ms(), current(request)))
        return await _audit_page(request, 0, None, violations)

    # --- static ------------------------------------------------------------------------

    stylesheet = (STATIC / "admin.css").read_bytes()

    @get("/static/admin.css", opt={"public": True})
    async def css() -> Response[bytes]:
        return Response(
            stylesheet,
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    guard = make_guard(services)

    async def page_guard(connection: Any, handler: Any) -> None:
        if handler.opt.get("public"):
            return
        await guard(connection, handler)

    return Router(
        path="/admin",
        route_handlers=[
            login_form,
            login,
            logout,
            dashboard,
            players,
            player,
            block,
            unblock,
            end_game,
            adjust,
            operations,
            export,
            holds,
            outbox,
            retry,
            clients,
            create_client,
            confirm_rotate,
            rotate,
            reconciliation,
            audit,
            run_audit,
            css,
        ],
        guards=[page_guard],
        include_in_schema=False,
        after_request=_page_headers,
        exception_handlers={
            NotAuthorizedException: _to_login,
            PermissionDeniedException: _error_page,
            WalletError: _wallet_error_page,
            FormatError: _format_error_page,
            HTTPException: _error_page,
        },
    )


def _optional_id(text: str | None) -> int | None:
    """An id from a form's select (the empty option means "all")."""
    if text is None or not text.strip():
        return None
    if not text.strip().isdigit():
        raise FormatError(f"not an id: {text!r}")
    return int(text)


def _tomb_pages(total: int, toffset: int, limit: int, offset: int) -> dict[str, Any]:
    return {
        "total": total,
        "first": toffset + 1 if total else 0,
        "last": min(toffset + limit, total),
        "prev": _query(offset=offset or None, toffset=max(toffset - limit, 0))
        if toffset > 0
        else None,
        "next": _query(offset=offset or None, toffset=toffset + limit)
        if toffset + limit < total
        else None,
    }


def _filename(name: str) -> str:
    return "".join(ch for ch in name if ch.isalnum() or ch in "-_.") or "operations.csv"


def _page_headers(response: Response[Any]) -> Response[Any]:
    if response.media_type and str(response.media_type).startswith("text/css"):
        return response
    return add_security_headers(response)


def _to_login(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method != "GET":
        target = "/admin/"
    response: Response[Any] = Redirect(
        "/admin/login?" + urlencode({"next": target}), status_code=303
    )
    return add_security_headers(response)


def _error_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    titles: Mapping[int, str] = {
        403: "Not allowed",
        404: "Not found",
        400: "Bad request",
        405: "Method not allowed",
        413: "Too large",
    }
    status = exc.status_code
    response = render(
        "error.html",
        request,
        status,
        title=titles.get(status, "Something went wrong"),
        message=exc.detail if status < 500 else "An unexpected error; it has been logged.",
    )
    return add_security_headers(response)


def _wallet_error_page(request: Request[Any, Any, Any], exc: WalletError) -> Response[Any]:
    status = STATUS_OF.get(exc.code, 409)
    return _error_page(request, HTTPException(status_code=status, detail=exc.detail))


def _format_error_page(request: Request[Any, Any, Any], exc: FormatError) -> Response[Any]:
    return _error_page(request, HTTPException(status_code=400, detail=str(exc)))
