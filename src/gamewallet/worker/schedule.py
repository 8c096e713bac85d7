"""The retry policy for follow-up calls (confirm/rollback, payment callbacks): pure arithmetic.

Semantics (a decision; see `RetrySchedule`): `delays_s` are *gaps between consecutive attempts*,
the first gap measured from the origin time, so the vendor's "immediately, 5s, 10s, 20s, …, 30min,
then every hour for 48 hours" puts attempts at offsets 0, 5, 15, 35, 75, 195, 495, 1095, 2895 s and
then every 3600 s after the last listed one, none later than origin + `window_s`. Times are planned
from the origin and the attempt count only, never from when an attempt really ran, so a restarted
worker recomputes the same plan from what it stored. No I/O, no clock: callers pass times in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate

__all__ = [
    "DEFAULT_REPEAT_EVERY_S",
    "DEFAULT_RETRY_SCHEDULE",
    "DEFAULT_SCHEDULE_S",
    "DEFAULT_SCHEDULE_TEXT",
    "DEFAULT_WINDOW_S",
    "MAX_ATTEMPTS",
    "RetrySchedule",
    "attempt_times",
    "format_schedule",
    "parse_schedule",
]

DEFAULT_SCHEDULE_S: tuple[float, ...] = (0, 5, 10, 20, 40, 120, 300, 600, 1800)
"""The vendor's suggested gaps: immediately, 5 s, 10 s, 20 s, 40 s, 2 min, 5 min, 10 min, 30 min."""

DEFAULT_REPEAT_EVERY_S = 3600.0
"""After the listed gaps: once an hour."""

DEFAULT_WINDOW_S = 48 * 3600.0
"""No attempt later than 48 hours after the origin; then the item is dead-lettered."""

DEFAULT_SCHEDULE_TEXT = "0,5,10,20,40,120,300,600,1800;every=3600;window=172800"
"""The default in the settings syntax understood by `parse_schedule`."""

MAX_ATTEMPTS = 10_000
"""Ceiling on the attempts one schedule may plan, so a typo (every=0.001) cannot flood a peer."""


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """When to make attempt 1, 2, 3, … of one delivery, relative to its origin time.

    Attempt k (1-based) for k <= len(delays_s) is due at origin + sum(delays_s[:k]): each entry
    is the gap since the previous attempt (the first since the origin, normally 0 = at once).
    Attempt len(delays_s) + j is due `j * repeat_every_s` after the last listed attempt. Attempts
    whose offset would exceed `window_s` are not made. Construction validates everything and
    raises ValueError, so a bad setting fails at start-up rather than in the worker.
    """

    delays_s: tuple[float, ...]
    repeat_every_s: float
    window_s: float
    # Derived once; excluded from equality, hashing and repr so two equal settings compare equal.
    _offsets_s: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _attempts_max: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        delays = tuple(float(d) for d in self.delays_s)
        if not delays:
            raise ValueError("a retry schedule needs at least one delay")
        if len(delays) > MAX_ATTEMPTS:
            raise ValueError(f"a retry schedule may list at most {MAX_ATTEMPTS} delays")
        if not all(math.isfinite(d) and d >= 0 for d in delays):
            raise ValueError("retry delays must be finite and >= 0 seconds")
        if not (math.isfinite(self.repeat_every_s) and self.repeat_every_s > 0):
            raise ValueError("repeat_every_s must be finite and > 0 seconds")
        if not (math.isfinite(self.window_s) and self.window_s >= delays[0]):
            # Otherwise not even the first attempt would fit and items would die unsent.
            raise ValueError("window_s must be finite and cover at least the first attempt")
        object.__setattr__(self, "delays_s", delays)
        object.__setattr__(self, "repeat_every_s", float(self.repeat_every_s))
        object.__setattr__(self, "window_s", float(self.window_s))
        object.__setattr__(self, "_offsets_s", tuple(accumulate(delays)))
        object.__setattr__(self, "_attempts_max", self._count_attempts())

    def offset_s(self, attempt: int) -> float:
        """Planned offset of 1-based `attempt` from the origin, ignoring the window."""
        if attempt < 1:
            raise ValueError("attempts are numbered from 1")
        listed = len(self._offsets_s)
        if attempt <= listed:
            return self._offsets_s[attempt - 1]
        # Multiply rather than accumulate so long tails carry no float drift.
        return self._offsets_s[-1] + (attempt - listed) * self.repeat_every_s

    def _count_attempts(self) -> int:
        """How many planned offsets fit in the window (offsets never decrease)."""
        within = sum(1 for off in self._offsets_s if off <= self.window_s)
        if within < len(self._offsets_s):
            return within
        tail = (self.window_s - self._offsets_s[-1]) / self.repeat_every_s
        if tail > MAX_ATTEMPTS:
            raise ValueError(f"retry schedule plans more than {MAX_ATTEMPTS} attempts")
        count = within + math.floor(tail)
        # The division may land a hair either side of an exact multiple: settle it with the
        # very comparison next_due_s relies on.
        while self.offset_s(count + 1) <= self.window_s:
            count += 1
        while count > within and self.offset_s(count) > self.window_s:
            count -= 1
        if count > MAX_ATTEMPTS:
            raise ValueError(f"retry schedule plans more than {MAX_ATTEMPTS} attempts")
        return count

    @property
    def attempts_max(self) -> int:
        """Total number of attempts this schedule makes before giving up."""
        return self._attempts_max

    def next_due_s(self, attempts_made: int, first_attempt_at_s: float) -> float | None:
        """Absolute time of the next attempt, or None when the window is spent (dead-letter).

        `attempts_made` counts attempts already made (0 before the first); `first_attempt_at_s`
        is the origin, on whatever clock the caller uses, and the result is on the same clock.
        A result in the past means "due now": a worker that was down catches up one missed
        attempt at a time, never more attempts than the schedule plans in total.
        """
        if attempts_made < 0:
            raise ValueError("attempts_made must be >= 0")
        if attempts_made >= self._attempts_max:
            return None
        return first_attempt_at_s + self.offset_s(attempts_made + 1)


DEFAULT_RETRY_SCHEDULE = RetrySchedule(DEFAULT_SCHEDULE_S, DEFAULT_REPEAT_EVERY_S, DEFAULT_WINDOW_S)
"""The vendor's suggested schedule (protocols.md 1.6)."""


def attempt_times(schedule: RetrySchedule) -> list[float]:
    """Offsets from the origin of every attempt `schedule` makes, in order."""
    return [schedule.offset_s(k) for k in range(1, schedule.attempts_max + 1)]


# Plain decimal seconds only: no signs, exponents, underscores, "inf" or "nan", which float()
# would all accept.
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def _parse_seconds(text: str, what: str) -> float:
    value = text.strip()
    if _SECONDS.fullmatch(value) is None:
        raise ValueError(
            f"retry schedule: {what} must be plain seconds like 5 or 0.5, got {text!r}"
        )
    return float(value)


def parse_schedule(text: str) -> RetrySchedule:
    """Parse a setting like `"0,5,10,20,40,120,300,600,1800;every=3600;window=172800"`.

    The first part lists the gaps in seconds; `every=` and `window=` (seconds, any order) default
    to 3600 and 172800 when left out. Raises ValueError naming the offending part.
    """
    delays_part, *options = text.split(";")
    if not delays_part.strip():
        raise ValueError("retry schedule: the list of delays is empty")
    delays = tuple(_parse_seconds(item, "each delay") for item in delays_part.split(","))
    settings = {"every": DEFAULT_REPEAT_EVERY_S, "window": DEFAULT_WINDOW_S}
    seen: set[str] = set()
    for option in options:
        name, sep, value = option.partition("=")
        name = name.strip()
        if not sep or name not in settings:
            raise ValueError(f"retry schedule: expected every=… or window=…, got {option!r}")
        if name in seen:
            raise ValueError(f"retry schedule: {name}= given twice")
        seen.add(name)
        settings[name] = _parse_seconds(value, name)
    return RetrySchedule(delays, settings["every"], settings["window"])


def _format_seconds(value: float) -> str:
    # repr gives the shortest text that reads back to the same float; Decimal turns an exponent
    # form such as 1e-05 into the plain digits that parse_schedule accepts.
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def format_schedule(schedule: RetrySchedule) -> str:
    """Render `schedule` in the syntax of `parse_schedule` (parse(format(s)) == s)."""
    delays = ",".join(_format_seconds(d) for d in schedule.delays_s)
    every = _format_seconds(schedule.repeat_every_s)
    return f"{delays};every={every};window={_format_seconds(schedule.window_s)}"
