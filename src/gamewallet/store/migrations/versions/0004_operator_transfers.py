"""Operator-side transfer records of the HRG and JDB clients.

``operator_transfers`` is the operator's own journal of each deposit or withdraw it asks a
transfer-protocol server (HRG agent, JDB domain) to make: written ``pending`` before the first
call, then settled once as ``succeeded`` or ``failed``. The caller's id (HRG
``transactionCode``, JDB ``serialNo``) is unique per (protocol, counterparty), so a retry can
only ever re-send the same transfer. It never touches the ledger.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# As in 0001: 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.BigInteger()
MS = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "operator_transfers",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("protocol", sa.Text(), nullable=False),
        # Who was called: "<agentId>@<base URL>" (HRG) or "<dc>/<parent>@<base URL>" (JDB).
        sa.Column("counterparty", sa.Text(), nullable=False),
        sa.Column("transfer_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        # Signed as the player's balance moves (withdraw < 0); null = withdraw everything.
        sa.Column("amount_minor", MONEY),
        sa.Column("free_minor", MONEY, nullable=False, server_default="0"),
        sa.Column("remark", sa.Text(), nullable=False, server_default=""),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text()),
        sa.Column("result", sa.Text()),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.Column("updated_at_ms", MS, nullable=False),
        sa.Column("last_sent_at_ms", MS),
        sa.UniqueConstraint(
            "protocol", "counterparty", "transfer_id", name="operator_transfers_id_key"
        ),
        sa.CheckConstraint(
            "state in ('pending', 'succeeded', 'failed')", name="operator_transfers_state"
        ),
        sa.CheckConstraint("kind in ('deposit', 'withdraw')", name="operator_transfers_kind"),
        sa.CheckConstraint("attempts >= 0", name="operator_transfers_attempts"),
    )
    op.create_index(
        "operator_transfers_state_updated", "operator_transfers", ["state", "updated_at_ms"]
    )


def downgrade() -> None:
    op.drop_index("operator_transfers_state_updated", table_name="operator_transfers")
    op.drop_table("operator_transfers")
