"""The fast lane answers exactly as the routes do: a differential test on twin databases.

The same recorded requests (happy paths, replays and a broad set of refusals of all three
protocols) go, one by one, to an app with the fast lane and to one without it, each on its
own database with the same world (see conftest.py), on SQLite and on PostgreSQL. Every answer
must match: HTTP status, headers (except ``x-request-id``, which is per request) and body
bytes; so must the log lines each request wrote (which is how a refusal logged twice or a
call counted twice would show) and, at the end, every balance.

Rate limits are part of the run: one client of each protocol has a small limit, both clocks
move one second before each request (a second's worth of tokens), and a final burst without
moving the clock must be refused at exactly the same request on both sides: a lane that
counted a call it then declined would run out first.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
import structlog
from tests.security.world import xts

from gamewallet.store import ops
from gamewallet.store.port import do

from .conftest import MAX_BODY_BYTES, RATE_PER_S, Side

JSON = {"Content-Type": "application/json"}
#: Log keys that differ between two runs of the same request.
_VOLATILE = frozenset({"request_id", "duration_ms", "timestamp"})

pytestmark = pytest.mark.slow


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k.lower() != "x-request-id"]


def _event(entry: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in entry.items() if k not in _VOLATILE}
    if "exc_info" in out:
        out["exc_info"] = type(out["exc_info"]).__name__
    return out


class Twins:
    """Sends each request to both sides and checks that the answers are the same."""

    def __init__(self, lane: Side, plain: Side) -> None:
        self.sides = (lane, plain)
        self.sent = 0

    @property
    def world(self) -> Any:
        return self.sides[0].world

    def now_ms(self) -> int:
        return self.sides[0].clock.now_ms()

    async def send(
        self,
        path: str,
        body: bytes | dict[str, Any] | None,
        headers: Mapping[str, str] | None = None,
        *,
        method: str = "POST",
        advance_s: float = 1.0,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        content = json.dumps(body).encode() if isinstance(body, dict) else body
        answers: list[httpx.Response] = []
        logs: list[list[dict[str, Any]]] = []
        for side in self.sides:
            side.clock.advance(advance_s)
            with structlog.testing.capture_logs() as captured:
                answers.append(
                    await side.http.request(
                        method, path, content=content, headers=dict(headers or {}), params=params
                    )
                )
            logs.append([_event(e) for e in captured])
        lane, plain = answers
        where = f"{method} {path} {content!r:.200}"
        assert lane.status_code == plain.status_code, where
        assert _headers(lane) == _headers(plain), where
        assert lane.content == plain.content, where
        assert logs[0] == logs[1], where
        self.sent += 1
        return lane

    async def balances(self) -> None:
        """Every player's balances (posted, held, pending) are the same on both sides."""
        seen = []
        for side in self.sides:
            players = []
            for client in await side.services.store.run(do(ops.ListClients())):
                listed, _ = await side.services.store.run(
                    do(ops.ListPlayers(client.id, limit=1000))
                )
                players += [
                    (client.name, p.external_id, repr(p.cash), repr(p.free)) for p in listed
                ]
            seen.append(sorted(players))
        assert seen[0] == seen[1]
        assert len(seen[0]) >= 6

    def lane_served(self, at_least: int) -> None:
        """The lane side's lane answered at least ``at_least`` requests (the test compared
        something), the other side's none."""
        lane, plain = self.sides
        assert lane.lane_served() >= at_least, (lane.lane_served(), self.sent)
        assert plain.lane_served() == 0


@pytest.fixture
def twins_(twins: tuple[Side, Side]) -> Twins:
    lane, plain = twins
    assert lane.world == plain.world
    return Twins(lane, plain)


# --- seamless ---------------------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _amount(value: Any, currency: str = "THB") -> dict[str, Any]:
    return {"amount": value, "currencyCode": currency}


async def _block(side: Side, client_name: str, external_id: str) -> None:
    """Block a player on one side (the same player on both)."""
    clients = await side.services.store.run(do(ops.ListClients()))
    client = next(c for c in clients if c.name == client_name)
    player = await side.services.store.run(
        do(ops.GetPlayer(client_id=client.id, external_id=external_id))
    )
    assert player is not None
    await side.services.store.run(do(ops.UpdatePlayer(player.id, {"blocked": True})))


async def test_seamless_answers_are_the_same(twins_: Twins) -> None:
    t = twins_
    s, other = t.world.seamless
    auth = {**JSON, "Authorization": s.auth()}

    async def call(endpoint: str, body: Any, headers: Mapping[str, str] = auth) -> httpx.Response:
        return await t.send(f"/wallet/{endpoint}", body, headers)

    def opening(tx: str, amount: Any = 1.5, **extra: Any) -> dict[str, Any]:
        return {"token": s.token, "mmTransactionId": tx, "amount": _amount(amount), **extra}

    def closing(tx: str, amount: Any = 1.5) -> dict[str, Any]:
        return {"token": s.token, "mmTransactionId": tx, "amount": _amount(amount)}

    def rollback(tx: str) -> dict[str, Any]:
        return {"token": s.token, "mmTransactionId": tx, "rollbackReason": "game over"}

    assert (await call("getBalance", {"token": s.token})).status_code == 200
    assert (await call("verifySession", {"token": s.token})).json()["playerId"] == s.player
    # Withdraw, replay, confirm, replay, and the refusals around them.
    ok = await call("withdraw", opening("w1"))
    assert "errorCode" not in ok.json()
    await call("withdraw", opening("w1"))
    assert (await call("withdraw", opening("w1", 2))).json()["errorCode"] == 109
    await call("confirmWithdrawal", closing("w1"))
    await call("confirmWithdrawal", closing("w1"))
    assert (await call("confirmWithdrawal", closing("w1", 3))).json()["errorCode"] == 109
    assert (await call("rollbackWithdrawal", rollback("w1"))).json()["errorCode"] == 108
    await call("withdraw", opening("w2", 7.25, txDescription="spin"))
    await call("rollbackWithdrawal", rollback("w2"))
    await call("rollbackWithdrawal", rollback("w2"))
    await call("rollbackWithdrawal", rollback("w3"))
    assert (await call("withdraw", opening("w3"))).json()["errorCode"] == 110
    assert (await call("confirmWithdrawal", closing("w404"))).json()["errorCode"] == 107
    assert (await call("withdraw", opening("w4", 10**7))).json()["errorCode"] == 106
    wrong_currency = {**opening("w5"), "amount": _amount(1, "USD")}
    assert (await call("withdraw", wrong_currency)).json()["errorCode"] == 105
    assert (await call("getBalance", {"token": "nope"})).json()["errorCode"] == 102
    # Deposits.
    await call("deposit", opening("d1", 4))
    await call("confirmDeposit", closing("d1", 4))
    await call("deposit", opening("d2", 4))
    await call("rollbackDeposit", rollback("d2"))
    await call("rollbackDeposit", rollback("d3"))
    # Bad bodies: JSON, types, extra and missing fields, numbers, texts, empty.
    for body in (
        b"{",
        b"[]",
        b"null",
        b'{"token": 5}',
        json.dumps({**opening("b1"), "extra": 1}).encode(),
        json.dumps({"token": s.token, "mmTransactionId": "b2"}).encode(),
        json.dumps(opening("b3", "1.5")).encode(),
        json.dumps(opening("b4", 1.23456)).encode(),
        json.dumps(opening("b5", -1)).encode(),
        json.dumps(opening("b6", 1, txDescription="x" * 300)).encode(),
        json.dumps(opening("", 1)).encode(),
        b"",
        b" ",
    ):
        answer = await call("withdraw", body)
        assert answer.status_code in (200, 400), answer.text
    # Content types, headers, size.
    good = json.dumps(opening("c1")).encode()
    await call("withdraw", good, {"Authorization": s.auth(), "Content-Type": "text/plain"})
    await call("withdraw", good, {"Authorization": s.auth()})
    await call("withdraw", good, {**auth, "Content-Type": "application/json; charset=utf-8"})
    await call("withdraw", good, {**auth, "X-Forwarded-For": "10.9.0.1"})
    big = json.dumps({**opening("c2"), "txDescription": "x" * MAX_BODY_BYTES}).encode()
    assert (await call("withdraw", big)).status_code == 413
    # Authentication and the allowlist.
    for header in (None, "Basic", "Basic !!!", _basic(s.username, "wrong"), _basic("who", "pw")):
        sent = dict(JSON) if header is None else {**JSON, "Authorization": header}
        assert (await call("withdraw", good, sent)).status_code == 401
    other_auth = {**JSON, "Authorization": other.auth()}
    assert (await call("getBalance", {"token": other.token}, other_auth)).status_code == 403
    # Another client's token.
    assert (await call("getBalance", {"token": other.token})).json()["errorCode"] == 102
    # A rate-limited burst: the refusal comes at the same request on both sides.
    refused = 0
    for i in range(RATE_PER_S + 5):
        burst: bytes | dict[str, Any] = opening(f"r{i}") if i % 3 else b"{"
        answer = await t.send("/wallet/withdraw", burst, auth, advance_s=0)
        refused += answer.status_code == 429
    assert refused >= 5
    # A blocked player, then an expired session.
    await t.balances()
    for side in t.sides:
        await _block(side, s.name, s.player)
    assert (await call("withdraw", opening("z1"))).json()["errorCode"] == 104
    await call("confirmWithdrawal", closing("r1"))
    for side in t.sides:
        side.clock.advance(25 * 3600)
    assert (await call("getBalance", {"token": s.token})).json()["errorCode"] == 103
    await call("withdraw", opening("z2"))
    await t.balances()
    t.lane_served(35)


# --- HRG --------------------------------------------------------------------------------------


async def test_hrg_answers_are_the_same(twins_: Twins) -> None:
    t = twins_
    h, other = t.world.hrg

    async def call(
        name: str, body: Any, *, side: Any = h, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        sent = {**JSON, "Authorization": side.auth(), "xts": xts(t.now_ms() + 1000)}
        return await t.send(f"/api/{name}", body, headers if headers is not None else sent)

    def deposit(code: str, amount: str = "10.5", **extra: Any) -> dict[str, Any]:
        return {
            "agentId": h.agent,
            "userId": h.user,
            "transactionCode": code,
            "amount": amount,
            **extra,
        }

    def withdraw(code: str, amount: str = "2", **extra: Any) -> dict[str, Any]:
        return {
            "agentId": h.agent,
            "userId": h.user,
            "transactionCode": code,
            "amount": amount,
            "allWithdraw": False,
            **extra,
        }

    assert (await call("deposit", deposit("D1"))).json()["code"] == "0000"
    await call("deposit", deposit("D1"))
    await call("deposit", deposit("D1", "11"))
    assert (await call("withdraw", withdraw("W1"))).json()["code"] == "0000"
    await call("withdraw", withdraw("W1"))
    await call("withdraw", withdraw("W2", "99999999"))
    await call("withdraw", withdraw("W3", allWithdraw=True))
    await call("withdraw", {**withdraw("W5"), "allWithdraw": "yes"})
    await call("deposit", deposit("D2", "0", freeCredit="3"))
    await call("deposit", deposit("D3", "0"))
    await call("deposit", {**deposit("D4"), "userId": "nobody"})
    await call("deposit", {**deposit("D5"), "userId": "Bad User"})
    await call("deposit", {**deposit("D6"), "agentId": other.agent})
    await call("deposit", deposit("D7", "abc"))
    await call("deposit", deposit("D8", "1.23456"))
    await call("deposit", {**deposit("D9"), "extra": True})
    await call("deposit", {"agentId": h.agent})
    await call("withdraw", b"{")
    await call("withdraw", b"")
    await call("withdraw", withdraw("W4", "-1"))
    await call("check_transfer_operation", {"agentId": h.agent, "transactionCode": "D1"})
    await call("get_balance", {"agentId": h.agent, "userIds": [h.user]})
    # Headers: xts, authentication, allowlist, content type, size.
    now = t.now_ms() + 1000
    body = json.dumps(deposit("H1")).encode()
    for headers in (
        {**JSON, "Authorization": h.auth()},
        {**JSON, "Authorization": h.auth(), "xts": "yesterday"},
        {**JSON, "Authorization": h.auth(), "xts": xts(now - 3_600_000)},
        {**JSON, "xts": xts(now)},
        {**JSON, "Authorization": _basic(h.client_id, "wrong"), "xts": xts(now)},
        {"Authorization": h.auth(), "xts": xts(now), "Content-Type": "text/plain"},
        {"Authorization": h.auth(), "xts": xts(now)},
        {**JSON, "Authorization": other.auth(), "xts": xts(now)},
    ):
        await t.send("/api/deposit", body, headers, advance_s=0)
    big = json.dumps(deposit("H2", extra="x" * MAX_BODY_BYTES)).encode()
    assert (await call("deposit", big)).status_code == 413
    # A rate-limited burst.
    refused = 0
    for i in range(RATE_PER_S + 5):
        sent = {**JSON, "Authorization": h.auth(), "xts": xts(t.now_ms())}
        request = deposit(f"R{i}", "1") if i % 3 else {"agentId": h.agent}
        answer = await t.send("/api/deposit", request, sent, advance_s=0)
        refused += answer.status_code == 429
    assert refused >= 5
    for side in t.sides:
        await _block(side, h.agent, h.user)
    await call("deposit", deposit("Z1"))
    await t.balances()
    t.lane_served(25)


# --- JDB --------------------------------------------------------------------------------------


async def test_jdb_answers_are_the_same(twins_: Twins) -> None:
    t = twins_
    j, other = t.world.jdb

    def x(payload: dict[str, Any], side: Any = j) -> str:
        full = {"ts": t.now_ms() + 1000, "parent": side.parent, **payload}
        return str(side.x(full))

    async def call(
        payload: dict[str, Any] | bytes,
        *,
        dc: Any = None,
        side: Any = j,
        headers: Mapping[str, str] = JSON,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else {"dc": dc or side.dc, "x": x(payload)}
        return await t.send("/apiRequest.do", body, headers)

    def transfer(serial: str, amount: Any = 2.5, **extra: Any) -> dict[str, Any]:
        return {"action": 19, "uid": j.uid, "serialNo": serial, "amount": amount, **extra}

    assert (await call(transfer("s1"))).json()["status"] == "0000"
    await call(transfer("s1"))
    await call(transfer("s1", 3))
    await call(transfer("s2", -1.25))
    await call(transfer("s3", -(10**9)))
    await call(transfer("s4", 0))
    await call(transfer("s5", "abc"))
    await call(transfer("s6", 1.23456))
    await call(transfer("s7", allCashOut=1))
    await call({**transfer("s8"), "uid": "nobody"})
    await call({**transfer("s9"), "serialNo": "bad serial!"})
    await call({"action": 15, "uid": j.uid})
    await call({"action": 55, "serialNo": "s1"})
    await call({"action": 55, "serialNo": "s404"})
    await call({"action": 99, "uid": j.uid})
    await call({"action": "19", "uid": j.uid})
    # Transport and authentication refusals.
    good = transfer("t1")
    await call(good, dc="zz")
    await call(good, dc="z")
    await call(good, dc="dc" + "z" * 60)
    await call(b"{")
    await call(b'{"dc": 5, "x": "abc"}')
    await call(json.dumps({"dc": j.dc}).encode())
    await call(json.dumps({"dc": j.dc, "x": "not-a-payload"}).encode())
    await call(json.dumps({"dc": j.dc, "x": x(good), "parent": "someone"}).encode())
    await call(json.dumps({"dc": j.dc, "x": x(good), "parent": j.parent}).encode())
    await call(json.dumps({"dc": j.dc, "x": x(good), "extra": 1}).encode())
    stale = {"ts": t.now_ms() - 3_600_000, "parent": j.parent, **transfer("t2")}
    await call(json.dumps({"dc": j.dc, "x": j.x(stale)}).encode())
    orphan = {"ts": t.now_ms() + 1000, **transfer("t3")}
    await call(json.dumps({"dc": j.dc, "x": j.x(orphan)}).encode())
    foreign = {"ts": t.now_ms() + 1000, "parent": "other", **transfer("t4")}
    await call(json.dumps({"dc": j.dc, "x": j.x(foreign)}).encode())
    await call(transfer("t5"), side=other)
    await call(transfer("t6"), headers={"Content-Type": "text/plain"})
    await call(transfer("t7"), headers={})
    big = json.dumps({"dc": j.dc, "x": x(transfer("t8")), "pad": "x" * MAX_BODY_BYTES})
    assert (await call(big.encode())).status_code == 413
    # Other transports of the same call (not the lane's, answered the same).
    form = {"dc": j.dc, "x": x(transfer("f1"))}
    await t.send("/apiRequest.do", None, method="GET", params=form)
    await t.send("/apiRequest.do", b"{}", JSON, params={"dc": j.dc, "x": x(transfer("f2"))})
    # A rate-limited burst.
    refused = 0
    for i in range(RATE_PER_S + 5):
        payload = transfer(f"r{i}", 1) if i % 3 else {"action": 99}
        body = {"dc": j.dc, "x": x(payload)}
        answer = await t.send("/apiRequest.do", body, JSON, advance_s=0)
        refused += answer.json()["status"] == "9019"
    assert refused >= 5
    for side in t.sides:
        await _block(side, j.dc, j.uid)
    await call(transfer("z1"))
    await t.balances()
    t.lane_served(30)


async def test_a_failing_store_is_answered_the_same(
    twins_: Twins, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected failure inside the use case: the lane answers it in the route's way."""
    t = twins_
    s, h, j = t.world.seamless[0], t.world.hrg[0], t.world.jdb[0]

    async def broken(use_case: Any) -> Any:
        use_case.close()
        raise RuntimeError("disk on fire")

    for side in t.sides:
        # Clients stay cached: only the use case itself fails.
        monkeypatch.setattr(side.services.clients, "ttl_s", 3600.0)
        monkeypatch.setattr(side.services.store, "run", broken)
    rid = {"X-Request-ID": "fixed-id-1"}
    seamless_body = {"token": s.token, "mmTransactionId": "x1", "amount": _amount(1)}
    answer = await t.send(
        "/wallet/withdraw", seamless_body, {**JSON, **rid, "Authorization": s.auth()}
    )
    assert answer.json()["errorCode"] == 100
    hrg_body = {"agentId": h.agent, "userId": h.user, "transactionCode": "X1", "amount": "1"}
    headers = {**JSON, **rid, "Authorization": h.auth(), "xts": xts(t.now_ms() + 1000)}
    assert (await t.send("/api/deposit", hrg_body, headers)).json()["code"] == "9999"
    payload = {"action": 19, "uid": j.uid, "serialNo": "x1", "amount": 1}
    full = {"ts": t.now_ms() + 1000, "parent": j.parent, **payload}
    answer = await t.send("/apiRequest.do", {"dc": j.dc, "x": j.x(full)}, {**JSON, **rid})
    assert answer.json()["status"] == "9999"
    t.lane_served(3)


# --- content types ----------------------------------------------------------------------------

#: Content types the lane takes (JSON, alone or with a UTF-8 charset) and ones it leaves to the
#: route; the answers must be the same either way.
_TAKEN = (
    "application/json; charset=utf-8",
    "Application/JSON;charset=UTF-8",
    'application/json ; charset="utf8"',
    "application/json;",
)
_LEFT = (
    "application/json; charset=latin-1",
    "application/json; boundary=x",
    "application/jsonx",
    "text/plain",
    "application/x-www-form-urlencoded",
)


async def test_json_with_a_utf8_charset_takes_the_lane_and_answers_the_same(
    twins_: Twins,
) -> None:
    t = twins_
    s = t.world.seamless[0]
    h = t.world.hrg[0]
    j = t.world.jdb[0]
    lane = t.sides[0]
    for n, content_type in enumerate(_TAKEN + _LEFT):
        taken = content_type in _TAKEN
        before = lane.lane_served()
        body = {"token": s.token, "mmTransactionId": f"ct{n}", "amount": _amount(1)}
        headers = {"Content-Type": content_type, "Authorization": s.auth()}
        answer = await t.send("/wallet/withdraw", body, headers)
        # The routes read the body as JSON whatever the type says; only the lane is choosy.
        assert "errorCode" not in answer.json(), content_type
        hrg_headers = {
            "Content-Type": content_type,
            "Authorization": h.auth(),
            "xts": xts(t.now_ms() + 1000),
        }
        hrg_body = {
            "agentId": h.agent,
            "userId": h.user,
            "transactionCode": f"ct{n}",
            "amount": "1",
        }
        deposited = await t.send("/api/deposit", hrg_body, hrg_headers)
        assert deposited.json()["code"] == "0000", content_type
        payload = {
            "ts": t.now_ms() + 1000,
            "parent": j.parent,
            "action": 19,
            "uid": j.uid,
            "serialNo": f"ct{n}",
            "amount": 1,
        }
        jdb_body = {"dc": j.dc, "x": str(j.x(payload))}
        transferred = await t.send("/apiRequest.do", jdb_body, {"Content-Type": content_type})
        # (A form content type makes the JDB route read a form: 9002, on both sides.)
        assert transferred.json()["status"] == "0000" or not taken, content_type
        assert lane.lane_served() - before == (3 if taken else 0), content_type
    await t.balances()
