"""Rows → records: the one mapping from a database row to the frozen records of records.py.

SQLite's ``sqlite3.Row`` and asyncpg's ``Record`` both answer ``row["column"]``, so the SQL
stores share these converters. Booleans go through ``bool()`` because SQLite stores them as
0/1; JSON columns are text in both databases, written by :func:`to_json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from gamewallet.core.ledger import Balance, Bucket
from gamewallet.core.states import OpState
from gamewallet.store.records import (
    AccountRecord,
    ClientRecord,
    OperationRecord,
    OutboxRecord,
    PlayerRecord,
    ReconciliationRecord,
    SessionRecord,
    SettlementRecord,
)


class Row(Protocol):
    """A database row readable by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


def to_json(value: Mapping[str, Any]) -> str:
    """The text stored in a JSON column (compact, keys sorted, UTF-8 kept)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def from_json(text: str) -> dict[str, Any]:
    """A JSON column's object."""
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def client_from(row: Row) -> ClientRecord:
    return ClientRecord(
        id=row["id"],
        protocol=row["protocol"],
        name=row["name"],
        username=row["username"],
        secret_hash=row["secret_hash"],
        currency=row["currency"],
        credit_limit_minor=row["credit_limit_minor"],
        shards=row["shards"],
        config=from_json(row["config"]),
        created_at_ms=row["created_at_ms"],
        disabled=bool(row["disabled"]),
    )


def player_from(row: Row) -> PlayerRecord:
    currency = row["currency"]
    return PlayerRecord(
        id=row["id"],
        client_id=row["client_id"],
        external_id=row["external_id"],
        currency=currency,
        nickname=row["nickname"],
        blocked=bool(row["blocked"]),
        locked=bool(row["locked"]),
        closed=bool(row["closed"]),
        game_type=row["game_type"],
        game_since_ms=row["game_since_ms"],
        game_left_at_ms=row["game_left_at_ms"],
        game_left_type=row["game_left_type"],
        created_at_ms=row["created_at_ms"],
        cash=AccountRecord(
            row["c_id"],
            currency,
            Bucket.CASH,
            Balance(row["c_posted"], row["c_held"], row["c_pending"]),
        ),
        free=AccountRecord(
            row["f_id"],
            currency,
            Bucket.FREE,
            Balance(row["f_posted"], row["f_held"], row["f_pending"]),
        ),
    )


def account_from(row: Row) -> AccountRecord:
    return AccountRecord(
        row["id"],
        row["currency"],
        Bucket(row["bucket"]),
        Balance(row["posted_minor"], row["held_minor"], row["pending_minor"]),
    )


def operation_from(row: Row) -> OperationRecord:
    return OperationRecord(
        id=row["id"],
        client_id=row["client_id"],
        ns=row["ns"],
        ext_id=row["ext_id"],
        kind=row["kind"],
        player_id=row["player_id"],
        currency=row["currency"],
        amount_minor=row["amount_minor"],
        free_minor=row["free_minor"],
        state=OpState(row["state"]),
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        detail=from_json(row["detail"]),
    )


def session_from(row: Row) -> SessionRecord:
    return SessionRecord(
        token=row["token"],
        client_id=row["client_id"],
        player_id=row["player_id"],
        kind=row["kind"],
        expires_at_ms=row["expires_at_ms"],
        created_at_ms=row["created_at_ms"],
        used_at_ms=row["used_at_ms"],
    )


def outbox_from(row: Row) -> OutboxRecord:
    return OutboxRecord(
        id=row["id"],
        topic=row["topic"],
        client_id=row["client_id"],
        operation_id=row["operation_id"],
        payload=from_json(row["payload"]),
        created_at_ms=row["created_at_ms"],
        due_at_ms=row["due_at_ms"],
        attempts=row["attempts"],
        state=row["state"],
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_until_ms=row["lease_until_ms"],
        first_attempt_at_ms=row["first_attempt_at_ms"],
        done_at_ms=row["done_at_ms"],
    )


def reconciliation_from(row: Row) -> ReconciliationRecord:
    return ReconciliationRecord(
        id=row["id"],
        client_id=row["client_id"],
        operation_id=row["operation_id"],
        ext_id=row["ext_id"],
        kind=row["kind"],
        asked_at_ms=row["asked_at_ms"],
        answer=row["answer"],
        action=row["action"],
        error=row["error"],
    )


def settlement_from(row: Row) -> SettlementRecord:
    return SettlementRecord(
        id=row["id"],
        wallet=row["wallet"],
        ext_id=row["ext_id"],
        kind=row["kind"],
        token=row["token"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        decision=row["decision"],
        reason=row["reason"],
        outcome=row["outcome"],
        created_at_ms=row["created_at_ms"],
        decided_at_ms=row["decided_at_ms"],
        settled_at_ms=row["settled_at_ms"],
        detail=from_json(row["detail"]),
    )
