"""Drop ``postings_account``: an index no query reads, written by every posting.

Every query over postings reaches them by operation (``postings_operation``) or reads the
whole table (the audit's per-account sums, which scan and aggregate either way). The index on
``postings.account_id`` only cost writes: one more B-tree entry for every posting, and for a
player's posting a leaf on a page of its own. With 1,000,000 players and tens of millions of
postings those leaves are spread over hundreds of megabytes, few of them touched twice in a
minute, so on a host that takes idle pages out of its page cache each confirmation read one
from disk (docs/performance.md, "The eighth round").

The foreign key ``postings.account_id`` -> ``accounts.id`` stays. Checking it on insert looks
up the account's primary key; only deleting or re-keying an account would search postings by
account, and gamewallet never does either.

A player's or an account's history is read through ``operations_player_created`` and
``postings_operation``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("postings_account", table_name="postings")


def downgrade() -> None:
    op.create_index("postings_account", "postings", ["account_id"])
