"""Schemathesis against each protocol's OpenAPI description, on a live server.

The schema is the app's own ``/schema/openapi.json``. For every operation of a protocol,
schemathesis generates requests that follow the schema (positive) and that break it
(negative); each is sent with valid credentials (Basic auth and a fresh ``xts``; for JDB, half
the time a real ``dc``) so that it reaches the handler. Every answer must be the protocol's:
never a 5xx, always its envelope (seamless: 401 without body, or a success object, or
``{"errorCode", "errorDescription"}`` with a code of its table; HRG: ``{"code", "data"}`` or
``{"code", "desc"}`` with a code of its table; JDB: ``{"status": ...}`` with a code of the
vendor's table). ``GAMEWALLET_FUZZ_CASES`` cases per protocol (1,000 in ``make fuzz``).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case
from schemathesis.generation import GenerationMode
from tests.fuzz.live import cases_per_protocol, seeded_database
from tests.security.world import LiveServer, World, xts

from gamewallet.protocols.hrg.errors import STATUS as HRG_STATUS
from gamewallet.protocols.jdb.errors import STATUS_TEXT as JDB_STATUS
from gamewallet.protocols.seamless.errors import ERROR_TEXT as SEAMLESS_CODES

Check = Callable[[int, bytes, dict[str, str]], str]
#: The seamless client takes payments (its callbacks are queued; no worker sends them here).
PAYMENTS = {"payment_secret": "fuzz-pay-secret", "payment_callback_url": "http://127.0.0.1:9/cb"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, World, Any]]:
    """The server, its world, and the schemathesis schema it describes itself with."""
    root = tmp_path_factory.mktemp("fuzz")
    url, world = seeded_database(
        root, {"gamea": PAYMENTS, "agenta": {"game_url": "https://games.example/{token}"}}
    )
    with LiveServer(url, root / "server.log", log_level="WARNING") as server:
        document = httpx.get(f"{server.url}/schema/openapi.json", timeout=10).json()
        yield server, world, schemathesis.openapi.from_dict(document)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def check_seamless(status: int, body: bytes, headers: dict[str, str]) -> str:
    """The outcome label of a seamless answer; AssertionError if it is not the protocol's."""
    if status == 401:
        assert body == b""
        assert headers.get("www-authenticate", "").lower().startswith("basic")
        return "401"
    assert status in (200, 413, 429), status
    data = _json(body)
    assert isinstance(data, dict), body[:200]
    if "errorCode" in data:
        assert data["errorCode"] in SEAMLESS_CODES, data
        assert isinstance(data["errorDescription"], str)
        assert set(data) == {"errorCode", "errorDescription"}
        return str(data["errorCode"])
    assert status == 200
    return "success"


def check_hrg(status: int, body: bytes, headers: dict[str, str]) -> str:
    """The outcome label of an HRG answer."""
    assert status in (200, 401, 413, 429), status
    data = _json(body)
    assert isinstance(data, dict), body[:200]
    code = data.get("code")
    assert code in HRG_STATUS, data
    if code == "0000":
        assert isinstance(data.get("data"), dict), data
    else:
        assert isinstance(data.get("desc"), str), data
        assert "data" not in data
    assert (status == 401) == (code == "1001"), (status, code)
    return str(code)


def check_jdb(status: int, body: bytes, headers: dict[str, str]) -> str:
    """The outcome label of a JDB answer."""
    assert status in (200, 400, 405, 413), status
    data = _json(body)
    assert isinstance(data, dict), body[:200]
    code = data.get("status")
    assert code in JDB_STATUS, data
    if code != "0000":
        assert isinstance(data.get("err_text"), str), data
    return str(code)


PROTOCOLS: dict[str, tuple[str, Check]] = {
    "seamless": ("/wallet/", check_seamless),
    "hrg": ("/api/", check_hrg),
    "jdb": ("/apiRequest.do", check_jdb),
}


def _prepare(protocol: str, case: Case[Any], world: World, real_ids: bool) -> None:
    """Give the generated request valid credentials and, when ``real_ids``, the identifiers
    of real things (token, agent, user, domain) wherever the generated body has those fields,
    so that the handlers' deeper paths are reached too. The rest stays as generated."""
    headers = case.headers  # always a dict here (schemathesis makes one per case)
    body = case.body if isinstance(case.body, dict) else {}
    if protocol == "seamless":
        headers["Authorization"] = world.seamless[0].auth()
        if real_ids and "token" in body:
            body["token"] = world.seamless[0].token
    elif protocol == "hrg":
        headers["Authorization"] = world.hrg[0].auth()
        headers["xts"] = xts(int(datetime.now(UTC).timestamp() * 1000))
        if real_ids:
            for field, value in (("agentId", world.hrg[0].agent), ("userId", world.hrg[0].user)):
                if field in body:
                    body[field] = value
    elif real_ids:
        for container in (case.query or {}, body):
            if "dc" in container:
                container["dc"] = world.jdb[0].dc


def _report(protocol: str, outcomes: Counter[str], cases: int) -> None:
    path = os.environ.get("GAMEWALLET_FUZZ_REPORT")
    if not path:
        return
    report = Path(path)
    data = json.loads(report.read_text()) if report.exists() else {}
    data[f"openapi:{protocol}"] = {"cases": cases, "outcomes": dict(outcomes.most_common())}
    report.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_generated_requests_get_the_protocols_answers(
    live: tuple[LiveServer, World, Any], protocol: str
) -> None:
    server, world, schema = live
    prefix, check = PROTOCOLS[protocol]
    operations = [
        result.ok() for result in schema.get_all_operations() if result.ok().path.startswith(prefix)
    ]
    assert operations, f"no {protocol} operation in the OpenAPI description"
    target = cases_per_protocol()
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    per_run = math.ceil(target / (len(operations) * len(modes)))
    outcomes: Counter[str] = Counter()
    session = requests.Session()
    sent = 0
    for operation in operations:
        for mode in modes:

            @settings(
                max_examples=per_run,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Case[Any]) -> None:
                nonlocal sent
                _prepare(protocol, case, world, real_ids=sent % 2 == 0)
                response = case.call(base_url=server.url, session=session, timeout=10)
                sent += 1
                flat = {k.lower(): v[0] if v else "" for k, v in response.headers.items()}
                try:
                    label = check(response.status_code, response.content, flat)
                except AssertionError as exc:
                    raise AssertionError(
                        f"{case.method} {case.path} -> {response.status_code} "
                        f"{response.content[:300]!r}: {exc}"
                    ) from exc
                outcomes[label] += 1

            run()
    session.close()
    _report(protocol, outcomes, sent)
    assert sent >= min(target, 1), sent
    assert outcomes, "nothing was answered"
