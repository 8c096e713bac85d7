"""Seamless error codes (protocols.md 1.5) and our core error codes mapped onto them.

``ERROR_TEXT`` is the one table of every ``errorCode`` this API answers with and its default
``errorDescription``, listed in the protocol's precedence order. ``ERROR_CODE`` maps every
:class:`~gamewallet.core.errors.ErrorCode` member to one of those codes; a test checks that it
covers the whole enum, so a new core refusal cannot fall through unmapped. Anything else
(a broken invariant, the database being down) is 100 "Other error" with the request id, logged,
never a stack trace. Errors travel with HTTP 200, except 401 (auth), 413 (body too large) and
the empty 403 of an address outside the allowlist.
"""

from __future__ import annotations

import msgspec

from gamewallet.core.errors import ErrorCode

OTHER_ERROR = 100
INVALID_REQUEST = 101

#: Every errorCode of protocols.md 1.5 with its default description, in precedence order
#: (100 is last: it answers only what nothing else explains).
ERROR_TEXT: dict[int, str] = {
    101: "Invalid request",
    102: "Invalid token",
    103: "Session expired",
    104: "Player blocked",
    105: "Currency mismatch",
    109: "Transaction id reused with different content",
    110: "Transaction already rolled back",
    107: "Transaction not found",
    108: "Transaction already finalized",
    111: "Limit exceeded",
    106: "Insufficient funds",
    100: "Other error",
}

#: Every core refusal -> the seamless errorCode it is answered with. Members that no seamless
#: use case raises today still get the closest code, so that nothing can fall through.
ERROR_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 101,
    ErrorCode.CLIENT_NOT_FOUND: 100,  # auth answers 401 before any use case runs
    ErrorCode.UNKNOWN_TOKEN: 102,
    ErrorCode.SESSION_EXPIRED: 103,
    ErrorCode.PLAYER_NOT_FOUND: 102,  # a token always names a player; gone = invalid token
    ErrorCode.PLAYER_EXISTS: 100,
    ErrorCode.PLAYER_CLOSED: 104,
    ErrorCode.PLAYER_LOCKED: 104,
    ErrorCode.PLAYER_BLOCKED: 104,
    ErrorCode.PLAYER_NOT_PLAYING: 100,
    ErrorCode.CURRENCY_MISMATCH: 105,
    ErrorCode.ID_REUSED: 109,
    ErrorCode.IN_PROGRESS: 100,
    ErrorCode.ALREADY_COMPLETED: 108,
    ErrorCode.ALREADY_ROLLED_BACK: 110,
    ErrorCode.NOT_FOUND: 107,
    ErrorCode.ALREADY_FINALIZED: 108,
    ErrorCode.PLAYER_IN_GAME: 100,
    ErrorCode.LIMIT_EXCEEDED: 111,
    ErrorCode.BALANCE_LIMIT_EXCEEDED: 111,
    ErrorCode.CREDIT_LIMIT_EXCEEDED: 111,  # the operator's account is the limit that bites
    ErrorCode.ZERO_BALANCE: 106,
    ErrorCode.INSUFFICIENT_FUNDS: 106,
    ErrorCode.INSUFFICIENT_FREE_CREDIT: 106,
}


class SeamlessErrorBody(msgspec.Struct, rename="camel"):
    """The vendor's Error Response Body: ``{"errorCode": 101, "errorDescription": "…"}``."""

    error_code: int
    error_description: str


_encoder = msgspec.json.Encoder()


def error_body(code: int, detail: str | None = None) -> bytes:
    """The JSON bytes of an error: the default text, followed by ``detail`` when given."""
    text = ERROR_TEXT[code]
    return _encoder.encode(SeamlessErrorBody(code, f"{text}: {detail}" if detail else text))


def for_core(code: ErrorCode) -> int:
    """The seamless errorCode of a core refusal."""
    return ERROR_CODE[code]
