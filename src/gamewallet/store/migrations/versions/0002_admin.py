"""Back-office: staff users, API tokens, web sessions and the trail of staff actions.

Passwords are argon2 hashes; API tokens and session cookies are stored only as keyed hashes,
so a copy of these tables lets nobody sign in. Nothing here touches the ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The same column types as 0001: 64-bit ids on PostgreSQL, INTEGER PRIMARY KEY on SQLite.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MS = sa.BigInteger()
ROLE_CHECK = "role in ('viewer', 'operator')"


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until_ms", MS),
        sa.Column("last_login_at_ms", MS),
        sa.UniqueConstraint("name", name="admin_users_name_key"),
        sa.CheckConstraint(ROLE_CHECK, name="admin_users_role_check"),
    )
    op.create_table(
        "admin_tokens",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("last_used_at_ms", MS),
        sa.Column("revoked_at_ms", MS),
        sa.UniqueConstraint("name", name="admin_tokens_name_key"),
        sa.UniqueConstraint("token_hash", name="admin_tokens_hash_key"),
        sa.CheckConstraint(ROLE_CHECK, name="admin_tokens_role_check"),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("session_hash", sa.Text(), primary_key=True),
        sa.Column(
            "user_id", ID, sa.ForeignKey("admin_users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.Column("expires_at_ms", MS, nullable=False),
    )
    op.create_index("admin_sessions_expires", "admin_sessions", ["expires_at_ms"])
    op.create_index("admin_sessions_user", "admin_sessions", ["user_id"])
    op.create_table(
        "admin_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("at_ms", MS, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index("admin_events_actor", "admin_events", ["actor", "id"])
    op.create_index("admin_events_action", "admin_events", ["action", "id"])


def downgrade() -> None:
    op.drop_table("admin_events")
    op.drop_table("admin_sessions")
    op.drop_table("admin_tokens")
    op.drop_table("admin_users")
