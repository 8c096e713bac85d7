"""JDB status codes: the vendor's table (texts verbatim) and our core error codes mapped onto it.

``STATUS_TEXT`` is the one table of every status this API answers with (protocols.md 3.4, in the
vendor's words). ``ERROR_STATUS`` maps every :class:`~gamewallet.core.errors.ErrorCode` member to
one of those statuses; a test checks that it covers the whole enum. Protocol-level refusals that
happen before a use case runs (envelope, parameter checks) raise :class:`JdbError` directly.
Anything unexpected is answered with 9999 "Failed" and logged with the request id; the store
being unavailable is 9012 "Please try again later" (nothing was applied, retrying is safe).
"""

from __future__ import annotations

from gamewallet.core.errors import ErrorCode

SUCCESS = "0000"
FAILED = "9999"

#: Every status of protocols.md 3.4 with the vendor's text, verbatim.
STATUS_TEXT: dict[str, str] = {
    "0000": "Succeed",
    "9999": "Failed",
    "9001": "No authorized to access",
    "9002": "Domain is null or the length of domain less than 2",
    "9003": "Failed to pass the domain validation",
    "9004": "The encrypted data is null or the length of the encrypted data is equal to 0",
    "9005": "Assertion(SAML) didn't pass the timestamp validation",
    "9006": "Failed to extract the SAML parameters from the encrypted data",
    "9007": "Unknown action",
    "9012": "Please try again later",
    "9013": "System is maintained",
    "9015": "Data does not exist",
    "9019": "Request rate limit exceeded",
    "9998": "none match uid",
    "8000": "The parameter of input error",
    "8001": "The parameter cannot be empty",
    "8009": "Time interval exceeds the allowable range",
    "8010": "The length of parameter is too long",
    "8014": "The parameter must not exceed specified decimal places",
    "7501": "User ID cannot be found",
    "7502": "User is suspended",
    "7503": "User is locked",
    "7504": "User is closed",
    "7505": "User is not playing",
    "7601": "Invalid User ID",
    "7602": "Account already exist",
    "7605": "Invalid operation_code",
    "6001": "Your Cash Balance not enough to withdraw",
    "6002": "User balance is zero",
    "6003": "Withdraw negative amount",
    "6005": "Repeat serial number",
    "6006": "Your Cash Balance not enough",
    "6009": "The deposit amount exceeds the upper limit",
    "6010": "Balance exceeds the upper limit",
    "6012": "Serial no is in progress",
    "6901": "User is playing game, and not allow transfer balance",
}

#: Every core refusal -> the JDB status it is answered with. Members no JDB use case raises
#: (tokens, sessions, free credit, two-phase states) still get the closest status, so that a
#: future use case cannot fall through to an unmapped code.
ERROR_STATUS: dict[ErrorCode, str] = {
    ErrorCode.INVALID_REQUEST: "8000",
    ErrorCode.CLIENT_NOT_FOUND: "9003",
    ErrorCode.UNKNOWN_TOKEN: "9001",
    ErrorCode.SESSION_EXPIRED: "9001",
    ErrorCode.PLAYER_NOT_FOUND: "7501",
    ErrorCode.PLAYER_EXISTS: "7602",
    ErrorCode.PLAYER_CLOSED: "7504",
    ErrorCode.PLAYER_LOCKED: "7503",
    ErrorCode.PLAYER_BLOCKED: "7502",
    ErrorCode.PLAYER_NOT_PLAYING: "7505",
    ErrorCode.CURRENCY_MISMATCH: "8000",
    ErrorCode.ID_REUSED: "6005",
    ErrorCode.IN_PROGRESS: "6012",
    ErrorCode.ALREADY_COMPLETED: "6005",
    ErrorCode.ALREADY_ROLLED_BACK: "6005",
    ErrorCode.NOT_FOUND: "9015",
    ErrorCode.ALREADY_FINALIZED: "6005",
    ErrorCode.PLAYER_IN_GAME: "6901",
    ErrorCode.LIMIT_EXCEEDED: "6009",
    ErrorCode.BALANCE_LIMIT_EXCEEDED: "6010",
    ErrorCode.CREDIT_LIMIT_EXCEEDED: "6006",
    ErrorCode.ZERO_BALANCE: "6002",
    ErrorCode.INSUFFICIENT_FUNDS: "6001",
    ErrorCode.INSUFFICIENT_FREE_CREDIT: "6001",
}


class JdbError(Exception):
    """A refusal answered with ``status``; ``text`` overrides the table's text (9998 lists the
    unknown uids). ``reason`` is for the log only, never sent."""

    def __init__(self, status: str, *, text: str | None = None, reason: str | None = None) -> None:
        assert status in STATUS_TEXT, f"unknown JDB status {status}"
        super().__init__(reason or status)
        self.status = status
        self.text = text if text is not None else STATUS_TEXT[status]
        self.reason = reason or self.text


def status_of(code: ErrorCode) -> str:
    """The JDB status of a core refusal."""
    return ERROR_STATUS[code]
