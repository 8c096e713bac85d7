"""Operator-side transfers with a persistent record: HRG and JDB deposits and withdrawals.

Theory of operation
-------------------
Before a transfer is first sent, a record is written ``pending`` with its id (HRG
``transactionCode``, JDB ``serialNo``) and everything needed to send it again identically.
It is settled exactly once: ``succeeded`` when the server applied it, ``failed`` when the
server refused it or it provably never happened. Settling is a compare-and-set on the pending
state, so a live call and a background :meth:`TransferBook.resolve_pending` cannot disagree.

When a call gives no answer (timeout, dropped connection), the outcome is learned, never
guessed: the transfer is looked up (HRG ``check_transfer_operation``, JDB action 55); if the
server does not know it, the *same id* is sent again, which is safe because the server applies
an id at most once (HRG replays; JDB answers 6005 "already done", which sends us back to the
lookup, or 6012 "in progress", which we wait out). Attempts and pauses are bounded; a transfer
still unknown at the end stays pending and the caller gets :class:`TransferOutcomeUnknown`.

"Never happened" is only concluded by :meth:`TransferBook.resolve_pending` without re-sending,
and only once the last send is older than the server's timestamp window (HRG ``xts`` 300 s,
JDB ``ts`` 30 s, plus a margin): after that no delayed copy of the request can be accepted, so
"not found" (HRG 4004, JDB 9015) is final and the record fails.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gamewallet.clients.hrg import HrgClient, HrgError, HrgOutcomeUnknown
from gamewallet.clients.jdb import JdbClient, JdbError, JdbOutcomeUnknown
from gamewallet.service.common import Clock
from gamewallet.settings import Settings
from gamewallet.store import transfer_ops
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.transfer_ops import OperatorTransferRecord

__all__ = [
    "DEPOSIT",
    "WITHDRAW",
    "HrgGateway",
    "JdbGateway",
    "Outcome",
    "ResolveReport",
    "TransferBook",
    "TransferFailed",
    "TransferGateway",
    "TransferOutcomeUnknown",
    "TransferPolicy",
    "TransferState",
    "Verdict",
]

DEPOSIT = "deposit"
WITHDRAW = "withdraw"


class TransferState(enum.StrEnum):
    """The life of an operator transfer record."""

    PENDING = "pending"  # written before the first call; the outcome is not known yet
    SUCCEEDED = "succeeded"  # the server applied it
    FAILED = "failed"  # the server refused it, or it provably never happened


class Verdict(enum.Enum):
    """What one call to the server tells us about a transfer."""

    APPLIED = "applied"  # it happened (a send's success, or a lookup that found it)
    REFUSED = "refused"  # the server refused the send: nothing moved
    NOT_FOUND = "not_found"  # a lookup: the server has no such transfer (yet)
    IN_PROGRESS = "in_progress"  # JDB 6012: being processed right now
    DUPLICATE = "duplicate"  # JDB 6005 / HRG 4003: the id is taken; look it up
    RETRY_LATER = "retry_later"  # nothing applied; ask again later (JDB 9012/9013/9019)
    UNKNOWN = "unknown"  # no usable answer


@dataclass(frozen=True, slots=True)
class Outcome:
    """A verdict, with what moved (``result``) when applied or the error text otherwise."""

    verdict: Verdict
    result: Mapping[str, Any] | None = None
    error: str | None = None


class TransferGateway(Protocol):
    """One counterparty's transfer calls, in the vocabulary of :class:`Verdict`."""

    protocol: str
    counterparty: str
    #: How long after the last send "not found" becomes final (the server's timestamp window).
    settle_after_s: float

    def new_transfer_id(self) -> str:
        """A fresh id this counterparty accepts."""
        ...

    async def send(self, record: OperatorTransferRecord) -> Outcome:
        """Send the transfer ``record`` describes, with its id."""
        ...

    async def lookup(self, record: OperatorTransferRecord) -> Outcome:
        """Ask the server whether the transfer of ``record`` happened."""
        ...


class TransferFailed(Exception):
    """The transfer was refused (or never happened); ``record`` is its failed record."""

    def __init__(self, record: OperatorTransferRecord) -> None:
        super().__init__(f"transfer {record.transfer_id} failed: {record.last_error}")
        self.record = record


class TransferOutcomeUnknown(Exception):
    """The outcome is still unknown after the bounded attempts; ``record`` stays pending
    and :meth:`TransferBook.resolve_pending` will settle it."""

    def __init__(self, record: OperatorTransferRecord) -> None:
        super().__init__(f"transfer {record.transfer_id} is still pending: {record.last_error}")
        self.record = record


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    """Bounds of recovery (every limit named, as everywhere in gamewallet)."""

    #: Sends of one transfer id per settle run, the first one included.
    attempts_max: int = 5
    #: Lookups per settle run.
    lookups_max: int = 10
    #: First pause between attempts; doubles after each pause up to ``backoff_max_s``.
    backoff_s: float = 0.2
    backoff_max_s: float = 5.0
    #: Overrides the gateway's timestamp window for concluding "never happened".
    settle_after_s: float | None = None

    def __post_init__(self) -> None:
        assert self.attempts_max >= 1
        assert self.lookups_max >= 1
        assert 0 <= self.backoff_s <= self.backoff_max_s

    @classmethod
    def from_settings(cls, settings: Settings) -> TransferPolicy:
        """The policy the settings ask for."""
        return cls(
            attempts_max=settings.transfer_attempts_max,
            lookups_max=settings.transfer_lookups_max,
            backoff_s=settings.transfer_backoff_s,
            backoff_max_s=settings.transfer_backoff_max_s,
        )


@dataclass(frozen=True, slots=True)
class ResolveReport:
    """What :meth:`TransferBook.resolve_pending` did."""

    succeeded: int
    failed: int
    pending: int
    records: tuple[OperatorTransferRecord, ...]


# --- use cases (one database transaction each) --------------------------------------------


def _open(
    gateway: TransferGateway,
    transfer_id: str,
    user_id: str,
    kind: str,
    amount_minor: int | None,
    free_minor: int,
    remark: str,
    now_ms: int,
) -> UseCase[OperatorTransferRecord]:
    """Write the pending record; an existing id is taken up again only with the same content."""
    record = yield from do(
        transfer_ops.InsertOperatorTransfer(
            protocol=gateway.protocol,
            counterparty=gateway.counterparty,
            transfer_id=transfer_id,
            user_id=user_id,
            kind=kind,
            amount_minor=amount_minor,
            free_minor=free_minor,
            remark=remark,
            now_ms=now_ms,
        )
    )
    if record is not None:
        return record
    existing = yield from do(
        transfer_ops.GetOperatorTransfer(
            protocol=gateway.protocol, counterparty=gateway.counterparty, transfer_id=transfer_id
        )
    )
    assert existing is not None, "a taken transfer id has a record"
    same = (existing.user_id, existing.kind, existing.amount_minor, existing.free_minor) == (
        user_id,
        kind,
        amount_minor,
        free_minor,
    )
    if not same:
        raise ValueError(f"transfer id {transfer_id} is already used for another transfer")
    return existing


def _update(
    record_id: int,
    now_ms: int,
    *,
    state: TransferState = TransferState.PENDING,
    sent: bool = False,
    last_error: str | None = None,
    result: Mapping[str, Any] | None = None,
) -> UseCase[OperatorTransferRecord]:
    """Change a pending record; if it was settled meanwhile, return it as it is."""
    updated = yield from do(
        transfer_ops.UpdateOperatorTransfer(
            record_id,
            now_ms,
            state=state.value,
            sent=sent,
            last_error=last_error,
            result=result,
        )
    )
    if updated is not None:
        return updated
    current = yield from do(transfer_ops.GetOperatorTransfer(record_id=record_id))
    assert current is not None, "a transfer record vanished"
    return current


# --- the book ----------------------------------------------------------------------------


class TransferBook:
    """Transfers to one counterparty, recorded in ``store`` and recovered on failure."""

    def __init__(
        self,
        store: Store,
        gateway: TransferGateway,
        *,
        clock: Clock,
        policy: TransferPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.clock = clock
        self.policy = policy or TransferPolicy()
        self._sleep = sleep

    async def deposit(
        self,
        user_id: str,
        amount_minor: int,
        *,
        free_minor: int = 0,
        transfer_id: str | None = None,
        remark: str = "",
    ) -> OperatorTransferRecord:
        """Move money to the player; the succeeded record, or TransferFailed /
        TransferOutcomeUnknown."""
        assert amount_minor > 0
        assert free_minor >= 0
        record = await self.open(
            user_id,
            DEPOSIT,
            amount_minor,
            free_minor=free_minor,
            transfer_id=transfer_id,
            remark=remark,
        )
        return await self._finish(record)

    async def withdraw(
        self,
        user_id: str,
        amount_minor: int | None = None,
        *,
        free_minor: int = 0,
        all_out: bool = False,
        transfer_id: str | None = None,
        remark: str = "",
    ) -> OperatorTransferRecord:
        """Take ``amount_minor`` (and ``free_minor``) from the player, or everything with
        ``all_out``; amounts are positive here and recorded negative."""
        assert all_out or (amount_minor or 0) > 0 or free_minor > 0
        record = await self.open(
            user_id,
            WITHDRAW,
            None if all_out else -(amount_minor or 0),
            free_minor=-free_minor,
            transfer_id=transfer_id,
            remark=remark,
        )
        return await self._finish(record)

    async def open(
        self,
        user_id: str,
        kind: str,
        amount_minor: int | None,
        *,
        free_minor: int = 0,
        transfer_id: str | None = None,
        remark: str = "",
    ) -> OperatorTransferRecord:
        """Write the pending record of a transfer without sending it (signed amounts)."""
        assert kind in (DEPOSIT, WITHDRAW)
        tid = transfer_id or self.gateway.new_transfer_id()
        return await self.store.run(
            _open(
                self.gateway,
                tid,
                user_id,
                kind,
                amount_minor,
                free_minor,
                remark,
                self.clock.now_ms(),
            )
        )

    async def get(self, transfer_id: str) -> OperatorTransferRecord | None:
        """The record of ``transfer_id`` with this counterparty, if any."""
        return await self.store.run(
            do(
                transfer_ops.GetOperatorTransfer(
                    protocol=self.gateway.protocol,
                    counterparty=self.gateway.counterparty,
                    transfer_id=transfer_id,
                )
            )
        )

    async def _finish(self, record: OperatorTransferRecord) -> OperatorTransferRecord:
        start = "send" if record.attempts == 0 else "lookup"
        record = await self.settle(record, start=start, resend=True)
        if record.state == TransferState.SUCCEEDED:
            return record
        if record.state == TransferState.FAILED:
            raise TransferFailed(record)
        raise TransferOutcomeUnknown(record)

    async def settle(
        self, record: OperatorTransferRecord, *, start: str = "lookup", resend: bool = True
    ) -> OperatorTransferRecord:
        """Drive one record towards a final state within the policy's bounds.

        ``start`` is "send" (first call) or "lookup" (its outcome is unknown). With
        ``resend``, a transfer the server does not know is sent again with the same id;
        without it, "not found" fails the record once the timestamp window has passed.
        Returns the record as it ends (possibly still pending).
        """
        assert start in ("send", "lookup")
        sends_left, lookups_left = self.policy.attempts_max, self.policy.lookups_max
        pause = self.policy.backoff_s
        step = start
        while record.state == TransferState.PENDING:
            if step == "send":
                if sends_left == 0:
                    break
                sends_left -= 1
                record = await self._run(_update(record.id, self.clock.now_ms(), sent=True))
                if record.state != TransferState.PENDING:
                    break
                outcome = await self.gateway.send(record)
                step = _AFTER_SEND[outcome.verdict]
            else:
                if lookups_left == 0:
                    break
                lookups_left -= 1
                outcome = await self.gateway.lookup(record)
                step = _AFTER_LOOKUP[outcome.verdict]
                if step == "not_found":
                    step = "send" if resend else self._never_happened(record)
            if step in ("succeeded", "failed"):
                final = TransferState.SUCCEEDED if step == "succeeded" else TransferState.FAILED
                return await self._run(
                    _update(
                        record.id,
                        self.clock.now_ms(),
                        state=final,
                        last_error=outcome.error,
                        result=outcome.result,
                    )
                )
            if outcome.error is not None:
                record = await self._run(
                    _update(record.id, self.clock.now_ms(), last_error=outcome.error)
                )
            if step == "stop":
                break
            if outcome.verdict in _PAUSE_AFTER:
                await self._sleep(pause)
                pause = min(pause * 2, self.policy.backoff_max_s)
        return record

    def _never_happened(self, record: OperatorTransferRecord) -> str:
        """After a lookup found nothing and re-sending is not allowed: fail the record once
        no delayed copy of its last send can still be accepted, else leave it pending."""
        window_s = self.policy.settle_after_s
        if window_s is None:
            window_s = self.gateway.settle_after_s
        last_ms = record.last_sent_at_ms or record.created_at_ms
        if self.clock.now_ms() - last_ms >= window_s * 1000:
            return "failed"
        return "stop"

    async def _run(self, use_case: UseCase[OperatorTransferRecord]) -> OperatorTransferRecord:
        return await self.store.run(use_case)

    async def pending(self, *, limit: int = 100, after_id: int = 0) -> list[OperatorTransferRecord]:
        """Up to ``limit`` pending records of this counterparty, oldest first."""
        records, _ = await self.store.run(
            do(
                transfer_ops.ListOperatorTransfers(
                    protocol=self.gateway.protocol,
                    counterparty=self.gateway.counterparty,
                    states=(TransferState.PENDING.value,),
                    after_id=after_id,
                    limit=limit,
                )
            )
        )
        return records

    async def resolve_pending(self, *, resend: bool = False, limit: int = 100) -> ResolveReport:
        """Settle up to ``limit`` records left pending (after a crash, or unknown outcomes).

        Each is looked up first: found → succeeded. Not found → with ``resend`` it is sent
        again with its id (the transfer still happens), else it fails once the server's
        timestamp window has passed since its last send. Records that stay pending are
        counted in ``pending`` and left for a later run.
        """
        done: list[OperatorTransferRecord] = []
        after_id = 0
        while len(done) < limit:
            batch = await self.pending(limit=min(100, limit - len(done)), after_id=after_id)
            if not batch:
                break
            for record in batch:
                start = "lookup" if record.attempts else ("send" if resend else "lookup")
                done.append(await self.settle(record, start=start, resend=resend))
            after_id = batch[-1].id
        counts = dict.fromkeys(TransferState, 0)
        for record in done:
            counts[TransferState(record.state)] += 1
        return ResolveReport(
            succeeded=counts[TransferState.SUCCEEDED],
            failed=counts[TransferState.FAILED],
            pending=counts[TransferState.PENDING],
            records=tuple(done),
        )


#: Where a send's verdict leads: a final state, a lookup, another send, or a stop.
_AFTER_SEND: dict[Verdict, str] = {
    Verdict.APPLIED: "succeeded",
    Verdict.REFUSED: "failed",
    Verdict.DUPLICATE: "lookup",
    Verdict.IN_PROGRESS: "send",  # 6012: wait, then the same id again
    Verdict.RETRY_LATER: "send",
    Verdict.UNKNOWN: "lookup",
    Verdict.NOT_FOUND: "lookup",  # not a send's answer; look it up to be sure
}
#: Where a lookup's verdict leads ("not_found" is decided by the caller's policy).
_AFTER_LOOKUP: dict[Verdict, str] = {
    Verdict.APPLIED: "succeeded",
    Verdict.NOT_FOUND: "not_found",
    Verdict.IN_PROGRESS: "lookup",
    Verdict.RETRY_LATER: "lookup",
    Verdict.UNKNOWN: "lookup",
    Verdict.DUPLICATE: "lookup",
    Verdict.REFUSED: "stop",  # the lookup itself was refused (auth, agent): ask a human
}
#: Verdicts after which the next attempt waits (backoff); the others go on at once.
_PAUSE_AFTER = frozenset(
    {Verdict.IN_PROGRESS, Verdict.RETRY_LATER, Verdict.UNKNOWN, Verdict.NOT_FOUND}
)


def new_transfer_id(clock: Clock, length: int) -> str:
    """A fresh id of letters and digits: the time in hex (sortable) and random hex."""
    stamp = f"{clock.now_ms():x}"
    return (stamp + secrets.token_hex(16))[:length]


# --- HRG -----------------------------------------------------------------------------------

#: HRG codes whose refusal leaves the outcome to be learned (everything else: nothing moved).
_HRG_VERDICTS: dict[str, Verdict] = {
    "4003": Verdict.DUPLICATE,
    "4004": Verdict.NOT_FOUND,
    "9999": Verdict.UNKNOWN,
}
#: HRG ``xts`` window (spec 2.1: 300 s) plus a margin for clock skew.
HRG_SETTLE_AFTER_S = 330.0


class HrgGateway:
    """:class:`TransferGateway` over an :class:`HrgClient`."""

    protocol = "hrg"

    def __init__(self, client: HrgClient, *, settle_after_s: float = HRG_SETTLE_AFTER_S) -> None:
        self.client = client
        self.counterparty = client.counterparty
        self.settle_after_s = settle_after_s

    def new_transfer_id(self) -> str:
        """A transactionCode (at most 30 characters)."""
        return new_transfer_id(self.client.clock, 30)

    async def send(self, record: OperatorTransferRecord) -> Outcome:
        """deposit or withdraw, with the record's transactionCode."""
        try:
            if record.kind == DEPOSIT:
                assert record.amount_minor is not None
                result = await self.client.deposit(
                    record.user_id,
                    record.transfer_id,
                    record.amount_minor,
                    free_credit_minor=record.free_minor or None,
                )
            else:
                result = await self.client.withdraw(
                    record.user_id,
                    record.transfer_id,
                    amount_minor=-record.amount_minor if record.amount_minor else None,
                    free_credit_minor=-record.free_minor or None,
                    all_withdraw=record.amount_minor is None,
                )
        except HrgError as exc:
            return Outcome(
                _HRG_VERDICTS.get(exc.code, Verdict.REFUSED), error=f"{exc.code} {exc.desc}"
            )
        except HrgOutcomeUnknown as exc:
            return Outcome(Verdict.UNKNOWN, error=exc.reason)
        except ValueError as exc:  # refused by the client before anything was sent
            return Outcome(Verdict.REFUSED, error=str(exc))
        everything = record.amount_minor is None
        return Outcome(
            Verdict.APPLIED,
            result={
                "source": "call",
                "total_minor": result.amount_minor,
                # A partial withdraw/deposit moves exactly what was asked; "all" is only
                # known in total (HRG's withdrawAmount) unless learned from a lookup.
                "amount_minor": None if everything else record.amount_minor,
                "free_minor": None if everything else record.free_minor,
                "balance_minor": result.balance_minor,
                "free_balance_minor": result.free_credit_minor,
                "currency": result.currency,
            },
        )

    async def lookup(self, record: OperatorTransferRecord) -> Outcome:
        """check_transfer_operation: found → applied; 4004 → not found."""
        try:
            found = await self.client.check_transfer_operation(record.transfer_id)
        except HrgError as exc:
            verdict = _HRG_VERDICTS.get(exc.code, Verdict.REFUSED)
            return Outcome(verdict, error=f"{exc.code} {exc.desc}")
        except HrgOutcomeUnknown as exc:
            return Outcome(Verdict.UNKNOWN, error=exc.reason)
        if found.user_id != record.user_id or found.type != record.kind:
            return Outcome(
                Verdict.REFUSED,
                error=f"transactionCode {record.transfer_id} names another transfer",
            )
        return Outcome(
            Verdict.APPLIED,
            result={
                "source": "lookup",
                "total_minor": found.amount_minor + found.free_credit_minor,
                "amount_minor": found.amount_minor,
                "free_minor": found.free_credit_minor,
                "balance_minor": found.after_balance_minor,
                "free_balance_minor": found.after_free_credit_minor,
            },
        )


# --- JDB -----------------------------------------------------------------------------------

#: JDB statuses that do not mean "refused, nothing moved".
_JDB_VERDICTS: dict[str, Verdict] = {
    "6005": Verdict.DUPLICATE,
    "6012": Verdict.IN_PROGRESS,
    "9015": Verdict.NOT_FOUND,
    "9012": Verdict.RETRY_LATER,
    "9013": Verdict.RETRY_LATER,
    "9019": Verdict.RETRY_LATER,
    "9999": Verdict.UNKNOWN,
}
#: JDB ``ts`` window (spec 3.1: 30 s) plus a margin for clock skew.
JDB_SETTLE_AFTER_S = 60.0


class JdbGateway:
    """:class:`TransferGateway` over a :class:`JdbClient` (action 19, looked up by 55)."""

    protocol = "jdb"

    def __init__(self, client: JdbClient, *, settle_after_s: float = JDB_SETTLE_AFTER_S) -> None:
        self.client = client
        self.counterparty = client.counterparty
        self.settle_after_s = settle_after_s

    def new_transfer_id(self) -> str:
        """A serialNo (letters and digits, at most 50; we use 32)."""
        return new_transfer_id(self.client.clock, 32)

    async def send(self, record: OperatorTransferRecord) -> Outcome:
        """Action 19 with the record's serialNo."""
        if record.free_minor:
            return Outcome(Verdict.REFUSED, error="JDB transfers have no free credit")
        try:
            result = await self.client.transfer(
                record.user_id,
                record.transfer_id,
                amount_minor=record.amount_minor,
                all_cash_out=record.amount_minor is None,
                remark=record.remark or None,
            )
        except JdbError as exc:
            return Outcome(
                _JDB_VERDICTS.get(exc.status, Verdict.REFUSED), error=f"{exc.status} {exc.text}"
            )
        except JdbOutcomeUnknown as exc:
            return Outcome(Verdict.UNKNOWN, error=exc.reason)
        except ValueError as exc:  # refused by the client before anything was sent
            return Outcome(Verdict.REFUSED, error=str(exc))
        return Outcome(
            Verdict.APPLIED,
            result={
                "source": "call",
                "amount_minor": result.amount_minor,
                "free_minor": 0,
                "balance_minor": result.user_balance_minor,
                "agent_balance_minor": result.agent_cash_balance_minor,
                "pid": result.pid,
            },
        )

    async def lookup(self, record: OperatorTransferRecord) -> Outcome:
        """Action 55: found → applied; 9015 → not found; 6012 → in progress."""
        try:
            rows = await self.client.check_transfer(record.transfer_id)
        except JdbError as exc:
            verdict = _JDB_VERDICTS.get(exc.status, Verdict.REFUSED)
            if verdict is Verdict.DUPLICATE:
                verdict = Verdict.UNKNOWN
            return Outcome(verdict, error=f"{exc.status} {exc.text}")
        except JdbOutcomeUnknown as exc:
            return Outcome(Verdict.UNKNOWN, error=exc.reason)
        if not rows:
            return Outcome(Verdict.NOT_FOUND, error="action 55 answered no rows")
        row = rows[0]
        # JDB lower-cases uids; compare them as it does.
        if row.uid.lower() != record.user_id.lower() or row.action != record.kind:
            return Outcome(
                Verdict.REFUSED, error=f"serialNo {record.transfer_id} names another transfer"
            )
        return Outcome(
            Verdict.APPLIED,
            result={
                "source": "lookup",
                "amount_minor": row.amount_minor,
                "free_minor": 0,
                "balance_minor": row.after_minor,
                "pid": row.pid,
            },
        )
