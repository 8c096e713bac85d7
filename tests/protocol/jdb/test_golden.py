"""Golden cases of the JDB actions (golden.json), run on SQLite and PostgreSQL.

Each case: ``given`` steps (``player`` created through the service layer with a balance and
flags, ``call`` of an earlier action that must answer ``status`` (default 0000), ``advance_s``
of the fake clock), one ``request`` payload (``ts`` and ``parent`` added unless given; a key
set to null is left out) sent to domain ``dc`` (default ``jb``), the exact ``response``, and
``then`` checks on the stored state. In expected replies ``"<int>"`` is any positive integer and
a string starting with ``~`` is a regular expression; numbers must match their JSON text.
The ledger must audit clean after every case (the ``jdb`` fixture checks it).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.protocol.jdb.caller import Jdb

from gamewallet.core.money import format_minor
from gamewallet.service.common import NS_WIRE, client_balance
from gamewallet.store import ops
from gamewallet.store.port import do

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "golden.json").read_text(encoding="utf-8"), parse_float=Decimal
)


def assert_matches(actual: Any, expected: Any, where: str = "reply") -> None:
    """``actual`` equals ``expected`` exactly (types, key order, number text), with the
    ``<int>`` and ``~regex`` wildcards."""
    if expected == "<int>":
        assert type(actual) is int, f"{where}: {actual!r} is not an integer"
        assert actual > 0, f"{where}: {actual!r} is not positive"
    elif isinstance(expected, str) and expected.startswith("~"):
        assert isinstance(actual, str), f"{where}: {actual!r} is not a string"
        assert re.fullmatch(expected[1:], actual), f"{where}: {actual!r} !~ {expected[1:]}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key, value in expected.items():
            assert_matches(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not an array"
        assert len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_matches(a, e, f"{where}[{index}]")
    else:
        assert type(actual) is type(expected), f"{where}: {actual!r} is not like {expected!r}"
        assert str(actual) == str(expected), f"{where}: {actual!r} != {expected!r}"


async def _given(jdb: Jdb, step: dict[str, Any]) -> None:
    if "player" in step:
        flags = {k: bool(step.get(k, False)) for k in ("blocked", "locked", "closed")}
        await jdb.player(
            step["player"], str(step.get("balance", "0")), dc=step.get("dc", "jb"), **flags
        )
    elif "call" in step:
        reply = await jdb.call(step["call"], dc=step.get("dc", "jb"))
        assert reply["status"] == step.get("status", "0000"), (step, reply)
    elif "advance_s" in step:
        jdb.clock.advance(float(step["advance_s"]))
    else:
        raise AssertionError(f"unknown given step {step}")


async def _then(jdb: Jdb, check: dict[str, Any]) -> None:
    if "balance" in check:
        c = check["balance"]
        player = await jdb.get_player(c["uid"], dc=c.get("dc", "jb"))
        assert format_minor(player.cash.balance.available_minor) == format_minor(
            int(Decimal(c["is"]) * 10_000)
        )
    elif "agent" in check:
        c = check["agent"]
        client = jdb.clients[c["dc"]]
        minor = await jdb.services.store.run(client_balance(client, "THB"))
        assert minor == int(Decimal(c["is"]) * 10_000)
    elif "transfers" in check:
        c = check["transfers"]
        client = jdb.clients[c["dc"]]
        _, total = await jdb.services.store.run(
            do(ops.ListOperations(client_id=client.id, ns=NS_WIRE))
        )
        assert total == c["count"]
    elif "player" in check:
        c = check["player"]
        player = await jdb.get_player(c["uid"])
        assert player.nickname == c["name"]
    elif "flags" in check:
        c = check["flags"]
        player = await jdb.get_player(c["uid"])
        assert (player.blocked, player.locked) == (c["blocked"], c["locked"])
    elif "game" in check:
        c = check["game"]
        player = await jdb.get_player(c["uid"])
        assert player.game_type == c["type"]
        if "left" in c:
            assert player.game_left_type == c["left"]
    else:
        raise AssertionError(f"unknown then check {check}")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_golden(jdb: Jdb, case: dict[str, Any]) -> None:
    for step in case.get("given", []):
        await _given(jdb, step)
    reply = await jdb.call(case["request"], dc=case.get("dc", "jb"))
    assert_matches(reply, case["response"])
    for check in case.get("then", []):
        await _then(jdb, check)


def test_golden_cases_are_unique() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
