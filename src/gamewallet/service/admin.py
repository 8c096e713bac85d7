"""Back-office use cases: clients, players, funding, sessions, blocking, the audit.

These are what the CLI and the admin API call. Money that staff move (funding a new player,
manual adjustments) is posted like any other operation, in the ``admin`` namespace of
operation ids, so that the audit covers it too.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.ledger import Bucket, OwnerKind
from gamewallet.core.states import OpState
from gamewallet.service.common import NS_ADMIN, hash_secret, move, new_token
from gamewallet.store import ops
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import ClientRecord, PlayerRecord, SessionRecord

PROTOCOLS = ("seamless", "hrg", "jdb")
#: Rows a client's account is split into when it has no credit limit (no hot row).
DEFAULT_SHARDS = 16
SECRET_KEY_META = "secret_key"  # noqa: S105 - the name of a meta row, not a secret


def installation_key() -> UseCase[bytes]:
    """The installation's key for hashing client secrets, created on first use."""
    value = yield from do(ops.SetMetaIfAbsent(SECRET_KEY_META, secrets.token_hex(32)))
    return bytes.fromhex(value)


@dataclass(frozen=True, slots=True)
class NewClient:
    """What ``client add`` asks for; ``secret`` is hashed before it is stored."""

    protocol: str
    name: str
    username: str | None = None
    secret: str | None = None
    currency: str | None = None
    credit_limit_minor: int | None = None
    config: Mapping[str, Any] | None = None


def create_client(new: NewClient, now_ms: int, key: bytes) -> UseCase[ClientRecord]:
    """Create a client; refuses a duplicate (protocol, name)."""
    assert new.protocol in PROTOCOLS
    # One row when a credit limit must be checked exactly; shards when nothing is checked.
    shards = 1 if new.credit_limit_minor is not None else DEFAULT_SHARDS
    record = yield from do(
        ops.InsertClient(
            protocol=new.protocol,
            name=new.name,
            username=new.username,
            secret_hash=hash_secret(new.secret, key) if new.secret else None,
            currency=new.currency,
            credit_limit_minor=new.credit_limit_minor,
            shards=shards,
            config=dict(new.config or {}),
            now_ms=now_ms,
        )
    )
    if record is None:
        raise WalletError(ErrorCode.INVALID_REQUEST, f"{new.protocol} client {new.name} exists")
    return record


def get_client(protocol: str, name: str) -> UseCase[ClientRecord]:
    """A client by protocol and name, or CLIENT_NOT_FOUND."""
    client = yield from do(ops.GetClient(protocol=protocol, name=name))
    if client is None:
        raise WalletError(ErrorCode.CLIENT_NOT_FOUND, f"no {protocol} client {name}")
    return client


def get_player(
    client: ClientRecord, external_id: str, *, lock: bool = False
) -> UseCase[PlayerRecord]:
    """A player of ``client``, or PLAYER_NOT_FOUND."""
    player = yield from do(ops.GetPlayer(client_id=client.id, external_id=external_id, lock=lock))
    if player is None:
        raise WalletError(ErrorCode.PLAYER_NOT_FOUND, f"no player {external_id}")
    return player


def create_player(
    client: ClientRecord,
    external_id: str,
    currency: str,
    nickname: str,
    balance_minor: int,
    now_ms: int,
    *,
    free_minor: int = 0,
    fund_id: str | None = None,
) -> UseCase[PlayerRecord]:
    """Create a player and fund it from the client's account (an ``admin`` operation)."""
    player = yield from do(ops.InsertPlayer(client.id, external_id, currency, nickname, now_ms))
    if player is None:
        raise WalletError(ErrorCode.PLAYER_EXISTS, f"player {external_id} exists")
    if balance_minor or free_minor:
        player = yield from fund(
            client,
            player,
            balance_minor,
            now_ms,
            free_minor=free_minor,
            ext_id=fund_id or f"fund:{player.id}",
        )
    return player


def fund(
    client: ClientRecord,
    player: PlayerRecord,
    amount_minor: int,
    now_ms: int,
    *,
    free_minor: int = 0,
    ext_id: str,
    kind: str = "fund",
    detail: Mapping[str, Any] | None = None,
) -> UseCase[PlayerRecord]:
    """Move money from the client to a (locked) player, as one completed operation."""
    assert amount_minor >= 0
    assert free_minor >= 0
    operation = yield from do(
        ops.InsertOperation(
            client.id,
            NS_ADMIN,
            ext_id,
            kind,
            player.id,
            player.currency,
            amount_minor,
            free_minor,
            OpState.COMPLETED,
            now_ms,
            dict(detail or {}),
        )
    )
    if operation is None:
        raise WalletError(ErrorCode.ID_REUSED, f"operation id {ext_id} is taken")
    yield from move(
        client, player, operation.id, now_ms, cash_minor=amount_minor, free_minor=free_minor
    )
    updated = yield from do(ops.GetPlayer(player_id=player.id))
    assert updated is not None
    return updated


def adjust(
    player_id: int,
    amount_minor: int,
    reason: str,
    actor: str,
    now_ms: int,
    *,
    bucket: Bucket = Bucket.CASH,
) -> UseCase[PlayerRecord]:
    """A manual adjustment: ``amount_minor`` (signed) between the player and the house.

    Refused with INSUFFICIENT_FUNDS if a debit would take the player's available balance
    below zero. The reason and the actor are kept on the operation.
    """
    if amount_minor == 0 or not reason.strip():
        raise WalletError(ErrorCode.INVALID_REQUEST, "an adjustment needs an amount and a reason")
    player = yield from do(ops.GetPlayer(player_id=player_id, lock=True))
    if player is None:
        raise WalletError(ErrorCode.PLAYER_NOT_FOUND)
    account = player.cash if bucket is Bucket.CASH else player.free
    if account.balance.available_minor + amount_minor < 0:
        raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
    operation = yield from do(
        ops.InsertOperation(
            player.client_id,
            NS_ADMIN,
            f"adjust:{new_token()}",
            "adjust",
            player.id,
            player.currency,
            abs(amount_minor) if bucket is Bucket.CASH else 0,
            abs(amount_minor) if bucket is Bucket.FREE else 0,
            OpState.COMPLETED,
            now_ms,
            {
                "reason": reason,
                "actor": actor,
                "signed_minor": amount_minor,
                "bucket": bucket.value,
            },
        )
    )
    assert operation is not None
    (house,) = yield from do(
        ops.GetOwnerAccounts(
            OwnerKind.HOUSE, 0, player.currency, 1, bucket=bucket.value, shard=0, lock=True
        )
    )
    yield from do(
        ops.Apply(
            operation.id,
            (
                ops.Delta(account.id, player.currency, posted_minor=amount_minor),
                ops.Delta(house.id, player.currency, posted_minor=-amount_minor),
            ),
            now_ms,
        )
    )
    updated = yield from do(ops.GetPlayer(player_id=player.id))
    assert updated is not None
    return updated


def set_blocked(client: ClientRecord, external_id: str, blocked: bool) -> UseCase[PlayerRecord]:
    """Block or unblock a player (a blocked player cannot withdraw)."""
    player = yield from get_player(client, external_id, lock=True)
    yield from do(ops.UpdatePlayer(player.id, {"blocked": blocked}))
    updated = yield from do(ops.GetPlayer(player_id=player.id))
    assert updated is not None
    return updated


def open_session(
    client: ClientRecord, external_id: str, ttl_s: int, now_ms: int, *, kind: str = "session"
) -> UseCase[tuple[SessionRecord, PlayerRecord]]:
    """Create a session token (or a one-time ticket) for a player of ``client``."""
    if ttl_s <= 0:
        raise WalletError(ErrorCode.INVALID_REQUEST, "ttl must be positive")
    player = yield from get_player(client, external_id)
    session = SessionRecord(new_token(), client.id, player.id, kind, now_ms + ttl_s * 1000, now_ms)
    yield from do(ops.InsertSession(session))
    return session, player


def launch_url(client: ClientRecord, token: str, player_external_id: str) -> str | None:
    """The client's game URL template with the token (and player id) filled in."""
    template = client.config.get("game_url")
    if not isinstance(template, str) or not template:
        return None
    return template.replace("{token}", token).replace("{player}", player_external_id)


def audit() -> UseCase[list[str]]:
    """Every ledger invariant; an empty list means the ledger is sound."""
    return (yield from do(ops.Audit()))
