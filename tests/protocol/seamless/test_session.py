"""The entry point (spec 1.6): a session token and the game's launch URL for a player."""

from __future__ import annotations

import pytest

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.service import admin, seamless
from gamewallet.service.common import FakeClock

from .conftest import Wallet, World


async def test_open_game_session(wallet: Wallet, world: World, clock: FakeClock) -> None:
    """The token works at once; the URL is the client's template with token and player."""
    opened = await world.services.store.run(
        seamless.open_game_session(world.clients["game"], "p1", 600, clock.now_ms())
    )
    assert opened.launch_url == (f"https://games.example/mm/launch?token={opened.token}&player=p1")
    assert opened.expires_at_ms == clock.now_ms() + 600_000
    assert opened.player.external_id == "p1"
    answer = await wallet.ok("verifySession", {"token": opened.token})
    assert answer["playerId"] == "p1"
    clock.advance(600)
    assert await wallet.code("verifySession", {"token": opened.token}) == 103


async def test_without_a_template_there_is_no_url(world: World, clock: FakeClock) -> None:
    """A client with no game_url gets the token alone."""
    opened = await world.services.store.run(
        seamless.open_game_session(world.clients["other"], "o1", 600, clock.now_ms())
    )
    assert opened.launch_url is None


async def test_refusals(world: World, clock: FakeClock) -> None:
    """Unknown players, other protocols' clients and silly TTLs are refused."""
    store = world.services.store
    with pytest.raises(WalletError) as unknown:
        await store.run(seamless.open_game_session(world.clients["game"], "nobody", 60, 0))
    assert unknown.value.code is ErrorCode.PLAYER_NOT_FOUND
    with pytest.raises(WalletError) as ttl:
        await store.run(seamless.open_game_session(world.clients["game"], "p1", 0, 0))
    assert ttl.value.code is ErrorCode.INVALID_REQUEST
    hrg = await store.run(
        admin.create_client(
            admin.NewClient("hrg", "agent", "hc", "hs", "XAG"), clock.now_ms(), world.services.key
        )
    )
    with pytest.raises(WalletError) as protocol:
        await store.run(seamless.open_game_session(hrg, "p1", 60, 0))
    assert protocol.value.code is ErrorCode.INVALID_REQUEST
