"""The admin API end to end, on SQLite and PostgreSQL: authentication, roles, every
endpoint, CSRF for cookie-authenticated changes, and manual adjustments that are audited
and double-entry (the ledger audit stays clean)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.ledger import OwnerKind
from gamewallet.core.money import UNIT
from gamewallet.service import admin, backoffice, jdb
from gamewallet.store import ops
from gamewallet.store.port import do

from .conftest import GAME, OPERATOR_TOKEN, VIEWER, VIEWER_TOKEN, Desk, basic, bearer

XAG = "XAG"

#: Every change an operator may make and a viewer may not: (method, path, JSON body).
CHANGES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/clients", {"protocol": "hrg", "name": "ag1", "username": "u", "currency": "THB"}),
    ("POST", "/clients/{client}/rotate-secret", None),
    ("POST", "/players/{p1}/block", {"reason": "x"}),
    ("POST", "/players/{p1}/unblock", {}),
    ("POST", "/players/{p1}/end-game", {"reason": "x"}),
    ("POST", "/players/{p1}/adjustments", {"amount": "1", "reason": "goodwill"}),
    ("POST", "/outbox/1/retry", None),
]
READS = [
    "/me",
    "/clients",
    "/players?q=p",
    "/players/{p1}",
    "/balances",
    "/operations",
    "/operations/export",
    "/holds",
    "/tombstones",
    "/outbox",
    "/reconciliations",
    "/events",
    "/dashboard",
]


def _path(desk: Desk, template: str) -> str:
    return template.format(client=desk.client.id, p1=desk.players["p1"].id)


# --- authentication and roles ----------------------------------------------------------------


async def test_without_credentials_every_endpoint_is_401(desk: Desk) -> None:
    for path in READS:
        response = await desk.http.get("/admin/api" + _path(desk, path))
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_signed_in"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["x-request-id"]


async def test_unknown_and_revoked_tokens_are_refused(desk: Desk) -> None:
    assert (await desk.api("GET", "/me", token="gwa_nope")).status_code == 401
    assert (await desk.api("GET", "/me", token=VIEWER_TOKEN)).json() == {
        "actor": "token:report-script",
        "role": "viewer",
        "via": "token",
    }
    await desk.services.store.run(
        backoffice.revoke_token("report-script", desk.clock.now_ms(), actor="t")
    )
    assert (await desk.api("GET", "/me", token=VIEWER_TOKEN)).status_code == 401
    # Basic credentials are not an admin credential.
    response = await desk.http.get("/admin/api/me", headers={"Authorization": basic(*GAME)})
    assert response.status_code == 401


async def test_a_viewer_reads_everything_and_changes_nothing(desk: Desk) -> None:
    for path in READS:
        response = await desk.api("GET", _path(desk, path), token=VIEWER_TOKEN)
        assert response.status_code == 200, (path, response.text)
    before = await desk.player("p1")
    for method, path, body in CHANGES:
        response = await desk.api(method, _path(desk, path), token=VIEWER_TOKEN, json=body)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert await desk.player("p1") == before
    events, _ = await desk.services.store.run(backoffice.events(None, None, 0, 100))
    assert not [e for e in events if e.actor.startswith("token:report")]


async def test_token_use_is_noted_at_most_once_a_minute(desk: Desk) -> None:
    from gamewallet.store import admin_ops

    await desk.api("GET", "/me")
    first = await desk.services.store.run(do(admin_ops.GetAdminToken(name="ops-script")))
    assert first is not None
    assert first.last_used_at_ms == desk.clock.now_ms()
    desk.clock.advance(30)
    await desk.api("GET", "/me")
    again = await desk.services.store.run(do(admin_ops.GetAdminToken(name="ops-script")))
    assert again == first
    desk.clock.advance(31)
    await desk.api("GET", "/me")
    later = await desk.services.store.run(do(admin_ops.GetAdminToken(name="ops-script")))
    assert later is not None
    assert later.last_used_at_ms == desk.clock.now_ms()


# --- clients ---------------------------------------------------------------------------------


async def test_create_a_client_shows_its_secret_once_and_it_works(desk: Desk) -> None:
    response = await desk.api(
        "POST",
        "/clients",
        json={"protocol": "seamless", "name": "slots", "username": "slotsuser"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    secret = body["credentials"]["secret"]
    assert len(secret) >= 24
    assert body["client"]["name"] == "slots"
    listed = (await desk.api("GET", "/clients")).json()["items"]
    assert secret not in str(listed)
    # The new credentials authenticate at once: a bad token is 102, not HTTP 401.
    call = await desk.http.post(
        "/wallet/getBalance",
        json={"token": "nope"},
        headers={"Authorization": basic("slotsuser", secret)},
    )
    assert call.status_code == 200
    assert call.json()["errorCode"] == 102
    duplicate = await desk.api(
        "POST", "/clients", json={"protocol": "seamless", "name": "slots", "username": "x"}
    )
    assert duplicate.status_code == 400


async def test_create_a_jdb_client_generates_and_masks_its_keys(desk: Desk) -> None:
    response = await desk.api(
        "POST",
        "/clients",
        json={"protocol": "jdb", "name": "dc1", "currency": "RMB", "config": {"parent": "ag"}},
    )
    assert response.status_code == 201, response.text
    credentials = response.json()["credentials"]
    assert len(credentials["aesKey"]) == 16
    assert len(credentials["aesIv"]) == 16
    (listed,) = [
        c for c in (await desk.api("GET", "/clients")).json()["items"] if c["name"] == "dc1"
    ]
    assert credentials["aesKey"] not in str(listed)
    assert listed["config"]["aes_key"].startswith(credentials["aesKey"][:2])
    assert "*" in listed["config"]["aes_key"]


@pytest.mark.parametrize(
    "body",
    [
        {"protocol": "hrg", "name": "ag1", "username": "u"},  # no currency
        {"protocol": "seamless", "name": "bad name!", "username": "u"},
        {"protocol": "jdb", "name": "dc", "currency": "RMB"},  # no parent
        {"protocol": "seamless", "name": "s", "username": "u", "config": {"evil": 1}},
        {"protocol": "seamless", "name": "s", "username": "u", "creditLimit": "-5"},
        {"protocol": "nope", "name": "s"},
    ],
)
async def test_invalid_clients_are_refused_with_400(desk: Desk, body: dict[str, Any]) -> None:
    response = await desk.api("POST", "/clients", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"]


async def test_rotating_a_secret_retires_the_old_one(desk: Desk) -> None:
    response = await desk.api("POST", f"/clients/{desk.client.id}/rotate-secret")
    assert response.status_code == 200, response.text
    secret = response.json()["credentials"]["secret"]
    old = await desk.http.post(
        "/wallet/getBalance", json={"token": "x"}, headers={"Authorization": basic(*GAME)}
    )
    assert old.status_code == 401
    new = await desk.http.post(
        "/wallet/getBalance",
        json={"token": desk.sessions["p1"]},
        headers={"Authorization": basic(GAME[0], secret)},
    )
    assert new.json()["balance"]["amount"] == 100
    assert (await desk.api("POST", "/clients/999/rotate-secret")).status_code == 404
    events = (await desk.api("GET", "/events?action=client.rotate_secret")).json()
    assert events["total"] == 1
    assert events["items"][0]["actor"] == "token:ops-script"
    assert secret not in str(events)


# --- players ---------------------------------------------------------------------------------


async def test_search_and_detail_of_players(desk: Desk) -> None:
    found = (await desk.api("GET", "/players?q=NICK P2")).json()
    assert [p["externalId"] for p in found["items"]] == ["p2"]
    assert found["total"] == 1
    both = (await desk.api("GET", f"/players?client={desk.client.id}&limit=1")).json()
    assert (both["total"], len(both["items"]), both["limit"]) == (2, 1, 1)
    none = (await desk.api("GET", f"/players?client={desk.client.id + 1}")).json()
    assert none["total"] == 0
    detail = (await desk.api("GET", f"/players/{desk.players['p1'].id}")).json()
    assert detail["player"]["balance"] == "100"
    assert detail["client"]["name"] == "game"
    assert [o["kind"] for o in detail["operations"]["items"]] == ["fund"]
    assert (await desk.api("GET", "/players/424242")).status_code == 404


async def test_block_and_unblock_are_recorded_and_take_effect(desk: Desk) -> None:
    p1 = desk.players["p1"].id
    blocked = await desk.api("POST", f"/players/{p1}/block", json={"reason": "chargeback"})
    assert blocked.json()["blocked"] is True
    refused = await desk.wallet(
        "withdraw",
        {
            "token": desk.sessions["p1"],
            "mmTransactionId": "w-blocked",
            "amount": {"amount": 1, "currencyCode": XAG},
        },
    )
    assert refused["errorCode"] == 104
    unblocked = await desk.api("POST", f"/players/{p1}/unblock")
    assert unblocked.json()["blocked"] is False
    events = (await desk.api("GET", "/events?actor=token:ops-script")).json()["items"]
    assert [e["action"] for e in events[:2]] == ["player.unblock", "player.block"]
    assert events[1]["detail"]["reason"] == "chargeback"
    too_long = await desk.api("POST", f"/players/{p1}/block", json={"reason": "x" * 501})
    assert too_long.status_code == 400
    assert (await desk.player("p1")).blocked is False


async def test_end_game_frees_a_jdb_player_after_its_cooldown_and_is_recorded(desk: Desk) -> None:
    """A JDB player whose game nobody ended (no action 17): staff end it, the game type's
    cooldown runs from then, and the staff trail keeps who, which game and why."""
    run, clock = desk.services.store.run, desk.clock
    new = admin.NewClient("jdb", "dc-end", currency=XAG, config={"parent": "ag"})
    dc = await run(admin.create_client(new, clock.now_ms(), desk.services.key))
    await run(jdb.create_player(dc, "u1", "U One", 50 * UNIT, clock.now_ms()))
    card = jdb.encode_game("18", "0")  # a card game: 30 s of cooldown
    _, player = await run(jdb.launch(dc, "u1", card, clock.now_ms()))
    assert player.game_type == card

    def take(serial: str) -> Any:
        req = jdb.TransferRequest("u1", serial, -10 * UNIT, False, "")
        return run(jdb.transfer(dc, req, clock.now_ms()))

    with pytest.raises(WalletError) as in_game:
        await take("w1")
    assert in_game.value.code is ErrorCode.PLAYER_IN_GAME
    clock.advance(5)
    ended = await desk.api(
        "POST", f"/players/{player.id}/end-game", json={"reason": " tab closed, no kick "}
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["inGame"] is None
    with pytest.raises(WalletError) as cooling:
        await take("w2")  # the card game's cooldown started at the end
    assert cooling.value.detail == "withdrawal cooldown after a game"
    clock.advance(30)
    done = await take("w3")
    assert done.user_balance_minor == 40 * UNIT
    events = (await desk.api("GET", "/events?action=player.end_game")).json()["items"]
    assert len(events) == 1
    assert events[0]["actor"] == "token:ops-script"
    assert events[0]["target"] == f"player:{player.id}"
    assert events[0]["detail"]["game"] == card
    assert events[0]["detail"]["reason"] == "tab closed, no kick"
    # Not in a game any more: answered with the player, nothing changes, nothing recorded.
    again = await desk.api("POST", f"/players/{player.id}/end-game")
    assert again.status_code == 200
    assert again.json()["inGame"] is None
    after = await run(jdb.player_info(dc, "u1"))
    assert after.game_left_at_ms == clock.now_ms() - 30_000
    assert len((await desk.api("GET", "/events?action=player.end_game")).json()["items"]) == 1
    assert (await desk.api("POST", "/players/424242/end-game")).status_code == 404
    too_long = await desk.api("POST", f"/players/{player.id}/end-game", json={"reason": "x" * 501})
    assert too_long.status_code == 400


# --- adjustments -----------------------------------------------------------------------------


async def _house_posted(desk: Desk) -> int:
    (house,) = await desk.services.store.run(
        do(ops.GetOwnerAccounts(OwnerKind.HOUSE, 0, XAG, 1, shard=0))
    )
    return house.balance.posted_minor


async def test_adjustments_are_double_entry_audited_and_need_a_reason(desk: Desk) -> None:
    p1 = desk.players["p1"].id
    credit = await desk.api(
        "POST", f"/players/{p1}/adjustments", json={"amount": "12.5", "reason": "goodwill"}
    )
    assert credit.status_code == 201, credit.text
    assert credit.json()["balance"] == "112.5"
    debit = await desk.api(
        "POST", f"/players/{p1}/adjustments", json={"amount": "-2.25", "reason": "correction"}
    )
    assert debit.json()["balance"] == "110.25"
    assert await _house_posted(desk) == -(1025 * UNIT // 100)  # the house's side: −10.25
    assert await desk.audit() == []
    history = (await desk.api("GET", f"/operations?player={p1}&kind=adjust")).json()["items"]
    assert [(o["detail"]["actor"], o["detail"]["reason"]) for o in history] == [
        ("token:ops-script", "correction"),
        ("token:ops-script", "goodwill"),
    ]
    assert [o["ns"] for o in history] == ["admin", "admin"]
    trail = (await desk.api("GET", "/events?action=player.adjust")).json()["items"]
    assert [(e["detail"]["amount_minor"], e["detail"]["reason"]) for e in trail] == [
        (-22500, "correction"),
        (125000, "goodwill"),
    ]
    for body, status in (
        ({"amount": "5", "reason": "  "}, 400),
        ({"amount": "0", "reason": "zero"}, 400),
        ({"amount": "1.00001", "reason": "too precise"}, 400),
        ({"amount": "abc", "reason": "nan"}, 400),
        ({"amount": "-1000", "reason": "too much"}, 409),
        ({"amount": "1"}, 400),
    ):
        refused = await desk.api("POST", f"/players/{p1}/adjustments", json=body)
        assert refused.status_code == status, (body, refused.text)
    assert (await desk.player("p1")).cash.balance.posted_minor == 11025 * UNIT // 100


async def test_an_adjustment_repeated_with_its_request_id_applies_once(desk: Desk) -> None:
    p2 = desk.players["p2"].id
    body = {"amount": "3", "reason": "promo", "requestId": "r-1", "bucket": "free"}
    first = await desk.api("POST", f"/players/{p2}/adjustments", json=body)
    again = await desk.api("POST", f"/players/{p2}/adjustments", json=body)
    assert first.status_code == again.status_code == 201
    assert again.json()["freeCredit"] == "3"
    other = await desk.api("POST", f"/players/{p2}/adjustments", json={**body, "amount": "4"})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "id_reused"
    assert (await desk.api("GET", "/events?action=player.adjust")).json()["total"] == 1


# --- operations, holds, tombstones, export ---------------------------------------------------


async def _traffic(desk: Desk) -> None:
    """A confirmed bet and win, an open hold, a pending credit and a tombstone on p1."""
    token = desk.sessions["p1"]

    async def call(endpoint: str, tid: str, amount: float) -> None:
        money = {"amount": amount, "currencyCode": XAG}
        reply = await desk.wallet(
            endpoint, {"token": token, "mmTransactionId": tid, "amount": money}
        )
        assert "errorCode" not in reply, reply

    await call("withdraw", "w1", 10)
    await call("confirmWithdrawal", "w1", 10)
    await call("deposit", "d1", 4)
    await call("confirmDeposit", "d1", 4)
    desk.clock.advance(60)
    await call("withdraw", "w2", 1.5)
    await call("deposit", "d2", 2)
    reply = await desk.wallet(
        "rollbackWithdrawal", {"token": token, "mmTransactionId": "=cmd", "rollbackReason": "t/o"}
    )
    assert "errorCode" not in reply, reply


async def test_operations_history_filters_and_pages(desk: Desk) -> None:
    await _traffic(desk)
    everything = (await desk.api("GET", "/operations?ns=wire")).json()
    assert everything["total"] == 5
    assert [o["extId"] for o in everything["items"]][:2] == ["=cmd", "d2"]  # newest first
    held = (await desk.api("GET", "/operations?state=held,pending")).json()
    assert sorted(o["extId"] for o in held["items"]) == ["d2", "w2"]
    withdraws = (await desk.api("GET", "/operations?kind=withdraw&state=confirmed")).json()
    assert [o["extId"] for o in withdraws["items"]] == ["w1"]
    day = "2026-01-01"
    in_day = (await desk.api("GET", f"/operations?since={day}&until={day}&ns=wire")).json()
    assert in_day["total"] == 5
    later = (await desk.api("GET", "/operations?since=2026-01-01T00:00:30Z&ns=wire")).json()
    assert later["total"] == 3
    before = (await desk.api("GET", "/operations?until=2025-12-31")).json()
    assert before["total"] == 0
    paged = (await desk.api("GET", "/operations?ns=wire&offset=4&limit=2")).json()
    assert (paged["total"], len(paged["items"]), paged["offset"]) == (5, 1, 4)
    other_client = (await desk.api("GET", f"/operations?client={desk.client.id + 1}")).json()
    assert other_client["total"] == 0
    for bad in ("state=nope", "since=yesterday", "since=2026-01-02&until=2026-01-01", "offset=-1"):
        response = await desk.api("GET", f"/operations?{bad}")
        assert response.status_code == 400, bad
    huge = (await desk.api("GET", "/operations?limit=100000")).json()
    assert huge["limit"] == desk.services.settings.admin_page_size_max


async def test_holds_and_tombstones(desk: Desk) -> None:
    await _traffic(desk)
    holds = (await desk.api("GET", "/holds")).json()
    assert [(o["extId"], o["state"]) for o in holds["items"]] == [
        ("w2", "held"),
        ("d2", "pending"),
    ]
    tombs = (await desk.api("GET", "/tombstones")).json()
    assert [(o["extId"], o["amount"], o["detail"]["tombstone"]) for o in tombs["items"]] == [
        ("=cmd", "0", True)
    ]


async def test_csv_export_of_a_date_range(desk: Desk) -> None:
    await _traffic(desk)
    response = await desk.api("GET", "/operations/export?since=2026-01-01&until=2026-01-01")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 7  # the 2 fundings and the 5 wire operations
    kinds = sorted(r["kind"] for r in rows)
    assert kinds.count("fund") == 2
    (tomb,) = [r for r in rows if r["state"] == "rolled_back"]
    assert tomb["caller_id"] == "'=cmd"  # a spreadsheet would run "=cmd" as a formula
    assert {r["player"] for r in rows} == {"p1", "p2"}
    assert [r["operation_id"] for r in rows] == sorted((r["operation_id"] for r in rows), key=int)
    empty = await desk.api("GET", "/operations/export?since=2027-01-01")
    assert empty.content.decode("utf-8-sig").count("\n") == 1  # the header only


# --- outbox, reconciliation, audit, dashboard ------------------------------------------------


async def _dead_letter(desk: Desk) -> int:
    now = desk.clock.now_ms()
    store = desk.services.store
    message = await store.run(
        do(
            ops.Enqueue(
                "payment_callback", desk.client.id, None, {"sign": "S", "key": "k"}, now, now
            )
        )
    )
    (claimed,) = await store.run(do(ops.ClaimOutbox("w", 1, 30_000, now)))
    await store.run(do(ops.FinishOutbox(claimed.id, "w", "dead", now, error="HTTP 503")))
    return message


async def test_outbox_lists_attempts_and_retry_makes_a_dead_letter_due(desk: Desk) -> None:
    outbox_id = await _dead_letter(desk)
    dead = (await desk.api("GET", "/outbox?state=dead")).json()
    assert [(m["id"], m["attempts"], m["lastError"]) for m in dead["items"]] == [
        (outbox_id, 1, "HTTP 503")
    ]
    assert dead["items"][0]["payload"] == {"sign": "S", "key": "[redacted]"}
    desk.clock.advance(5)
    retried = await desk.api("POST", f"/outbox/{outbox_id}/retry")
    assert retried.json() == {"retried": True}
    (pending,) = (await desk.api("GET", "/outbox?state=pending")).json()["items"]
    assert pending["dueAt"] == "2026-01-01T00:00:05.000Z"
    assert (await desk.api("GET", "/outbox?state=dead")).json()["total"] == 0
    assert (await desk.api("POST", "/outbox/9999/retry")).status_code == 404
    assert (await desk.api("GET", "/outbox?state=weird")).status_code == 400


async def test_reconciliation_decisions_are_listed(desk: Desk) -> None:
    await _traffic(desk)
    held = (await desk.api("GET", "/holds")).json()["items"][0]
    await desk.services.store.run(
        do(
            ops.InsertReconciliation(
                desk.client.id,
                held["id"],
                held["extId"],
                "withdraw",
                desk.clock.now_ms(),
                "NOT_FOUND",
                "rollback",
            )
        )
    )
    listed = (await desk.api("GET", "/reconciliations")).json()
    assert [(d["extId"], d["answer"], d["action"]) for d in listed["items"]] == [
        ("w2", "NOT_FOUND", "rollback")
    ]


async def test_the_ledger_audit_runs_and_is_recorded(desk: Desk) -> None:
    await _traffic(desk)
    result = await desk.api("POST", "/audit", token=VIEWER_TOKEN)
    assert result.json() == {"ok": True, "violations": []}
    trail = (await desk.api("GET", "/events?action=audit.run")).json()["items"]
    assert trail[0]["actor"] == "token:report-script"
    assert trail[0]["detail"] == {"violations": 0}


async def test_dashboard_and_balances_add_up(desk: Desk) -> None:
    await _traffic(desk)
    await _dead_letter(desk)
    figures = (await desk.api("GET", "/dashboard")).json()
    assert sum(p["count"] for p in figures["callsPerMinute"]) == 5
    assert {p["protocol"] for p in figures["callsPerMinute"]} == {"seamless"}
    (day,) = figures["revenuePerDay"]
    assert (day["playerDebits"], day["playerCredits"], day["ggr"]) == ("10", "4", "6")
    assert {(o["state"], o["count"], o["amount"]) for o in figures["open"]} == {
        ("held", 1, "1.5"),
        ("pending", 1, "2"),
    }
    assert figures["outboxDepth"] == {"pending": 0, "dead": 1}
    balances = (await desk.api("GET", "/balances")).json()["items"]
    players = [b for b in balances if b["ownerKind"] == "player" and b["bucket"] == "cash"]
    assert [(b["clientName"], b["posted"], b["held"], b["pendingCredit"]) for b in players] == [
        ("game", "99", "1.5", "2")
    ]
    client = [b for b in balances if b["ownerKind"] == "client" and b["bucket"] == "cash"]
    assert sum(float(b["posted"]) for b in client) == -99


# --- cookies and CSRF ------------------------------------------------------------------------


async def test_a_signed_in_session_needs_the_csrf_header_for_changes(desk: Desk) -> None:
    csrf = await desk.sign_in()
    me = await desk.http.get("/admin/api/me")
    assert me.json()["via"] == "session"
    p1 = desk.players["p1"].id
    body = {"amount": "1", "reason": "test"}
    refused = await desk.http.post(f"/admin/api/players/{p1}/adjustments", json=body)
    assert refused.status_code == 403
    wrong = await desk.http.post(
        f"/admin/api/players/{p1}/adjustments", json=body, headers={"X-CSRF-Token": "x" * 43}
    )
    assert wrong.status_code == 403
    assert (await desk.player("p1")).cash.balance.posted_minor == 100 * UNIT
    accepted = await desk.http.post(
        f"/admin/api/players/{p1}/adjustments", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status_code == 201
    # A bearer token needs no CSRF token, even with a cookie present.
    assert (await desk.api("POST", "/audit")).status_code == 200


async def test_a_viewer_session_is_read_only(desk: Desk) -> None:
    csrf = await desk.sign_in(VIEWER)
    p1 = desk.players["p1"].id
    refused = await desk.http.post(
        f"/admin/api/players/{p1}/block", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status_code == 403
    assert (await desk.http.get(f"/admin/api/players/{p1}")).status_code == 200


async def test_openapi_describes_the_admin_api_but_not_the_pages(desk: Desk) -> None:
    schema = (await desk.http.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    assert "/admin/api/players/{player_id}/adjustments" in paths
    assert "/admin/api/operations" in paths
    assert not [p for p in paths if p.startswith("/admin/") and not p.startswith("/admin/api")]
    schemes = schema["components"]["securitySchemes"]
    assert schemes["BearerToken"]["scheme"] == "bearer"
    assert bearer(OPERATOR_TOKEN)  # the helper the docs show
