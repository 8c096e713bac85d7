"""The back-office in Chromium: sign in, find a player, watch a deposit made through the
seamless API appear, adjust a balance, retry a dead letter, filter and export operations,
run the audit, use it from the keyboard and on a phone. Each page's screenshot is saved in
docs/screenshots/ for docs/admin.md."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from typing import Any

from gamewallet.service import jdb
from gamewallet.store import ops
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import PlayerRecord

from .conftest import Live, shoot, sign_in


def nav(page: Any, name: str) -> None:
    """Follow a link of the main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def _available(page: Any) -> str:
    text: str = page.locator("#balance-available").inner_text()
    return text


def test_sign_in_refuses_a_wrong_password_then_opens_the_dashboard(page: Any, live: Live) -> None:
    # A bet still open and a win not yet confirmed, for the "outstanding holds" chart.
    for endpoint, tid, amount in (("withdraw", "open-bet", 7), ("deposit", "open-win", 30)):
        money = {"amount": amount, "currencyCode": "XAG"}
        live.wallet(endpoint, {"mmTransactionId": f"{tid}-{uuid.uuid4().hex[:6]}", "amount": money})
    page.goto("/admin/")
    assert "/admin/login" in page.url  # not signed in: sent to the sign-in page
    shoot(page, "login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert "Wrong user name or password" in page.get_by_role("alert").inner_text()
    sign_in(page)
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    for chart in ("calls", "ggr", "holds", "outbox"):
        svg = page.locator(f"svg[aria-labelledby='{chart}-t {chart}-d']")
        if chart != "outbox":  # nothing waits in the outbox yet
            assert svg.count() == 1, chart
    assert page.locator("svg polyline:visible").count() == 3  # one line per protocol
    assert page.locator("svg rect").count() > 10  # revenue bars of two weeks
    shoot(page, "dashboard")


def test_find_a_player_and_see_a_deposit_appear(page: Any, live: Live) -> None:
    sign_in(page)
    nav(page, "Players")
    page.get_by_label("Player id or nickname").fill("player1")
    page.get_by_label("Player id or nickname").press("Enter")
    page.get_by_role("link", name="player1", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("player1")
    before = _available(page)
    tid = f"win-{uuid.uuid4().hex[:12]}"
    money = {"amount": 25.5, "currencyCode": "XAG"}
    live.wallet("deposit", {"mmTransactionId": tid, "amount": money})
    page.reload()
    row = page.locator("tr", has=page.get_by_text(tid))
    assert "pending" in row.inner_text()
    live.wallet("confirmDeposit", {"mmTransactionId": tid, "amount": money})
    page.reload()
    assert "confirmed" in page.locator("tr", has=page.get_by_text(tid)).inner_text()
    after = _available(page)
    assert _units(after) - _units(before) == 25.5
    shoot(page, "player")


def _units(text: str) -> float:
    return float(text.replace(",", ""))


def test_adjust_a_balance_with_a_reason(page: Any, live: Live) -> None:
    sign_in(page)
    page.goto("/admin/players?q=player1")
    page.get_by_role("link", name="player1", exact=True).click()
    before = _units(_available(page))
    page.get_by_label("Amount (XAG)").fill("-100000000")
    page.get_by_label("Reason (required)").fill("test of a refusal")
    page.get_by_role("button", name="Post adjustment").click()
    assert "insufficient funds" in page.locator("#adjust-error").inner_text()
    assert page.get_by_label("Amount (XAG)").input_value() == "-100000000"
    page.get_by_label("Amount (XAG)").fill("12.75")
    page.get_by_label("Reason (required)").fill("Goodwill for ticket #4411")
    page.get_by_role("button", name="Post adjustment").click()
    assert page.get_by_role("status").inner_text() == "Adjustment posted."
    assert _units(_available(page)) == before + 12.75
    row = page.locator("tr", has=page.get_by_text("Goodwill for ticket #4411"))
    assert "adjust" in row.inner_text()
    assert "by admin" in row.inner_text()
    page.goto("/admin/audit")
    trail = page.locator("tr", has=page.get_by_text("player.adjust")).first.inner_text()
    assert "Goodwill for ticket #4411" in trail


def _dead_letter() -> UseCase[int]:
    now = int(time.time() * 1000)
    message = yield from do(
        ops.Enqueue("payment_callback", None, None, {"cpOrderId": "order-77"}, now, now)
    )
    claimed = yield from do(ops.ClaimOutbox("browser-test", 100, 60_000, now))
    for m in claimed:
        error = "HTTP 503 from the game's callback URL" if m.id == message else "timeout"
        state = "dead" if m.id == message else "pending"
        yield from do(
            ops.FinishOutbox(m.id, "browser-test", state, now, due_at_ms=now, error=error)
        )
    return message


def test_retry_a_dead_letter(page: Any, live: Live) -> None:
    message = live.store_run(_dead_letter())
    sign_in(page)
    page.get_by_role("link", name="See dead letters").click()
    row = page.locator("tr", has=page.get_by_role("rowheader", name=str(message), exact=True))
    assert "dead" in row.inner_text()
    assert "HTTP 503" in row.inner_text()
    shoot(page, "outbox")
    row.get_by_role("button", name=f"Retry message {message} now").click()
    assert page.get_by_role("status").inner_text() == "Message queued for delivery now."
    assert page.locator("tr", has=page.get_by_role("rowheader", name=str(message))).count() == 0
    page.goto("/admin/outbox?state=pending")
    retried = page.locator("tr", has=page.get_by_role("rowheader", name=str(message), exact=True))
    assert "pending" in retried.inner_text()


def _launch_jdb_game(uid: str, game: str) -> UseCase[PlayerRecord]:
    """Action 11 for a demo JDB player, as the operator would send it."""
    clients = yield from do(ops.ListClients())
    (dc,) = [c for c in clients if c.protocol == "jdb"]
    _, player = yield from jdb.launch(dc, uid, game, int(time.time() * 1000))
    return player


def test_end_a_game_nobody_ended(page: Any, live: Live) -> None:
    player = live.store_run(_launch_jdb_game("testpl01", jdb.encode_game("7", "1")))
    sign_in(page)
    page.goto(f"/admin/players/{player.id}")
    assert "in game (7:1)" in page.get_by_role("heading", level=1).inner_text()
    page.get_by_label("Reason for ending").fill("browser closed, no kick-out came")
    page.get_by_role("button", name="End game of testpl01").click()
    assert page.get_by_role("status").inner_text() == (
        "Game ended: withdrawals open after the game type's cooldown."
    )
    assert "in game" not in page.get_by_role("heading", level=1).inner_text()
    assert page.get_by_role("button", name="End game of testpl01").count() == 0
    page.goto("/admin/audit")
    trail = page.locator("tr", has=page.get_by_text("player.end_game")).first.inner_text()
    assert "browser closed, no kick-out came" in trail


def test_filter_and_export_operations(page: Any, live: Live) -> None:
    sign_in(page)
    page.goto("/admin/operations")
    page.get_by_label("State").select_option("confirmed")
    page.get_by_label("Kind").fill("deposit")
    page.get_by_role("button", name="Filter").click()
    states = page.locator("table.data tbody td:nth-child(6)").all_inner_texts()
    assert states
    assert set(states) == {"confirmed"}
    shoot(page, "operations")
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    content = info.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert rows
    assert {r["state"] for r in rows} == {"confirmed"}
    assert {r["kind"] for r in rows} == {"deposit"}


def test_holds_clients_reconciliation_and_the_audit(page: Any, live: Live) -> None:
    live.wallet(
        "withdraw",
        {
            "mmTransactionId": f"hold-{uuid.uuid4().hex[:8]}",
            "amount": {"amount": 3, "currencyCode": "XAG"},
        },
    )
    live.wallet("rollbackWithdrawal", {"mmTransactionId": "never-seen", "rollbackReason": "t/o"})
    sign_in(page)
    nav(page, "Holds")
    assert "held" in page.locator("section", has_text="Outstanding holds").inner_text()
    assert "never-seen" in page.locator("section", has_text="Tombstones").inner_text()
    shoot(page, "holds")
    nav(page, "Clients")
    assert page.get_by_role("rowheader", name="demo-game").count() == 1
    shoot(page, "clients")
    nav(page, "Reconciliation")
    shoot(page, "reconciliation")
    nav(page, "Audit")
    page.get_by_role("button", name="Run the ledger audit").click()
    assert "The ledger is clean" in page.locator("#audit-result").inner_text()
    shoot(page, "audit")


def test_keyboard_landmarks_and_labels(page: Any, live: Live) -> None:
    sign_in(page)
    for path in (
        "/admin/",
        "/admin/players/1",
        "/admin/operations",
        "/admin/outbox",
        "/admin/clients",
        "/admin/audit",
    ):
        page.goto(path)
        assert page.locator("header").count() == 1
        assert page.get_by_role("navigation", name="Main").count() == 1
        assert page.locator("main").count() == 1
        assert page.locator("h1").count() == 1
        unlabelled = page.locator("input:not([type=hidden]), select, textarea").evaluate_all(
            """els => els.filter(e => !(e.labels && e.labels.length) &&
                                      !e.getAttribute('aria-label')).map(e => e.name)"""
        )
        assert unlabelled == [], (path, unlabelled)
        nameless = page.locator("button, a[href]").evaluate_all(
            "els => els.filter(e => !(e.innerText.trim() || e.getAttribute('aria-label'))).length"
        )
        assert nameless == 0, path
    page.goto("/admin/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # Focus is visible: the focused control gets an outline.
    page.keyboard.press("Shift+Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_works_on_a_phone(browser: Any, live: Live) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        base_url=live.base,
        is_mobile=True,
        device_scale_factor=2,
    )
    try:
        page = context.new_page()
        sign_in(page)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        shoot(page, "dashboard-phone")
        page.goto("/admin/players/1")
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert re.match(r"[\d,.]+", _available(page))
    finally:
        context.close()
