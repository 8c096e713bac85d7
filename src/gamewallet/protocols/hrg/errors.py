"""HRG status codes: the code table, the mapping from core outcomes, and the error envelope.

``STATUS`` is spec 2.3 (vendor 0000 and 9999, the rest decided), listed in the order the
server checks conditions, so the first that applies is the one answered (documented in
docs/protocols/hrg.md). ``FROM_CORE`` maps every :class:`~gamewallet.core.errors.ErrorCode`
to one of them; a test keeps it complete. Every error is HTTP 200 except 1001 (HTTP 401,
with a Basic challenge) and a too-large body (HTTP 413 carrying 2001).
"""

from __future__ import annotations

from typing import Final

import msgspec

from gamewallet.core.errors import ErrorCode

SUCCESS: Final = "0000"
AUTH_FAILED: Final = "1001"
BAD_XTS: Final = "1002"
INVALID_PARAMETER: Final = "2001"
AGENT_NOT_FOUND: Final = "2002"
USER_NOT_FOUND: Final = "3001"
USER_EXISTS: Final = "3002"
INVALID_USER_ID: Final = "3003"
INSUFFICIENT_BALANCE: Final = "4001"
INSUFFICIENT_FREE_CREDIT: Final = "4002"
DUPLICATE_TRANSACTION: Final = "4003"
TRANSACTION_NOT_FOUND: Final = "4004"
OVER_LIMIT: Final = "4005"
CREDIT_LIMIT: Final = "4006"
UNKNOWN_ERROR: Final = "9999"

#: Every code and its ``desc``, in precedence order (the first condition found wins).
STATUS: Final[dict[str, str]] = {
    AUTH_FAILED: "Authorization failed",
    BAD_XTS: "Request time (xts) missing or out of range",
    INVALID_PARAMETER: "Invalid parameter",
    AGENT_NOT_FOUND: "Agent not found",
    INVALID_USER_ID: "Invalid user id",
    USER_NOT_FOUND: "User not found",
    USER_EXISTS: "User already exists",
    DUPLICATE_TRANSACTION: "Duplicate transaction code",
    TRANSACTION_NOT_FOUND: "Transaction not found",
    OVER_LIMIT: "Amount over limit",
    CREDIT_LIMIT: "Agent credit limit exceeded",
    INSUFFICIENT_BALANCE: "Insufficient balance",
    INSUFFICIENT_FREE_CREDIT: "Insufficient free credit",
    UNKNOWN_ERROR: "Unknown error",
    SUCCESS: "Success",
}

#: Core outcome -> HRG code. Outcomes HRG's use cases never produce (player states, the
#: seamless two-phase states) still get the nearest code, so that nothing maps to nothing.
FROM_CORE: Final[dict[ErrorCode, str]] = {
    ErrorCode.INVALID_REQUEST: INVALID_PARAMETER,
    ErrorCode.CLIENT_NOT_FOUND: AGENT_NOT_FOUND,
    ErrorCode.UNKNOWN_TOKEN: AUTH_FAILED,
    ErrorCode.SESSION_EXPIRED: AUTH_FAILED,
    ErrorCode.PLAYER_NOT_FOUND: USER_NOT_FOUND,
    ErrorCode.PLAYER_EXISTS: USER_EXISTS,
    # HRG has no player-state codes and does not block transfers by player state.
    ErrorCode.PLAYER_CLOSED: UNKNOWN_ERROR,
    ErrorCode.PLAYER_LOCKED: UNKNOWN_ERROR,
    ErrorCode.PLAYER_BLOCKED: UNKNOWN_ERROR,
    ErrorCode.PLAYER_NOT_PLAYING: UNKNOWN_ERROR,
    ErrorCode.CURRENCY_MISMATCH: INVALID_PARAMETER,
    ErrorCode.ID_REUSED: DUPLICATE_TRANSACTION,
    # Single-phase transfers are never "in progress": the player lock serializes them.
    ErrorCode.IN_PROGRESS: UNKNOWN_ERROR,
    ErrorCode.ALREADY_COMPLETED: DUPLICATE_TRANSACTION,
    ErrorCode.ALREADY_ROLLED_BACK: DUPLICATE_TRANSACTION,
    ErrorCode.NOT_FOUND: TRANSACTION_NOT_FOUND,
    ErrorCode.ALREADY_FINALIZED: DUPLICATE_TRANSACTION,
    ErrorCode.PLAYER_IN_GAME: UNKNOWN_ERROR,
    ErrorCode.LIMIT_EXCEEDED: OVER_LIMIT,
    ErrorCode.BALANCE_LIMIT_EXCEEDED: OVER_LIMIT,
    ErrorCode.CREDIT_LIMIT_EXCEEDED: CREDIT_LIMIT,
    ErrorCode.ZERO_BALANCE: INSUFFICIENT_BALANCE,
    ErrorCode.INSUFFICIENT_FUNDS: INSUFFICIENT_BALANCE,
    ErrorCode.INSUFFICIENT_FREE_CREDIT: INSUFFICIENT_FREE_CREDIT,
}


class HrgError(Exception):
    """A refusal decided at the protocol edge (auth, xts, parameters, ids).

    ``detail`` is appended to the table text for 2001 only, to say which parameter is wrong;
    the other codes answer with the table text alone.
    """

    def __init__(self, code: str, detail: str | None = None) -> None:
        assert code in STATUS
        assert code != SUCCESS
        super().__init__(f"{code} {detail or STATUS[code]}")
        self.code = code
        self.detail = detail


class HrgErrorReply(msgspec.Struct):
    """The error envelope: ``{"code": "<4 chars>", "desc": "<text>"}``."""

    code: str
    desc: str


def http_status(code: str) -> int:
    """HTTP status of an error response: 401 for authorization failures, else 200."""
    return 401 if code == AUTH_FAILED else 200


def describe(code: str, detail: str | None = None) -> str:
    """The ``desc`` of ``code``: the table text, plus the detail for invalid parameters."""
    text = STATUS[code]
    if code == INVALID_PARAMETER and detail:
        return f"{text}: {detail}"
    return text


def error_body(code: str, detail: str | None = None) -> bytes:
    """The encoded error envelope."""
    return msgspec.json.encode(HrgErrorReply(code, describe(code, detail)))


def from_core(code: ErrorCode) -> str:
    """The HRG code of a core outcome."""
    return FROM_CORE[code]
