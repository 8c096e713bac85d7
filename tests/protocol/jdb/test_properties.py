"""Properties of the JDB API under generated input.

1. Whatever JSON values a payload's fields hold, every action answers a status of the vendor's
   table, never 9999 (an unexpected failure), and the ledger stays sound.
2. Any sequence of transfers with up to 3 decimals moves the balance exactly as a Decimal model
   says, and every reply's ``userBalance`` and ``amount`` are that model's numbers.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.protocol.jdb.caller import Jdb

from gamewallet.core.errors import WalletError
from gamewallet.protocols.jdb.errors import STATUS_TEXT

ACTIONS = [11, 12, 14, 15, 17, 19, 52, 55, 61, 65, 68]
FIELDS = [
    "uid", "name", "serialNo", "amount", "allCashOutFlag", "remark", "credit_allocated",
    "operation_code", "starttime", "endtime", "uidList", "gType", "mType", "lang",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=60)
    | st.sampled_from(["p1", "P1", "ghost", "S1", "1", "2", "01-01-2026 08:00:00", "7"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
payloads = st.fixed_dictionaries(
    {"action": st.sampled_from(ACTIONS)},
    optional=dict.fromkeys(FIELDS, json_values),
)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(payload=payloads)
async def test_any_field_values_get_a_vendor_status(jdb: Jdb, payload: dict[str, Any]) -> None:
    with contextlib.suppress(WalletError):  # every example after the first finds it
        await jdb.player("p1", "100")
    reply = await jdb.call(payload)
    assert reply["status"] in STATUS_TEXT
    assert reply["status"] not in {"9999", "9012"}, (payload, reply)
    if reply["status"] != "0000":
        assert set(reply) == {"status", "err_text"}


amounts = st.decimals(
    min_value=Decimal("-2000"), max_value=Decimal("2000"), places=3, allow_nan=False
).filter(lambda d: d != 0)


@SETTINGS
@given(steps=st.lists(amounts, min_size=1, max_size=8))
async def test_transfers_follow_a_decimal_model(jdb: Jdb, steps: list[Decimal]) -> None:
    uid = f"m{jdb.clock.now_ms() % 10**9}"
    jdb.clock.advance(1)  # a fresh player per example
    await jdb.player(uid, "1000")
    model = Decimal("1000")
    for index, amount in enumerate(steps):
        reply = await jdb.call(
            {
                "action": 19,
                "uid": uid,
                "serialNo": f"P{jdb.clock.now_ms()}{index}",
                "amount": amount,
            }
        )
        if model + amount < 0:
            assert reply["status"] == "6001"
            continue
        model += amount
        assert reply["status"] == "0000", reply
        assert reply["amount"] == amount
        assert reply["userBalance"] == model
        assert "E" not in str(reply["userBalance"])
        assert "." in str(reply["userBalance"])
    player = await jdb.get_player(uid)
    assert Decimal(player.cash.balance.posted_minor) / 10_000 == model
