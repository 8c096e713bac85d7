"""Tests for the pure retry policy: the vendor's default schedule step by step, and its syntax."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamewallet.worker.schedule import (
    DEFAULT_RETRY_SCHEDULE,
    DEFAULT_SCHEDULE_S,
    DEFAULT_SCHEDULE_TEXT,
    DEFAULT_WINDOW_S,
    MAX_ATTEMPTS,
    RetrySchedule,
    attempt_times,
    format_schedule,
    parse_schedule,
)

HOUR = 3600.0
# Gaps 0, 5, 10, 20, 40, 120, 300, 600, 1800 accumulate into these offsets from the origin.
LISTED_OFFSETS = [0.0, 5.0, 15.0, 35.0, 75.0, 195.0, 495.0, 1095.0, 2895.0]
HOURLY_OFFSETS = [2895.0 + k * HOUR for k in range(1, 48)]  # 6495 … 172095, all <= 48 h
DEFAULT_OFFSETS = LISTED_OFFSETS + HOURLY_OFFSETS


def test_default_constants() -> None:
    assert list(DEFAULT_SCHEDULE_S) == [0, 5, 10, 20, 40, 120, 300, 600, 1800]
    assert DEFAULT_WINDOW_S == 48 * HOUR
    assert RetrySchedule(DEFAULT_SCHEDULE_S, 3600, 172800) == DEFAULT_RETRY_SCHEDULE


def test_default_schedule_every_step() -> None:
    assert attempt_times(DEFAULT_RETRY_SCHEDULE) == DEFAULT_OFFSETS
    assert DEFAULT_RETRY_SCHEDULE.attempts_max == 56


@pytest.mark.parametrize(("attempts_made", "offset"), list(enumerate(DEFAULT_OFFSETS)))
def test_default_next_due_each_step(attempts_made: int, offset: float) -> None:
    origin = 1_700_000_000.0
    assert DEFAULT_RETRY_SCHEDULE.next_due_s(attempts_made, origin) == origin + offset


def test_default_first_steps_are_the_vendor_gaps() -> None:
    times = attempt_times(DEFAULT_RETRY_SCHEDULE)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] == 0  # "immediately"
    assert gaps[:8] == [5, 10, 20, 40, 120, 300, 600, 1800]
    assert set(gaps[8:]) == {HOUR}


def test_default_window_respected_then_none() -> None:
    origin = 1000.0
    last = DEFAULT_RETRY_SCHEDULE.next_due_s(55, origin)
    assert last == origin + 172095
    assert last is not None
    assert last <= origin + 48 * HOUR
    assert last + HOUR > origin + 48 * HOUR  # another hourly attempt would not fit
    assert DEFAULT_RETRY_SCHEDULE.next_due_s(56, origin) is None
    assert DEFAULT_RETRY_SCHEDULE.next_due_s(1000, origin) is None


def test_negative_attempts_rejected() -> None:
    with pytest.raises(ValueError, match="attempts_made"):
        DEFAULT_RETRY_SCHEDULE.next_due_s(-1, 0.0)
    with pytest.raises(ValueError, match="numbered"):
        DEFAULT_RETRY_SCHEDULE.offset_s(0)


def test_attempt_exactly_at_the_window_edge_is_made() -> None:
    schedule = RetrySchedule((0, 10), repeat_every_s=10, window_s=40)
    assert attempt_times(schedule) == [0, 10, 20, 30, 40]
    assert schedule.next_due_s(5, 0.0) is None


def test_window_cutting_into_the_listed_delays() -> None:
    schedule = RetrySchedule((0, 5, 10, 20), repeat_every_s=100, window_s=16)
    assert attempt_times(schedule) == [0, 5, 15]
    assert schedule.next_due_s(3, 0.0) is None


def test_fractional_repeats_settle_on_the_window_boundary() -> None:
    schedule = RetrySchedule((0.1,), repeat_every_s=0.1, window_s=1.0)
    times = attempt_times(schedule)
    assert all(t <= 1.0 for t in times)
    assert times[-1] + 0.1 > 1.0
    assert len(times) == schedule.attempts_max


def test_delays_normalised_to_a_tuple_of_floats() -> None:
    schedule = RetrySchedule([0, 5], 60, 600)  # type: ignore[arg-type]  # a list, on purpose
    assert schedule.delays_s == (0.0, 5.0)
    assert hash(schedule) == hash(RetrySchedule((0.0, 5.0), 60.0, 600.0))


@pytest.mark.parametrize(
    ("delays", "every", "window"),
    [
        ((), 60, 600),
        ((-1,), 60, 600),
        ((math.nan,), 60, 600),
        ((math.inf,), 60, 600),
        ((0,), 0, 600),
        ((0,), -5, 600),
        ((0,), math.inf, 600),
        ((0,), 60, math.inf),
        ((10,), 60, 5),  # not even the first attempt fits
        ((0,), 0.001, 48 * 3600),  # would plan far more than MAX_ATTEMPTS
    ],
)
def test_invalid_schedules_rejected(delays: tuple[float, ...], every: float, window: float) -> None:
    with pytest.raises(ValueError, match=r"."):
        RetrySchedule(delays, every, window)


def test_max_attempts_boundary() -> None:
    at_limit = RetrySchedule((0,), repeat_every_s=1, window_s=MAX_ATTEMPTS - 1)
    assert at_limit.attempts_max == MAX_ATTEMPTS
    with pytest.raises(ValueError, match="attempts"):
        RetrySchedule((0,), repeat_every_s=1, window_s=MAX_ATTEMPTS)


def test_parse_default_text() -> None:
    assert parse_schedule(DEFAULT_SCHEDULE_TEXT) == DEFAULT_RETRY_SCHEDULE
    assert format_schedule(DEFAULT_RETRY_SCHEDULE) == DEFAULT_SCHEDULE_TEXT


def test_parse_defaults_and_spacing() -> None:
    assert parse_schedule(" 0 , 5 ") == RetrySchedule((0, 5), 3600, 172800)
    assert parse_schedule("1;window=30; every = 2.5") == RetrySchedule((1,), 2.5, 30)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ";every=60",
        "0,,5",
        "0,-5",
        "0,1e3",
        "0,inf",
        "0,nan",
        "0,1_000",
        "0;every=0",
        "0;every=60;every=60",
        "0;often=60",
        "0;every",
        "0;window=abc",
        "5;window=1",
        "\u0665",  # an Arabic-Indic five is not a plain digit
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"retry schedule|window|repeat"):
        parse_schedule(text)


seconds = st.decimals(min_value=0, max_value=10_000, places=3).map(float)


@given(
    st.lists(seconds, min_size=1, max_size=12),
    seconds.filter(lambda s: s >= 1),
    st.integers(min_value=0, max_value=200_000),
)
def test_parse_format_round_trip(delays: list[float], every: float, extra: int) -> None:
    window = delays[0] + extra
    try:
        schedule = RetrySchedule(tuple(delays), every, window)
    except ValueError:
        return  # too many attempts for MAX_ATTEMPTS: not a round-trip question
    assert parse_schedule(format_schedule(schedule)) == schedule


@given(
    st.lists(seconds, min_size=1, max_size=12),
    seconds.filter(lambda s: s >= 1),
    st.integers(min_value=0, max_value=200_000),
    st.floats(min_value=0, max_value=2e9, allow_nan=False),
)
def test_schedule_invariants(delays: list[float], every: float, extra: int, origin: float) -> None:
    try:
        schedule = RetrySchedule(tuple(delays), every, delays[0] + extra)
    except ValueError:
        return
    times = attempt_times(schedule)
    assert times[0] == delays[0]
    assert times == sorted(times)
    assert all(t <= schedule.window_s for t in times)
    assert len(times) == schedule.attempts_max
    assert schedule.next_due_s(len(times), origin) is None
    assert schedule.next_due_s(0, origin) == origin + times[0]
