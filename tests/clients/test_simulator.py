"""The simulator against our real servers in-process (SQLite and PostgreSQL), and against
servers that lie: it must find nothing wrong with the first and catch the second.

The server here runs on the real clock, because the simulator's clients do (HRG's ``xts`` and
JDB's ``ts`` are checked against the server's clock).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.clients.support import HRG_AGENT, HRG_CLIENT, HRG_SECRET, JDB_DC, JDB_IV, JDB_KEY

from gamewallet.app import create_app
from gamewallet.clients.simulator import Credentials, Fault, SimConfig, run_simulation
from gamewallet.clients.simulator.faults import FaultSlot, FaultyTransport, armed
from gamewallet.clients.simulator.seamless import tokens_from
from gamewallet.service import admin
from gamewallet.service.common import SystemClock
from gamewallet.service.context import Services

URL = "http://sim.test"
ALL_FAULTS = frozenset(Fault)


@pytest.fixture
def clock() -> SystemClock:
    """The server's clock: the real one (overrides the fake clock of conftest.py)."""
    return SystemClock()


@pytest.fixture
def app_transport(services: Services) -> httpx.AsyncBaseTransport:
    """The whole app in-process, on the test's event loop."""
    app: Any = create_app(services, manage_store=False)  # Litestar's ASGI types are narrower
    return httpx.ASGITransport(app=app)


async def seamless_client(services: Services) -> None:
    new = admin.NewClient("seamless", "game1", "game-user", "game-pass", config={})
    await services.store.run(admin.create_client(new, SystemClock().now_ms(), services.key))
    await services.clients.reload()


def config(protocol: str, database_url: str, **overrides: Any) -> SimConfig:
    credentials = {
        "seamless": Credentials(username="game-user", password="game-pass"),
        "hrg": Credentials(client_id=HRG_CLIENT, client_secret=HRG_SECRET, agent=HRG_AGENT),
        "jdb": Credentials(dc=JDB_DC, parent="testag", key=JDB_KEY, iv=JDB_IV),
    }[protocol]
    values: dict[str, Any] = {
        "protocol": protocol,
        "url": URL,
        "credentials": credentials,
        "players": 4,
        "rounds": 15,
        "faults": ALL_FAULTS,
        "fault_rate": 0.3,
        "seed": 11,
        "concurrency": 4,
        "timeout_s": 5.0,
        "deadline_s": 120.0,
        "setup_db": database_url if protocol == "seamless" else None,
    }
    values.update(overrides)
    return SimConfig(**values)


@pytest.mark.parametrize("protocol", ["seamless", "hrg", "jdb"])
async def test_our_servers_match_the_model_under_every_fault(
    protocol: str,
    services: Services,
    database_url: str,
    app_transport: httpx.AsyncBaseTransport,
) -> None:
    await seamless_client(services)
    report = await run_simulation(config(protocol, database_url), transport=app_transport)
    assert report.error is None
    assert report.mismatches == []
    assert report.violations == []
    assert report.unresolved == 0
    assert report.ok
    assert report.operations == 4 * 15
    assert sum(report.wire.faults.values()) > 0
    assert report.wire.requests > report.operations
    assert report.recoveries > 0
    document = report.as_json()
    assert (document["ok"], document["mismatches"], document["seed"]) == (True, 0, 11)
    json.dumps(document)  # JSON-ready as it is


class Liar(httpx.AsyncBaseTransport):
    """The app, with some answers rewritten by ``lie`` (path, JSON) -> JSON or None."""

    def __init__(self, inner: httpx.AsyncBaseTransport, lie: Any) -> None:
        self.inner = inner
        self.lie = lie

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        try:
            data = json.loads(body)
        except ValueError:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        changed = self.lie(request.url.path, data)
        if changed is None:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        return httpx.Response(response.status_code, json=changed)


async def test_a_wrong_balance_is_a_mismatch(
    services: Services, database_url: str, app_transport: httpx.AsyncBaseTransport
) -> None:
    def richer(path: str, data: Any) -> Any:
        if path == "/api/get_balance" and data.get("code") == "0000":
            for row in data["data"]["list"]:
                row["balance"] = str(float(row["balance"]) + 1)
            return data
        return None

    report = await run_simulation(
        config("hrg", database_url, faults=frozenset(), rounds=3),
        transport=Liar(app_transport, richer),
    )
    assert report.error is None
    assert not report.ok
    assert any("final balance" in m for m in report.mismatches)


async def test_an_overdraft_is_a_mismatch(
    services: Services, database_url: str, app_transport: httpx.AsyncBaseTransport
) -> None:
    await seamless_client(services)

    def lenient(path: str, data: Any) -> Any:
        # A wallet that answers a refused withdraw as if it had succeeded.
        if path == "/wallet/withdraw" and data.get("errorCode") == 106:
            return {"mmTransactionId": "x", "balance": {"amount": 0, "currencyCode": "XAG"}}
        return None

    report = await run_simulation(
        config("seamless", database_url, faults=frozenset(), rounds=30, players=2),
        transport=Liar(app_transport, lenient),
    )
    assert not report.ok
    assert any("beyond the balance succeeded" in m for m in report.mismatches)


class Restarting(httpx.AsyncBaseTransport):
    """The app behind a wallet whose database is down for the first ``down`` confirms and
    rollbacks: those are answered ``100 Other error`` without reaching the app."""

    def __init__(self, inner: httpx.AsyncBaseTransport, down: int) -> None:
        self.inner = inner
        self.down = down
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        settling = request.url.path.startswith(("/wallet/confirm", "/wallet/rollback"))
        if settling and self.refused < self.down:
            self.refused += 1
            return httpx.Response(
                200, json={"errorCode": 100, "errorDescription": "Other error", "details": "x"}
            )
        return await self.inner.handle_async_request(request)


async def test_a_100_on_a_confirm_or_rollback_is_repeated_until_it_succeeds(
    services: Services, database_url: str, app_transport: httpx.AsyncBaseTransport
) -> None:
    await seamless_client(services)
    transport = Restarting(app_transport, down=3)
    report = await run_simulation(
        config("seamless", database_url, faults=frozenset(), rounds=10, players=2),
        transport=transport,
    )
    assert transport.refused == 3
    assert report.ok, report.as_json()
    assert report.other_error_retries == 3
    assert report.as_json()["otherErrorRetries"] == 3


async def test_a_100_counts_as_a_refusal_when_repeats_are_off(
    services: Services, database_url: str, app_transport: httpx.AsyncBaseTransport
) -> None:
    await seamless_client(services)
    report = await run_simulation(
        config(
            "seamless",
            database_url,
            faults=frozenset(),
            rounds=10,
            players=2,
            other_error_retry_s=0.0,
        ),
        transport=Restarting(app_transport, down=1),
    )
    assert not report.ok
    assert report.other_error_retries == 0
    assert any("refused" in m for m in report.mismatches), report.mismatches


async def test_setup_failures_are_reported_not_raised(
    services: Services, database_url: str, app_transport: httpx.AsyncBaseTransport
) -> None:
    wrong = config("hrg", database_url, credentials=Credentials(client_id="x", client_secret="y"))
    missing = await run_simulation(wrong, transport=app_transport)
    assert missing.error == "HRG needs --client-id, --client-secret and --agent"
    denied = await run_simulation(
        config(
            "hrg",
            database_url,
            credentials=Credentials(client_id=HRG_CLIENT, client_secret="nope", agent=HRG_AGENT),
        ),
        transport=app_transport,
    )
    assert denied.error is not None
    assert "1001" in denied.error
    no_sessions = await run_simulation(
        config("seamless", database_url, setup_db=None), transport=app_transport
    )
    assert no_sessions.error == "seamless needs sessions: --tokens-file or --setup-db"


# --- the fault injector ----------------------------------------------------------------------


def counting_app() -> tuple[httpx.MockTransport, list[int]]:
    """A server that counts what it processed and answers with the count."""
    seen: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(len(seen) + 1)
        return httpx.Response(200, json={"n": len(seen)})

    return httpx.MockTransport(handle), seen


async def test_drop_loses_the_answer_after_the_server_processed_it() -> None:
    inner, seen = counting_app()
    transport = FaultyTransport(URL, inner)
    async with httpx.AsyncClient(transport=transport) as http:
        with armed(FaultSlot(Fault.DROP)):
            with pytest.raises(httpx.ReadError):
                await http.get(URL + "/a")
            second = await http.get(URL + "/a")  # the slot is spent: no fault
    assert seen == [1, 2]
    assert second.json() == {"n": 2}
    assert transport.stats.faults == {"drop": 1}
    assert transport.stats.requests == 2


async def test_timeout_and_dup() -> None:
    inner, seen = counting_app()
    transport = FaultyTransport(URL, inner)
    async with httpx.AsyncClient(transport=transport) as http:
        with armed(FaultSlot(Fault.TIMEOUT, timeout_s=0.001)), pytest.raises(httpx.ReadTimeout):
            await http.get(URL + "/a")
        for concurrent in (False, True):
            slot = FaultSlot(Fault.DUP, concurrent=concurrent)
            with armed(slot):
                answer = await http.get(URL + "/a")
            assert slot.first_answer is not None
            assert slot.second_answer is not None
            assert {slot.first_answer[1], slot.second_answer[1]} == {
                b'{"n":%d}' % (len(seen) - 1),
                b'{"n":%d}' % len(seen),
            }
            assert answer.content == slot.second_answer[1]
    assert transport.stats.faults == {"timeout": 1, "dup": 2}
    assert transport.stats.requests == 5


async def test_only_the_given_origin_is_called() -> None:
    inner, seen = counting_app()
    async with httpx.AsyncClient(transport=FaultyTransport(URL, inner)) as http:
        with pytest.raises(httpx.UnsupportedProtocol, match="only calls"):
            await http.get("http://elsewhere.test/")
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("http://sim.test:8080/")
    assert seen == []


def test_tokens_file_lines() -> None:
    assert tokens_from(["a", "", "  # comment", " b  ", "#x"]) == ("a", "b")
