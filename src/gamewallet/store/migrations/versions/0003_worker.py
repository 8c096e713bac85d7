"""Worker: reconciliation decisions and the game-side settlement queue.

``reconciliation_decisions`` is the wallet side's journal of every question the reconciler asked
a game about an old hold or pending credit, with the answer and what was done about it.
``game_settlements`` is the game side's own record of each seamless call it opened
(``withdraw`` / ``deposit``) and of its decision to confirm or roll it back; the settlement queue
delivers that decision through the outbox, and ``queryWithdrawal`` / ``queryDeposit`` answer
from it. Both tables are append-mostly and never touch the ledger.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# As in 0001: 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.BigInteger()
MS = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "reconciliation_decisions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("client_id", ID, sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("operation_id", ID, sa.ForeignKey("operations.id"), nullable=False),
        sa.Column("ext_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("asked_at_ms", MS, nullable=False),
        # CONFIRMED / ROLLED_BACK / NOT_FOUND, or null when no usable answer came back.
        sa.Column("answer", sa.Text()),
        # confirm / rollback / none (already settled meanwhile, or nothing could be asked).
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("error", sa.Text()),
    )
    op.create_index(
        "reconciliation_decisions_operation",
        "reconciliation_decisions",
        ["operation_id", "asked_at_ms"],
    )
    op.create_table(
        "game_settlements",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("wallet", sa.Text(), nullable=False),
        sa.Column("ext_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("amount_minor", MONEY, nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text()),
        sa.Column("reason", sa.Text()),
        sa.Column("outcome", sa.Text()),
        sa.Column("created_at_ms", MS, nullable=False),
        sa.Column("decided_at_ms", MS),
        sa.Column("settled_at_ms", MS),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
        sa.UniqueConstraint("wallet", "ext_id", name="game_settlements_wallet_ext_key"),
        sa.CheckConstraint("kind in ('withdraw', 'deposit')", name="game_settlements_kind"),
        sa.CheckConstraint(
            "decision is null or decision in ('confirm', 'rollback')",
            name="game_settlements_decision",
        ),
        sa.CheckConstraint(
            "outcome is null or outcome in ('confirmed', 'rolled_back')",
            name="game_settlements_outcome",
        ),
        sa.CheckConstraint("amount_minor > 0", name="game_settlements_amount"),
    )


def downgrade() -> None:
    op.drop_table("game_settlements")
    op.drop_index("reconciliation_decisions_operation", table_name="reconciliation_decisions")
    op.drop_table("reconciliation_decisions")
