"""Property tests of the ledger: a stateful model of holds and credits, and the money rules.

``LedgerMachine`` drives the memory store through random sequences of fundings, holds
(withdraw), pending credits (deposit), posts (confirm) and voids (rollback), with caller ids
drawn from a small pool so that ids are reused, repeated and rolled back before they exist.
The use cases below consult the state table (:func:`gamewallet.core.states.transition`); the
model decides the expected outcome on its own, with plain ``if``\\ s, so a wrong cell in the
table, a wrong delta or a store that loses a change all show up as a mismatch. After every
step: balances equal the model's, nothing available is negative, the audit is clean, and no
hold or credit was resolved twice.

The plain properties at the end cover :mod:`gamewallet.core.money` (exact round trips at up to
4 places, refusal beyond) and :func:`gamewallet.core.ledger.check_balanced`.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.ledger import Bucket, Entry, OwnerKind, UnbalancedPosting, check_balanced
from gamewallet.core.ledger import shard_of as ledger_shard_of
from gamewallet.core.money import MAX_MINOR, UNIT, AmountError, format_minor, parse_amount
from gamewallet.core.states import Call, Effect, OpState, transition
from gamewallet.store import ops
from gamewallet.store.memory import MemoryStore
from gamewallet.store.ops import Apply, Delta
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import ClientRecord, OperationRecord, PlayerRecord

T = TypeVar("T")
NOW_MS = 1_767_225_600_000
CURRENCY = "EUR"
WITHDRAW = "withdraw"
DEPOSIT = "deposit"
SHARDS = 2
PLAYERS = 2

#: What a call ends in: the effect the ledger applied, or the refusal.
Outcome = Effect | ErrorCode


# --- the use cases under test -----------------------------------------------------------------


def _client_shard(client: ClientRecord, player: PlayerRecord) -> UseCase[int]:
    rows = yield from do(
        ops.GetOwnerAccounts(
            OwnerKind.CLIENT,
            client.id,
            CURRENCY,
            client.shards,
            bucket=Bucket.CASH,
            shard=ledger_shard_of(player.id, client.shards),
            lock=True,
        )
    )
    return rows[0].id


def _locked_player(player_id: int) -> UseCase[PlayerRecord]:
    player = yield from do(ops.GetPlayer(player_id=player_id, lock=True))
    assert player is not None
    return player


def fund(client: ClientRecord, player_id: int, ext_id: str, amount: int) -> UseCase[None]:
    """A completed posting from the client to the player's cash."""
    player = yield from _locked_player(player_id)
    operation = yield from do(
        ops.InsertOperation(
            client.id,
            "fund",
            ext_id,
            "fund",
            player.id,
            CURRENCY,
            amount,
            0,
            OpState.COMPLETED,
            NOW_MS,
        )
    )
    assert operation is not None
    other = yield from _client_shard(client, player)
    deltas = (
        Delta(player.cash.id, CURRENCY, posted_minor=amount),
        Delta(other, CURRENCY, posted_minor=-amount),
    )
    yield from do(Apply(operation.id, deltas, NOW_MS))


def open_call(
    client: ClientRecord,
    player_id: int,
    ext_id: str,
    kind: str,
    amount: int,
    *,
    crash: bool = False,
) -> UseCase[Outcome]:
    """withdraw (a hold) or deposit (a pending credit) under the caller's id.

    The id is claimed before the funds are checked, so a refusal must roll the claim back;
    ``crash`` raises after everything is written, which must leave no trace either.
    """
    player = yield from _locked_player(player_id)
    existing = yield from do(ops.GetOperation(client_id=client.id, ext_id=ext_id, lock=True))
    # A tombstone has no content to compare: the late open is refused by the table instead.
    if existing is not None and not existing.detail.get("tombstone"):
        content = (existing.player_id, existing.kind, existing.amount_minor)
        if content != (player.id, kind, amount):
            return ErrorCode.ID_REUSED
    opens_as = OpState.HELD if kind == WITHDRAW else OpState.PENDING
    cell = transition(None if existing is None else existing.state, Call.OPEN, opens_as=opens_as)
    if cell.error is not None:
        return cell.error
    if cell.effect is not Effect.OPEN:
        return Effect.REPLAY
    assert cell.next_state is not None
    operation = yield from do(
        ops.InsertOperation(
            client.id,
            "wire",
            ext_id,
            kind,
            player.id,
            CURRENCY,
            amount,
            0,
            cell.next_state,
            NOW_MS,
        )
    )
    assert operation is not None
    if kind == WITHDRAW and player.cash.balance.available_minor < amount:
        raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
    if kind == WITHDRAW:
        delta = Delta(player.cash.id, CURRENCY, held_minor=amount)
    else:
        delta = Delta(player.cash.id, CURRENCY, pending_minor=amount)
    yield from do(Apply(operation.id, (delta,), NOW_MS))
    if crash:
        raise Crash(ext_id)
    return Effect.OPEN


class Crash(Exception):
    """A use case failing after it wrote everything (a bug, a lost connection...)."""


def settle_call(
    client: ClientRecord, player_id: int, ext_id: str, kind: str, call: Call
) -> UseCase[Outcome]:
    """confirm (post) or rollback (void) the operation of ``ext_id``.

    ``player_id`` is whose rollback tombstones an unknown id; a known operation is settled
    for its own player.
    """
    found = yield from do(ops.GetOperation(client_id=client.id, ext_id=ext_id))
    player = yield from _locked_player(player_id if found is None else found.player_id)
    operation = yield from do(ops.GetOperation(client_id=client.id, ext_id=ext_id, lock=True))
    opens_as = OpState.HELD if kind == WITHDRAW else OpState.PENDING
    cell = transition(None if operation is None else operation.state, call, opens_as=opens_as)
    if cell.error is not None:
        return cell.error
    assert cell.effect is not None
    if cell.effect is Effect.TOMBSTONE:
        yield from do(
            ops.InsertOperation(
                client.id,
                "wire",
                ext_id,
                kind,
                player.id,
                CURRENCY,
                0,
                0,
                OpState.ROLLED_BACK,
                NOW_MS,
                detail={"tombstone": True},
            )
        )
    elif cell.effect in (Effect.POST, Effect.VOID):
        assert operation is not None
        assert cell.next_state is not None
        deltas = yield from _settlement(client, player, operation, cell.effect)
        yield from do(Apply(operation.id, deltas, NOW_MS))
        yield from do(ops.UpdateOperation(operation.id, cell.next_state, NOW_MS))
    return cell.effect


def _settlement(
    client: ClientRecord, player: PlayerRecord, operation: OperationRecord, effect: Effect
) -> UseCase[tuple[Delta, ...]]:
    amount = operation.amount_minor
    held = operation.state is OpState.HELD
    release = (
        Delta(player.cash.id, CURRENCY, held_minor=-amount)
        if held
        else Delta(player.cash.id, CURRENCY, pending_minor=-amount)
    )
    if effect is Effect.VOID:
        return (release,)
    other = yield from _client_shard(client, player)
    # A posted hold pays the client; a posted credit pays the player.
    player_gets = -amount if held else amount
    return (
        Delta(
            player.cash.id,
            CURRENCY,
            posted_minor=player_gets,
            held_minor=release.held_minor,
            pending_minor=release.pending_minor,
        ),
        Delta(other, CURRENCY, posted_minor=-player_gets),
    )


# --- the model --------------------------------------------------------------------------------


@dataclass
class ModelBalance:
    posted: int = 0
    held: int = 0
    pending: int = 0


@dataclass
class ModelOperation:
    kind: str
    player: int
    amount: int
    state: str  # "held" | "pending" | "confirmed" | "rolled_back"
    tombstone: bool = False


@dataclass
class Model:
    """The expected ledger, written without the state table."""

    balances: list[ModelBalance] = field(
        default_factory=lambda: [ModelBalance() for _ in range(PLAYERS)]
    )
    operations: dict[str, ModelOperation] = field(default_factory=dict)

    def open(self, player: int, ext_id: str, kind: str, amount: int) -> Outcome:
        known = self.operations.get(ext_id)
        balance = self.balances[player]
        if known is None:
            if kind == WITHDRAW and balance.posted - balance.held < amount:
                return ErrorCode.INSUFFICIENT_FUNDS
            state = "held" if kind == WITHDRAW else "pending"
            self.operations[ext_id] = ModelOperation(kind, player, amount, state)
            if kind == WITHDRAW:
                balance.held += amount
            else:
                balance.pending += amount
            return Effect.OPEN
        if known.tombstone:
            return ErrorCode.ALREADY_ROLLED_BACK
        if (known.player, known.amount) != (player, amount):
            return ErrorCode.ID_REUSED
        if known.state == "rolled_back":
            return ErrorCode.ALREADY_ROLLED_BACK
        return Effect.REPLAY

    def confirm(self, ext_id: str) -> Outcome:
        known = self.operations.get(ext_id)
        if known is None:
            return ErrorCode.NOT_FOUND
        if known.state == "confirmed":
            return Effect.REPLAY
        if known.state == "rolled_back":
            return ErrorCode.ALREADY_FINALIZED
        balance = self.balances[known.player]
        if known.state == "held":
            balance.held -= known.amount
            balance.posted -= known.amount
        else:
            balance.pending -= known.amount
            balance.posted += known.amount
        known.state = "confirmed"
        return Effect.POST

    def rollback(self, player: int, ext_id: str, kind: str) -> Outcome:
        known = self.operations.get(ext_id)
        if known is None:
            self.operations[ext_id] = ModelOperation(kind, player, 0, "rolled_back", True)
            return Effect.TOMBSTONE
        if known.state == "confirmed":
            return ErrorCode.ALREADY_FINALIZED
        if known.state == "rolled_back":
            return Effect.REPLAY
        balance = self.balances[known.player]
        if known.state == "held":
            balance.held -= known.amount
        else:
            balance.pending -= known.amount
        known.state = "rolled_back"
        return Effect.VOID


# --- the machine ------------------------------------------------------------------------------

player_indexes = st.integers(0, PLAYERS - 1)
withdraw_ids = st.sampled_from([f"w{i}" for i in range(3)])
deposit_ids = st.sampled_from([f"d{i}" for i in range(2)])
amounts = st.sampled_from([1, 40, 100, 250])


class LedgerMachine(RuleBasedStateMachine):
    """Random holds, credits, posts and voids against the memory store and the model."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store = MemoryStore()
        self.model = Model()
        self.funded = 0
        self.resolved: Counter[str] = Counter()  # ext_id -> posts and voids applied
        client = self.run(
            do(ops.InsertClient("seamless", "acme", None, None, None, None, SHARDS, {}, NOW_MS))
        )
        assert client is not None
        self.client = client
        self.player_ids: list[int] = []
        for index in range(PLAYERS):
            player = self.run(do(ops.InsertPlayer(client.id, f"p{index}", CURRENCY, "", NOW_MS)))
            assert player is not None
            self.player_ids.append(player.id)

    def run(self, use_case: UseCase[T]) -> T:
        return self.loop.run_until_complete(self.store.run(use_case))

    def call(self, use_case: UseCase[Outcome]) -> Outcome:
        """Run a call; a refusal raised as a WalletError is an outcome too."""
        try:
            return self.run(use_case)
        except WalletError as refusal:
            return refusal.code

    def teardown(self) -> None:
        self.loop.close()

    def _check(self, ext_id: str, got: Outcome, expected: Outcome) -> None:
        assert got == expected, f"{ext_id}: store says {got}, model says {expected}"
        event(f"outcome: {got}")
        if got in (Effect.POST, Effect.VOID):
            self.resolved[ext_id] += 1

    @rule(player=player_indexes, amount=st.integers(1, 1000))
    def fund(self, player: int, amount: int) -> None:
        self.funded += 1
        self.run(fund(self.client, self.player_ids[player], f"f{self.funded}", amount))
        self.model.balances[player].posted += amount

    @rule(player=player_indexes, ext_id=withdraw_ids, amount=amounts)
    def withdraw(self, player: int, ext_id: str, amount: int) -> None:
        got = self.call(open_call(self.client, self.player_ids[player], ext_id, WITHDRAW, amount))
        self._check(ext_id, got, self.model.open(player, ext_id, WITHDRAW, amount))

    @rule(player=player_indexes, ext_id=withdraw_ids, amount=amounts)
    def withdraw_then_crash(self, player: int, ext_id: str, amount: int) -> None:
        expected = copy.deepcopy(self.model).open(player, ext_id, WITHDRAW, amount)
        use_case = open_call(
            self.client, self.player_ids[player], ext_id, WITHDRAW, amount, crash=True
        )
        if expected is Effect.OPEN:  # everything written, then the crash: all undone
            with pytest.raises(Crash):
                self.run(use_case)
        else:
            self._check(ext_id, self.call(use_case), expected)

    @rule(player=player_indexes, ext_id=deposit_ids, amount=amounts)
    def deposit(self, player: int, ext_id: str, amount: int) -> None:
        got = self.call(open_call(self.client, self.player_ids[player], ext_id, DEPOSIT, amount))
        self._check(ext_id, got, self.model.open(player, ext_id, DEPOSIT, amount))

    @rule(player=player_indexes, ext_id=withdraw_ids)
    def confirm_withdraw(self, player: int, ext_id: str) -> None:
        got = self.call(
            settle_call(self.client, self.player_ids[player], ext_id, WITHDRAW, Call.CONFIRM)
        )
        self._check(ext_id, got, self.model.confirm(ext_id))

    @rule(player=player_indexes, ext_id=withdraw_ids)
    def rollback_withdraw(self, player: int, ext_id: str) -> None:
        got = self.call(
            settle_call(self.client, self.player_ids[player], ext_id, WITHDRAW, Call.ROLLBACK)
        )
        self._check(ext_id, got, self.model.rollback(player, ext_id, WITHDRAW))

    @rule(player=player_indexes, ext_id=deposit_ids)
    def confirm_deposit(self, player: int, ext_id: str) -> None:
        got = self.call(
            settle_call(self.client, self.player_ids[player], ext_id, DEPOSIT, Call.CONFIRM)
        )
        self._check(ext_id, got, self.model.confirm(ext_id))

    @rule(player=player_indexes, ext_id=deposit_ids)
    def rollback_deposit(self, player: int, ext_id: str) -> None:
        got = self.call(
            settle_call(self.client, self.player_ids[player], ext_id, DEPOSIT, Call.ROLLBACK)
        )
        self._check(ext_id, got, self.model.rollback(player, ext_id, DEPOSIT))

    @invariant()
    def balances_match_the_model(self) -> None:
        total_posted = 0
        for index, player_id in enumerate(self.player_ids):
            player = self.run(do(ops.GetPlayer(player_id=player_id)))
            assert player is not None
            balance = player.cash.balance
            expected = self.model.balances[index]
            assert (balance.posted_minor, balance.held_minor, balance.pending_credit_minor) == (
                expected.posted,
                expected.held,
                expected.pending,
            )
            assert balance.available_minor >= 0
            assert player.free.balance.posted_minor == 0
            total_posted += balance.posted_minor
        shards = self.run(
            do(ops.GetOwnerAccounts(OwnerKind.CLIENT, self.client.id, CURRENCY, SHARDS))
        )
        assert sum(row.balance.posted_minor for row in shards) == -total_posted

    @invariant()
    def operations_match_the_model(self) -> None:
        records, total = self.run(do(ops.ListOperations(ns="wire", limit=1000)))
        assert total == len(self.model.operations)
        for record in records:
            expected = self.model.operations[record.ext_id]
            assert record.state == expected.state, record.ext_id
            assert record.amount_minor == expected.amount
            assert record.player_id == self.player_ids[expected.player]

    @invariant()
    def audit_is_clean(self) -> None:
        assert self.run(do(ops.Audit())) == []

    @invariant()
    def resolved_at_most_once(self) -> None:
        assert all(count <= 1 for count in self.resolved.values()), self.resolved


TestLedgerModel = LedgerMachine.TestCase
TestLedgerModel.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)


# --- money: exact at up to 4 places, refused beyond -----------------------------------------

MAX_UNITS = Decimal(MAX_MINOR) / UNIT


@given(minor=st.integers(-MAX_MINOR, MAX_MINOR), min_digits=st.integers(0, 4))
def test_format_then_parse_is_exact(minor: int, min_digits: int) -> None:
    text = format_minor(minor, min_fraction_digits=min_digits)
    assert parse_amount(text, allow_negative=True, allow_zero=True) == minor
    assert parse_amount(Decimal(text), allow_negative=True, allow_zero=True) == minor


@given(places=st.integers(0, 4), data=st.data())
def test_parse_then_format_is_exact(places: int, data: st.DataObject) -> None:
    value = data.draw(
        st.decimals(
            min_value=-MAX_UNITS,
            max_value=MAX_UNITS,
            places=places,
            allow_nan=False,
            allow_infinity=False,
        )
    )
    for wire in (value, f"{value:f}"):
        minor = parse_amount(wire, places=places, allow_negative=True, allow_zero=True)
        assert Decimal(format_minor(minor)) == value
        assert minor == int(value * UNIT)


@given(
    places=st.integers(0, 4),
    extra=st.integers(1, 8),
    body=st.integers(0, 10**9),
    last_digit=st.integers(1, 9),
    negative=st.booleans(),
)
def test_more_places_than_allowed_are_refused(
    places: int, extra: int, body: int, last_digit: int, negative: bool
) -> None:
    digits = (body * 10 + last_digit) * (-1 if negative else 1)  # last digit non-zero
    value = Decimal(digits).scaleb(-(places + extra))  # exactly places + extra places
    for wire in (value, f"{value:f}"):
        with pytest.raises(AmountError, match="decimal places"):
            parse_amount(wire, places=places, allow_negative=True, allow_zero=True)


# --- check_balanced: accepts exactly the balanced postings ------------------------------------

currencies = st.sampled_from(["EUR", "USD", "CNY"])
signed = st.tuples(st.integers(1, MAX_MINOR), st.booleans()).map(
    lambda pair: pair[0] if pair[1] else -pair[0]
)


@st.composite
def balanced_entries(draw: st.DrawFn) -> list[Entry]:
    entries: list[Entry] = []
    for currency in draw(st.lists(currencies, min_size=1, max_size=3, unique=True)):
        amounts = draw(st.lists(signed, min_size=1, max_size=4))
        rest = -sum(amounts)
        # Each entry must move something; a set that already sums to zero gets a +1/-1 pair.
        amounts += [rest] if rest else [1, -1]
        entries += [Entry(draw(st.integers(1, 20)), currency, amount) for amount in amounts]
    return list(draw(st.permutations(entries)))


@given(balanced_entries())
def test_check_balanced_accepts_balanced_postings(entries: list[Entry]) -> None:
    check_balanced(entries)


@given(balanced_entries(), st.data())
def test_check_balanced_rejects_any_change(entries: list[Entry], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(entries) - 1))
    change = data.draw(signed)
    entry = entries[index]
    changed = [*entries]
    changed[index] = Entry(entry.account_id, entry.currency, entry.amount_minor + change)
    with pytest.raises(UnbalancedPosting):
        check_balanced(changed)
    with pytest.raises(UnbalancedPosting):
        check_balanced(entries[:index] + entries[index + 1 :])  # one entry dropped


any_entries = st.lists(
    st.builds(Entry, st.integers(1, 5), st.sampled_from(["EUR", "USD"]), st.integers(-3, 3)),
    max_size=6,
)


# Half arbitrary entries (mostly unbalanced), half balanced ones: both answers get exercised.
@given(st.one_of(any_entries, balanced_entries()))
def test_check_balanced_is_exactly_the_rule(entries: list[Entry]) -> None:
    sums: Counter[str] = Counter()
    for entry in entries:
        sums[entry.currency] += entry.amount_minor
    balanced = (
        len(entries) >= 2
        and all(entry.amount_minor for entry in entries)
        and not any(sums.values())
    )
    event(f"balanced: {balanced}")
    if balanced:
        check_balanced(entries)
    else:
        with pytest.raises(UnbalancedPosting):
            check_balanced(entries)
