"""The ledger audit as plain SQL that SQLite and PostgreSQL both run unchanged.

Each check is a query returning the offending rows and a sentence describing one row; a
clean ledger returns no rows at all. The checks are those of :class:`gamewallet.store.ops.Audit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_OPEN_BY_PLAYER = """
SELECT player_id, currency,
       CAST(sum(CASE WHEN state = 'held' THEN amount_minor ELSE 0 END) AS BIGINT) AS held_cash,
       CAST(sum(CASE WHEN state = 'pending' THEN amount_minor ELSE 0 END) AS BIGINT)
         AS pending_cash,
       CAST(sum(CASE WHEN state = 'held' THEN free_minor ELSE 0 END) AS BIGINT) AS held_free,
       CAST(sum(CASE WHEN state = 'pending' THEN free_minor ELSE 0 END) AS BIGINT) AS pending_free
FROM operations WHERE state IN ('held', 'pending') GROUP BY player_id, currency
"""

AUDIT_CHECKS: tuple[tuple[str, str], ...] = (
    (
        (
            "SELECT currency, CAST(sum(posted_minor) AS BIGINT) FROM accounts GROUP BY currency"
            " HAVING CAST(sum(posted_minor) AS BIGINT) <> 0"
        ),
        "currency {0}: posted balances sum to {1}, not 0",
    ),
    (
        (
            "SELECT id, posted_minor, held_minor, pending_minor FROM accounts"
            " WHERE held_minor < 0 OR pending_minor < 0"
            " OR (no_overdraft AND posted_minor - held_minor < 0)"
        ),
        "account {0}: posted {1}, held {2}, pending {3} breaks the overdraft rules",
    ),
    (
        (
            "SELECT operation_id, currency, CAST(sum(amount_minor) AS BIGINT) FROM postings"
            " GROUP BY operation_id, currency HAVING CAST(sum(amount_minor) AS BIGINT) <> 0"
        ),
        "operation {0}: postings in {1} sum to {2}, not 0",
    ),
    (
        (
            "SELECT a.id, a.posted_minor, coalesce(s.total, 0) FROM accounts a LEFT JOIN"
            " (SELECT account_id, CAST(sum(amount_minor) AS BIGINT) AS total FROM postings"
            " GROUP BY account_id) s"
            " ON s.account_id = a.id WHERE a.posted_minor <> coalesce(s.total, 0)"
        ),
        "account {0}: posted balance {1} but its postings sum to {2}",
    ),
    (
        "SELECT a.id, a.bucket, a.held_minor, a.pending_minor,"
        " coalesce(CASE a.bucket WHEN 'cash' THEN o.held_cash ELSE o.held_free END, 0) AS eh,"
        " coalesce(CASE a.bucket WHEN 'cash' THEN o.pending_cash ELSE o.pending_free END, 0)"
        " AS ep FROM accounts a LEFT JOIN (" + _OPEN_BY_PLAYER + ") o"
        " ON o.player_id = a.owner_id AND o.currency = a.currency"
        " WHERE a.owner_kind = 'player' AND ("
        " a.held_minor <> coalesce(CASE a.bucket WHEN 'cash' THEN o.held_cash"
        " ELSE o.held_free END, 0)"
        " OR a.pending_minor <> coalesce(CASE a.bucket WHEN 'cash' THEN o.pending_cash"
        " ELSE o.pending_free END, 0))",
        (
            "player account {0} ({1}): held {2} / pending {3}, but its open operations"
            " hold {4} / credit {5}"
        ),
    ),
    (
        (
            "SELECT o.id, o.state, count(p.id) FROM operations o LEFT JOIN postings p"
            " ON p.operation_id = o.id GROUP BY o.id, o.state, o.amount_minor, o.free_minor"
            " HAVING (o.state IN ('held', 'pending', 'rolled_back') AND count(p.id) > 0)"
            " OR (o.state IN ('confirmed', 'completed') AND o.amount_minor + o.free_minor > 0"
            " AND count(p.id) = 0)"
        ),
        "operation {0} in state {1} has {2} postings",
    ),
    (
        # PostgreSQL has no foreign key here (migration 0006: it locked the client's row on
        # every wallet call), so the audit checks what the constraint used to.
        (
            "SELECT o.id, o.client_id FROM operations o LEFT JOIN clients c"
            " ON c.id = o.client_id WHERE c.id IS NULL"
        ),
        "operation {0} belongs to client {1}, which does not exist",
    ),
)


def run_audit(query: Callable[[str], list[tuple[Any, ...]]]) -> list[str]:
    """Run every audit check with ``query`` and describe each offending row."""
    return [text.format(*row) for sql, text in AUDIT_CHECKS for row in query(sql)]
