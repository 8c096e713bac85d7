"""The worker loop: lease due outbox messages, deliver them, record the outcome; run jobs.

One pass (:meth:`Worker.run_once`) claims at most ``batch_size`` due messages of the topics it
has handlers for (``ClaimOutbox``: a lease of ``lease_s`` in the owner's name, ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so two workers never hold one message), delivers them concurrently, and
finishes each one as its handler says: done, dead, or pending again at the next time of the
retry schedule (planned from the first attempt and the attempt count only, so a restarted worker
keeps the same plan). A message whose window is spent is dead-lettered with its last error.
A worker that dies between claim and finish leaves the lease to run out; the message is then
claimed again and re-sent, which the receiving side's idempotency turns into a replay.
Periodic jobs (reconciliation, purge) run after the deliveries, each at most once per interval.
Stopping is graceful: :meth:`Worker.run_forever` only looks at its stop event between passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gamewallet.service.common import Clock
from gamewallet.store import ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import OutboxRecord
from gamewallet.worker.schedule import RetrySchedule

log = logging.getLogger(__name__)

#: Longest error text kept on an outbox row.
ERROR_MAX_CHARS = 500


@dataclass(frozen=True, slots=True)
class Done:
    """The message was delivered (or has nothing left to do)."""

    note: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """Not delivered this time; try again on the schedule."""

    error: str


@dataclass(frozen=True, slots=True)
class Dead:
    """Never deliverable as it is (the receiver refused it for good): dead-letter it now."""

    error: str


Outcome = Done | Retry | Dead


class Handler(Protocol):
    """Delivers one claimed message of its topic; must not raise for expected failures."""

    async def __call__(self, message: OutboxRecord) -> Outcome:
        """Deliver ``message`` once and say what became of it."""
        ...


class Job(Protocol):
    """A periodic task with a bounded amount of work per run (reconciler, purge)."""

    name: str

    async def run_once(self) -> int:
        """Do at most one batch of work; return how many items it handled."""
        ...


@dataclass
class PassReport:
    """What one pass did (for logs and tests)."""

    claimed: int = 0
    done: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0  # finished after the lease had been taken over: not recorded
    jobs: dict[str, int] = field(default_factory=dict)


def default_owner() -> str:
    """A lease owner name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


class Worker:
    """Delivers outbox messages through per-topic handlers and runs periodic jobs."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        handlers: Mapping[str, Handler],
        schedule: RetrySchedule,
        batch_size: int,
        lease_s: float,
        poll_s: float = 1.0,
        jobs: Sequence[Job] = (),
        jobs_interval_s: float = 60.0,
        owner: str | None = None,
    ) -> None:
        assert batch_size >= 1, "a worker claims at least one message"
        assert lease_s > 0, "a lease lasts"
        assert poll_s > 0, "an idle worker waits"
        assert jobs_interval_s >= 0, "an interval"
        self.store = store
        self.clock = clock
        self.handlers = dict(handlers)
        self.schedule = schedule
        self.batch_size = batch_size
        self.lease_ms = int(lease_s * 1000)
        self.poll_s = poll_s
        self.jobs = list(jobs)
        self.jobs_interval_ms = int(jobs_interval_s * 1000)
        self.owner = owner or default_owner()
        self._jobs_last_ms: dict[str, int] = {}

    # --- one pass ------------------------------------------------------------------------

    async def deliver_once(self) -> PassReport:
        """Claim one batch of due messages, deliver them concurrently, record each outcome."""
        report = PassReport()
        if not self.handlers:
            return report
        claimed = await self.store.run(
            do(
                ops.ClaimOutbox(
                    self.owner,
                    self.batch_size,
                    self.lease_ms,
                    self.clock.now_ms(),
                    tuple(sorted(self.handlers)),
                )
            )
        )
        report.claimed = len(claimed)
        outcomes = await asyncio.gather(*(self._deliver(m) for m in claimed))
        for message, (outcome, recorded) in zip(claimed, outcomes, strict=True):
            if not recorded:
                report.lost += 1
                log.warning("lease of outbox message %s was lost before finishing", message.id)
            elif isinstance(outcome, Done):
                report.done += 1
            elif isinstance(outcome, Dead):
                report.dead += 1
            else:
                report.retried += 1
        return report

    async def _deliver(self, message: OutboxRecord) -> tuple[Outcome, bool]:
        handler = self.handlers[message.topic]
        try:
            outcome = await handler(message)
        except Exception as exc:  # a handler bug must not stop the other messages
            log.exception("handler of %s failed on message %s", message.topic, message.id)
            outcome = Retry(f"handler failed: {type(exc).__name__}: {exc}")
        return await self._finish(message, outcome)

    async def _finish(self, message: OutboxRecord, outcome: Outcome) -> tuple[Outcome, bool]:
        now_ms = self.clock.now_ms()
        if isinstance(outcome, Retry):
            origin_ms = message.first_attempt_at_ms
            assert origin_ms is not None, "a claimed message has a first attempt"
            due_s = self.schedule.next_due_s(message.attempts, origin_ms / 1000)
            if due_s is None:
                outcome = Dead(
                    f"retry window spent after {message.attempts} attempts: {outcome.error}"
                )
            else:
                finish = ops.FinishOutbox(
                    message.id,
                    self.owner,
                    "pending",
                    now_ms,
                    due_at_ms=round(due_s * 1000),
                    error=_clip(outcome.error),
                )
                return outcome, await self.store.run(do(finish))
        if isinstance(outcome, Dead):
            log.warning("outbox message %s (%s) dead: %s", message.id, message.topic, outcome.error)
            finish = ops.FinishOutbox(
                message.id, self.owner, "dead", now_ms, error=_clip(outcome.error)
            )
        else:
            finish = ops.FinishOutbox(message.id, self.owner, "done", now_ms)
        return outcome, await self.store.run(do(finish))

    async def run_jobs(self, *, force: bool = False) -> dict[str, int]:
        """Run each job whose interval has passed (all of them with ``force``)."""
        done: dict[str, int] = {}
        for job in self.jobs:
            now_ms = self.clock.now_ms()
            last = self._jobs_last_ms.get(job.name)
            if not force and last is not None and now_ms - last < self.jobs_interval_ms:
                continue
            self._jobs_last_ms[job.name] = now_ms
            try:
                done[job.name] = await job.run_once()
            except Exception:  # one failing job must not stop deliveries
                log.exception("worker job %s failed", job.name)
                done[job.name] = 0
        return done

    async def run_once(self, *, force_jobs: bool = False) -> PassReport:
        """One pass: one batch of deliveries, then the jobs that are due."""
        report = await self.deliver_once()
        report.jobs = await self.run_jobs(force=force_jobs)
        return report

    # --- the loop ------------------------------------------------------------------------

    async def run_forever(
        self,
        stop: asyncio.Event,
        *,
        sleep: Callable[[asyncio.Event, float], Awaitable[None]] | None = None,
    ) -> None:
        """Pass after pass until ``stop`` is set; an in-flight pass always completes.

        After a full batch the next pass starts at once (there may be more due work); after a
        partial one the worker waits ``poll_s`` or until stopped. ``sleep`` replaces that wait
        (tests drive a fake clock with it).
        """
        wait = sleep or _wait_or_stop
        log.info("worker %s started (topics: %s)", self.owner, ", ".join(sorted(self.handlers)))
        while not stop.is_set():
            try:
                report = await self.run_once()
            except Exception:  # e.g. the database is down: keep trying
                log.exception("worker pass failed; retrying in %s s", self.poll_s)
                report = PassReport()
            if report.claimed < self.batch_size:
                await wait(stop, self.poll_s)
        log.info("worker %s stopped", self.owner)


async def _wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
