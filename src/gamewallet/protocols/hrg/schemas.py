"""HRG wire models: request and response structs, and the conversions at the wire's edge.

Requests are decoded strictly (no type coercion: ``"true"`` is not a boolean, ``100`` is not
a string). Amounts travel as strings, positive, at most 4 decimal places, and become integer
minor units without ever being floats; responses render them as plain decimals with at least
one fractional digit (``"100000.0"``, ``"-150.0"``). Times use HRG's ``xts`` format. Field
names are the vendor's (camelCase), so the structs double as the OpenAPI description.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, TypeVar

import msgspec
from msgspec import Meta, Struct

from gamewallet.core.money import (
    MAX_MINOR,
    UNIT,
    AmountError,
    format_minor,
    parse_amount,
    to_decimal,
)
from gamewallet.protocols.hrg.errors import INVALID_PARAMETER, INVALID_USER_ID, HrgError
from gamewallet.protocols.hrg.timefmt import format_xts, parse_xts

#: Largest page size of the listing endpoints, and the default.
PAGE_SIZE_MAX: Final = 2000
PAGE_SIZE_DEFAULT: Final = 100
#: Pages beyond this are refused (keeps offsets far inside a 64-bit integer).
PAGE_MAX: Final = 1_000_000
#: Names per ``get_balance`` call.
USER_IDS_MAX: Final = 100
#: Longest time range of one ``get_transfer_operation_log`` call.
LOG_RANGE_MAX_MS: Final = 31 * 24 * 3600 * 1000
#: An amount above the ledger's ceiling parses to this, so the use case refuses it with
#: "over limit" at that code's place in the precedence instead of "invalid parameter".
OVER_CEILING: Final = MAX_MINOR + 1

T = TypeVar("T", bound=Struct)

_USER_ID = re.compile(r"[a-z0-9]{1,50}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

AgentId = Annotated[str, Meta(min_length=1, max_length=50, description="Agent ID, <= 50 chars")]
UserId = Annotated[str, Meta(description="User ID: a-z and 0-9, 1 to 50 characters")]
TransactionCode = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=30,
        pattern=r"\A[!-~]+\Z",
        description="Unique per agent; 1 to 30 printable ASCII characters, no spaces",
    ),
]
Amount = Annotated[
    str,
    Meta(description="Decimal string, not negative, at most 4 decimal places", examples=["100"]),
]
Page = Annotated[int, Meta(ge=1, le=PAGE_MAX, description="1-based page number")]
PageSize = Annotated[int, Meta(ge=1, le=PAGE_SIZE_MAX, description="Records per page")]
XtsTime = Annotated[
    str, Meta(description="yyyy-MM-ddTHH:mm:ss.SSS+HHMM", examples=["2022-10-14T23:00:00.000+0800"])
]
Lang = Annotated[
    str,
    Meta(min_length=1, max_length=16, pattern=r"\A[A-Za-z_-]+\Z", description="Language code"),
]
GameCode = Annotated[
    str,
    Meta(min_length=1, max_length=64, pattern=r"\A[A-Za-z0-9_.-]+\Z", description="Game code"),
]
Money = Annotated[str, Meta(description="Plain decimal, at least one fractional digit")]


# --- requests ----------------------------------------------------------------------------


class Wire(Struct, rename="camel"):
    """Base of every HRG struct: snake_case attributes, the vendor's camelCase on the wire.

    Struct names start with ``Hrg`` because they name the OpenAPI components of the whole
    app, next to the other protocols' own.
    """


class HrgCreateUserRequest(Wire):
    """``POST /api/create_user``: a new player, optionally funded by the agent."""

    agent_id: AgentId
    user_id: UserId
    balance: Amount | None = None
    free_credit: Amount | None = None


class HrgGetBalanceRequest(Wire):
    """``POST /api/get_balance``: named players, or all of them (paged)."""

    agent_id: AgentId
    all_user: bool
    user_ids: Annotated[list[UserId], Meta(max_length=USER_IDS_MAX)] | None = None
    filter_non_zero_balance: bool = False
    page: Page = 1
    page_size: PageSize = PAGE_SIZE_DEFAULT


class HrgWithdrawRequest(Wire):
    """``POST /api/withdraw``: everything (``allWithdraw``) or the given amounts."""

    agent_id: AgentId
    user_id: UserId
    all_withdraw: bool
    transaction_code: TransactionCode
    amount: Amount | None = None
    free_credit: Amount | None = None


class HrgDepositRequest(Wire):
    """``POST /api/deposit``."""

    agent_id: AgentId
    user_id: UserId
    amount: Amount
    transaction_code: TransactionCode
    free_credit: Amount | None = None


class HrgCheckTransferRequest(Wire):
    """``POST /api/check_transfer_operation``."""

    agent_id: AgentId
    transaction_code: TransactionCode


class HrgTransferLogRequest(Wire):
    """``POST /api/get_transfer_operation_log``: ``startTime <= createdAt <= endTime``."""

    agent_id: AgentId
    start_time: XtsTime
    end_time: XtsTime
    user_id: UserId | None = None
    page: Page = 1
    page_size: PageSize = PAGE_SIZE_DEFAULT


class HrgLaunchLobbyRequest(Wire):
    """``POST /api/launch_lobby``."""

    agent_id: AgentId
    user_id: UserId
    lang: Lang | None = None


class HrgLaunchGameRequest(Wire):
    """``POST /api/launch_game``."""

    agent_id: AgentId
    user_id: UserId
    game_code: GameCode
    lang: Lang | None = None


# --- responses ---------------------------------------------------------------------------


class HrgUserData(Wire):
    """``create_user`` data."""

    agent_id: str
    user_id: str
    balance: Money
    free_credit: Money


class HrgBalanceItem(Wire):
    """One player in ``get_balance``."""

    agent_id: str
    user_id: str
    currency: str
    balance: Money
    free_credit: Money


class HrgBalanceData(Wire):
    """``get_balance`` data."""

    items: list[HrgBalanceItem] = msgspec.field(name="list")
    page: int
    page_size: int
    total: int


class HrgWithdrawData(Wire):
    """``withdraw`` data; ``withdrawAmount`` is the negative total of both buckets."""

    agent_id: str
    user_id: str
    currency: str
    withdraw_amount: Money
    current_balance: Money
    current_free_credit: Money


class HrgDepositData(Wire):
    """``deposit`` data; ``depositAmount`` is the total of both buckets."""

    agent_id: str
    user_id: str
    currency: str
    deposit_amount: Money
    current_balance: Money
    current_free_credit: Money


class HrgTransferRecord(Wire):
    """A transfer as the query endpoints show it; amounts signed as applied to the player."""

    transaction_code: str
    agent_id: str
    user_id: str
    type: str
    amount: Money
    free_credit: Money
    pre_balance: Money
    pre_free_credit: Money
    after_balance: Money
    after_free_credit: Money
    created_at: str


class HrgTransferLogData(Wire):
    """``get_transfer_operation_log`` data."""

    items: list[HrgTransferRecord] = msgspec.field(name="list")
    page: int
    page_size: int
    total: int


class HrgLaunchData(Wire):
    """``launch_lobby`` / ``launch_game`` data."""

    url: str


class HrgCreateUserReply(Wire):
    """Success envelope of ``create_user``."""

    code: str
    data: HrgUserData


class HrgBalanceReply(Wire):
    """Success envelope of ``get_balance``."""

    code: str
    data: HrgBalanceData


class HrgWithdrawReply(Wire):
    """Success envelope of ``withdraw``."""

    code: str
    data: HrgWithdrawData


class HrgDepositReply(Wire):
    """Success envelope of ``deposit``."""

    code: str
    data: HrgDepositData


class HrgTransferReply(Wire):
    """Success envelope of ``check_transfer_operation``."""

    code: str
    data: HrgTransferRecord


class HrgTransferLogReply(Wire):
    """Success envelope of ``get_transfer_operation_log``."""

    code: str
    data: HrgTransferLogData


class HrgLaunchReply(Wire):
    """Success envelope of ``launch_lobby`` / ``launch_game``."""

    code: str
    data: HrgLaunchData


# --- conversions -------------------------------------------------------------------------


def decode(body: bytes, model: type[T]) -> T:
    """Decode a request body strictly into ``model``; anything wrong is 2001."""
    try:
        return msgspec.json.decode(body, type=model, strict=True)
    except msgspec.ValidationError as exc:
        raise HrgError(INVALID_PARAMETER, str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # msgspec raises the last two for invalid UTF-8 in a string and for deep nesting.
        raise HrgError(INVALID_PARAMETER, "body is not a JSON object") from None


def amount_minor(value: str | None, field: str) -> int:
    """Minor units of an optional wire amount (absent = 0). Negative, malformed or more than
    4 decimal places is 2001; above the ledger's ceiling is :data:`OVER_CEILING`."""
    if value is None:
        return 0
    try:
        return parse_amount(value, places=4, allow_zero=True)
    except AmountError as exc:
        if _over_ceiling(value):
            return OVER_CEILING
        # Core's reasons read "amount must …": say which field instead.
        raise HrgError(INVALID_PARAMETER, f"{field} {exc.reason.removeprefix('amount ')}") from None


def _over_ceiling(value: str) -> bool:
    try:
        number = to_decimal(value)
    except AmountError:
        return False
    return bool(number * UNIT > MAX_MINOR)


def user_id(value: str) -> str:
    """A valid user id (a-z, 0-9, 1 to 50 characters) or 3003."""
    if not _USER_ID.fullmatch(value):
        raise HrgError(INVALID_USER_ID)
    return value


def xts_ms(value: str, field: str) -> int:
    """Epoch milliseconds of an ``xts``-format time, or 2001."""
    try:
        moment = parse_xts(value)
    except ValueError:
        raise HrgError(
            INVALID_PARAMETER, f"{field}: expected yyyy-MM-ddTHH:mm:ss.SSS+HHMM"
        ) from None
    return epoch_ms(moment)


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (no float on the way)."""
    return (moment - _EPOCH) // _MS


def xts(ms: int) -> str:
    """``xts``-format text of epoch milliseconds, in GMT+8."""
    return format_xts(_EPOCH + ms * _MS)


def money(minor: int) -> str:
    """An amount as HRG renders it: ``"100000.0"``, ``"-150.0"``, ``"0.0"``, ``"12.3456"``."""
    return format_minor(minor, min_fraction_digits=1)
