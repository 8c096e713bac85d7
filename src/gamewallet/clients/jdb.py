"""The operator side of the JDB platform API: an async, typed httpx client of every action.

Each call encrypts the action's parameters (``action``, ``ts`` in epoch milliseconds from the
client's clock, ``parent`` and the action's own fields) into ``x`` with the domain's AES key
and IV (:mod:`gamewallet.protocols.jdb.crypto`), POSTs ``dc`` and ``x`` as a form to
``{base}/apiRequest.do`` and reads the plain JSON answer (spec 3.1). Amounts are written as
exact JSON numbers and read back into integer minor units, never through a float.
A call returns its typed result, raises :class:`JdbError` (a status other than ``0000``), or
raises :class:`JdbOutcomeUnknown` (timeout, broken connection, a reply that is not JDB's): a
money call that ends there may or may not have been applied. Nothing is retried here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

import httpx
import msgspec

from gamewallet.core.money import AmountError, format_minor, parse_amount
from gamewallet.protocols.jdb.crypto import JdbCipher
from gamewallet.protocols.jdb.timefmt import JDB_TZ, format_jdb_date, parse_jdb_date
from gamewallet.service.common import Clock, SystemClock

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "JdbBalance",
    "JdbClient",
    "JdbClientError",
    "JdbError",
    "JdbHistoryItem",
    "JdbInGame",
    "JdbOutcomeUnknown",
    "JdbPlayerInfo",
    "JdbTransfer",
    "JdbTransferResult",
    "PlayerStatusOp",
]

#: Timeout of one call when the caller gives none (settings.http_timeout_s in the app).
DEFAULT_TIMEOUT_S = 10.0
#: Most uids one action 68 call may name (spec 3.2).
MAX_UIDS = 100
#: Longest serialNo, and its alphabet (spec 3.3: letters and digits only).
MAX_SERIAL_NO = 50
SERIAL_NO = re.compile(r"[A-Za-z0-9]{1,50}")
#: Action 19 amounts have at most 3 decimal places: a multiple of 10 minor units.
AMOUNT_STEP_MINOR = 10
SUCCESS = "0000"

_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_ENCODER = msgspec.json.Encoder(decimal_format="number")


class PlayerStatusOp(enum.StrEnum):
    """Action 14's ``operation_code``."""

    SUSPEND = "2"
    UNSUSPEND = "3"
    LOCK = "4"
    UNLOCK = "5"


class JdbClientError(Exception):
    """Base of everything this client raises about a call."""


class JdbError(JdbClientError):
    """The platform answered with ``status`` (not ``0000``) and its ``err_text``."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(f"JDB {status}: {text}")
        self.status = status
        self.text = text


class JdbOutcomeUnknown(JdbClientError):
    """No usable answer: a timeout, a broken connection, or a reply that is not JDB's.

    ``maybe_sent`` is False only when the connection could not even be opened.
    """

    def __init__(self, reason: str, *, maybe_sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent


@dataclass(frozen=True, slots=True)
class JdbPlayerInfo:
    """One row of action 15."""

    uid: str
    balance_minor: int
    parent: str
    username: str
    currency: str
    level: str
    locked: bool
    closed: bool
    jackpot_flag: str


@dataclass(frozen=True, slots=True)
class JdbTransferResult:
    """Action 19's answer; ``amount_minor`` is signed as applied (negative = withdraw)."""

    serial_no: str
    pid: int
    amount_minor: int
    user_balance_minor: int
    agent_cash_balance_minor: int
    pay_date: datetime | None


@dataclass(frozen=True, slots=True)
class JdbTransfer:
    """One row of action 55; ``amount_minor`` is signed by ``action`` (negative = withdraw)."""

    uid: str
    action: str
    amount_minor: int
    before_minor: int
    after_minor: int
    date: datetime | None
    pid: int
    remark: str


@dataclass(frozen=True, slots=True)
class JdbHistoryItem:
    """One row of action 61."""

    pid: int
    pay_date: datetime | None
    action: str
    amount_minor: int
    balance_minor: int
    serial_no: str
    remark: str


@dataclass(frozen=True, slots=True)
class JdbInGame:
    """Action 52's answer."""

    g_type: str
    m_type: str
    login_from: str
    ip_addr: str
    login_time: datetime | None
    balance_minor: int


@dataclass(frozen=True, slots=True)
class JdbBalance:
    """One row of actions 65 and 68."""

    uid: str
    balance_minor: int


def _money(value: object, what: str, *, signed: bool = True) -> int:
    try:
        return parse_amount(value, allow_negative=signed, allow_zero=True)
    except AmountError as exc:
        raise JdbOutcomeUnknown(f"JDB reply has a bad {what}: {exc.reason}") from None


def _text(row: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = row.get(key, default)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise JdbOutcomeUnknown(f"JDB reply lacks the field {key!r}")
    return value


def _int(row: Mapping[str, Any], key: str) -> int:
    value = row.get(key)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise JdbOutcomeUnknown(f"JDB reply lacks the integer field {key!r}")
    return value


def _flag(row: Mapping[str, Any], key: str) -> bool:
    value = row.get(key, False)
    if isinstance(value, str):
        return value.lower() in ("1", "true", "y", "yes")
    return bool(value)


def _signed_by_action(action: str, value: int) -> int:
    return -abs(value) if action == "withdraw" else abs(value)


def _list(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rows = payload.get("data")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise JdbOutcomeUnknown("JDB reply lacks its data list")
    return rows


def _wire_amount(minor: int) -> Decimal:
    """An exact JSON number for ``minor`` (``1000.0``, ``-12.345``), as JDB's examples write."""
    return Decimal(format_minor(minor, min_fraction_digits=1))


class JdbClient:
    """One domain's (``dc`` + ``parent``) view of a JDB platform.

    ``zone`` is the domain's time zone for dates (default GMT+8). ``http`` / ``transport``
    as in :class:`gamewallet.clients.hrg.HrgClient`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        dc: str,
        parent: str,
        key: str,
        iv: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Clock | None = None,
        zone: tzinfo = JDB_TZ,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert timeout_s > 0, "a call needs a positive timeout"
        self.base_url = base_url.rstrip("/")
        self.dc = dc
        self.parent = parent
        self.zone = zone
        self.clock: Clock = clock or SystemClock()
        self.timeout_s = timeout_s
        self._cipher = JdbCipher(key, iv)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), transport=transport, follow_redirects=False
        )

    def __repr__(self) -> str:  # never show the key
        return f"JdbClient({self.base_url!r}, dc={self.dc!r}, parent={self.parent!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> JdbClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def counterparty(self) -> str:
        """Who this client talks to, as transfer records name it."""
        return f"{self.dc}/{self.parent}@{self.base_url}"

    def encode(self, action: int, params: Mapping[str, Any]) -> str:
        """The ``x`` of one call: the action, ``ts`` from the clock, ``parent``, ``params``."""
        payload = {"action": action, "ts": self.clock.now_ms(), "parent": self.parent, **params}
        return self._cipher.encrypt(_ENCODER.encode(payload))

    # --- transport ---------------------------------------------------------------------

    async def call(self, action: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """Send one action; return the whole reply when its status is ``0000``.

        Raises :class:`JdbError` for any other status and :class:`JdbOutcomeUnknown` when no
        JDB reply could be read.
        """
        form = {"dc": self.dc, "x": self.encode(action, params)}
        try:
            response = await self._http.post(
                f"{self.base_url}/apiRequest.do",
                data=form,
                headers={"Accept": "application/json"},
                timeout=self.timeout_s,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise JdbOutcomeUnknown(
                f"cannot connect: {type(exc).__name__}", maybe_sent=False
            ) from exc
        except httpx.TimeoutException as exc:
            raise JdbOutcomeUnknown(f"timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise JdbOutcomeUnknown(f"connection failed: {type(exc).__name__}") from exc
        try:
            payload = _DECODER.decode(response.content)
        except msgspec.DecodeError:
            payload = None
        status = payload.get("status") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or not isinstance(status, str):
            raise JdbOutcomeUnknown(f"HTTP {response.status_code} without a JDB status")
        if status != SUCCESS:
            text = payload.get("err_text")
            raise JdbError(status, text if isinstance(text, str) else "")
        return payload

    def _date(self, value: object) -> datetime | None:
        if not isinstance(value, str):
            return None
        try:
            return parse_jdb_date(value, self.zone)
        except ValueError:
            return None

    # --- actions -----------------------------------------------------------------------

    async def create_player(
        self, uid: str, name: str, *, credit_allocated_minor: int | None = None
    ) -> None:
        """Action 12: create a player (7602 if it exists)."""
        params: dict[str, Any] = {"uid": uid, "name": name}
        if credit_allocated_minor is not None:
            params["credit_allocated"] = _wire_amount(credit_allocated_minor)
        await self.call(12, params)

    async def set_player_status(self, uid: str, operation: PlayerStatusOp) -> None:
        """Action 14: suspend, unsuspend, lock or unlock a player."""
        await self.call(14, {"uid": uid, "operation_code": operation.value})

    async def player_info(self, uid: str) -> JdbPlayerInfo:
        """Action 15: one player's details and balance."""
        rows = _list(await self.call(15, {"uid": uid}))
        if not rows:
            raise JdbOutcomeUnknown("JDB action 15 answered an empty list")
        row = rows[0]
        return JdbPlayerInfo(
            uid=_text(row, "uid"),
            balance_minor=_money(row.get("balance"), "balance"),
            parent=_text(row, "parent", ""),
            username=_text(row, "username", ""),
            currency=_text(row, "currency", ""),
            level=_text(row, "lvl", ""),
            locked=_flag(row, "locked"),
            closed=_flag(row, "closed"),
            jackpot_flag=_text(row, "jackpotFlag", ""),
        )

    async def kick_out(self, uid: str) -> None:
        """Action 17: the player leaves its game."""
        await self.call(17, {"uid": uid})

    async def transfer(
        self,
        uid: str,
        serial_no: str,
        *,
        amount_minor: int | None = None,
        all_cash_out: bool = False,
        remark: str | None = None,
    ) -> JdbTransferResult:
        """Action 19: deposit (``amount_minor`` > 0), withdraw (< 0) or cash out everything.

        Amounts have at most 3 decimal places (a multiple of 10 minor units); anything else is
        refused here, before it is sent.
        """
        if SERIAL_NO.fullmatch(serial_no) is None:
            raise ValueError("serialNo must be 1..50 letters and digits")
        params: dict[str, Any] = {
            "uid": uid,
            "serialNo": serial_no,
            "allCashOutFlag": "1" if all_cash_out else "0",
        }
        if not all_cash_out:
            if not amount_minor or amount_minor % AMOUNT_STEP_MINOR:
                raise ValueError("amount must be non-zero with at most 3 decimal places")
            params["amount"] = _wire_amount(amount_minor)
        if remark:
            params["remark"] = remark
        reply = await self.call(19, params)
        return JdbTransferResult(
            serial_no=_text(reply, "serialNo", serial_no),
            pid=_int(reply, "pid"),
            amount_minor=_money(reply.get("amount"), "amount"),
            user_balance_minor=_money(reply.get("userBalance"), "userBalance"),
            agent_cash_balance_minor=_money(reply.get("agentCashBalance"), "agentCashBalance"),
            pay_date=self._date(reply.get("payDate")),
        )

    async def deposit(
        self, uid: str, serial_no: str, amount_minor: int, *, remark: str | None = None
    ) -> JdbTransferResult:
        """Action 19 with a positive amount."""
        assert amount_minor > 0
        return await self.transfer(uid, serial_no, amount_minor=amount_minor, remark=remark)

    async def withdraw(
        self,
        uid: str,
        serial_no: str,
        amount_minor: int | None = None,
        *,
        all_cash_out: bool = False,
        remark: str | None = None,
    ) -> JdbTransferResult:
        """Action 19 taking ``amount_minor`` (positive) or, with ``all_cash_out``, everything."""
        assert all_cash_out or (amount_minor is not None and amount_minor > 0)
        return await self.transfer(
            uid,
            serial_no,
            amount_minor=None if all_cash_out else -(amount_minor or 0),
            all_cash_out=all_cash_out,
            remark=remark,
        )

    async def in_game(self, uid: str) -> JdbInGame:
        """Action 52: where the player is playing (7505 if it is not)."""
        data = (await self.call(52, {"uid": uid})).get("data")
        if not isinstance(data, dict):
            raise JdbOutcomeUnknown("JDB action 52 answered without data")
        return JdbInGame(
            g_type=_text(data, "gType", ""),
            m_type=_text(data, "mType", ""),
            login_from=_text(data, "loginFrom", ""),
            ip_addr=_text(data, "ipAddr", ""),
            login_time=self._date(data.get("loginTime")),
            balance_minor=_money(data.get("balance"), "balance"),
        )

    async def check_transfer(self, serial_no: str) -> list[JdbTransfer]:
        """Action 55: the transfer of ``serial_no`` (9015 if none, 6012 while in progress)."""
        rows = _list(await self.call(55, {"serialNo": serial_no}))
        return [
            JdbTransfer(
                uid=_text(row, "uid"),
                action=_text(row, "action"),
                amount_minor=_signed_by_action(
                    _text(row, "action"), _money(row.get("amount"), "amount")
                ),
                before_minor=_money(row.get("plsBalance"), "plsBalance"),
                after_minor=_money(row.get("afterBalance"), "afterBalance"),
                date=self._date(row.get("date")),
                pid=_int(row, "pid"),
                remark=_text(row, "remark", ""),
            )
            for row in rows
        ]

    async def transfer_history(
        self, uid: str, start: datetime, end: datetime
    ) -> list[JdbHistoryItem]:
        """Action 61: a player's transfers between ``start`` and ``end`` (aware datetimes)."""
        params = {
            "uid": uid,
            "starttime": format_jdb_date(start, self.zone),
            "endtime": format_jdb_date(end, self.zone),
        }
        return [
            JdbHistoryItem(
                pid=_int(row, "pid"),
                pay_date=self._date(row.get("payDate")),
                action=_text(row, "action"),
                amount_minor=_signed_by_action(
                    _text(row, "action"), _money(row.get("amount"), "amount")
                ),
                balance_minor=_money(row.get("balance"), "balance"),
                serial_no=_text(row, "serialNo"),
                remark=_text(row, "remark", ""),
            )
            for row in _list(await self.call(61, params))
        ]

    async def online_users(self) -> list[JdbBalance]:
        """Action 65: players in a game, with their balances."""
        return self._balances(await self.call(65, {}))

    async def balances(self, uids: Sequence[str]) -> list[JdbBalance]:
        """Action 68: the balances of up to 100 players (9998 if any is unknown)."""
        unique = list(dict.fromkeys(uids))
        if not 0 < len(unique) <= MAX_UIDS:
            raise ValueError(f"action 68 takes 1..{MAX_UIDS} distinct uids")
        return self._balances(await self.call(68, {"uidList": unique}))

    def _balances(self, reply: Mapping[str, Any]) -> list[JdbBalance]:
        return [
            JdbBalance(_text(row, "uid"), _money(row.get("balance"), "balance"))
            for row in _list(reply)
        ]

    async def launch_url(
        self,
        uid: str,
        *,
        lang: str = "en",
        g_type: str = "0",
        m_type: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Action 11: a one-time game URL; the player counts as in a game from now on."""
        params: dict[str, Any] = {
            **(extra or {}),
            "uid": uid,
            "lang": lang,
            "gType": g_type,
            "mType": m_type,
        }
        return _text(await self.call(11, params), "path")
