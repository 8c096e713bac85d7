"""Who may use the back-office, and how requests prove it.

Two ways in: a browser signs in with a password and holds a session cookie (``HttpOnly``,
``SameSite=Strict``, ``Secure`` when configured); a script sends ``Authorization: Bearer
<token>``. Either way the database stores only a keyed hash of the secret, and one lookup
per request finds the principal. Every route carries the role it needs in its ``opt``
(``viewer`` by default, ``operator`` for changes) and one guard enforces it.

CSRF: a change made with a session cookie must also carry the session's CSRF token, as the
form field ``csrf_token`` or the header ``X-CSRF-Token`` (compared in constant time). The
sign-in form, made before any session exists, uses a double-submit cookie instead. Bearer
tokens are not sent by browsers on their own, so token calls need no CSRF token.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from gamewallet.service import backoffice
from gamewallet.service.backoffice import OPERATOR, Principal
from gamewallet.service.context import Services

SESSION_COOKIE = "gw_admin"
#: The sign-in form's double-submit CSRF cookie (lives only on the sign-in page's path).
LOGIN_COOKIE = "gw_admin_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_STATE_KEY = "admin_principal"

#: Sent with every back-office response: no framing, no sniffing, no referrer, no caching,
#: and a policy that allows only this server's own stylesheet and inline SVG (no scripts).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class CsrfRefused(PermissionDeniedException):
    """A change with a session cookie but without the session's CSRF token."""


def session_cookie(value: str, max_age_s: int, *, secure: bool) -> Cookie:
    """The session cookie: unreadable by scripts, never sent by other sites."""
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        max_age=max_age_s,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def expired_session_cookie(*, secure: bool) -> Cookie:
    """A cookie that makes the browser forget the session."""
    return Cookie(
        key=SESSION_COOKIE,
        value="",
        max_age=0,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def login_cookie(value: str, *, secure: bool, max_age_s: int = 600) -> Cookie:
    """The sign-in form's CSRF cookie (ten minutes to fill in the form; 0 forgets it)."""
    return Cookie(
        key=LOGIN_COOKIE,
        value=value,
        max_age=max_age_s,
        path="/admin/login",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time equality of two secrets; missing ones never match."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if that is what it is."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def principal_of(
    connection: ASGIConnection[Any, Any, Any, Any], services: Services
) -> Principal | None:
    """Who is calling (once per request: the answer is kept on the connection)."""
    state = connection.scope.setdefault("state", {})
    if _STATE_KEY in state:
        cached: Principal | None = state[_STATE_KEY]
        return cached
    now_ms = services.clock.now_ms()
    principal: Principal | None = None
    token = bearer_token(connection.headers.get("authorization"))
    if token is not None:
        digest = backoffice.secret_hash(token, services.key)
        principal = await services.store.run(backoffice.token_principal(digest, now_ms))
    else:
        cookie = connection.cookies.get(SESSION_COOKIE)
        if cookie:
            digest = backoffice.secret_hash(cookie, services.key)
            principal = await services.store.run(backoffice.session_principal(digest, now_ms))
    state[_STATE_KEY] = principal
    return principal


def current(request: Request[Any, Any, Any]) -> Principal:
    """The principal a guard has already admitted for this request."""
    principal = request.scope.get("state", {}).get(_STATE_KEY)
    assert isinstance(principal, Principal), "route without the admin guard"
    return principal


def make_guard(services: Services) -> Any:
    """The guard of every back-office route: signed in, the route's role, and CSRF."""

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        principal = await principal_of(connection, services)
        if principal is None:
            raise NotAuthorizedException("sign in first", headers={"WWW-Authenticate": "Bearer"})
        if handler.opt.get("role") == OPERATOR and not principal.can_change:
            raise PermissionDeniedException("this needs the operator role")
        method = connection.scope.get("method", "GET")
        if method in SAFE_METHODS or principal.via != "session":
            return
        given = connection.headers.get(CSRF_HEADER)
        if given is None and isinstance(connection, Request):
            form = await connection.form()
            field = form.get(CSRF_FIELD)
            given = field if isinstance(field, str) else None
        if not same_secret(given, principal.csrf_token):
            raise CsrfRefused("missing or wrong CSRF token")

    return guard


def add_security_headers(response: Response[Any]) -> Response[Any]:
    """``after_request`` hook: the headers of :data:`SECURITY_HEADERS`."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
