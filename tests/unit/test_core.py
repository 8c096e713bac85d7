"""Unit tests of the pure core: money parsing/rendering, the state table, postings, codes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gamewallet.core.errors import ErrorCode, first
from gamewallet.core.ledger import Balance, Entry, UnbalancedPosting, check_balanced, transfer
from gamewallet.core.money import MAX_MINOR, AmountError, format_minor, parse_amount
from gamewallet.core.states import TABLE, Call, Effect, OpState, transition


@pytest.mark.parametrize(
    ("wire", "places", "minor"),
    [
        (Decimal("230.00"), 4, 2_300_000),
        (Decimal("0.0001"), 4, 1),
        ("12.3456", 4, 123_456),
        ("100", 4, 1_000_000),
        (51800, 4, 518_000_000),
        (Decimal("1000.0"), 3, 10_000_000),
        (Decimal("1.00000"), 4, 10_000),  # trailing zeros are not significant places
    ],
)
def test_parse_amount_exact(wire: object, places: int, minor: int) -> None:
    assert parse_amount(wire, places=places) == minor


@pytest.mark.parametrize(
    ("wire", "kwargs", "reason"),
    [
        (Decimal("0.00001"), {}, "more than 4 decimal places"),
        (Decimal("1.0001"), {"places": 3}, "more than 3 decimal places"),
        (Decimal("NaN"), {}, "finite"),
        (Decimal("Infinity"), {}, "finite"),
        (1.5, {}, "exact"),
        (True, {}, "exact"),
        ("1e3", {}, "plain decimal"),
        (" 1", {}, "plain decimal"),
        ("+1", {}, "plain decimal"),
        ("", {}, "plain decimal"),
        (None, {}, "number"),
        ([], {}, "number"),
        (Decimal(-1), {}, "positive"),
        (0, {}, "zero"),
        (Decimal(MAX_MINOR) / 10_000 + 1, {}, "too large"),
    ],
)
def test_parse_amount_refuses(wire: object, kwargs: dict[str, int], reason: str) -> None:
    with pytest.raises(AmountError, match=reason):
        parse_amount(wire, **kwargs)  # type: ignore[arg-type]


def test_parse_amount_signs_when_allowed() -> None:
    assert parse_amount("-1.5", allow_negative=True) == -15_000
    assert parse_amount(0, allow_zero=True) == 0


@pytest.mark.parametrize(
    ("minor", "digits", "text"),
    [
        (518_000_000, 0, "51800"),
        (515_695_000, 0, "51569.5"),
        (1_000_000_000, 1, "100000.0"),
        (-1_500_000, 1, "-150.0"),
        (0, 1, "0.0"),
        (123_456, 1, "12.3456"),
        (1, 0, "0.0001"),
        (-1, 0, "-0.0001"),
    ],
)
def test_format_minor(minor: int, digits: int, text: str) -> None:
    assert format_minor(minor, min_fraction_digits=digits) == text


def test_state_table_covers_every_state_and_call() -> None:
    states: list[OpState | None] = [None, *OpState]
    assert {(s, c) for s in states for c in Call} == set(TABLE)


@pytest.mark.parametrize(
    ("state", "call", "effect", "next_state", "error"),
    [
        (None, Call.OPEN, Effect.OPEN, OpState.HELD, None),
        (None, Call.CONFIRM, None, None, ErrorCode.NOT_FOUND),
        (None, Call.ROLLBACK, Effect.TOMBSTONE, OpState.ROLLED_BACK, None),
        (OpState.HELD, Call.OPEN, Effect.REPLAY, OpState.HELD, None),
        (OpState.HELD, Call.CONFIRM, Effect.POST, OpState.CONFIRMED, None),
        (OpState.HELD, Call.ROLLBACK, Effect.VOID, OpState.ROLLED_BACK, None),
        (OpState.PENDING, Call.CONFIRM, Effect.POST, OpState.CONFIRMED, None),
        (OpState.PENDING, Call.ROLLBACK, Effect.VOID, OpState.ROLLED_BACK, None),
        (OpState.CONFIRMED, Call.OPEN, Effect.REPLAY, OpState.CONFIRMED, None),
        (OpState.CONFIRMED, Call.CONFIRM, Effect.REPLAY, OpState.CONFIRMED, None),
        (OpState.CONFIRMED, Call.ROLLBACK, None, None, ErrorCode.ALREADY_FINALIZED),
        (OpState.ROLLED_BACK, Call.OPEN, None, None, ErrorCode.ALREADY_ROLLED_BACK),
        (OpState.ROLLED_BACK, Call.CONFIRM, None, None, ErrorCode.ALREADY_FINALIZED),
        (OpState.ROLLED_BACK, Call.ROLLBACK, Effect.REPLAY, OpState.ROLLED_BACK, None),
    ],
)
def test_state_table_cells(
    state: OpState | None,
    call: Call,
    effect: Effect | None,
    next_state: OpState | None,
    error: ErrorCode | None,
) -> None:
    cell = transition(state, call, opens_as=OpState.HELD)
    assert (cell.effect, cell.next_state, cell.error) == (effect, next_state, error)


def test_deposit_opens_as_pending() -> None:
    assert transition(None, Call.OPEN, opens_as=OpState.PENDING).next_state is OpState.PENDING


def test_postings_must_balance() -> None:
    check_balanced(transfer(1, 2, "XAG", 5))
    with pytest.raises(UnbalancedPosting):
        check_balanced([Entry(1, "XAG", -5), Entry(2, "XAG", 4)])
    with pytest.raises(UnbalancedPosting):
        check_balanced([Entry(1, "XAG", -5), Entry(2, "THB", 5)])
    with pytest.raises(UnbalancedPosting):
        check_balanced([Entry(1, "XAG", 0), Entry(2, "XAG", 0)])
    with pytest.raises(UnbalancedPosting):
        check_balanced([])


def test_balance_available_and_overdraft() -> None:
    assert Balance(100, 30, 50).available_minor == 70
    Balance(30, 30).assert_no_overdraft()
    with pytest.raises(AssertionError):
        Balance(29, 30).assert_no_overdraft()


def test_error_precedence_follows_declaration() -> None:
    assert first([ErrorCode.INSUFFICIENT_FUNDS, ErrorCode.UNKNOWN_TOKEN]) is ErrorCode.UNKNOWN_TOKEN
    assert first([]) is None
    assert [c.precedence for c in ErrorCode] == list(range(len(ErrorCode)))
