"""Typed async clients of the seamless protocol's two directions (protocols.md 1.1-1.6).

:class:`SeamlessClient` is the game calling the wallet: the eight wallet endpoints and
``payment/initiate``. :class:`GameClient` is the wallet calling the game: the Integration API's
``queryWithdrawal`` / ``queryDeposit`` and the signed payment callback.

Invariants: one method = exactly one HTTP request, never retried here (retrying is the settlement
queue's and the worker's job, on the vendor's schedule); every call has an explicit timeout and a
bound on the response size; money crosses the wire as exact JSON numbers rendered from integer
minor units and comes back as minor units, never as a float. Every failure is one typed exception:
a wallet refusal carries its ``errorCode`` (:class:`WalletRefused` and one subclass per code),
HTTP 401 is :class:`AuthFailed`, and a timeout, a lost connection or an answer that is not the
protocol's is :class:`OutcomeUnknown`: the call may or may not have taken effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, TypeVar

import httpx
import msgspec

from gamewallet.core.money import AmountError, format_minor, parse_amount

__all__ = [
    "AlreadyFinalized",
    "AlreadyRolledBack",
    "AuthFailed",
    "Balance",
    "CurrencyMismatch",
    "GameClient",
    "IdReused",
    "InsufficientFunds",
    "InvalidRequest",
    "InvalidToken",
    "LimitExceeded",
    "OtherError",
    "OutcomeUnknown",
    "PaymentResult",
    "PlayerBlocked",
    "PlayerSession",
    "QueryStatus",
    "SeamlessClient",
    "SeamlessError",
    "SessionExpired",
    "TransactionNotFound",
    "TransactionResult",
    "UnexpectedResponse",
    "WalletRefused",
    "refusal",
]

#: Largest response body read from the other side; a larger one is an UnexpectedResponse.
RESPONSE_MAX_BYTES: Final = 64 * 1024

S = TypeVar("S", bound=msgspec.Struct)


# --- exceptions ------------------------------------------------------------------------------


class SeamlessError(Exception):
    """Base of every failure of a seamless call."""


class AuthFailed(SeamlessError):
    """HTTP 401: the other side refused our Basic credentials (nothing was applied)."""


class OutcomeUnknown(SeamlessError):
    """No usable answer (timeout, connection lost, not the protocol's answer): the call may or
    may not have taken effect on the other side. ``reason`` says what happened."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnexpectedResponse(OutcomeUnknown):
    """An answer arrived but is not the protocol's (other HTTP status, bad JSON, wrong shape)."""

    def __init__(self, reason: str, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.status_code = status_code


class WalletRefused(SeamlessError):
    """The wallet answered with its Error Response Body; nothing was applied (spec 1.5).

    Subclasses name each documented ``errorCode``; a code outside the table is raised as this
    base class with the code kept.
    """

    #: The documented code of a subclass (the base class takes it from the answer).
    code: int = -1

    def __init__(self, description: str, code: int | None = None) -> None:
        super().__init__(f"{code if code is not None else self.code}: {description}")
        if code is not None:
            self.code = code
        self.description = description


class OtherError(WalletRefused):
    """100 Other error: something unexpected on the wallet's side."""

    code = 100


class InvalidRequest(WalletRefused):
    """101 Invalid request."""

    code = 101


class InvalidToken(WalletRefused):
    """102 Invalid token."""

    code = 102


class SessionExpired(WalletRefused):
    """103 Session expired."""

    code = 103


class PlayerBlocked(WalletRefused):
    """104 Player blocked."""

    code = 104


class CurrencyMismatch(WalletRefused):
    """105 Currency mismatch."""

    code = 105


class InsufficientFunds(WalletRefused):
    """106 Insufficient funds."""

    code = 106


class TransactionNotFound(WalletRefused):
    """107 Transaction not found (a confirm of an id the wallet never saw)."""

    code = 107


class AlreadyFinalized(WalletRefused):
    """108 Transaction already finalized (confirm after rollback, or rollback after confirm)."""

    code = 108


class IdReused(WalletRefused):
    """109 Transaction id reused with different content."""

    code = 109


class AlreadyRolledBack(WalletRefused):
    """110 Transaction already rolled back (withdraw/deposit on a tombstoned id)."""

    code = 110


class LimitExceeded(WalletRefused):
    """111 Limit exceeded."""

    code = 111


#: errorCode -> the exception that names it.
REFUSALS: Final[dict[int, type[WalletRefused]]] = {
    cls.code: cls
    for cls in (
        OtherError,
        InvalidRequest,
        InvalidToken,
        SessionExpired,
        PlayerBlocked,
        CurrencyMismatch,
        InsufficientFunds,
        TransactionNotFound,
        AlreadyFinalized,
        IdReused,
        AlreadyRolledBack,
        LimitExceeded,
    )
}


def refusal(code: int, description: str) -> WalletRefused:
    """The typed exception for a wallet's ``errorCode`` (the base class for unknown codes)."""
    cls = REFUSALS.get(code)
    return cls(description) if cls is not None else WalletRefused(description, code)


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Balance:
    """An amount in minor units (scale 4) and its currency code."""

    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class PlayerSession:
    """``verifySession``: who the token belongs to and what they can spend."""

    player_id: str
    nickname: str
    currency: str
    balance: Balance


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """Every two-phase call: the id and the player's available balance after the call."""

    mm_transaction_id: str
    balance: Balance


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """``payment/initiate``: the order id and the available balance after the debit."""

    cp_order_id: str
    balance: Balance


QueryStatus = Literal["CONFIRMED", "ROLLED_BACK", "NOT_FOUND"]
_QUERY_STATUSES: Final = frozenset({"CONFIRMED", "ROLLED_BACK", "NOT_FOUND"})


# --- wire structs ----------------------------------------------------------------------------
# Our own, deliberately: the client must keep speaking the vendor's format even if our server's
# wire models evolve, and it must accept any conforming wallet, not only ours. Amounts are kept as
# the raw JSON number text, so no float ever holds money.


class _Amount(msgspec.Struct, rename="camel"):
    amount: msgspec.Raw
    currency_code: str


class _TokenRequest(msgspec.Struct, rename="camel"):
    token: str


class _OpenRequest(msgspec.Struct, rename="camel", omit_defaults=True):
    token: str
    mm_transaction_id: str
    amount: _Amount
    tx_description: str | None = None


class _ConfirmRequest(msgspec.Struct, rename="camel"):
    token: str
    mm_transaction_id: str
    amount: _Amount


class _RollbackRequest(msgspec.Struct, rename="camel", omit_defaults=True):
    token: str
    mm_transaction_id: str
    rollback_reason: str | None = None


class _PaymentRequest(msgspec.Struct, rename="camel"):
    token: str
    cp_order_id: str
    server_id: str
    product_id: str
    product_price: msgspec.Raw
    ext_params: str


class _SessionResponse(msgspec.Struct, rename="camel"):
    player_id: str
    nickname: str
    currency_code: str
    balance: _Amount


class _BalanceResponse(msgspec.Struct, rename="camel"):
    balance: _Amount


class _TransactionResponse(msgspec.Struct, rename="camel"):
    mm_transaction_id: str
    balance: _Amount


class _PaymentResponse(msgspec.Struct, rename="camel"):
    cp_order_id: str
    balance: _Amount


def _wire_amount(amount_minor: int, currency: str) -> _Amount:
    """An exact JSON number (``230``, ``51569.5``) rendered from minor units."""
    return _Amount(msgspec.Raw(format_minor(amount_minor).encode("ascii")), currency)


class _ErrorProbe(msgspec.Struct, rename="camel"):
    """Just enough of any answer to tell an Error Response Body from a success."""

    error_code: Any = None
    error_description: Any = None


class _QueryRequest(msgspec.Struct, rename="camel"):
    mm_transaction_id: str


class _QueryResponse(msgspec.Struct, rename="camel"):
    mm_transaction_id: str
    status: str


# --- transport -------------------------------------------------------------------------------


def _http(
    base_url: str,
    timeout_s: float,
    auth: tuple[str, str] | None,
    transport: httpx.AsyncBaseTransport | None,
) -> httpx.AsyncClient:
    assert timeout_s > 0, "every call needs a timeout"
    return httpx.AsyncClient(
        base_url=base_url,
        auth=httpx.BasicAuth(*auth) if auth is not None else None,
        timeout=httpx.Timeout(timeout_s),
        transport=transport,
        # Never follow a redirect with money in the body: an answer we did not ask for.
        follow_redirects=False,
        trust_env=False,
    )


async def _send(
    http: httpx.AsyncClient, request: httpx.Request, limit: int = RESPONSE_MAX_BYTES
) -> tuple[int, bytes]:
    """Send one request; the status and at most ``limit`` bytes of body, or a typed error."""
    try:
        response = await http.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise UnexpectedResponse(
                        f"response larger than {limit} bytes", response.status_code
                    )
        finally:
            await response.aclose()
    except httpx.TimeoutException as exc:
        raise OutcomeUnknown(f"timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:  # connection refused/reset, protocol errors…
        raise OutcomeUnknown(f"transport failed ({type(exc).__name__}: {exc})") from exc
    return response.status_code, bytes(body)


def _success(status: int) -> bool:
    """Any 2xx carries an answer to read (the wallet itself always uses 200)."""
    return 200 <= status < 300


def _minor(raw: msgspec.Raw) -> int:
    """Minor units of an answer's JSON number (a balance may be zero or, elsewhere, negative)."""
    try:
        return parse_amount(bytes(raw).decode("ascii"), allow_zero=True, allow_negative=True)
    except (AmountError, UnicodeDecodeError) as exc:
        raise UnexpectedResponse(f"not an exact amount: {bytes(raw)[:40]!r}") from exc


def _balance(amount: _Amount) -> Balance:
    return Balance(_minor(amount.amount), amount.currency_code)


# --- the game calling the wallet -------------------------------------------------------------


class SeamlessClient:
    """The seamless Wallet API as the game backend calls it (``POST {base}/wallet/<endpoint>``).

    ``base_url`` is the wallet's root (``https://wallet.example``); ``username`` / ``password``
    are the game's Basic credentials at the wallet; ``timeout_s`` bounds each call (connect,
    read, write and pool wait). ``transport`` lets tests and embedders route the calls (an
    in-process ASGI app, a fault injector). Use as ``async with`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        response_max_bytes: int = RESPONSE_MAX_BYTES,
    ) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self._limit = response_max_bytes
        self._http = _http(base_url, timeout_s, (username, password), transport)

    async def __aenter__(self) -> SeamlessClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, endpoint: str, body: msgspec.Struct, answer: type[S]) -> S:
        request = self._http.build_request(
            "POST",
            f"wallet/{endpoint}",
            content=msgspec.json.encode(body),
            headers={"Content-Type": "application/json"},
        )
        status, data = await _send(self._http, request, self._limit)
        if status == httpx.codes.UNAUTHORIZED:
            raise AuthFailed(f"{endpoint}: the wallet refused our credentials (HTTP 401)")
        if not _success(status):
            raise UnexpectedResponse(f"{endpoint}: HTTP {status}", status)
        try:
            probe = msgspec.json.decode(data, type=_ErrorProbe)
        except msgspec.DecodeError as exc:
            raise UnexpectedResponse(f"{endpoint}: not a JSON object ({exc})", status) from exc
        if probe.error_code is not None:
            code = probe.error_code
            if not isinstance(code, int) or isinstance(code, bool):
                raise UnexpectedResponse(f"{endpoint}: errorCode is not a number", status)
            description = probe.error_description
            raise refusal(code, description if isinstance(description, str) else "")
        try:
            return msgspec.json.decode(data, type=answer)
        except msgspec.DecodeError as exc:
            raise UnexpectedResponse(f"{endpoint}: unexpected answer ({exc})", status) from exc

    async def _transaction(self, endpoint: str, body: msgspec.Struct) -> TransactionResult:
        answer = await self._call(endpoint, body, _TransactionResponse)
        return TransactionResult(answer.mm_transaction_id, _balance(answer.balance))

    async def verify_session(self, token: str) -> PlayerSession:
        """``verifySession``: the token's player and available balance."""
        answer = await self._call("verifySession", _TokenRequest(token), _SessionResponse)
        return PlayerSession(
            answer.player_id, answer.nickname, answer.currency_code, _balance(answer.balance)
        )

    async def get_balance(self, token: str) -> Balance:
        """``getBalance``: the player's available balance."""
        answer = await self._call("getBalance", _TokenRequest(token), _BalanceResponse)
        return _balance(answer.balance)

    async def withdraw(
        self,
        token: str,
        mm_transaction_id: str,
        amount_minor: int,
        currency: str,
        description: str | None = None,
    ) -> TransactionResult:
        """``withdraw``: place a hold. Send it once; if it fails in any way, roll it back."""
        body = _OpenRequest(
            token, mm_transaction_id, _wire_amount(amount_minor, currency), description
        )
        return await self._transaction("withdraw", body)

    async def confirm_withdrawal(
        self, token: str, mm_transaction_id: str, amount_minor: int, currency: str
    ) -> TransactionResult:
        """``confirmWithdrawal``: post the hold (same amount and currency as the withdraw)."""
        body = _ConfirmRequest(token, mm_transaction_id, _wire_amount(amount_minor, currency))
        return await self._transaction("confirmWithdrawal", body)

    async def rollback_withdrawal(
        self, token: str, mm_transaction_id: str, reason: str | None = None
    ) -> TransactionResult:
        """``rollbackWithdrawal``: void the hold (success even for an id the wallet never saw)."""
        body = _RollbackRequest(token, mm_transaction_id, reason)
        return await self._transaction("rollbackWithdrawal", body)

    async def deposit(
        self,
        token: str,
        mm_transaction_id: str,
        amount_minor: int,
        currency: str,
        description: str | None = None,
    ) -> TransactionResult:
        """``deposit``: record a pending credit (not spendable until confirmed)."""
        body = _OpenRequest(
            token, mm_transaction_id, _wire_amount(amount_minor, currency), description
        )
        return await self._transaction("deposit", body)

    async def confirm_deposit(
        self, token: str, mm_transaction_id: str, amount_minor: int, currency: str
    ) -> TransactionResult:
        """``confirmDeposit``: post the pending credit."""
        body = _ConfirmRequest(token, mm_transaction_id, _wire_amount(amount_minor, currency))
        return await self._transaction("confirmDeposit", body)

    async def rollback_deposit(
        self, token: str, mm_transaction_id: str, reason: str | None = None
    ) -> TransactionResult:
        """``rollbackDeposit``: drop the pending credit."""
        body = _RollbackRequest(token, mm_transaction_id, reason)
        return await self._transaction("rollbackDeposit", body)

    async def initiate_payment(
        self,
        token: str,
        cp_order_id: str,
        server_id: str,
        product_id: str,
        product_price: str,
        ext_params: str = "",
    ) -> PaymentResult:
        """``payment/initiate``: debit the player once per ``cp_order_id``; the wallet then
        notifies the game's callback URL. ``product_price`` is the exact decimal text (it is
        signed as written, so it is sent as that JSON number)."""
        try:
            parse_amount(product_price)
        except AmountError as exc:
            raise ValueError(f"product_price must be a positive decimal: {exc.reason}") from exc
        body = _PaymentRequest(
            token,
            cp_order_id,
            server_id,
            product_id,
            msgspec.Raw(product_price.encode("ascii")),
            ext_params,
        )
        answer = await self._call("payment/initiate", body, _PaymentResponse)
        return PaymentResult(answer.cp_order_id, _balance(answer.balance))


# --- the wallet calling the game -------------------------------------------------------------


class GameClient:
    """The game's Integration API as the wallet calls it, and the payment callback.

    ``integration_url`` is the game's root (``POST {integration_url}/integration/query…``);
    ``username`` / ``password`` are the wallet's Basic credentials at the game. The payment
    callback goes to its own URL (:meth:`send_payment_callback`) without Basic auth: its
    ``sign`` field authenticates it.
    """

    def __init__(
        self,
        integration_url: str | None,
        username: str | None,
        password: str | None,
        *,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        response_max_bytes: int = RESPONSE_MAX_BYTES,
    ) -> None:
        auth = (username, password) if username is not None and password is not None else None
        self.integration_url = integration_url
        self._limit = response_max_bytes
        self._http = _http(integration_url or "", timeout_s, auth, transport)
        # Callbacks carry no Basic auth, so they use a client without it.
        self._callbacks = _http("", timeout_s, None, transport)

    async def __aenter__(self) -> GameClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self._http.aclose()
        await self._callbacks.aclose()

    async def _query(self, endpoint: str, mm_transaction_id: str) -> QueryStatus:
        if not self.integration_url:
            raise ValueError("the client has no integration_url")
        request = self._http.build_request(
            "POST",
            f"integration/{endpoint}",
            content=msgspec.json.encode(_QueryRequest(mm_transaction_id)),
            headers={"Content-Type": "application/json"},
        )
        status, data = await _send(self._http, request, self._limit)
        if status == httpx.codes.UNAUTHORIZED:
            raise AuthFailed(f"{endpoint}: the game refused our credentials (HTTP 401)")
        if not _success(status):
            raise UnexpectedResponse(f"{endpoint}: HTTP {status}", status)
        try:
            answer = msgspec.json.decode(data, type=_QueryResponse)
        except msgspec.DecodeError as exc:
            raise UnexpectedResponse(f"{endpoint}: unexpected answer ({exc})", status) from exc
        if answer.mm_transaction_id != mm_transaction_id:
            raise UnexpectedResponse(f"{endpoint}: the answer is about another id", status)
        if answer.status not in _QUERY_STATUSES:
            raise UnexpectedResponse(f"{endpoint}: unknown status {answer.status[:40]!r}", status)
        result: QueryStatus = answer.status  # type: ignore[assignment]  # checked just above
        return result

    async def query_withdrawal(self, mm_transaction_id: str) -> QueryStatus:
        """``queryWithdrawal``: the game's final word on a withdrawal."""
        return await self._query("queryWithdrawal", mm_transaction_id)

    async def query_deposit(self, mm_transaction_id: str) -> QueryStatus:
        """``queryDeposit``: the game's final word on a deposit."""
        return await self._query("queryDeposit", mm_transaction_id)

    async def send_payment_callback(self, url: str, fields: Mapping[str, str]) -> None:
        """POST a payment callback as form fields; returns only when the game acknowledged it
        with HTTP 200 and ``{"code": 0}``, else raises :class:`UnexpectedResponse` (or
        :class:`OutcomeUnknown` when no answer came)."""
        request = self._callbacks.build_request("POST", url, data=dict(fields))
        status, data = await _send(self._callbacks, request, self._limit)
        if status != httpx.codes.OK:
            raise UnexpectedResponse(f"payment callback: HTTP {status}", status)
        try:
            answer = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise UnexpectedResponse(f"payment callback: not JSON ({exc})", status) from exc
        code = answer.get("code") if isinstance(answer, dict) else None
        # 0 exactly: neither false nor "0" is the documented acknowledgement.
        if type(code) is not int or code != 0:
            raise UnexpectedResponse(f"payment callback: not acknowledged ({data[:80]!r})", status)
