"""A live server for the fuzz tests, and how many cases to try.

``GAMEWALLET_FUZZ_CASES`` sets the cases per protocol (``make fuzz`` runs 1,000; the default
keeps ``make test`` quick). The server is the real app under uvicorn on 127.0.0.1 with the
bounded head protocol, on a SQLite file holding the security tests' world (two clients of each
protocol), so authenticated calls reach the handlers rather than stopping at 401.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from tests.security.world import World, build_world

from gamewallet.service.common import SystemClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store

#: Cases per protocol in ``make test``; ``make fuzz`` sets GAMEWALLET_FUZZ_CASES=1000.
DEFAULT_CASES = 60


def cases_per_protocol() -> int:
    """How many generated cases each protocol gets in this run."""
    return int(os.environ.get("GAMEWALLET_FUZZ_CASES") or DEFAULT_CASES)


def seeded_database(
    root: Path, config: dict[str, dict[str, Any]] | None = None
) -> tuple[str, World]:
    """A migrated SQLite database under ``root`` with the world in it (``config``: extra
    client config entries by client name)."""
    url = f"sqlite:///{root}/fuzz.db"
    migrate.upgrade(url)

    async def seed() -> World:
        services = Services(Settings(database_url=url), open_store(url), SystemClock())
        await services.start()
        try:
            return await build_world(services.store, services.clock, services.key, config=config)
        finally:
            await services.close()

    return url, asyncio.run(seed())
