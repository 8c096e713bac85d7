"""The soak's traffic: the simulator's three scenarios, run for a time window instead of a
fixed number of rounds, and held at the end until the system is calm again.

Each scenario is the simulator's own (:mod:`gamewallet.clients.simulator`), with its model,
faults and checks, plus three hooks: it tells the soak when its players are set up (faults
start only then), stops starting rounds when the traffic window closes, and waits for
*quiet* (every process up and healthy) before it settles leftovers and compares its model
with the server's final balances. A duplicated call one copy of which got a transient failure
(seamless 100, HRG 9999, JDB 9012: the database was restarting) is not a broken promise: that
copy has no outcome to compare. A seamless ``100 Other error`` (what the wallet answers while
its database restarts) is repeated by the simulator itself, for ``SEAMLESS_OTHER_ERROR_RETRY_S``
here (``SimConfig.other_error_retry_s``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TypeVar

from gamewallet.clients.simulator.common import PlayerModel, Report, SimConfig, Simulation
from gamewallet.clients.simulator.faults import FaultSlot
from gamewallet.clients.simulator.seamless import SeamlessSimulation
from gamewallet.clients.simulator.transfer import HrgSimulation, JdbSimulation

T = TypeVar("T")

#: How long a seamless call answered 100 is repeated before it counts as refused: longer than
#: a PostgreSQL crash and restart takes.
SEAMLESS_OTHER_ERROR_RETRY_S = 60.0


@dataclass
class Phases:
    """What the soak and its scenarios tell each other."""

    expected: int
    ready_count: int = 0
    all_ready: asyncio.Event = field(default_factory=asyncio.Event)
    traffic_over: asyncio.Event = field(default_factory=asyncio.Event)
    quiet: asyncio.Event = field(default_factory=asyncio.Event)

    def ready(self) -> None:
        """One scenario has its players."""
        self.ready_count += 1
        if self.ready_count >= self.expected:
            self.all_ready.set()


#: Answers that mean "not done, try again" rather than an outcome: seamless 100 (what the wallet
#: answers while its database is down), HRG 9999, JDB 9012.
TRANSIENT_MARKERS = (b'"errorCode":100', b'"code":"9999"', b'"status":"9012"')


def transient(answer: tuple[int, bytes] | None) -> bool:
    """Whether one copy of a duplicated call got a transient failure instead of an outcome."""
    return answer is not None and any(marker in answer[1] for marker in TRANSIENT_MARKERS)


def compare_dup_outcomes(
    sim: Simulation, player: PlayerModel, slot: FaultSlot | None, what: str
) -> int:
    """The simulator's duplicate check, except that a copy answered with a transient failure
    (the database was restarting) is not a second outcome; returns 1 if one was skipped."""
    if slot is not None and (transient(slot.first_answer) or transient(slot.second_answer)):
        return 1
    Simulation.compare_dup(sim, player, slot, what)
    return 0


class SoakSeamless(SeamlessSimulation):
    """The seamless scenario under the soak's phases."""

    def __init__(self, config: SimConfig, report: Report, phases: Phases) -> None:
        super().__init__(config, report)
        self.phases = phases
        self.transient_dups = 0

    def compare_dup(self, player: PlayerModel, slot: FaultSlot | None, what: str) -> None:
        self.transient_dups += compare_dup_outcomes(self, player, slot, what)

    async def setup(self) -> list[PlayerModel]:
        players = await super().setup()
        self.phases.ready()
        return players

    async def round(self, player: PlayerModel) -> None:
        if not self.phases.traffic_over.is_set():
            await super().round(player)

    async def final_check(self) -> None:
        await self.phases.quiet.wait()
        await super().final_check()


class SoakHrg(HrgSimulation):
    """The HRG scenario under the soak's phases."""

    def __init__(self, config: SimConfig, report: Report, phases: Phases) -> None:
        super().__init__(config, report)
        self.phases = phases
        self.transient_dups = 0

    def compare_dup(self, player: PlayerModel, slot: FaultSlot | None, what: str) -> None:
        self.transient_dups += compare_dup_outcomes(self, player, slot, what)

    async def setup(self) -> list[PlayerModel]:
        players = await super().setup()
        self.phases.ready()
        return players

    async def round(self, player: PlayerModel) -> None:
        if not self.phases.traffic_over.is_set():
            await super().round(player)

    async def settle_leftovers(self) -> None:
        await self.phases.quiet.wait()
        await super().settle_leftovers()


class SoakJdb(JdbSimulation):
    """The JDB scenario under the soak's phases."""

    def __init__(self, config: SimConfig, report: Report, phases: Phases) -> None:
        super().__init__(config, report)
        self.phases = phases
        self.transient_dups = 0

    def compare_dup(self, player: PlayerModel, slot: FaultSlot | None, what: str) -> None:
        self.transient_dups += compare_dup_outcomes(self, player, slot, what)

    async def setup(self) -> list[PlayerModel]:
        players = await super().setup()
        self.phases.ready()
        return players

    async def round(self, player: PlayerModel) -> None:
        if not self.phases.traffic_over.is_set():
            await super().round(player)

    async def settle_leftovers(self) -> None:
        await self.phases.quiet.wait()
        await super().settle_leftovers()


async def run_scenario(scenario: SoakSeamless | SoakHrg | SoakJdb, deadline_s: float) -> Report:
    """Run one scenario to its end (or its deadline) and return its report."""
    report = scenario.report
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(deadline_s):
            await scenario.run()
    except TimeoutError:
        report.error = f"the scenario did not finish within {deadline_s:g} s"
    except Exception as exc:  # noqa: BLE001 - the soak reports whatever stopped a scenario
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        report.duration_s = loop.time() - started
    return report
