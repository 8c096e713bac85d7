"""The back-office against someone who should not be there: every page and API endpoint
without a sign-in, changes without (or with someone else's) CSRF token, a sign-in form posted
from another site, a viewer trying to change things, and the cookie's and pages' protections.
Nothing a refused request asked for may have happened (the player's balance is checked, and
the ledger audit runs after every test).
"""

from __future__ import annotations

import re

import httpx
from tests.admin.conftest import CSRF_INPUT, OPERATOR, VIEWER, VIEWER_TOKEN, Desk, bearer

from gamewallet.core.money import UNIT

PAGES = [
    "/admin/",
    "/admin/players",
    "/admin/players/{p1}",
    "/admin/operations",
    "/admin/operations.csv",
    "/admin/holds",
    "/admin/outbox",
    "/admin/clients",
    "/admin/reconciliation",
    "/admin/audit",
]
CHANGES = [
    ("/admin/players/{p1}/block", {}),
    ("/admin/players/{p1}/adjust", {"amount": "5", "reason": "x"}),
    ("/admin/audit", {}),
    ("/admin/clients", {"protocol": "seamless", "name": "evil", "username": "evil"}),
]


async def test_every_page_without_a_sign_in_goes_to_the_login_page(desk: Desk) -> None:
    p1 = desk.players["p1"].id
    for page in PAGES:
        response = await desk.http.get(page.format(p1=p1))
        assert response.status_code in (302, 303, 401), (page, response.status_code)
        if response.status_code != 401:
            assert response.headers["location"].startswith("/admin/login"), page
        assert "Nick p1" not in response.text


async def test_every_api_endpoint_without_credentials_is_401(desk: Desk) -> None:
    schema = (await desk.http.get("/schema/openapi.json")).json()
    checked = 0
    for path, methods in schema["paths"].items():
        if not path.startswith("/admin/api"):
            continue
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in methods:
            response = await desk.http.request(method.upper(), concrete)
            assert response.status_code == 401, (method, path, response.status_code)
            checked += 1
    assert checked >= 20


async def test_changes_need_this_sessions_csrf_token(desk: Desk) -> None:
    csrf = await desk.sign_in()
    p1 = desk.players["p1"].id
    for path, form in CHANGES:
        url = path.format(p1=p1)
        for token in (None, "", "x" * 43, csrf[:-1] + ("A" if csrf[-1] != "A" else "B")):
            data = dict(form) if token is None else {**form, "csrf_token": token}
            response = await desk.http.post(url, data=data)
            assert response.status_code == 403, (url, token, response.status_code)
    # Another user's session token is no good either.
    async with httpx.AsyncClient(
        transport=desk.http._transport, base_url=desk.http.base_url
    ) as other:
        other_desk = Desk(desk.services, desk.clock, other, desk.client, desk.players)
        other_csrf = await other_desk.sign_in(VIEWER)
    response = await desk.http.post(
        f"/admin/players/{p1}/adjust", data={"amount": "5", "reason": "x", "csrf_token": other_csrf}
    )
    assert response.status_code == 403
    player = await desk.player("p1")
    assert player.cash.balance.posted_minor == 100 * UNIT
    assert not player.blocked


async def test_a_sign_in_posted_from_another_site_is_refused(desk: Desk) -> None:
    # No login-form cookie (a cross-site form cannot read or set it): refused, no session.
    response = await desk.http.post(
        "/admin/login",
        data={"username": OPERATOR[0], "password": OPERATOR[1], "csrf_token": "forged"},
    )
    assert response.status_code in (400, 403)
    assert "gw_admin" not in desk.http.cookies
    assert (await desk.http.get("/admin/api/me")).status_code == 401


async def test_a_viewer_can_look_but_not_change(desk: Desk) -> None:
    csrf = await desk.sign_in(VIEWER)
    p1 = desk.players["p1"].id
    for path, form in CHANGES[:2]:
        response = await desk.http.post(path.format(p1=p1), data={**form, "csrf_token": csrf})
        assert response.status_code == 403, path
    response = await desk.http.post(
        f"/admin/api/players/{p1}/adjustments",
        json={"amount": "5", "reason": "x"},
        headers=bearer(VIEWER_TOKEN),
    )
    assert response.status_code == 403
    assert (await desk.player("p1")).cash.balance.posted_minor == 100 * UNIT


async def test_the_session_cookie_and_the_pages_are_protected(desk: Desk) -> None:
    form = await desk.http.get("/admin/login")
    token = CSRF_INPUT.search(form.text)
    assert token is not None
    response = await desk.http.post(
        "/admin/login",
        data={
            "username": OPERATOR[0],
            "password": OPERATOR[1],
            "csrf_token": token.group(1),
            "next": "/admin/",
        },
    )
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("gw_admin=")
    ).lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    page = await desk.http.get("/admin/")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


async def test_an_open_redirect_after_sign_in_is_not_followed(desk: Desk) -> None:
    form = await desk.http.get("/admin/login")
    token = CSRF_INPUT.search(form.text)
    assert token is not None
    response = await desk.http.post(
        "/admin/login",
        data={
            "username": OPERATOR[0],
            "password": OPERATOR[1],
            "csrf_token": token.group(1),
            "next": "https://evil.example/steal",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin")
