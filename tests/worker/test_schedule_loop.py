"""The retry schedule as the real worker loop keeps it, step by step, on a fake clock.

Each test drives :class:`Worker` passes at chosen fake times and checks when the handler was
called: never a millisecond before a planned attempt, exactly at it, and never after the window
(the message is then dead-lettered with its last error).
"""

from __future__ import annotations

import asyncio

from gamewallet.service.common import FakeClock
from gamewallet.store import ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import OutboxRecord
from gamewallet.worker.runner import Done, Outcome, Retry, Worker
from gamewallet.worker.schedule import (
    DEFAULT_RETRY_SCHEDULE,
    RetrySchedule,
    attempt_times,
    parse_schedule,
)

TOPIC = "test"


class Recorder:
    """A handler that notes the fake time of every call and fails until told otherwise."""

    def __init__(self, clock: FakeClock, succeed_on: int | None = None) -> None:
        self.clock = clock
        self.calls: list[int] = []
        self.succeed_on = succeed_on

    async def __call__(self, message: OutboxRecord) -> Outcome:
        self.calls.append(self.clock.now_ms())
        if self.succeed_on is not None and len(self.calls) >= self.succeed_on:
            return Done()
        return Retry(f"receiver down (attempt {len(self.calls)})")


def worker(
    store: Store, clock: FakeClock, handler: Recorder, schedule: RetrySchedule, owner: str = "w1"
) -> Worker:
    return Worker(
        store,
        clock,
        handlers={TOPIC: handler},
        schedule=schedule,
        batch_size=10,
        lease_s=60,
        owner=owner,
    )


async def enqueue(store: Store, clock: FakeClock) -> int:
    now = clock.now_ms()
    return await store.run(do(ops.Enqueue(TOPIC, None, None, {"n": 1}, now, now)))


async def message(store: Store, outbox_id: int) -> OutboxRecord:
    page, _ = await store.run(do(ops.ListOutbox(limit=1000)))
    (found,) = [m for m in page if m.id == outbox_id]
    return found


async def test_every_step_of_the_default_schedule(game_store: Store, clock: FakeClock) -> None:
    origin = clock.now_ms()
    planned = [origin + round(offset * 1000) for offset in attempt_times(DEFAULT_RETRY_SCHEDULE)]
    # The vendor's list, then hourly: 0, 5, 15, 35, 75, 195, 495, 1095, 2895 s, 6495 s, ...
    assert [(t - origin) // 1000 for t in planned[:10]] == [
        0, 5, 15, 35, 75, 195, 495, 1095, 2895, 6495,
    ]  # fmt: skip
    assert planned[-1] - origin <= 48 * 3600 * 1000 < planned[-1] - origin + 3600 * 1000
    recorder = Recorder(clock)
    outbox_id = await enqueue(game_store, clock)
    # Restart the worker (a new owner) half-way: the plan comes from the stored row only.
    halfway = len(planned) // 2
    first, second = (
        worker(game_store, clock, recorder, DEFAULT_RETRY_SCHEDULE, owner)
        for owner in ("before-restart", "after-restart")
    )
    for step, due in enumerate(planned):
        loop = first if step < halfway else second
        clock.now = due - 1
        assert (await loop.deliver_once()).claimed == 0, f"attempt {step + 1} came early"
        clock.now = due
        report = await loop.deliver_once()
        assert report.claimed == 1, f"attempt {step + 1} did not happen at {due - origin} ms"
        assert recorder.calls[-1] == due
    assert recorder.calls == planned
    final = await message(game_store, outbox_id)
    assert final.state == "dead"
    assert final.attempts == len(planned) == DEFAULT_RETRY_SCHEDULE.attempts_max
    assert final.last_error is not None
    assert "retry window spent" in final.last_error
    assert f"attempt {len(planned)}" in final.last_error
    clock.now = planned[-1] + 10 * 24 * 3600 * 1000
    assert (await second.deliver_once()).claimed == 0  # dead letters are never sent again


async def test_run_forever_keeps_the_schedule(game_store: Store, clock: FakeClock) -> None:
    schedule = parse_schedule("0,5,10;every=60;window=200")
    origin = clock.now_ms()
    planned = [origin + round(offset * 1000) for offset in attempt_times(schedule)]
    assert [(t - origin) // 1000 for t in planned] == [0, 5, 15, 75, 135, 195]
    recorder = Recorder(clock)
    outbox_id = await enqueue(game_store, clock)
    loop = worker(game_store, clock, recorder, schedule)
    stop = asyncio.Event()
    idle_waits: list[int] = []

    async def sleep(stop_event: asyncio.Event, seconds: float) -> None:
        """Instead of waiting, jump the fake clock to the next due message (or stop)."""
        idle_waits.append(clock.now_ms())
        page, _ = await game_store.run(do(ops.ListOutbox(state="pending")))
        if not page:
            stop_event.set()
            return
        # One millisecond short first, to show that an idle pass sends nothing early.
        target = min(m.due_at_ms for m in page)
        clock.now = target - 1 if clock.now < target - 1 else target

    await asyncio.wait_for(loop.run_forever(stop, sleep=sleep), timeout=60)
    assert recorder.calls == planned
    assert (await message(game_store, outbox_id)).state == "dead"
    assert len(idle_waits) > len(planned)  # it also woke up between attempts and did nothing


async def test_success_mid_schedule_stops_the_retries(game_store: Store, clock: FakeClock) -> None:
    origin = clock.now_ms()
    planned = [origin + round(offset * 1000) for offset in attempt_times(DEFAULT_RETRY_SCHEDULE)]
    recorder = Recorder(clock, succeed_on=7)
    outbox_id = await enqueue(game_store, clock)
    loop = worker(game_store, clock, recorder, DEFAULT_RETRY_SCHEDULE)
    for due in planned[:10]:
        clock.now = due
        await loop.deliver_once()
    assert recorder.calls == planned[:7]
    done = await message(game_store, outbox_id)
    assert (done.state, done.attempts, done.done_at_ms) == ("done", 7, planned[6])


async def test_a_late_worker_catches_up_one_attempt_at_a_time(
    game_store: Store, clock: FakeClock
) -> None:
    """A worker that was down for an hour makes the missed attempts one per pass, never a burst,
    and the plan still ends at the same window."""
    origin = clock.now_ms()
    recorder = Recorder(clock)
    await enqueue(game_store, clock)
    loop = worker(game_store, clock, recorder, DEFAULT_RETRY_SCHEDULE)
    await loop.deliver_once()
    clock.now = origin + 3600 * 1000
    for _ in range(3):
        assert (await loop.deliver_once()).claimed == 1
    assert recorder.calls == [origin, *[origin + 3600 * 1000] * 3]
    assert len(recorder.calls) == 4
