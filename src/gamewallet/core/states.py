"""The operation state machine: one table for every two-phase operation.

Theory of operation
-------------------
An *operation* is the effect of one caller id (seamless ``mmTransactionId``). Opening it
(``withdraw`` / ``deposit``) places a *hold* on the player's available balance or records a
*pending credit*; *confirm* posts it; *rollback* voids it. Each of post and void happens at
most once, and never both. A rollback of an id we have never seen is answered with success
and leaves a *tombstone* (state ``ROLLED_BACK`` with nothing held), so that the late
``withdraw`` it was meant to cancel is refused instead of taking money.

Repeats are answered by the idempotency layer before this table is consulted when the
original response is still stored; the ``REPLAY`` cells cover the rest (a repeat after the
retention window, or a repeat of a different call on a finished operation) and answer with
the operation's outcome and the current balance. Content checks (same player, amount,
currency, kind) come before this table and yield ``ID_REUSED``.

Single-phase operations of the transfer protocols are born ``COMPLETED`` and never
transition; they are listed so that every state is covered.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gamewallet.core.errors import ErrorCode


class OpState(enum.StrEnum):
    """The life of an operation; the string values are what the stores persist."""

    HELD = "held"  # a withdraw: available balance reduced, nothing posted yet
    PENDING = "pending"  # a deposit: credit recorded, not spendable yet
    CONFIRMED = "confirmed"  # posted
    ROLLED_BACK = "rolled_back"  # voided, or a tombstone
    COMPLETED = "completed"  # single-phase transfer, posted when created


class Call(enum.StrEnum):
    """What a caller asks of an operation id."""

    OPEN = "open"
    CONFIRM = "confirm"
    ROLLBACK = "rollback"


class Effect(enum.Enum):
    """What the ledger must do for a transition."""

    OPEN = "open"  # place the hold / record the pending credit
    POST = "post"  # post the hold or pending credit
    VOID = "void"  # release the hold or drop the pending credit
    TOMBSTONE = "tombstone"  # remember a rollback of an unknown id; no money moves
    REPLAY = "replay"  # nothing changes; answer with the current outcome


@dataclass(frozen=True, slots=True)
class Transition:
    """One cell of the table: either an effect and the resulting state, or a refusal."""

    effect: Effect | None
    next_state: OpState | None
    error: ErrorCode | None = None


def _go(effect: Effect, state: OpState | None) -> Transition:
    return Transition(effect, state)


def _refuse(code: ErrorCode) -> Transition:
    return Transition(None, None, code)


_OPENED = (OpState.HELD, OpState.PENDING)

#: (current state or None for an unknown id, call) -> transition. ``OPEN`` from None goes to
#: HELD or PENDING depending on the operation kind; :func:`transition` fills that in.
TABLE: dict[tuple[OpState | None, Call], Transition] = {
    (None, Call.OPEN): _go(Effect.OPEN, None),
    (None, Call.CONFIRM): _refuse(ErrorCode.NOT_FOUND),
    (None, Call.ROLLBACK): _go(Effect.TOMBSTONE, OpState.ROLLED_BACK),
    **{(s, Call.OPEN): _go(Effect.REPLAY, s) for s in _OPENED},
    **{(s, Call.CONFIRM): _go(Effect.POST, OpState.CONFIRMED) for s in _OPENED},
    **{(s, Call.ROLLBACK): _go(Effect.VOID, OpState.ROLLED_BACK) for s in _OPENED},
    (OpState.CONFIRMED, Call.OPEN): _go(Effect.REPLAY, OpState.CONFIRMED),
    (OpState.CONFIRMED, Call.CONFIRM): _go(Effect.REPLAY, OpState.CONFIRMED),
    (OpState.CONFIRMED, Call.ROLLBACK): _refuse(ErrorCode.ALREADY_FINALIZED),
    (OpState.ROLLED_BACK, Call.OPEN): _refuse(ErrorCode.ALREADY_ROLLED_BACK),
    (OpState.ROLLED_BACK, Call.CONFIRM): _refuse(ErrorCode.ALREADY_FINALIZED),
    (OpState.ROLLED_BACK, Call.ROLLBACK): _go(Effect.REPLAY, OpState.ROLLED_BACK),
    (OpState.COMPLETED, Call.OPEN): _go(Effect.REPLAY, OpState.COMPLETED),
    (OpState.COMPLETED, Call.CONFIRM): _refuse(ErrorCode.ALREADY_FINALIZED),
    (OpState.COMPLETED, Call.ROLLBACK): _refuse(ErrorCode.ALREADY_FINALIZED),
}


def transition(state: OpState | None, call: Call, *, opens_as: OpState) -> Transition:
    """Look up the cell for ``(state, call)``; ``opens_as`` is HELD or PENDING."""
    assert opens_as in _OPENED
    cell = TABLE[(state, call)]
    if cell.effect is Effect.OPEN:
        return Transition(Effect.OPEN, opens_as)
    return cell
