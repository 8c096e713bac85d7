"""Building blocks shared by every use case: the clock, fingerprints, secrets, and the one
way money moves between a player and the client on the other side of its postings.

Use cases are generators run by a store in one database transaction (see
:mod:`gamewallet.store.port`). The helpers here are use-case fragments, composed with
``yield from``. They take their locks in the global order: player rows first, then the
operation row, then client account shards in ascending shard order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.ledger import Bucket, OwnerKind, shard_of
from gamewallet.store.ops import Apply, Delta, GetOwnerAccounts
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import ClientRecord, PlayerRecord

#: Namespaces of operation ids: what callers send on the wire, and what we make ourselves.
NS_WIRE = "wire"
NS_ADMIN = "admin"
NS_PAYMENT = "payment"


class Clock(Protocol):
    """Where use cases get the time (a fake one in tests)."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass
class FakeClock:
    """A clock tests move by hand."""

    now: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z

    def now_ms(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def fingerprint(*parts: Any) -> str:
    """A stable digest of a request's meaningful content (for "same id, other content")."""
    text = json.dumps(parts, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_secret(secret: str, key: bytes) -> str:
    """Keyed hash of a random client secret (HMAC-SHA256): fast, and useless without ``key``.

    Client secrets are long random strings, so a slow password hash would only cost
    latency on every call; the installation key keeps a stolen table from being checked
    offline.
    """
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def check_secret(secret: str, stored_hash: str | None, key: bytes) -> bool:
    """Constant-time comparison of ``secret`` against a stored keyed hash."""
    if not stored_hash:
        return False
    return hmac.compare_digest(hash_secret(secret, key), stored_hash)


def new_token() -> str:
    """A new session token (UUID-shaped, as the seamless vendor's examples are)."""
    return str(uuid.uuid4())


def client_shards(client: ClientRecord) -> int:
    """How many rows the client's per-currency account is split into."""
    return client.shards


def move(
    client: ClientRecord,
    player: PlayerRecord,
    operation_id: int,
    now_ms: int,
    *,
    cash_minor: int = 0,
    free_minor: int = 0,
    released_hold_minor: int = 0,
    released_pending_minor: int = 0,
) -> UseCase[None]:
    """Post money between ``player`` (already locked) and ``client``.

    ``cash_minor`` / ``free_minor`` are what the player's buckets receive (negative = the
    player pays the client). ``released_hold_minor`` is a hold on the player's cash that this
    posting settles, ``released_pending_minor`` a pending credit it settles. A client with a
    credit limit has all its shards locked and summed before its balance may drop, and the
    posting is refused with CREDIT_LIMIT_EXCEEDED if it would go past the limit.
    """
    deltas: list[Delta] = []
    currency = player.currency
    for bucket, amount in ((Bucket.CASH, cash_minor), (Bucket.FREE, free_minor)):
        if amount == 0:
            continue
        account = player.cash if bucket is Bucket.CASH else player.free
        deltas.append(Delta(account.id, currency, posted_minor=amount))
        client_account = yield from _client_account(client, player, bucket, amount)
        deltas.append(Delta(client_account, currency, posted_minor=-amount))
    if released_hold_minor or released_pending_minor:
        deltas.append(
            Delta(
                player.cash.id,
                currency,
                held_minor=-released_hold_minor,
                pending_minor=-released_pending_minor,
            )
        )
    yield from do(Apply(operation_id, tuple(_merge(deltas)), now_ms))


def _client_account(
    client: ClientRecord, player: PlayerRecord, bucket: Bucket, player_gets_minor: int
) -> UseCase[int]:
    """The id of the client shard row that takes the other side of a player's posting."""
    shard = shard_of(player.id, client.shards)
    limited = client.credit_limit_minor is not None and bucket is Bucket.CASH
    if limited and player_gets_minor > 0:
        rows = yield from do(
            GetOwnerAccounts(
                OwnerKind.CLIENT,
                client.id,
                player.currency,
                client.shards,
                bucket=bucket,
                lock=True,
            )
        )
        total = sum(r.balance.posted_minor for r in rows)
        assert client.credit_limit_minor is not None
        if total - player_gets_minor < -client.credit_limit_minor:
            raise WalletError(ErrorCode.CREDIT_LIMIT_EXCEEDED)
        return rows[shard].id
    rows = yield from do(
        GetOwnerAccounts(
            OwnerKind.CLIENT,
            client.id,
            player.currency,
            client.shards,
            bucket=bucket,
            shard=shard,
            lock=True,
        )
    )
    return rows[0].id


def _merge(deltas: list[Delta]) -> list[Delta]:
    """Combine deltas on the same account so each account is updated once."""
    merged: dict[int, Delta] = {}
    for d in deltas:
        prev = merged.get(d.account_id)
        if prev is None:
            merged[d.account_id] = d
        else:
            merged[d.account_id] = Delta(
                d.account_id,
                d.currency,
                prev.posted_minor + d.posted_minor,
                prev.held_minor + d.held_minor,
                prev.pending_minor + d.pending_minor,
            )
    return [d for d in merged.values() if d.posted_minor or d.held_minor or d.pending_minor]


def client_balance(client: ClientRecord, currency: str) -> UseCase[int]:
    """The client's posted cash balance in ``currency`` (sum of its shards; no locks)."""
    rows = yield from do(GetOwnerAccounts(OwnerKind.CLIENT, client.id, currency, client.shards))
    return sum(r.balance.posted_minor for r in rows)
