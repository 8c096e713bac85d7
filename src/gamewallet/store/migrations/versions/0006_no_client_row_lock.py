"""PostgreSQL: no lock on the client's row for every operation written.

A foreign key makes PostgreSQL take ``FOR KEY SHARE`` on the referenced row for every row
inserted. ``operations.client_id -> clients.id`` therefore locked the one ``clients`` row of a
game backend (or agent, or JDB domain) in every wallet call of all its players at once: a
global hot row on the hot path. With many concurrent callers, each lock becomes a new
multixact on that row (extra WAL, multixact SLRU traffic and contention), measured at 4-9 %
of the throughput of the fast-path function under 64 concurrent clients.

The constraint goes on PostgreSQL; the property it guarded stays checked: client rows are
never deleted (there is no such command or use case), every insert names a client the service
authenticated, and ``gamewallet audit`` reports any operation whose client does not exist
(``store/audit.py``). SQLite keeps its constraint (a foreign key there is a plain index lookup
in the single writer, with no row lock to contend for). The player foreign key stays on both:
the player row is locked ``FOR UPDATE`` by the same call already, so its key-share lock is
free.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("operations_client_id_fkey", "operations", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_foreign_key(
        "operations_client_id_fkey", "operations", "clients", ["client_id"], ["id"]
    )
