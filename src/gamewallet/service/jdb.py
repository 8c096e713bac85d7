"""JDB transfer use cases: players, their flags and in-game state, and single-phase transfers.

A transfer (action 19) is one operation in ``NS_WIRE`` keyed by the caller's ``serialNo``, born
``COMPLETED`` in the same database transaction that posts it between the player and the agent's
account; its detail keeps the uid, the signed amount, the player's balance before and after, and
the remark. A ``serialNo`` is claimed three ways, in this order: the in-process
:class:`InFlight` registry (a concurrent duplicate gets 6012 at once), a non-blocking database
lock on the key (the same for other processes on PostgreSQL), and the unique (client, ns,
serialNo) key (a completed one gets 6005; a racing insert that loses gets 6005 too).
A player in a game, or inside the cooldown of the game type it left, cannot withdraw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.money import UNIT
from gamewallet.core.states import OpState
from gamewallet.service import admin
from gamewallet.service.common import NS_WIRE, client_balance, move
from gamewallet.store import ops
from gamewallet.store.fastpath import FastOffer, JdbRequest
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import ClientRecord, OperationRecord, PlayerRecord, SessionRecord

#: Deposits, and balances after a deposit, must stay below 10^9 units (9 integer digits).
LIMIT_MINOR = 10**9 * UNIT
#: Life of the one-time launch ticket of action 11 (protocols.md 3.2: valid 1 minute).
TICKET_TTL_S = 60
#: Operation kinds of a transfer, as stored and as JDB names them.
DEPOSIT = "deposit"
WITHDRAW = "withdraw"

#: JDB ``gType`` -> game category. [decided] 0/7/9/12/18 follow JDB's public game-type list;
#: the FC and YB fish codes are our placeholders until the vendor's full table is known, and a
#: client can target any gType directly through its ``cooldown_s`` config (see cooldown_ms).
GAME_CATEGORIES: dict[str, str] = {
    "0": "slot",
    "7": "fish",
    "9": "arcade",
    "12": "lottery",
    "18": "card",
    "32": "fc_fish",
    "66": "yb_fish",
}
#: Seconds after leaving a game of a category before a withdrawal is allowed (seed 004).
#: Categories not listed (slots, lottery, the lobby…) have no cooldown.
DEFAULT_COOLDOWN_S: dict[str, float] = {"card": 30, "fish": 5, "fc_fish": 10, "yb_fish": 10}


# --- in-game state ------------------------------------------------------------------------


def encode_game(g_type: str, m_type: str) -> str:
    """The player's ``game_type`` column for a game: ``"<gType>:<mType>"`` (either may be
    empty: the lobby)."""
    return f"{g_type}:{m_type}"


def decode_game(game: str) -> tuple[str, str]:
    """``(gType, mType)`` of a stored ``game_type``."""
    g_type, _, m_type = game.partition(":")
    return g_type, m_type


def cooldown_ms(client: ClientRecord, game: str | None) -> int:
    """How long after leaving ``game`` a withdrawal stays refused, in milliseconds.

    The client's ``cooldown_s`` config (a JSON object) overrides the defaults; its keys are a
    raw ``gType`` (most specific) or a category name (``card``, ``fish``, ``fc_fish``…).
    """
    if game is None:
        return 0
    g_type, _ = decode_game(game)
    category = GAME_CATEGORIES.get(g_type)
    configured = client.config.get("cooldown_s")
    overrides: Mapping[str, Any] = configured if isinstance(configured, Mapping) else {}
    for key in (g_type, category):
        if key is not None and key in overrides:
            return int(float(overrides[key]) * 1000)
    if category is None:
        return 0
    return int(DEFAULT_COOLDOWN_S.get(category, 0) * 1000)


def _check_can_withdraw(client: ClientRecord, player: PlayerRecord, now_ms: int) -> None:
    """Refuse a withdrawal while the player is in a game or inside its cooldown."""
    if player.game_type is not None:
        raise WalletError(ErrorCode.PLAYER_IN_GAME)
    left_at = player.game_left_at_ms
    if left_at is not None and now_ms < left_at + cooldown_ms(client, player.game_left_type):
        raise WalletError(ErrorCode.PLAYER_IN_GAME, "withdrawal cooldown after a game")


def _check_flags(player: PlayerRecord, *, suspended_ok: bool) -> None:
    """Closed, locked and (unless ``suspended_ok``) suspended players are refused, in that
    order of precedence."""
    if player.closed:
        raise WalletError(ErrorCode.PLAYER_CLOSED)
    if player.locked:
        raise WalletError(ErrorCode.PLAYER_LOCKED)
    if player.blocked and not suspended_ok:
        raise WalletError(ErrorCode.PLAYER_BLOCKED)


def _player(client: ClientRecord, uid: str, *, lock: bool = False) -> UseCase[PlayerRecord]:
    return (yield from admin.get_player(client, uid, lock=lock))


def _reload(player: PlayerRecord) -> UseCase[PlayerRecord]:
    updated = yield from do(ops.GetPlayer(player_id=player.id))
    assert updated is not None, "a player vanished inside its own transaction"
    return updated


# --- players ------------------------------------------------------------------------------


def create_player(
    client: ClientRecord, uid: str, name: str, credit_minor: int, now_ms: int
) -> UseCase[PlayerRecord]:
    """Action 12: create a player of ``client``, funded with ``credit_minor`` by the agent.

    The initial credit obeys the deposit limit (LIMIT_EXCEEDED) and the agent's credit limit.
    """
    assert client.currency is not None, "a JDB client has a currency"
    assert credit_minor >= 0
    if credit_minor >= LIMIT_MINOR:
        raise WalletError(ErrorCode.LIMIT_EXCEEDED)
    return (
        yield from admin.create_player(
            client, uid, client.currency, name, credit_minor, now_ms, fund_id=f"jdb-credit:{uid}"
        )
    )


def set_flags(
    client: ClientRecord, uid: str, *, blocked: bool | None = None, locked: bool | None = None
) -> UseCase[PlayerRecord]:
    """Action 14: suspend/unsuspend (``blocked``) or lock/unlock a player."""
    player = yield from _player(client, uid, lock=True)
    changes: dict[str, bool] = {}
    if blocked is not None:
        changes["blocked"] = blocked
    if locked is not None:
        changes["locked"] = locked
    yield from do(ops.UpdatePlayer(player.id, changes))
    return (yield from _reload(player))


def player_info(client: ClientRecord, uid: str) -> UseCase[PlayerRecord]:
    """Action 15: one player, or PLAYER_NOT_FOUND."""
    return (yield from _player(client, uid))


def launch(
    client: ClientRecord, uid: str, game: str, now_ms: int
) -> UseCase[tuple[SessionRecord, PlayerRecord]]:
    """Action 11: mark the player in ``game`` and issue a one-time ticket valid 1 minute.

    Closed, locked and suspended players cannot play. Launching again while in a game moves
    the player to the new game.
    """
    player = yield from _player(client, uid, lock=True)
    _check_flags(player, suspended_ok=False)
    yield from do(ops.UpdatePlayer(player.id, {"game_type": game, "game_since_ms": now_ms}))
    ticket, _ = yield from admin.open_session(client, uid, TICKET_TTL_S, now_ms, kind="ticket")
    return ticket, (yield from _reload(player))


def leave_game(client: ClientRecord, uid: str, now_ms: int) -> UseCase[PlayerRecord]:
    """Action 17 (and whatever else ends a game): the player leaves its game, which starts
    the withdrawal cooldown of that game type. A player not in a game is left as it is."""
    player = yield from _player(client, uid, lock=True)
    return (yield from end_game(player, now_ms))


def end_game(player: PlayerRecord, now_ms: int) -> UseCase[PlayerRecord]:
    """End the game of ``player`` (read with its row locked) now: the withdrawal cooldown of
    its game type starts. Action 17 and the back office's "end game" both come here; a
    player not in a game is returned as it is."""
    if player.game_type is None:
        return player
    yield from do(
        ops.UpdatePlayer(
            player.id,
            {
                "game_type": None,
                "game_since_ms": None,
                "game_left_at_ms": now_ms,
                "game_left_type": player.game_type,
            },
        )
    )
    return (yield from _reload(player))


def in_game(client: ClientRecord, uid: str) -> UseCase[PlayerRecord]:
    """Action 52: the player, if it is in a game; else PLAYER_NOT_PLAYING."""
    player = yield from _player(client, uid)
    if player.game_type is None:
        raise WalletError(ErrorCode.PLAYER_NOT_PLAYING)
    return player


def online(client: ClientRecord, limit: int) -> UseCase[list[PlayerRecord]]:
    """Action 65: up to ``limit`` players of ``client`` currently in a game, by id."""
    players, _ = yield from do(ops.ListPlayers(client.id, in_game=True, limit=limit))
    return players


def balances(
    client: ClientRecord, uids: tuple[str, ...]
) -> UseCase[tuple[list[PlayerRecord], list[str]]]:
    """Action 68: the players named by ``uids`` (in that order) and the uids that are unknown."""
    players, _ = yield from do(
        ops.ListPlayers(client.id, external_ids=uids, limit=max(1, len(uids)))
    )
    by_uid = {p.external_id: p for p in players}
    found = [by_uid[u] for u in uids if u in by_uid]
    missing = [u for u in uids if u not in by_uid]
    return found, missing


# --- transfers ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """Action 19, parsed: ``amount_minor`` is signed (negative = withdraw) and ignored when
    ``all_cash_out`` (withdraw the whole balance)."""

    uid: str
    serial_no: str
    amount_minor: int | None
    all_cash_out: bool
    remark: str


@dataclass(frozen=True, slots=True)
class TransferResult:
    """What action 19 answers: the operation, the player's and the agent's balances after."""

    operation: OperationRecord
    signed_minor: int
    user_balance_minor: int
    agent_balance_minor: int


@dataclass(frozen=True, slots=True)
class TransferView:
    """A stored transfer as actions 55 and 61 show it."""

    operation: OperationRecord
    uid: str
    signed_minor: int
    before_minor: int
    after_minor: int
    remark: str


def lock_key(client: ClientRecord, serial_no: str) -> str:
    """The database lock name of a serialNo while it is being processed."""
    return f"jdb:{client.id}:{serial_no}"


def transfer(client: ClientRecord, req: TransferRequest, now_ms: int) -> UseCase[TransferResult]:
    """:func:`_transfer`, also offered as one SQL statement (``store.fastpath.JdbRequest``;
    the PostgreSQL store runs it in one round trip)."""
    generic = _transfer(client, req, now_ms)
    longest = _longest_cooldown_ms(client)
    if longest is None:
        return generic
    request = JdbRequest(
        client.id, lock_key(client, req.serial_no), req.uid, req.serial_no, req.amount_minor,
        req.all_cash_out, req.remark, now_ms, LIMIT_MINOR, longest, client.credit_limit_minor,
        client.shards,
    )  # fmt: skip

    def finish(row: Mapping[str, Any]) -> TransferResult:
        signed = int(row["o_signed"])
        operation = OperationRecord(
            row["o_op_id"], client.id, NS_WIRE, req.serial_no, WITHDRAW if signed < 0 else DEPOSIT,
            row["o_player"], row["o_currency"], abs(signed), 0, OpState.COMPLETED, now_ms, now_ms,
            json.loads(row["o_op_detail"]),
        )  # fmt: skip
        return TransferResult(operation, signed, int(row["o_before"]) + signed, row["o_agent"])

    return FastOffer(generic, request, finish)


def _longest_cooldown_ms(client: ClientRecord) -> int | None:
    """The longest withdrawal cooldown any game can impose for ``client`` (None: a config the
    generic path must judge)."""
    configured = client.config.get("cooldown_s")
    overrides: Mapping[str, Any] = configured if isinstance(configured, Mapping) else {}
    try:
        seconds = [float(v) for v in (*overrides.values(), *DEFAULT_COOLDOWN_S.values())]
        return max([0, *(int(s * 1000) for s in seconds)])
    except (TypeError, ValueError, OverflowError):
        return None


def _transfer(client: ClientRecord, req: TransferRequest, now_ms: int) -> UseCase[TransferResult]:
    """Action 19: move money between the agent and a player, once per ``serialNo``.

    Checks, first match wins: serialNo in progress (IN_PROGRESS) or done (ALREADY_COMPLETED);
    unknown player; closed, locked, suspended (withdrawals only); in a game or its cooldown
    (withdrawals only); deposit over 9 digits (LIMIT_EXCEEDED) or balance over 9 digits after
    it (BALANCE_LIMIT_EXCEEDED); cash-out of a zero balance (ZERO_BALANCE); withdrawal over the
    balance (INSUFFICIENT_FUNDS); the agent's credit limit (CREDIT_LIMIT_EXCEEDED).
    """
    if not (yield from do(ops.TryLockKey(lock_key(client, req.serial_no)))):
        raise WalletError(ErrorCode.IN_PROGRESS)
    existing = yield from do(
        ops.GetOperation(client_id=client.id, ns=NS_WIRE, ext_id=req.serial_no)
    )
    if existing is not None:
        raise WalletError(ErrorCode.ALREADY_COMPLETED)
    player = yield from _player(client, req.uid, lock=True)
    withdraw = req.all_cash_out or (req.amount_minor is not None and req.amount_minor < 0)
    _check_flags(player, suspended_ok=not withdraw)
    before = player.cash.balance.available_minor
    if withdraw:
        _check_can_withdraw(client, player, now_ms)
        if req.all_cash_out:
            if before == 0:
                raise WalletError(ErrorCode.ZERO_BALANCE)
            signed = -before
        else:
            assert req.amount_minor is not None
            signed = req.amount_minor
            if -signed > before:
                raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
    else:
        assert req.amount_minor is not None
        assert req.amount_minor > 0
        signed = req.amount_minor
        if signed >= LIMIT_MINOR:
            raise WalletError(ErrorCode.LIMIT_EXCEEDED)
        if before + signed >= LIMIT_MINOR:
            raise WalletError(ErrorCode.BALANCE_LIMIT_EXCEEDED)
    operation = yield from do(
        ops.InsertOperation(
            client_id=client.id,
            ns=NS_WIRE,
            ext_id=req.serial_no,
            kind=WITHDRAW if signed < 0 else DEPOSIT,
            player_id=player.id,
            currency=player.currency,
            amount_minor=abs(signed),
            free_minor=0,
            state=OpState.COMPLETED,
            now_ms=now_ms,
            detail={
                "uid": player.external_id,
                "signed_minor": signed,
                "before_minor": before,
                "after_minor": before + signed,
                "remark": req.remark,
                "all_cash_out": req.all_cash_out,
            },
        )
    )
    if operation is None:  # another database transaction completed this serialNo meanwhile
        raise WalletError(ErrorCode.ALREADY_COMPLETED)
    # The player row is locked and the posting moves its available balance by exactly
    # ``signed``: no need to read it back (one round trip fewer on the hot path).
    yield from move(client, player, operation.id, now_ms, cash_minor=signed)
    agent = yield from client_balance(client, player.currency)
    return TransferResult(operation, signed, before + signed, agent)


def _view(operation: OperationRecord, uid: str) -> TransferView:
    detail = operation.detail
    sign = -1 if operation.kind == WITHDRAW else 1
    return TransferView(
        operation=operation,
        uid=uid,
        signed_minor=sign * operation.amount_minor,
        before_minor=int(detail.get("before_minor", 0)),
        after_minor=int(detail.get("after_minor", 0)),
        remark=str(detail.get("remark", "")),
    )


def find_transfer(client: ClientRecord, serial_no: str) -> UseCase[TransferView]:
    """Action 55: a transfer by ``serialNo``; IN_PROGRESS while another database transaction
    holds it, NOT_FOUND if it never happened."""
    if not (yield from do(ops.TryLockKey(lock_key(client, serial_no)))):
        raise WalletError(ErrorCode.IN_PROGRESS)
    operation = yield from do(ops.GetOperation(client_id=client.id, ns=NS_WIRE, ext_id=serial_no))
    if operation is None or operation.kind not in (DEPOSIT, WITHDRAW):
        raise WalletError(ErrorCode.NOT_FOUND)
    player = yield from do(ops.GetPlayer(player_id=operation.player_id))
    assert player is not None, "an operation without its player"
    return _view(operation, player.external_id)


def history(
    client: ClientRecord, uid: str, since_ms: int, until_ms: int, limit: int
) -> UseCase[tuple[list[TransferView], bool]]:
    """Action 61: a player's transfers created in [since_ms, until_ms), oldest first, at most
    ``limit``; the flag says whether more exist in the window."""
    player = yield from _player(client, uid)
    operations, total = yield from do(
        ops.ListOperations(
            client_id=client.id,
            player_id=player.id,
            ns=NS_WIRE,
            kinds=(DEPOSIT, WITHDRAW),
            since_ms=since_ms,
            until_ms=until_ms,
            limit=limit,
            oldest_first=True,
        )
    )
    return [_view(o, player.external_id) for o in operations], total > limit


# --- the in-process side of a serialNo claim ----------------------------------------------


class InFlight:
    """The (client, serialNo) pairs this process is processing right now.

    Checked and claimed with no ``await`` in between, so on one event loop it is exact; other
    processes are covered by the database lock the use case takes (``TryLockKey``).
    """

    def __init__(self) -> None:
        self._keys: set[tuple[int, str]] = set()

    def claim(self, client_id: int, serial_no: str) -> bool:
        """Claim a pair; False if it is already being processed."""
        key = (client_id, serial_no)
        if key in self._keys:
            return False
        self._keys.add(key)
        return True

    def release(self, client_id: int, serial_no: str) -> None:
        """Release a pair claimed by :meth:`claim`."""
        self._keys.discard((client_id, serial_no))

    def busy(self, client_id: int, serial_no: str) -> bool:
        """Whether a pair is being processed now."""
        return (client_id, serial_no) in self._keys


async def run_transfer(
    store: Store, inflight: InFlight, client: ClientRecord, req: TransferRequest, now_ms: int
) -> TransferResult:
    """Run action 19 with the serialNo claimed in this process for the whole use case."""
    if not inflight.claim(client.id, req.serial_no):
        raise WalletError(ErrorCode.IN_PROGRESS)
    try:
        return await store.run(transfer(client, req, now_ms))
    finally:
        inflight.release(client.id, req.serial_no)


async def run_find_transfer(
    store: Store, inflight: InFlight, client: ClientRecord, serial_no: str
) -> TransferView:
    """Run action 55; a serialNo being processed in this process is IN_PROGRESS at once."""
    if inflight.busy(client.id, serial_no):
        raise WalletError(ErrorCode.IN_PROGRESS)
    return await store.run(find_transfer(client, serial_no))
