"""Pure parts of the JDB service: the cooldown table, the game marker, the in-flight registry."""

from __future__ import annotations

from typing import Any

import pytest

from gamewallet.service.jdb import (
    DEFAULT_COOLDOWN_S,
    GAME_CATEGORIES,
    InFlight,
    cooldown_ms,
    decode_game,
    encode_game,
)
from gamewallet.store.records import ClientRecord


def client(config: dict[str, Any] | None = None) -> ClientRecord:
    return ClientRecord(1, "jdb", "jb", None, None, "THB", None, 16, config or {})


@pytest.mark.parametrize(
    ("game", "expected_ms"),
    [
        ("18:8001", 30_000),
        ("7:7001", 5_000),
        ("32:1", 10_000),
        ("66:1", 10_000),
        ("0:8001", 0),
        ("12:1", 0),
        ("999:1", 0),
        (":", 0),
        (None, 0),
    ],
)
def test_default_cooldowns(game: str | None, expected_ms: int) -> None:
    assert cooldown_ms(client(), game) == expected_ms


def test_cooldown_overrides() -> None:
    configured = client({"cooldown_s": {"card": 2.5, "7": 1, "999": 4, "fish": 9}})
    assert cooldown_ms(configured, "18:1") == 2_500  # by category
    assert cooldown_ms(configured, "7:1") == 1_000  # the gType wins over its category
    assert cooldown_ms(configured, "999:1") == 4_000  # a gType we do not know
    assert cooldown_ms(configured, "32:1") == 10_000  # not overridden
    assert cooldown_ms(client({"cooldown_s": "junk"}), "18:1") == 30_000  # unusable: defaults


def test_every_default_category_has_a_game_type() -> None:
    assert set(DEFAULT_COOLDOWN_S) <= set(GAME_CATEGORIES.values())


def test_game_marker_round_trip() -> None:
    assert decode_game(encode_game("18", "8001")) == ("18", "8001")
    assert decode_game(encode_game("", "")) == ("", "")


def test_in_flight_registry() -> None:
    inflight = InFlight()
    assert inflight.claim(1, "S1")
    assert not inflight.claim(1, "S1")
    assert inflight.claim(2, "S1")  # per client
    assert inflight.busy(1, "S1")
    inflight.release(1, "S1")
    assert not inflight.busy(1, "S1")
    assert inflight.claim(1, "S1")
