"""JDB wire shapes: reading the decrypted payload's fields, and the response structs.

The payload is JSON decoded with every non-integer number as an exact ``Decimal`` (msgspec's
``float_hook`` gets the number's text), so no float ever touches an amount. Each field reader
raises :class:`JdbError` with the vendor's status for what is wrong, in this order: missing or
empty 8001, too long 8010, wrong type or shape 8000 (uids 7601, decimals 8014). Responses are
msgspec structs with camelCase names, amounts as ``Decimal`` written as plain JSON numbers with
at least one fractional digit (``1000.0``, ``-0.5``), never an exponent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import tzinfo
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar.params import KwargDefinition

from gamewallet.core.money import MAX_MINOR, UNIT, AmountError, decimal_places, format_minor
from gamewallet.core.money import parse_amount as _parse_amount
from gamewallet.core.money import to_decimal as _to_decimal
from gamewallet.protocols.jdb.errors import JdbError
from gamewallet.protocols.jdb.timefmt import parse_jdb_date

#: Longest uid, serialNo, parent, name (vendor: String(50)); remark String(15).
ID_MAX = 50
REMARK_MAX = 15
NAME_MAX = 50
#: Action 68 accepts at most this many distinct uids.
UID_LIST_MAX = 100
#: Action 61 may span at most this long (vendor: "3 months") [decided: 92 days].
HISTORY_SPAN_MS = 92 * 24 * 3600 * 1000
#: Amounts of action 19 (and action 12's credit) carry at most 3 decimal places.
AMOUNT_PLACES = 3

_UID = re.compile(r"[a-z0-9_-]+")
_SERIAL_NO = re.compile(r"[A-Za-z0-9]+")
_GAME_CODE = re.compile(r"[0-9]{1,10}")
_LANG = re.compile(r"[A-Za-z_-]{1,10}")
_INTEGER = re.compile(r"-?[0-9]{1,19}")

_OBJECT = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal)
ENCODER = msgspec.json.Encoder(decimal_format="number")


# --- the payload --------------------------------------------------------------------------


def decode_payload(text: str) -> dict[str, Any]:
    """The decrypted JSON object; anything else is 9006."""
    try:
        return _OBJECT.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        # msgspec raises the last two for invalid UTF-8 in a string and for deep nesting.
        raise JdbError("9006", reason="payload is not a JSON object") from None


def decode_body(body: bytes) -> dict[str, Any]:
    """A JSON request body carrying ``dc``/``x``/``parent``; anything else is 8000."""
    try:
        return _OBJECT.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        raise JdbError("8000", reason="body is not a JSON object") from None


def _integer(value: object) -> int | None:
    """An integer from a JSON integer, an integral number or digit text; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else None
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def action_of(payload: Mapping[str, Any]) -> int:
    """The ``action`` number; missing or not a number is 9007 (unknown action)."""
    action = _integer(payload.get("action"))
    if action is None:
        raise JdbError("9007", reason="action missing or not an integer")
    return action


def ts_of(payload: Mapping[str, Any]) -> int:
    """The ``ts`` in epoch milliseconds; missing or not a number fails the time check (9005)."""
    ts = _integer(payload.get("ts"))
    if ts is None:
        raise JdbError("9005", reason="ts missing or not an integer")
    return ts


def text(
    payload: Mapping[str, Any],
    name: str,
    *,
    max_len: int,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
    bad: str = "8000",
    default: str = "",
) -> str:
    """A string field: 8001 if required and missing/empty, 8010 if longer than ``max_len``,
    ``bad`` if it does not match ``pattern``. JSON integers are accepted as their digits
    (some clients send numeric ids unquoted)."""
    value = payload.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        if required:
            raise JdbError("8001", reason=f"{name} is missing")
        return default
    if not isinstance(value, str):
        raise JdbError("8000", reason=f"{name} must be a string")
    if len(value) > max_len:
        raise JdbError("8010", reason=f"{name} is longer than {max_len}")
    if pattern is not None and pattern.fullmatch(value) is None:
        raise JdbError(bad, reason=f"{name} has characters outside its alphabet")
    return value


def uid(payload: Mapping[str, Any], name: str = "uid") -> str:
    """A player id: a-z0-9_- after lower-casing, at most 50; 7601 for another alphabet."""
    value = text(payload, name, max_len=ID_MAX)
    return _uid_text(value.lower())


def _uid_text(value: str) -> str:
    if _UID.fullmatch(value) is None:
        raise JdbError("7601", reason="uid has characters outside a-z0-9_-")
    return value


def serial_no(payload: Mapping[str, Any]) -> str:
    """A transfer serial number: letters and digits, at most 50."""
    return text(payload, "serialNo", max_len=ID_MAX, pattern=_SERIAL_NO)


def remark(payload: Mapping[str, Any]) -> str:
    """The optional remark, at most 15 characters."""
    return text(payload, "remark", max_len=REMARK_MAX, required=False)


def name(payload: Mapping[str, Any]) -> str:
    """The player's display name (action 12), at most 50 characters."""
    return text(payload, "name", max_len=NAME_MAX)


def all_cash_out(payload: Mapping[str, Any]) -> bool:
    """``allCashOutFlag``: "0" (default) or "1"; anything else is 8000."""
    value = payload.get("allCashOutFlag")
    if value is None or value == "":
        return False
    flag = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if flag not in ("0", "1"):
        raise JdbError("8000", reason="allCashOutFlag must be 0 or 1")
    return flag == "1"


def amount(payload: Mapping[str, Any], name: str = "amount", *, signed: bool = True) -> int:
    """A money field in minor units: at most 3 decimal places (8014), never zero (8000).

    A magnitude beyond the ledger's range is refused outright: as a deposit over the limit
    (6009), or as a withdrawal over any balance (6001). Unsigned fields refuse negatives (8000).
    """
    value = payload.get(name)
    if value is None or value == "":
        raise JdbError("8001", reason=f"{name} is missing")
    try:
        number = _to_decimal(value)
    except AmountError:
        raise JdbError("8000", reason=f"{name} is not a number") from None
    if decimal_places(number) > AMOUNT_PLACES:
        raise JdbError("8014", reason=f"{name} has more than {AMOUNT_PLACES} decimal places")
    if number < 0 and not signed:
        raise JdbError("8000", reason=f"{name} must not be negative")
    if abs(number) * UNIT > MAX_MINOR:
        raise JdbError("6009" if number > 0 else "6001", reason=f"{name} is absurdly large")
    try:
        return _parse_amount(number, places=AMOUNT_PLACES, allow_negative=signed)
    except AmountError as exc:
        raise JdbError("8000", reason=f"{name}: {exc.reason}") from None


def optional_credit(payload: Mapping[str, Any]) -> int:
    """Action 12's ``credit_allocated``: absent or zero means none; else a positive amount."""
    value = payload.get("credit_allocated")
    if value is None or value == "":
        return 0
    try:
        if _to_decimal(value) == 0:
            return 0
    except AmountError:
        raise JdbError("8000", reason="credit_allocated is not a number") from None
    return amount(payload, "credit_allocated", signed=False)


def game_code(payload: Mapping[str, Any], name: str) -> str:
    """``gType`` / ``mType`` of action 11: up to 10 digits, optional (the lobby)."""
    return text(payload, name, max_len=10, required=False, pattern=_GAME_CODE)


def lang(payload: Mapping[str, Any]) -> str:
    """Action 11's language code, default ``en``."""
    return text(payload, "lang", max_len=10, required=False, pattern=_LANG, default="en")


#: Action 14's operation codes -> the player flags they set.
OPERATION_CODES: dict[str, dict[str, bool]] = {
    "2": {"blocked": True},
    "3": {"blocked": False},
    "4": {"locked": True},
    "5": {"locked": False},
}


def operation_code(payload: Mapping[str, Any]) -> dict[str, bool]:
    """The flag change of action 14's ``operation_code``; 7605 for an unknown code."""
    value = payload.get("operation_code")
    if value is None or value == "":
        raise JdbError("8001", reason="operation_code is missing")
    code = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(code, str) or code not in OPERATION_CODES:
        raise JdbError("7605")
    return OPERATION_CODES[code]


def date(payload: Mapping[str, Any], name: str, tz: tzinfo) -> int:
    """A ``dd-MM-yyyy HH:mm:ss`` field in the domain's zone, as epoch milliseconds."""
    value = text(payload, name, max_len=19)
    try:
        return int(parse_jdb_date(value, tz).timestamp()) * 1000
    except ValueError:
        raise JdbError("8000", reason=f"{name} is not dd-MM-yyyy HH:mm:ss") from None


def window(payload: Mapping[str, Any], tz: tzinfo) -> tuple[int, int]:
    """Action 61's ``starttime``..``endtime`` as ``[since_ms, until_ms)``: both ends are inclusive
    to the second, so the window ends one second after ``endtime``. Reversed or longer than
    :data:`HISTORY_SPAN_MS` is 8009."""
    start, end = date(payload, "starttime", tz), date(payload, "endtime", tz)
    if end < start or end - start > HISTORY_SPAN_MS:
        raise JdbError("8009", reason="starttime..endtime is reversed or longer than 3 months")
    return start, end + 1000


def uid_list(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """Action 68's ``uidList``: a JSON array (or comma-separated text) of uids, deduplicated in
    order; 8001 if empty, 8010 over 100 distinct uids."""
    value = payload.get("uidList")
    items: list[object]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        items = value
    elif value is None:
        items = []
    else:
        raise JdbError("8000", reason="uidList must be an array")
    seen: dict[str, None] = {}
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not item:
            raise JdbError("8000", reason="uidList holds a non-string")
        if len(item) > ID_MAX:
            raise JdbError("8010", reason="a uid is longer than 50")
        seen[_uid_text(item.lower())] = None
    if not seen:
        raise JdbError("8001", reason="uidList is empty")
    if len(seen) > UID_LIST_MAX:
        raise JdbError("8010", reason=f"uidList has more than {UID_LIST_MAX} uids")
    return tuple(seen)


# --- responses ----------------------------------------------------------------------------


#: An amount on the wire: an exact JSON number (OpenAPI: number, not the default string).
Number = Annotated[
    Decimal,
    KwargDefinition(
        schema_extra={"type": "number"},
        description="exact amount, at least one fractional digit, never an exponent",
    ),
]


def money(minor: int) -> Decimal:
    """Minor units as the exact JSON number JDB shows (``1000.0``, ``12.345``)."""
    return Decimal(format_minor(minor, min_fraction_digits=1))


class ErrorResponse(msgspec.Struct):
    """Any refusal: ``{"status": "<code>", "err_text": "<text>"}``."""

    status: str
    err_text: str


class StatusResponse(msgspec.Struct):
    """Success without data (actions 12, 14, 17)."""

    status: str = "0000"


class LaunchResponse(msgspec.Struct, kw_only=True):
    """Action 11: the one-time game URL."""

    status: str = "0000"
    path: str


class PlayerInfo(msgspec.Struct, rename="camel"):
    """One player of action 15."""

    uid: str
    balance: Number
    parent: str
    username: str
    currency: str
    lvl: int
    locked: int
    closed: int
    jackpot_flag: int


class PlayerInfoResponse(msgspec.Struct, kw_only=True):
    """Action 15."""

    status: str = "0000"
    data: list[PlayerInfo]


class TransferResponse(msgspec.Struct, rename="camel", kw_only=True):
    """Action 19."""

    status: str = "0000"
    user_balance: Number
    agent_cash_balance: Number
    amount: Number
    serial_no: str
    pid: int
    pay_date: str


class InGame(msgspec.Struct, rename="camel"):
    """Action 52's data."""

    g_type: str
    m_type: str
    login_from: str
    ip_addr: str
    login_time: str
    balance: Number


class InGameResponse(msgspec.Struct, kw_only=True):
    """Action 52."""

    status: str = "0000"
    data: InGame


class TransferRecord(msgspec.Struct, rename="camel"):
    """One transfer of action 55."""

    uid: str
    action: str
    amount: Number
    pls_balance: Number
    after_balance: Number
    date: str
    pid: int
    remark: str


class TransferRecordResponse(msgspec.Struct, kw_only=True):
    """Action 55."""

    status: str = "0000"
    data: list[TransferRecord]


class HistoryRecord(msgspec.Struct, rename="camel"):
    """One line of action 61."""

    pid: int
    pay_date: str
    action: str
    amount: Number
    balance: Number
    serial_no: str
    remark: str


class HistoryResponse(msgspec.Struct, kw_only=True):
    """Action 61."""

    status: str = "0000"
    data: list[HistoryRecord]


class UidBalance(msgspec.Struct):
    """One player of actions 65 and 68."""

    uid: str
    balance: Number


class BalancesResponse(msgspec.Struct, kw_only=True):
    """Actions 65 and 68."""

    status: str = "0000"
    data: list[UidBalance]
