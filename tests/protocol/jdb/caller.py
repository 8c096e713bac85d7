"""The JDB test caller: three JDB domains and an operator that speaks the protocol.

Domains (all currency THB, agent ``testag``, zone GMT+8):
``jb`` the default; ``jl`` with a credit limit of 1000 on its agent account; ``jc`` with a
cooldown override ``{"card": 2, "7": 1}`` and a ``game_url`` template. :class:`Jdb` encrypts
a payload with the domain's key, sends it to ``/apiRequest.do`` and returns the reply. Numbers
are ``Decimal`` both ways (requests are encoded from them as written; replies decode to them),
and tests compare ``str(Decimal)``, which keeps the wire text (``100.0`` is not ``100``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx
import msgspec

from gamewallet.core.money import parse_amount
from gamewallet.protocols.jdb.crypto import encrypt_payload
from gamewallet.service import admin
from gamewallet.service.common import Clock, FakeClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store, ops
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import ClientRecord, PlayerRecord

KEY = "0123456789abcdef"
IV = "fedcba9876543210"
PARENT = "testag"
CURRENCY = "THB"
PATH = "/apiRequest.do"
_ENCODER = msgspec.json.Encoder(decimal_format="number")

DOMAINS: dict[str, dict[str, Any]] = {
    "jb": {"config": {}, "credit_limit_minor": None},
    "jl": {"config": {}, "credit_limit_minor": 1000 * 10_000},
    "jc": {
        "config": {
            "cooldown_s": {"card": 2, "7": 1},
            "game_url": "https://games.example/play?t={token}&u={player}&l={lang}&g={gType}",
        },
        "credit_limit_minor": None,
    },
}


def domain_config(**extra: Any) -> dict[str, Any]:
    """A JDB client config with the test key, IV and parent."""
    return {"parent": PARENT, "aes_key": KEY, "aes_iv": IV, **extra}


def parse_reply(text: str) -> Any:
    """A reply with every non-integer number as the exact ``Decimal`` of its text."""
    return json.loads(text, parse_float=Decimal)


def encode(payload: Mapping[str, Any]) -> str:
    """JSON of a payload; ``Decimal`` values are written as the numbers they spell."""
    return _ENCODER.encode(payload).decode()


class Jdb:
    """An operator talking to our JDB API in-process."""

    def __init__(self, http: httpx.AsyncClient, services: Services, clock: FakeClock) -> None:
        self.http = http
        self.services = services
        self.clock = clock
        self.clients: dict[str, ClientRecord] = {}

    def payload(self, fields: Mapping[str, Any], *, ts_offset_ms: int = 0) -> dict[str, Any]:
        """``fields`` with ``ts`` (now) and ``parent`` added; keys given as None are removed."""
        merged = {"ts": self.clock.now_ms() + ts_offset_ms, "parent": PARENT, **fields}
        return {k: v for k, v in merged.items() if v is not None}

    def x(self, fields: Mapping[str, Any], *, key: str = KEY, iv: str = IV, **kw: Any) -> str:
        """The encrypted ``x`` of a payload."""
        return encrypt_payload(encode(self.payload(fields, **kw)), key, iv)

    async def call(self, fields: Mapping[str, Any], *, dc: str = "jb", **kw: Any) -> Any:
        """Send one action by GET and return the parsed reply (HTTP 200 required)."""
        response = await self.http.get(PATH, params={"dc": dc, "x": self.x(fields, **kw)})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        return parse_reply(response.text)

    async def ok(self, fields: Mapping[str, Any], *, dc: str = "jb", **kw: Any) -> Any:
        """Send one action that must succeed."""
        reply = await self.call(fields, dc=dc, **kw)
        assert reply["status"] == "0000", reply
        return reply

    async def player(
        self,
        uid: str,
        balance: str = "0",
        *,
        dc: str = "jb",
        blocked: bool = False,
        locked: bool = False,
        closed: bool = False,
    ) -> PlayerRecord:
        """Create a player through the service layer, funded by its agent, with flags set."""
        client = self.clients[dc]
        minor = parse_amount(balance, allow_zero=True)
        player = await self.services.store.run(
            admin.create_player(client, uid, CURRENCY, uid.upper(), minor, self.clock.now_ms())
        )
        flags = {"blocked": blocked, "locked": locked, "closed": closed}
        changes = {k: v for k, v in flags.items() if v}
        if changes:
            await self.services.store.run(_update_player(player.id, changes))
        return player

    async def get_player(self, uid: str, *, dc: str = "jb") -> PlayerRecord:
        """A player as stored now."""
        client = self.clients[dc]
        return await self.services.store.run(admin.get_player(client, uid))

    async def audit(self) -> list[str]:
        """The ledger audit (empty = sound)."""
        return await self.services.store.run(admin.audit())


def _update_player(player_id: int, changes: Mapping[str, Any]) -> UseCase[None]:
    yield from do(ops.UpdatePlayer(player_id, changes))


async def create_domain(
    services: Services,
    now_ms: int,
    dc: str,
    config: Mapping[str, Any],
    *,
    credit_limit_minor: int | None = None,
) -> ClientRecord:
    """Create one JDB client with exactly ``config`` and reload the client directory."""
    client = await services.store.run(
        admin.create_client(
            admin.NewClient(
                protocol="jdb",
                name=dc,
                currency=CURRENCY,
                credit_limit_minor=credit_limit_minor,
                config=dict(config),
            ),
            now_ms,
            services.key,
        )
    )
    await services.clients.reload()
    return client


async def create_domains(services: Services, clock: FakeClock) -> dict[str, ClientRecord]:
    """Create the test domains of :data:`DOMAINS`."""
    return {
        dc: await create_domain(
            services,
            clock.now_ms(),
            dc,
            domain_config(**spec["config"]),
            credit_limit_minor=spec["credit_limit_minor"],
        )
        for dc, spec in DOMAINS.items()
    }


async def start_services(url: str, clock: Clock, *, migrate_pg: bool = True) -> Services:
    """Started services on ``url`` (PostgreSQL migrated first unless told otherwise)."""
    if url.startswith("postgresql") and migrate_pg:
        await asyncio.to_thread(migrate.upgrade, url)
    started = Services(Settings(database_url=url, client_cache_ttl_s=0.0), open_store(url), clock)
    await started.start()
    return started
