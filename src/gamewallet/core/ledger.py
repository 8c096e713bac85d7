"""Accounts and postings: the double-entry rules, free of any storage.

An *account* belongs to an owner (a player, a client, or the house's adjustments) and holds
one currency in one *bucket* (cash or free credit). Its *posted* balance moves only through
*postings*: a balanced set of entries, one operation's movement, whose amounts sum to zero
per currency. A *hold* lowers what a player can spend without posting anything; a *pending
credit* is recorded but not spendable. Available = posted − held.

Accounts flagged no-overdraft (every player account) never go below zero available; client
accounts may go negative down to the client's credit limit. Client and adjustment accounts
are split into *shards* (rows of one logical account) so that no single row is a hot spot.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


class Bucket(enum.StrEnum):
    """Which pocket of an owner an account is."""

    CASH = "cash"
    FREE = "free"  # free credit: non-cashable chips (HRG 泥码)


class OwnerKind(enum.StrEnum):
    """Who owns an account."""

    PLAYER = "player"
    CLIENT = "client"  # the operator/agent on the other side of its players' postings
    HOUSE = "house"  # manual adjustments made by back-office staff


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a posting: ``amount_minor`` added to ``account_id`` (negative = debit)."""

    account_id: int
    currency: str
    amount_minor: int


class UnbalancedPosting(AssertionError):
    """A posting whose entries do not sum to zero in some currency (a broken invariant)."""


def check_balanced(entries: Iterable[Entry]) -> None:
    """Assert that entries sum to zero per currency and that none is empty."""
    sums: dict[str, int] = defaultdict(int)
    count = 0
    for entry in entries:
        if entry.amount_minor == 0:
            raise UnbalancedPosting("a posting entry moves nothing")
        sums[entry.currency] += entry.amount_minor
        count += 1
    if count < 2:
        raise UnbalancedPosting("a posting needs at least two entries")
    bad = {cur: total for cur, total in sums.items() if total != 0}
    if bad:
        raise UnbalancedPosting(f"posting does not balance: {bad}")


def transfer(
    debit_account: int, credit_account: int, currency: str, amount_minor: int
) -> tuple[Entry, Entry]:
    """The two entries that move ``amount_minor`` from one account to another."""
    assert amount_minor > 0, "a transfer moves a positive amount"
    assert debit_account != credit_account, "a transfer needs two accounts"
    return (
        Entry(debit_account, currency, -amount_minor),
        Entry(credit_account, currency, amount_minor),
    )


@dataclass(frozen=True, slots=True)
class Balance:
    """The three figures of an account."""

    posted_minor: int = 0
    held_minor: int = 0
    pending_credit_minor: int = 0

    @property
    def available_minor(self) -> int:
        """What the owner can spend now."""
        return self.posted_minor - self.held_minor

    def assert_no_overdraft(self) -> None:
        """Assert the invariant of a no-overdraft account."""
        assert self.held_minor >= 0, "negative hold"
        assert self.pending_credit_minor >= 0, "negative pending credit"
        assert self.available_minor >= 0, "no-overdraft account below zero"


def shard_of(player_id: int, shards: int) -> int:
    """Which shard of a client account a player's postings use (stable per player)."""
    assert shards > 0
    return player_id % shards
