"""Expected outcomes of wallet use cases, declared in precedence order.

These are values, not crashes: each protocol maps every member to its own code with one
table (tested to cover every member). When several outcomes apply to one request, the one
declared first wins, so use cases check conditions in this order. Broken invariants are
not here: they are ``AssertionError``\\ s that abort and roll back the database transaction.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    """Every refusal a use case can return, first listed = highest precedence."""

    INVALID_REQUEST = "invalid request"
    CLIENT_NOT_FOUND = "client not found"
    UNKNOWN_TOKEN = "invalid token"  # noqa: S105 - an error name, not a secret
    SESSION_EXPIRED = "session expired"
    PLAYER_NOT_FOUND = "player not found"
    PLAYER_EXISTS = "player already exists"
    PLAYER_CLOSED = "player closed"
    PLAYER_LOCKED = "player locked"
    PLAYER_BLOCKED = "player blocked"
    PLAYER_NOT_PLAYING = "player is not in a game"
    CURRENCY_MISMATCH = "currency mismatch"
    ID_REUSED = "transaction id reused with different content"
    IN_PROGRESS = "transaction id is being processed"
    ALREADY_COMPLETED = "transaction id already completed"
    ALREADY_ROLLED_BACK = "transaction already rolled back"
    NOT_FOUND = "transaction not found"
    ALREADY_FINALIZED = "transaction already finalized"
    PLAYER_IN_GAME = "player is in a game"
    LIMIT_EXCEEDED = "amount over limit"
    BALANCE_LIMIT_EXCEEDED = "resulting balance over limit"
    CREDIT_LIMIT_EXCEEDED = "client credit limit exceeded"
    ZERO_BALANCE = "balance is zero"
    INSUFFICIENT_FUNDS = "insufficient funds"
    INSUFFICIENT_FREE_CREDIT = "insufficient free credit"

    @property
    def precedence(self) -> int:
        """Position in the precedence order (0 = wins over everything)."""
        return _ORDER[self]


_ORDER = {code: index for index, code in enumerate(ErrorCode)}


class WalletError(Exception):
    """An expected refusal: the use case changed nothing and the protocol maps ``code``."""

    def __init__(self, code: ErrorCode, detail: str | None = None) -> None:
        super().__init__(detail or code.value)
        self.code = code
        self.detail = detail or code.value


def first(codes: list[ErrorCode]) -> ErrorCode | None:
    """The code with the highest precedence among ``codes`` (None if empty)."""
    return min(codes, key=lambda c: c.precedence) if codes else None
