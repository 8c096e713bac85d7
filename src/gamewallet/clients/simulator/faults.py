"""Fault injection for the simulator: an httpx transport that breaks calls on request.

The simulator arms a one-shot :class:`FaultSlot` in a context variable around one logical
call; the first HTTP request made inside that context consumes it, every later one (the
client's recovery: lookups, re-sends, rollbacks) goes through untouched. Faults happen where
real ones do, on the wire, *after* the server has had the request:

* ``drop``: the server answers, the answer is read in full, then discarded: the caller sees a
  broken connection although the call was applied.
* ``timeout``: the caller gives up after a few milliseconds, whether or not the server has
  finished (a late answer is thrown away too): the outcome is genuinely unknown.
* ``dup``: the same request is sent twice, one after the other or both at once; the caller
  gets the second answer (the first is kept so that the simulator can compare them).

The transport also refuses any request that is not for the one origin it was built for, so a
simulator can never be pointed somewhere else by a redirect or a bug.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

__all__ = ["Fault", "FaultSlot", "FaultyTransport", "WireStats", "armed"]


class Fault(enum.StrEnum):
    """A fault the simulator can inject."""

    DROP = "drop"
    DUP = "dup"
    TIMEOUT = "timeout"
    REORDER = "reorder"  # played by the scenarios themselves, not by the transport


@dataclass(slots=True)
class FaultSlot:
    """One armed fault, consumed by the first request that sees it."""

    fault: Fault
    concurrent: bool = False  # dup: send both copies at once
    timeout_s: float = 0.005  # timeout: how long the caller waits
    used: bool = False
    #: dup: each copy's status and body, so that the simulator can compare them.
    first_answer: tuple[int, bytes] | None = None
    second_answer: tuple[int, bytes] | None = None


_SLOT: contextvars.ContextVar[FaultSlot | None] = contextvars.ContextVar(
    "gamewallet_simulator_fault", default=None
)


@contextmanager
def armed(slot: FaultSlot | None) -> Iterator[FaultSlot | None]:
    """Arm ``slot`` for the first request made inside the ``with`` block (None: no fault)."""
    token = _SLOT.set(slot)
    try:
        yield slot
    finally:
        _SLOT.reset(token)


@dataclass
class WireStats:
    """What went over the wire: requests sent and faults injected, by kind."""

    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)


async def _read(response: httpx.Response) -> bytes:
    """The whole (decoded) body of a transport-level response, which is then closed."""
    try:
        return await response.aread()
    finally:
        await response.aclose()


def _rebuilt(response: httpx.Response, body: bytes) -> httpx.Response:
    """A fresh response carrying ``body`` (already decoded, so no content-encoding)."""
    headers = httpx.Headers(response.headers)
    headers.pop("content-encoding", None)
    headers["content-length"] = str(len(body))
    return httpx.Response(
        response.status_code,
        headers=headers,
        stream=httpx.ByteStream(body),
        extensions=response.extensions,
    )


class FaultyTransport(httpx.AsyncBaseTransport):
    """Wraps a real transport; injects the armed fault; allows one origin only."""

    def __init__(
        self,
        base_url: str,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        stats: WireStats | None = None,
    ) -> None:
        origin = httpx.URL(base_url)
        self._origin = (origin.scheme, origin.host, origin.port)
        self._inner = inner or httpx.AsyncHTTPTransport()
        self.stats = stats or WireStats()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` (or break it as the armed fault says)."""
        if (request.url.scheme, request.url.host, request.url.port) != self._origin:
            raise httpx.UnsupportedProtocol(f"the simulator only calls {self._origin[1]}")
        slot = _SLOT.get()
        if slot is None or slot.used or slot.fault is Fault.REORDER:
            self.stats.requests += 1
            return await self._inner.handle_async_request(request)
        slot.used = True
        self.stats.faults[slot.fault.value] += 1
        if slot.fault is Fault.DROP:
            self.stats.requests += 1
            await _read(await self._inner.handle_async_request(request))
            raise httpx.ReadError("response dropped (fault injection)", request=request)
        if slot.fault is Fault.TIMEOUT:
            self.stats.requests += 1
            try:
                response = await asyncio.wait_for(
                    self._inner.handle_async_request(request), timeout=slot.timeout_s
                )
            except TimeoutError:
                pass
            else:  # it answered in time; the caller gave up anyway, just after
                await _read(response)
            raise httpx.ReadTimeout("timed out (fault injection)", request=request)
        return await self._dup(request, slot)

    async def _dup(self, request: httpx.Request, slot: FaultSlot) -> httpx.Response:
        self.stats.requests += 2
        if not slot.concurrent:
            first = await self._inner.handle_async_request(request)
            slot.first_answer = (first.status_code, await _read(first))
            second = await self._inner.handle_async_request(request)
            slot.second_answer = (second.status_code, await _read(second))
            return _rebuilt(second, slot.second_answer[1])
        answers = await asyncio.gather(
            self._inner.handle_async_request(request),
            self._inner.handle_async_request(request),
            return_exceptions=True,
        )
        bodies: list[tuple[int, bytes]] = []
        failure: BaseException | None = None
        for answer in answers:
            if isinstance(answer, BaseException):
                failure = answer
            else:
                bodies.append((answer.status_code, await _read(answer)))
        if failure is not None:  # the caller sees the failure, as it would without the copy
            raise failure
        slot.first_answer, slot.second_answer = bodies
        kept = answers[1]
        assert isinstance(kept, httpx.Response)
        return _rebuilt(kept, bodies[1][1])

    async def aclose(self) -> None:
        """Close the real transport."""
        await self._inner.aclose()
