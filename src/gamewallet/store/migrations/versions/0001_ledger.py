"""The ledger: clients, players, accounts, operations, postings, sessions, idempotency, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.BigInteger()
MS = sa.BigInteger()


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "clients",
        _id(),
        sa.Column("protocol", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("username", sa.Text()),
        sa.Column("secret_hash", sa.Text()),
        sa.Column("currency", sa.Text()),
        sa.Column("credit_limit_minor", MONEY),
        sa.Column("shards", sa.Integer(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("protocol", "name", name="clients_protocol_name_key"),
        sa.CheckConstraint("shards between 1 and 256", name="clients_shards_check"),
        sa.CheckConstraint(
            "credit_limit_minor is null or credit_limit_minor >= 0",
            name="clients_credit_limit_check",
        ),
    )
    op.create_table(
        "players",
        _id(),
        sa.Column("client_id", ID, sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("nickname", sa.Text(), nullable=False, server_default=""),
        sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("closed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("game_type", sa.Text()),
        sa.Column("game_since_ms", MS),
        sa.Column("game_left_at_ms", MS),
        sa.Column("game_left_type", sa.Text()),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.UniqueConstraint("client_id", "external_id", name="players_client_external_key"),
    )
    op.create_table(
        "accounts",
        _id(),
        sa.Column("owner_kind", sa.Text(), nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("posted_minor", MONEY, nullable=False, server_default="0"),
        sa.Column("held_minor", MONEY, nullable=False, server_default="0"),
        sa.Column("pending_minor", MONEY, nullable=False, server_default="0"),
        sa.Column("no_overdraft", sa.Boolean(), nullable=False),
        sa.UniqueConstraint(
            "owner_kind", "owner_id", "currency", "bucket", "shard", name="accounts_owner_key"
        ),
        # The database itself refuses a broken invariant, whatever the code above it does.
        sa.CheckConstraint(
            "held_minor >= 0 and pending_minor >= 0", name="accounts_pending_nonneg"
        ),
        sa.CheckConstraint(
            "not no_overdraft or posted_minor - held_minor >= 0", name="accounts_no_overdraft"
        ),
    )
    op.create_table(
        "operations",
        _id(),
        sa.Column("client_id", ID, sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("ns", sa.Text(), nullable=False),
        sa.Column("ext_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("player_id", ID, sa.ForeignKey("players.id"), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount_minor", MONEY, nullable=False),
        sa.Column("free_minor", MONEY, nullable=False, server_default="0"),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.Column("updated_at_ms", MS, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
        sa.UniqueConstraint("client_id", "ns", "ext_id", name="operations_caller_id_key"),
        sa.CheckConstraint("amount_minor >= 0 and free_minor >= 0", name="operations_amounts"),
    )
    op.create_index("operations_client_created", "operations", ["client_id", "created_at_ms"])
    op.create_index("operations_player_created", "operations", ["player_id", "created_at_ms"])
    op.create_index("operations_state_updated", "operations", ["state", "updated_at_ms"])
    op.create_table(
        "postings",
        _id(),
        sa.Column("operation_id", ID, sa.ForeignKey("operations.id"), nullable=False),
        sa.Column("account_id", ID, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount_minor", MONEY, nullable=False),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.CheckConstraint("amount_minor <> 0", name="postings_nonzero"),
    )
    op.create_index("postings_operation", "postings", ["operation_id"])
    op.create_index("postings_account", "postings", ["account_id"])
    op.create_table(
        "sessions",
        sa.Column("token", sa.Text(), primary_key=True),
        sa.Column("client_id", ID, sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("player_id", ID, sa.ForeignKey("players.id"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("expires_at_ms", MS, nullable=False),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.Column("used_at_ms", MS),
    )
    op.create_index("sessions_expires", "sessions", ["expires_at_ms"])
    op.create_table(
        "idempotency",
        sa.Column("client_id", ID, nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "scope", "key", name="idempotency_pkey"),
    )
    op.create_index("idempotency_created", "idempotency", ["created_at_ms"])
    op.create_table(
        "outbox",
        _id(),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("client_id", ID),
        sa.Column("operation_id", ID),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.Column("due_at_ms", MS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("state", sa.Text(), nullable=False, server_default="pending"),
        sa.Column("last_error", sa.Text()),
        sa.Column("lease_owner", sa.Text()),
        sa.Column("lease_until_ms", MS),
        sa.Column("first_attempt_at_ms", MS),
        sa.Column("done_at_ms", MS),
    )
    op.create_index("outbox_state_due", "outbox", ["state", "due_at_ms"])


def downgrade() -> None:
    for table in (
        "outbox",
        "idempotency",
        "sessions",
        "postings",
        "operations",
        "accounts",
        "players",
        "clients",
        "meta",
    ):
        op.drop_table(table)
