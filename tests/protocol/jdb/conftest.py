"""Fixtures of the JDB protocol tests (the domains and the caller are in caller.py).

``services``, ``http`` and ``database_url`` come from tests/protocol/conftest.py: every test runs
on SQLite and PostgreSQL, and the app runs on the test's own event loop, so ``asyncio.gather``
over ``http`` is real concurrency. After every test using ``jdb`` the ledger must audit clean.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.protocol.jdb.caller import Jdb, create_domains

from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services


@pytest.fixture
async def jdb(services: Services, http: httpx.AsyncClient, clock: FakeClock) -> AsyncIterator[Jdb]:
    """A protocol caller with the test domains created; the ledger must audit clean after."""
    caller = Jdb(http, services, clock)
    caller.clients = await create_domains(services, clock)
    yield caller
    assert await caller.audit() == []
