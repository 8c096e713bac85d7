"""Helpers of the client tests: the seeded credentials and the scripted transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import httpx
import msgspec

from gamewallet.core.money import UNIT
from gamewallet.protocols.jdb.crypto import decrypt_payload

HRG_AGENT, HRG_CLIENT, HRG_SECRET = "hrgag", "hrgclient", "hrg-secret"
HRG_URL = "http://hrg.test"
JDB_DC, JDB_PARENT, JDB_KEY, JDB_IV = "jb", "testag", "0123456789abcdef", "fedcba9876543210"
JDB_URL = "http://jdb.test"
GAME_URL = "https://games.example/play?ticket={token}&user={player}"

#: What a :class:`Script` step may be: "pass", "drop", "lost", or an answer to send instead.
Step = str | Mapping[str, Any]


class Script(httpx.AsyncBaseTransport):
    """The app's transport, with the next requests' fates set by the test (default: pass).

    ``log`` names every request it saw: the HRG endpoint, or ``jdb:<action>``.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.steps: list[Step] = []
        self.log: list[str] = []
        self.processed = 0  # requests the server really handled

    def then(self, *steps: Step) -> Script:
        """Queue the fates of the next requests."""
        self.steps.extend(steps)
        return self

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.append(_name(request))
        step = self.steps.pop(0) if self.steps else "pass"
        if step == "lost":  # the request never reached the server
            raise httpx.ReadTimeout("lost on the way (test)", request=request)
        if isinstance(step, Mapping):  # someone else answered
            return httpx.Response(200, json=dict(step))
        self.processed += 1
        response = await self.inner.handle_async_request(request)
        if step == "drop":  # the server processed it; its answer never arrived
            await response.aread()
            raise httpx.ReadError("answer dropped (test)", request=request)
        assert step == "pass", f"unknown step {step!r}"
        return response


def _name(request: httpx.Request) -> str:
    if request.url.path.startswith("/api/"):
        return request.url.path.removeprefix("/api/")
    form = parse_qs(request.content.decode())
    try:
        payload = msgspec.json.decode(decrypt_payload(form["x"][0], JDB_KEY, JDB_IV))
    except ValueError:  # encrypted with another key (a test of exactly that)
        return "jdb:?"
    return f"jdb:{payload['action']}"


def units(n: int | str) -> int:
    """``n`` units of account in minor units."""
    return int(n) * int(UNIT)
