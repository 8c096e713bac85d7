"""The transfer protocols' own proofs of freshness and origin.

JDB: a captured ``x`` replayed after the 30 s window is 9005; a replay inside it cannot move
money twice (6005); any tampering with the ciphertext, or a payload made with another
domain's key, cannot be read (9006), never anything else. HRG: an ``xts`` more than the
configured skew away from our clock, malformed or missing, is 1002 before anything happens.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.security import calls
from tests.security.world import OPENING_MINOR, World, xts

from gamewallet.core.money import UNIT
from gamewallet.protocols.jdb.crypto import encrypt_payload
from gamewallet.service import admin
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.store import ops
from gamewallet.store.port import do


async def jdb_balance(services: Services, world: World) -> int:
    clients = await services.store.run(do(ops.ListClients(protocol="jdb")))
    client = next(c for c in clients if c.name == world.jdb[0].dc)
    player = await services.store.run(admin.get_player(client, world.jdb[0].uid))
    return player.cash.balance.available_minor


async def test_jdb_replay_after_the_window_is_9005_and_inside_it_moves_nothing_twice(
    http: httpx.AsyncClient, world: World, services: Services, clock: FakeClock
) -> None:
    side = world.jdb[0]
    payload = {
        "action": 19,
        "ts": clock.now_ms(),
        "parent": side.parent,
        "uid": side.uid,
        "serialNo": "replay1",
        "amount": 25,
    }
    captured = side.x(payload)
    first = await calls.jdb(http, side, {}, clock, x=captured)
    assert first.json()["status"] == "0000"
    # Within the window the same x is a repeat of a completed serialNo: refused, no move.
    clock.advance(10)
    assert (await calls.jdb(http, side, {}, clock, x=captured)).json()["status"] == "6005"
    # After the window: stale, whatever it carries.
    clock.advance(21)
    assert (await calls.jdb(http, side, {}, clock, x=captured)).json()["status"] == "9005"
    # A payload from the future is as stale as one from the past.
    future = side.x({**payload, "serialNo": "future1", "ts": clock.now_ms() + 31_000})
    assert (await calls.jdb(http, side, {}, clock, x=future)).json()["status"] == "9005"
    assert await jdb_balance(services, world) == OPENING_MINOR + 25 * UNIT
    assert await services.store.run(admin.audit()) == []


def _flip(x: str, position: int, bit: int) -> str:
    """``x`` with one bit of its ciphertext flipped (re-encoded as JDB's Base64-URL)."""
    raw = bytearray(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    raw[position % len(raw)] ^= 1 << bit
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(position=st.integers(min_value=0, max_value=10_000), bit=st.integers(0, 7))
async def test_jdb_tampered_ciphertext_is_never_accepted(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    clock: FakeClock,
    position: int,
    bit: int,
) -> None:
    side = world.jdb[0]
    payload = {
        "action": 19,
        "ts": clock.now_ms(),
        "parent": side.parent,
        "uid": side.uid,
        "serialNo": f"t{position}x{bit}",
        "amount": 7,
    }
    status = (
        await calls.jdb(http, side, {}, clock, x=_flip(side.x(payload), position, bit))
    ).json()["status"]
    # A flipped bit garbles a block (9006). Only the last block's trailing padding can survive
    # a flip into another blank; then the call is the genuine one and may succeed once.
    assert status in ("9006", "0000", "6005"), status


async def test_jdb_wrong_key_or_iv_cannot_be_read(
    http: httpx.AsyncClient, world: World, services: Services, clock: FakeClock
) -> None:
    side, other = world.jdb
    payload = {"action": 15, "ts": clock.now_ms(), "parent": side.parent, "uid": side.uid}
    text = json.dumps(payload)
    for key, iv, refusals in (
        (other.key, side.iv, {"9006"}),
        (other.key, other.iv, {"9006"}),
        # With the right key a wrong IV garbles only the first block, which holds the
        # action: here the IVs differ in one character, so the action's name is garbled.
        (side.key, other.iv, {"9006", "9007"}),
    ):
        x = encrypt_payload(text, key, iv)
        status = (await calls.jdb(http, side, {}, clock, x=x)).json()["status"]
        assert status in refusals, (key, iv, status)
    assert await jdb_balance(services, world) == OPENING_MINOR


@pytest.mark.parametrize(
    ("offset_s", "code"),
    [(0, "0000"), (299, "0000"), (-299, "0000"), (301, "1002"), (-301, "1002"), (86400, "1002")],
)
async def test_hrg_xts_skew(
    http: httpx.AsyncClient, world: World, clock: FakeClock, offset_s: int, code: str
) -> None:
    side = world.hrg[0]
    stamp = xts(clock.now_ms() + offset_s * 1000)
    response = await calls.hrg(
        http, side, "get_balance", calls.hrg_balance(side), clock, xts_value=stamp
    )
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "stamp",
    [None, "", "yesterday", "2026-01-01 00:00:00", "2026-01-01T08:00:00.000", "9" * 500],
)
async def test_hrg_malformed_or_missing_xts_is_1002_and_moves_nothing(
    http: httpx.AsyncClient, world: World, services: Services, clock: FakeClock, stamp: str | None
) -> None:
    side = world.hrg[0]
    deposit = {"agentId": side.agent, "userId": side.user, "amount": "5", "transactionCode": "x9"}
    response = await calls.hrg(http, side, "deposit", deposit, clock, xts_value=stamp)
    assert response.json()["code"] == "1002"
    clients = await services.store.run(do(ops.ListClients(protocol="hrg")))
    client = next(c for c in clients if c.name == side.agent)
    player = await services.store.run(admin.get_player(client, side.user))
    assert player.cash.balance.available_minor == OPENING_MINOR
