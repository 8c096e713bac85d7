"""Wire structs of the seamless wallet API (protocols.md 1.2 and 1.6), decoded and encoded exactly.

Amounts are JSON numbers. They are kept as :class:`msgspec.Raw` (the exact bytes the caller
wrote) and turned into minor units by :func:`amount_minor` through ``core.money``, so a float
never touches money: exponents, strings, NaN, more than 4 decimal places, zero and negative
amounts are all 101. Responses write amounts as raw JSON numbers rendered by
``core.money.format_minor`` (``51800``, ``51569.5``: no exponent, no float noise).
Unknown request fields are ignored; every documented field has a length and charset limit.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from litestar.openapi.spec import OpenAPIType
from litestar.params import KwargDefinition

from gamewallet.core.money import AmountError, format_minor, parse_amount

T = TypeVar("T")

#: Longest id (token, mmTransactionId, cpOrderId…) accepted; ids are visible ASCII only.
ID_MAX = 64
#: Longest free text (txDescription, rollbackReason).
TEXT_MAX = 255
#: Longest extParams of a payment (passed through to the game's callback).
EXT_PARAMS_MAX = 1024
#: Largest number text accepted before parsing (digits + sign + point); longer is 101.
NUMBER_TEXT_MAX = 40

_VISIBLE_ASCII = "^[!-~]+$"

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX, pattern=_VISIBLE_ASCII)]
#: Optional free text. msgspec cannot constrain an optional string's length (and Litestar's
#: DTO would rebuild it as one), so :func:`text` checks it and this only documents it.
Text = Annotated[str | None, KwargDefinition(max_length=TEXT_MAX)]
Currency = Annotated[
    str, msgspec.Meta(pattern="^[A-Z]{3}$", description="3 upper-case letters, e.g. XAG")
]
#: A JSON number kept as written. msgspec ignores the KwargDefinition; Litestar's OpenAPI
#: generator reads it, so the schema says "number" instead of describing msgspec.Raw.
Number = Annotated[
    msgspec.Raw,
    KwargDefinition(
        schema_extra={"type": OpenAPIType.NUMBER},
        description="An exact decimal JSON number: positive, at most 4 decimal places,"
        " no exponent.",
    ),
]


class SeamlessAmount(msgspec.Struct, rename="camel"):
    """The vendor's Balance Amount schema."""

    amount: Number
    currency_code: Currency


# --- requests ----------------------------------------------------------------------------


class SeamlessTokenRequest(msgspec.Struct, rename="camel"):
    """``verifySession`` and ``getBalance``."""

    token: Id


class SeamlessOpenRequest(msgspec.Struct, rename="camel"):
    """``withdraw`` and ``deposit``."""

    token: Id
    mm_transaction_id: Id
    amount: SeamlessAmount
    tx_description: Text = None


class SeamlessConfirmRequest(msgspec.Struct, rename="camel"):
    """``confirmWithdrawal`` and ``confirmDeposit``: the amount must match the original."""

    token: Id
    mm_transaction_id: Id
    amount: SeamlessAmount


class SeamlessRollbackRequest(msgspec.Struct, rename="camel"):
    """``rollbackWithdrawal`` and ``rollbackDeposit``; the reason is optional and only kept."""

    token: Id
    mm_transaction_id: Id
    rollback_reason: Text = None


class SeamlessPaymentRequest(msgspec.Struct, rename="camel"):
    """``payment/initiate``: debit the player once per ``cpOrderId`` and notify the game.

    ``productPrice`` is a JSON number, or a string holding a plain decimal (game clients
    often keep prices as text); either way it is signed exactly as written.
    """

    token: Id
    cp_order_id: Id
    server_id: Id
    product_id: Id
    product_price: Annotated[
        msgspec.Raw,
        KwargDefinition(
            schema_extra={"type": [OpenAPIType.NUMBER, OpenAPIType.STRING]},
            description="Price in the player's currency, e.g. 4.99: positive, at most 4"
            " decimal places, no exponent. Signed in the callback as written.",
        ),
    ]
    ext_params: Annotated[str, msgspec.Meta(max_length=EXT_PARAMS_MAX)] = ""


# --- responses ---------------------------------------------------------------------------


class SeamlessSessionResponse(msgspec.Struct, rename="camel"):
    """``verifySession``: who the token belongs to and what they can spend."""

    player_id: str
    nickname: str
    currency_code: str
    balance: SeamlessAmount


class SeamlessBalanceResponse(msgspec.Struct, rename="camel"):
    """``getBalance``."""

    balance: SeamlessAmount


class SeamlessTransactionResponse(msgspec.Struct, rename="camel"):
    """Every two-phase call: the id and the available balance after the call."""

    mm_transaction_id: str
    balance: SeamlessAmount


class SeamlessPaymentResponse(msgspec.Struct, rename="camel"):
    """``payment/initiate``: the order id and the available balance after the debit."""

    cp_order_id: str
    balance: SeamlessAmount


# --- decoding and rendering ----------------------------------------------------------------


class InvalidRequest(Exception):
    """The body is not a valid request (answered with 101); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_encoder = msgspec.json.Encoder()


def decode(body: bytes, kind: type[T]) -> T:
    """Decode a request body into ``kind``, or raise :class:`InvalidRequest`."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        value: T = decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise InvalidRequest(str(exc)) from exc
    except UnicodeDecodeError as exc:  # msgspec's answer to invalid UTF-8 inside a string
        raise InvalidRequest("the body is not valid UTF-8") from exc
    except RecursionError as exc:  # msgspec's answer to JSON nested thousands deep
        raise InvalidRequest("the body is nested too deeply") from exc
    return value


def text(value: str | None, name: str) -> str | None:
    """An optional free text within :data:`TEXT_MAX` characters."""
    if value is not None and len(value) > TEXT_MAX:
        raise InvalidRequest(f"{name} is longer than {TEXT_MAX} characters")
    return value


def number_text(raw: msgspec.Raw, *, allow_string: bool = False) -> str:
    """The exact text of a JSON number (or of a decimal string, when allowed)."""
    data = bytes(raw)
    if len(data) > NUMBER_TEXT_MAX + 2:
        raise InvalidRequest("amount is too long")
    if data.startswith(b'"') and allow_string:
        try:
            text = msgspec.json.decode(data, type=str)
        except msgspec.DecodeError as exc:  # pragma: no cover - msgspec already parsed it
            raise InvalidRequest("amount is not a valid string") from exc
    elif data[:1] == b"-" or data[:1].isdigit():
        text = data.decode("ascii")
    else:
        raise InvalidRequest("amount must be a JSON number")
    return text


def amount_minor(raw: msgspec.Raw, *, allow_string: bool = False) -> tuple[int, str]:
    """Minor units and exact text of a positive amount with at most 4 decimal places."""
    text = number_text(raw, allow_string=allow_string)
    try:
        return parse_amount(text), text
    except AmountError as exc:
        raise InvalidRequest(exc.reason) from exc


def wire_amount(minor: int, currency: str) -> SeamlessAmount:
    """A Balance Amount for a response: the exact number, no exponent, zeros trimmed."""
    return SeamlessAmount(msgspec.Raw(format_minor(minor).encode("ascii")), currency)


def encode(value: msgspec.Struct) -> bytes:
    """The JSON bytes of a response struct."""
    return _encoder.encode(value)
