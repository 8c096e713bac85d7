"""The simulator: realistic, bounded traffic against any server of one protocol.

``gamewallet simulate`` builds a :class:`SimConfig` and calls :func:`run_simulation`, which
plays ``players * rounds`` operations (seamless bets and wins, HRG/JDB deposits and
withdrawals) with the faults asked for, keeps its own exact model of every balance, and
returns a :class:`Report`: calls, faults, recoveries, mismatches. It talks only to the URL it
is given (the transport refuses any other origin), every call has a timeout, every retry is
bounded, and the whole run has a deadline, so it always stops by itself.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx

from gamewallet.clients.hrg import HrgClientError
from gamewallet.clients.jdb import JdbClientError
from gamewallet.clients.seamless import SeamlessError
from gamewallet.clients.simulator.common import Credentials, PlayerModel, Report, SimConfig
from gamewallet.clients.simulator.faults import Fault
from gamewallet.clients.simulator.seamless import SeamlessSimulation
from gamewallet.clients.simulator.seamless import SetupError as SeamlessSetupError
from gamewallet.clients.simulator.transfer import HrgSimulation, JdbSimulation, SetupError

__all__ = ["Credentials", "Fault", "PlayerModel", "Report", "SimConfig", "run_simulation"]


async def run_simulation(
    config: SimConfig, *, transport: httpx.AsyncBaseTransport | None = None
) -> Report:
    """Play one run; never raises for what the server does (it is all in the report).

    ``transport`` replaces the real network under the fault injector (tests run the server
    in-process this way); by default calls go over TCP to ``config.url``.
    """
    seed = config.seed if config.seed is not None else secrets.randbelow(10**9)
    report = Report(config.protocol, config.url, config.players, config.rounds, seed)
    started = time.monotonic()
    try:
        scenario: SeamlessSimulation | HrgSimulation | JdbSimulation
        if config.protocol == "seamless":
            scenario = SeamlessSimulation(config, report, transport)
        elif config.protocol == "hrg":
            scenario = HrgSimulation(config, report, transport)
        else:
            scenario = JdbSimulation(config, report, transport)
        async with asyncio.timeout(config.deadline_s):
            await scenario.run()
    except (SetupError, SeamlessSetupError) as exc:
        report.error = str(exc)
    except TimeoutError:
        report.error = f"the run did not finish within {config.deadline_s:g} s"
    except (HrgClientError, JdbClientError, SeamlessError) as exc:
        # A call the scenario cannot do without (a final balance read…) failed for good.
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        report.duration_s = time.monotonic() - started
    return report
