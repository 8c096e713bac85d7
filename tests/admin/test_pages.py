"""The admin pages over HTTP (in process, SQLite and PostgreSQL): signing in and out,
cookies, CSRF refusals, roles, forms that change things, security headers and the CSV
export. The browser tests (tests/browser) drive the same pages in Chromium."""

from __future__ import annotations

import re

import httpx

from gamewallet.core.money import UNIT
from gamewallet.settings import Settings

from .conftest import CSRF_INPUT, OPERATOR, VIEWER, Desk


async def _login_form(http: httpx.AsyncClient) -> str:
    page = await http.get("/admin/login")
    found = CSRF_INPUT.search(page.text)
    assert found is not None
    return found.group(1)


async def test_pages_redirect_to_sign_in_and_back(desk: Desk) -> None:
    response = await desk.http.get("/admin/players?q=p1")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=%2Fadmin%2Fplayers%3Fq%3Dp1"
    csrf = await _login_form(desk.http)
    signed_in = await desk.http.post(
        "/admin/login",
        data={
            "username": OPERATOR[0],
            "password": OPERATOR[1],
            "csrf_token": csrf,
            "next": "/admin/players?q=p1",
        },
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/admin/players?q=p1"
    page = await desk.http.get("/admin/players?q=p1")
    assert page.status_code == 200
    assert 'href="/admin/players/' in page.text


async def test_the_session_cookie_is_httponly_strict_and_never_stored_in_clear(
    desk: Desk,
) -> None:
    csrf = await _login_form(desk.http)
    response = await desk.http.post(
        "/admin/login",
        data={"username": OPERATOR[0], "password": OPERATOR[1], "csrf_token": csrf},
    )
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("gw_admin="))
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain HTTP in this test; see the next test
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    from gamewallet.store import admin_ops
    from gamewallet.store.port import do

    user = await desk.services.store.run(do(admin_ops.GetAdminUser(name=OPERATOR[0])))
    assert user is not None
    assert value not in user.password_hash
    # The database keeps only the cookie's keyed hash.
    from gamewallet.service import backoffice

    digest = backoffice.secret_hash(value, desk.services.key)
    stored = await desk.services.store.run(do(admin_ops.GetAdminSession(digest)))
    assert stored is not None
    assert await desk.services.store.run(do(admin_ops.GetAdminSession(value))) is None


async def test_secure_cookies_when_configured(desk: Desk) -> None:
    from dataclasses import replace
    from typing import Any

    from gamewallet.app import create_app

    desk.services.settings = replace(desk.services.settings, admin_cookie_secure=True)
    app: Any = create_app(desk.services, manage_store=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://admin.test"
    ) as http:
        form = await http.get("/admin/login")
        assert "Secure" in form.headers["set-cookie"]
        csrf = CSRF_INPUT.search(form.text)
        assert csrf is not None
        response = await http.post(
            "/admin/login",
            data={"username": OPERATOR[0], "password": OPERATOR[1], "csrf_token": csrf.group(1)},
        )
        session = next(h for h in response.headers.get_list("set-cookie") if "gw_admin=" in h)
        assert "Secure" in session


async def test_sign_in_refusals(desk: Desk) -> None:
    # No login cookie / token: refused before the password is even looked at.
    forged = await desk.http.post(
        "/admin/login", data={"username": OPERATOR[0], "password": OPERATOR[1]}
    )
    assert forged.status_code == 403
    csrf = await _login_form(desk.http)
    wrong = await desk.http.post(
        "/admin/login", data={"username": OPERATOR[0], "password": "nope", "csrf_token": csrf}
    )
    assert wrong.status_code == 401
    assert "Wrong user name or password" in wrong.text
    csrf = await _login_form(desk.http)
    unknown = await desk.http.post(
        "/admin/login", data={"username": "mallory", "password": "x", "csrf_token": csrf}
    )
    assert unknown.status_code == 401
    assert "Wrong user name or password" in unknown.text  # the same words: no user probing
    assert "gw_admin=" not in str(unknown.headers.get_list("set-cookie"))


async def test_repeated_failures_lock_the_account_for_a_while(desk: Desk) -> None:
    limit = desk.services.settings.admin_login_failures_max
    for _ in range(limit):
        csrf = await _login_form(desk.http)
        await desk.http.post(
            "/admin/login", data={"username": VIEWER[0], "password": "bad", "csrf_token": csrf}
        )
    csrf = await _login_form(desk.http)
    locked = await desk.http.post(
        "/admin/login", data={"username": VIEWER[0], "password": VIEWER[1], "csrf_token": csrf}
    )
    assert locked.status_code == 401
    assert "locked" in locked.text
    desk.clock.advance(desk.services.settings.admin_login_lockout_s + 1)
    csrf = await _login_form(desk.http)
    unlocked = await desk.http.post(
        "/admin/login", data={"username": VIEWER[0], "password": VIEWER[1], "csrf_token": csrf}
    )
    assert unlocked.status_code == 303


async def test_forms_without_the_csrf_token_are_refused(desk: Desk) -> None:
    csrf = await desk.sign_in()
    p1 = desk.players["p1"].id
    form = {"amount": "5", "reason": "goodwill", "bucket": "cash"}
    for data in (form, {**form, "csrf_token": "forged"}):
        refused = await desk.http.post(f"/admin/players/{p1}/adjust", data=data)
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    for path in (f"/admin/players/{p1}/block", "/admin/audit", "/admin/logout"):
        assert (await desk.http.post(path, data={})).status_code == 403, path
    assert (await desk.player("p1")).cash.balance.posted_minor == 100 * UNIT
    accepted = await desk.http.post(
        f"/admin/players/{p1}/adjust", data={**form, "csrf_token": csrf}
    )
    assert accepted.status_code == 303
    assert accepted.headers["location"] == f"/admin/players/{p1}?notice=adjusted"
    assert (await desk.player("p1")).cash.balance.posted_minor == 105 * UNIT


async def test_an_adjustment_form_error_keeps_what_was_typed(desk: Desk) -> None:
    csrf = await desk.sign_in()
    p2 = desk.players["p2"].id
    response = await desk.http.post(
        f"/admin/players/{p2}/adjust",
        data={"amount": "-50", "reason": "too much", "csrf_token": csrf, "request_id": "r9"},
    )
    assert response.status_code == 422
    assert "insufficient funds" in response.text
    assert 'value="-50"' in response.text
    assert "too much</textarea>" in response.text
    assert (await desk.player("p2")).cash.balance.posted_minor == 5 * UNIT


async def test_a_double_submitted_adjustment_form_applies_once(desk: Desk) -> None:
    csrf = await desk.sign_in()
    p2 = desk.players["p2"].id
    page = await desk.http.get(f"/admin/players/{p2}")
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert request_id is not None
    data = {"amount": "1", "reason": "bonus", "csrf_token": csrf, "request_id": request_id[1]}
    for _ in range(2):
        assert (await desk.http.post(f"/admin/players/{p2}/adjust", data=data)).status_code == 303
    assert (await desk.player("p2")).cash.balance.posted_minor == 6 * UNIT


async def test_a_viewer_sees_no_change_forms_and_cannot_post_them(desk: Desk) -> None:
    csrf = await desk.sign_in(VIEWER)
    p1 = desk.players["p1"].id
    page = await desk.http.get(f"/admin/players/{p1}")
    assert page.status_code == 200
    assert "Manual adjustment" not in page.text
    assert "/adjust" not in page.text
    refused = await desk.http.post(
        f"/admin/players/{p1}/adjust",
        data={"amount": "1", "reason": "x", "csrf_token": csrf},
    )
    assert refused.status_code == 403
    assert "operator role" in refused.text
    assert (await desk.http.post("/admin/audit", data={"csrf_token": csrf})).status_code == 200


async def test_every_page_renders_with_security_headers(desk: Desk) -> None:
    await desk.sign_in()
    pages = [
        "/admin/",
        "/admin/players",
        f"/admin/players/{desk.players['p1'].id}",
        "/admin/operations?state=completed",
        "/admin/holds",
        "/admin/outbox?state=dead",
        "/admin/clients",
        f"/admin/clients/{desk.client.id}/rotate",
        "/admin/reconciliation",
        "/admin/audit",
    ]
    for path in pages:
        page = await desk.http.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert "<script" not in page.text.lower()
        headers = page.headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert headers["x-request-id"]
        assert '<main id="main"' in page.text
        assert 'lang="en"' in page.text
    css = await desk.http.get("/admin/static/admin.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


async def test_unknown_objects_and_bad_filters_get_an_error_page(desk: Desk) -> None:
    await desk.sign_in()
    missing = await desk.http.get("/admin/players/99999")
    assert missing.status_code == 404
    assert "player not found" in missing.text
    bad = await desk.http.get("/admin/operations?since=someday")
    assert bad.status_code == 400
    assert "not a date" in bad.text


async def test_operations_csv_from_the_pages(desk: Desk) -> None:
    await desk.sign_in()
    response = await desk.http.get("/admin/operations.csv?since=2026-01-01&until=2026-01-01")
    assert response.status_code == 200
    assert (
        'filename="operations-2026-01-01-2026-01-01.csv"' in response.headers["content-disposition"]
    )
    lines = response.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("operation_id,created_at_utc")
    assert len(lines) == 3  # header + the two fundings


async def test_rotate_and_create_client_pages_show_secrets_once(desk: Desk) -> None:
    csrf = await desk.sign_in()
    rotated = await desk.http.post(
        f"/admin/clients/{desk.client.id}/rotate", data={"csrf_token": csrf}
    )
    assert rotated.status_code == 200
    secret = re.search(r'id="new-secret">([^<]+)<', rotated.text)
    assert secret is not None
    listing = await desk.http.get("/admin/clients")
    assert secret[1] not in listing.text
    created = await desk.http.post(
        "/admin/clients",
        data={
            "csrf_token": csrf,
            "protocol": "jdb",
            "name": "dc9",
            "currency": "rmb",
            "parent": "agent9",
        },
    )
    assert created.status_code == 200
    assert re.search(r'id="new-aes-key">[^<]{16}<', created.text)
    refused = await desk.http.post(
        "/admin/clients", data={"csrf_token": csrf, "protocol": "hrg", "name": "x"}
    )
    assert refused.status_code == 422
    assert "username" in refused.text


async def test_sign_out_ends_the_session(desk: Desk) -> None:
    csrf = await desk.sign_in()
    response = await desk.http.post("/admin/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert "gw_admin=" in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert (await desk.http.get("/admin/")).status_code == 303


async def test_an_expired_session_signs_out(desk: Desk, settings: Settings) -> None:
    await desk.sign_in()
    desk.clock.advance(settings.admin_session_ttl_s + 1)
    assert (await desk.http.get("/admin/")).status_code == 303
    assert (await desk.http.get("/admin/api/me")).status_code == 401
