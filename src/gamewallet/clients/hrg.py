"""The operator side of the HRG transfer API: an async, typed httpx client of every endpoint.

Every call is one HTTP request to ``POST {base}/api/<name>`` with Basic auth and an ``xts``
header made from the client's clock (spec 2.1). Money crosses the wire as decimal strings and
is handed back as integer minor units (scale 4), never as floats. A call either returns its
typed result, raises :class:`HrgError` (the server answered with a status code: nothing else
to learn), or raises :class:`HrgOutcomeUnknown` (timeout, broken connection, an answer that is
not HRG's envelope): the caller cannot know whether a money call was applied and must recover
through :meth:`HrgClient.check_transfer_operation` or a re-send with the same transaction code.
No call is ever retried here; :mod:`gamewallet.clients.transfers` owns recovery.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import msgspec

from gamewallet.core.money import AmountError, format_minor, parse_amount
from gamewallet.protocols.hrg.timefmt import format_xts, parse_xts
from gamewallet.service.common import Clock, SystemClock

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "HrgBalance",
    "HrgBalancePage",
    "HrgClient",
    "HrgClientError",
    "HrgError",
    "HrgOutcomeUnknown",
    "HrgTransfer",
    "HrgTransferPage",
    "HrgTransferResult",
    "HrgUser",
]

#: Timeout of one call when the caller gives none (settings.http_timeout_s in the app).
DEFAULT_TIMEOUT_S = 10.0
#: Most user ids one ``get_balance`` call may name (spec 2.2).
MAX_USER_IDS = 100
#: Largest page one ``get_balance`` call may ask for (spec 2.2).
MAX_PAGE_SIZE = 2000
#: Longest transaction code HRG accepts (spec 2.2).
MAX_TRANSACTION_CODE = 30
SUCCESS = "0000"

#: Status codes of spec 2.3, with the texts our server uses (another server may word them
#: differently: the code is what counts).
STATUS_TEXT: dict[str, str] = {
    "0000": "Success",
    "1001": "Authorization failed",
    "1002": "Request time (xts) missing or out of range",
    "2001": "Invalid parameter",
    "2002": "Agent not found",
    "3001": "User not found",
    "3002": "User already exists",
    "3003": "Invalid user id",
    "4001": "Insufficient balance",
    "4002": "Insufficient free credit",
    "4003": "Duplicate transaction code",
    "4004": "Transaction not found",
    "4005": "Amount over limit",
    "4006": "Agent credit limit exceeded",
    "9999": "Unknown error",
}

_DECODER = msgspec.json.Decoder(float_hook=Decimal)


class HrgClientError(Exception):
    """Base of everything this client raises about a call."""


class HrgError(HrgClientError):
    """The server answered with a non-success status ``code`` (and its ``desc`` text)."""

    def __init__(self, code: str, desc: str, *, http_status: int = 200) -> None:
        super().__init__(f"HRG {code}: {desc}")
        self.code = code
        self.desc = desc
        self.http_status = http_status


class HrgOutcomeUnknown(HrgClientError):
    """No usable answer: a timeout, a broken connection, or a reply that is not HRG's.

    A money call that ends here may or may not have been applied. ``maybe_sent`` is False
    only when the connection could not even be opened (the request never left).
    """

    def __init__(self, reason: str, *, maybe_sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent


@dataclass(frozen=True, slots=True)
class HrgUser:
    """``create_user``'s answer."""

    agent_id: str
    user_id: str
    balance_minor: int
    free_credit_minor: int


@dataclass(frozen=True, slots=True)
class HrgBalance:
    """One row of ``get_balance``."""

    agent_id: str
    user_id: str
    currency: str
    balance_minor: int
    free_credit_minor: int


@dataclass(frozen=True, slots=True)
class HrgBalancePage:
    """A page of ``get_balance`` (``total`` None when the server does not say)."""

    items: list[HrgBalance]
    page: int | None
    page_size: int | None
    total: int | None


@dataclass(frozen=True, slots=True)
class HrgTransferResult:
    """``deposit`` / ``withdraw``'s answer. ``amount_minor`` is signed as HRG renders it
    (``withdrawAmount`` is negative, cash and free credit together)."""

    agent_id: str
    user_id: str
    currency: str
    amount_minor: int
    balance_minor: int
    free_credit_minor: int


@dataclass(frozen=True, slots=True)
class HrgTransfer:
    """A stored transfer (``check_transfer_operation`` and the operation log).

    ``amount_minor`` and ``free_credit_minor`` are signed by ``type``: negative for a withdraw,
    whichever sign the server writes them with.
    """

    transaction_code: str
    agent_id: str
    user_id: str
    type: str
    amount_minor: int
    free_credit_minor: int
    pre_balance_minor: int
    pre_free_credit_minor: int
    after_balance_minor: int
    after_free_credit_minor: int
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class HrgTransferPage:
    """A page of ``get_transfer_operation_log``."""

    items: list[HrgTransfer]
    page: int | None
    page_size: int | None
    total: int | None


def _money(value: object, what: str, *, signed: bool = False) -> int:
    """A wire amount (string or number) as minor units; a bad one is a reply we can't trust."""
    try:
        return parse_amount(value, allow_negative=signed, allow_zero=True)
    except AmountError as exc:
        raise HrgOutcomeUnknown(f"HRG reply has a bad {what}: {exc.reason}") from None


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise HrgOutcomeUnknown(f"HRG reply lacks the text field {key!r}")
    return value


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _signed_by_type(kind: str, value: int) -> int:
    return -abs(value) if kind == "withdraw" else abs(value)


def _transfer(row: Mapping[str, Any]) -> HrgTransfer:
    kind = _text(row, "type")
    created = row.get("createdAt")
    try:
        created_at = parse_xts(created) if isinstance(created, str) else None
    except ValueError:
        created_at = None
    return HrgTransfer(
        transaction_code=_text(row, "transactionCode"),
        agent_id=_text(row, "agentId"),
        user_id=_text(row, "userId"),
        type=kind,
        amount_minor=_signed_by_type(kind, _money(row.get("amount", "0"), "amount", signed=True)),
        free_credit_minor=_signed_by_type(
            kind, _money(row.get("freeCredit", "0"), "freeCredit", signed=True)
        ),
        pre_balance_minor=_money(row.get("preBalance", "0"), "preBalance"),
        pre_free_credit_minor=_money(row.get("preFreeCredit", "0"), "preFreeCredit"),
        after_balance_minor=_money(row.get("afterBalance", "0"), "afterBalance"),
        after_free_credit_minor=_money(row.get("afterFreeCredit", "0"), "afterFreeCredit"),
        created_at=created_at,
    )


def _rows(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rows = data.get("list")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise HrgOutcomeUnknown("HRG reply lacks its list")
    return rows


def _amount_text(minor: int) -> str:
    """How we write an amount: a plain decimal string, as in the vendor's examples."""
    return format_minor(minor)


class HrgClient:
    """One agent's view of an HRG server.

    ``http`` lets the caller share (or fake) the httpx client; by default one is created with
    ``timeout_s`` and closed by :meth:`aclose`. ``transport`` is handed to that client (tests
    and the simulator wrap the real transport to inject faults).
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str,
        client_secret: str,
        agent_id: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert timeout_s > 0, "a call needs a positive timeout"
        self.base_url = base_url.rstrip("/")
        self.agent_id = agent_id
        self.clock: Clock = clock or SystemClock()
        self.timeout_s = timeout_s
        token = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        self._auth = f"Basic {token}"
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), transport=transport, follow_redirects=False
        )

    def __repr__(self) -> str:  # never show the secret
        return f"HrgClient({self.base_url!r}, agent_id={self.agent_id!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> HrgClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def counterparty(self) -> str:
        """Who this client talks to, as transfer records name it."""
        return f"{self.agent_id}@{self.base_url}"

    def xts(self) -> str:
        """The ``xts`` header value for now, in HRG's zone."""
        now_ms = self.clock.now_ms()
        moment = datetime.fromtimestamp(now_ms // 1000, UTC) + timedelta(milliseconds=now_ms % 1000)
        return format_xts(moment)

    # --- transport ---------------------------------------------------------------------

    async def call(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/api/<name>``; return ``data`` of a success envelope.

        Raises :class:`HrgError` for any other status code and :class:`HrgOutcomeUnknown`
        when no HRG answer could be read.
        """
        content = msgspec.json.encode(dict(body))
        headers = {
            "Authorization": self._auth,
            "xts": self.xts(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            response = await self._http.post(
                f"{self.base_url}/api/{name}",
                content=content,
                headers=headers,
                timeout=self.timeout_s,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise HrgOutcomeUnknown(
                f"cannot connect: {type(exc).__name__}", maybe_sent=False
            ) from exc
        except httpx.TimeoutException as exc:
            raise HrgOutcomeUnknown(f"timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise HrgOutcomeUnknown(f"connection failed: {type(exc).__name__}") from exc
        return self._envelope(response)

    @staticmethod
    def _envelope(response: httpx.Response) -> dict[str, Any]:
        try:
            payload = _DECODER.decode(response.content)
        except msgspec.DecodeError:
            payload = None
        code = payload.get("code") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or not isinstance(code, str):
            # A proxy's error page, an empty body…: the server's outcome is not known.
            raise HrgOutcomeUnknown(f"HTTP {response.status_code} without an HRG envelope")
        if code != SUCCESS:
            desc = payload.get("desc")
            text = desc if isinstance(desc, str) else STATUS_TEXT.get(code, "")
            raise HrgError(code, text, http_status=response.status_code)
        data = payload.get("data", {})
        if not isinstance(data, dict):
            raise HrgOutcomeUnknown("HRG success envelope without a data object")
        return data

    # --- endpoints ---------------------------------------------------------------------

    async def create_user(
        self,
        user_id: str,
        *,
        balance_minor: int | None = None,
        free_credit_minor: int | None = None,
    ) -> HrgUser:
        """Create a player; an opening ``balance`` is a deposit from the agent."""
        body: dict[str, Any] = {"agentId": self.agent_id, "userId": user_id}
        if balance_minor is not None:
            body["balance"] = _amount_text(balance_minor)
        if free_credit_minor is not None:
            body["freeCredit"] = _amount_text(free_credit_minor)
        data = await self.call("create_user", body)
        return HrgUser(
            agent_id=_text(data, "agentId"),
            user_id=_text(data, "userId"),
            balance_minor=_money(data.get("balance", "0"), "balance"),
            free_credit_minor=_money(data.get("freeCredit", "0"), "freeCredit"),
        )

    async def get_balance(
        self,
        user_ids: Sequence[str] | None = None,
        *,
        all_user: bool = False,
        filter_non_zero: bool | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> HrgBalancePage:
        """Balances of ``user_ids`` (at most 100), or of every user with ``all_user``."""
        if user_ids is not None and len(user_ids) > MAX_USER_IDS:
            raise ValueError(f"get_balance takes at most {MAX_USER_IDS} user ids")
        if page_size is not None and not 0 < page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}")
        body: dict[str, Any] = {"agentId": self.agent_id, "allUser": all_user}
        if user_ids is not None:
            body["userIds"] = list(user_ids)
        if filter_non_zero is not None:
            body["filterNonZeroBalance"] = filter_non_zero
        if page is not None:
            body["page"] = page
        if page_size is not None:
            body["pageSize"] = page_size
        data = await self.call("get_balance", body)
        items = [
            HrgBalance(
                agent_id=_text(row, "agentId"),
                user_id=_text(row, "userId"),
                currency=_text(row, "currency"),
                balance_minor=_money(row.get("balance", "0"), "balance", signed=True),
                free_credit_minor=_money(row.get("freeCredit", "0"), "freeCredit", signed=True),
            )
            for row in _rows(data)
        ]
        return HrgBalancePage(
            items,
            _optional_int(data, "page"),
            _optional_int(data, "pageSize"),
            _optional_int(data, "total"),
        )

    async def deposit(
        self,
        user_id: str,
        transaction_code: str,
        amount_minor: int,
        *,
        free_credit_minor: int | None = None,
    ) -> HrgTransferResult:
        """Move ``amount_minor`` (and optionally free credit) from the agent to the player."""
        _check_code(transaction_code)
        body: dict[str, Any] = {
            "agentId": self.agent_id,
            "userId": user_id,
            "amount": _amount_text(amount_minor),
            "transactionCode": transaction_code,
        }
        if free_credit_minor:
            body["freeCredit"] = _amount_text(free_credit_minor)
        data = await self.call("deposit", body)
        return _transfer_result(data, "depositAmount")

    async def withdraw(
        self,
        user_id: str,
        transaction_code: str,
        *,
        amount_minor: int | None = None,
        free_credit_minor: int | None = None,
        all_withdraw: bool = False,
    ) -> HrgTransferResult:
        """Move money from the player back to the agent: ``amount_minor`` and/or
        ``free_credit_minor`` (positive), or everything with ``all_withdraw``."""
        _check_code(transaction_code)
        body: dict[str, Any] = {
            "agentId": self.agent_id,
            "userId": user_id,
            "allWithdraw": all_withdraw,
            "transactionCode": transaction_code,
        }
        if amount_minor:
            body["amount"] = _amount_text(amount_minor)
        if free_credit_minor:
            body["freeCredit"] = _amount_text(free_credit_minor)
        data = await self.call("withdraw", body)
        return _transfer_result(data, "withdrawAmount")

    async def check_transfer_operation(self, transaction_code: str) -> HrgTransfer:
        """The stored transfer of ``transaction_code``; :class:`HrgError` 4004 if none."""
        data = await self.call(
            "check_transfer_operation",
            {"agentId": self.agent_id, "transactionCode": transaction_code},
        )
        return _transfer(data)

    async def get_transfer_operation_log(
        self,
        start: datetime,
        end: datetime,
        *,
        user_id: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> HrgTransferPage:
        """Transfers made in [start, end] (aware datetimes, sent in HRG's zone)."""
        body: dict[str, Any] = {
            "agentId": self.agent_id,
            "startTime": format_xts(start),
            "endTime": format_xts(end),
        }
        if user_id is not None:
            body["userId"] = user_id
        if page is not None:
            body["page"] = page
        if page_size is not None:
            body["pageSize"] = page_size
        data = await self.call("get_transfer_operation_log", body)
        return HrgTransferPage(
            [_transfer(row) for row in _rows(data)],
            _optional_int(data, "page"),
            _optional_int(data, "pageSize"),
            _optional_int(data, "total"),
        )

    async def launch_lobby(
        self, user_id: str, *, lang: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> str:
        """The lobby URL (with a one-time ticket) for a player."""
        return await self._launch("launch_lobby", user_id, lang, extra)

    async def launch_game(
        self, user_id: str, *, lang: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> str:
        """A game's URL (with a one-time ticket); ``extra`` carries the game's fields."""
        return await self._launch("launch_game", user_id, lang, extra)

    async def _launch(
        self, name: str, user_id: str, lang: str | None, extra: Mapping[str, Any] | None
    ) -> str:
        body: dict[str, Any] = {**(extra or {}), "agentId": self.agent_id, "userId": user_id}
        if lang is not None:
            body["lang"] = lang
        return _text(await self.call(name, body), "url")


def _check_code(transaction_code: str) -> None:
    if not 0 < len(transaction_code) <= MAX_TRANSACTION_CODE:
        raise ValueError(f"transactionCode must be 1..{MAX_TRANSACTION_CODE} characters")


def _transfer_result(data: Mapping[str, Any], amount_key: str) -> HrgTransferResult:
    return HrgTransferResult(
        agent_id=_text(data, "agentId"),
        user_id=_text(data, "userId"),
        currency=_text(data, "currency"),
        amount_minor=_money(data.get(amount_key, "0"), amount_key, signed=True),
        balance_minor=_money(data.get("currentBalance", "0"), "currentBalance"),
        free_credit_minor=_money(data.get("currentFreeCredit", "0"), "currentFreeCredit"),
    )
