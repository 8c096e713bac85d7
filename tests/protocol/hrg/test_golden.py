"""Golden cases: HRG requests and the exact responses they must get, as data.

Each file in ``golden/`` is a list of scenarios; a scenario is a list of steps run in order on
a freshly seeded world (see conftest), on SQLite and on PostgreSQL. A step names the endpoint
(``call``) and a JSON ``body`` (or a ``raw`` body, or ``raw_size`` bytes of padding), and may
change the caller: ``agent`` (whose credentials), ``credentials`` ([id, secret]) or a literal
``authorization`` (null = no header), ``xts`` (literal, null = no header) or ``xts_offset_s``;
``advance_s`` moves the clock first; ``inject: "store_error"`` makes the store fail.
``expect`` is the exact JSON answer, where ``<uuid>`` inside a string matches a UUID;
``status`` the HTTP status (default 200, or 401 for 1001); ``same_bytes_as`` names the
``label`` of an earlier step whose body must be repeated byte for byte.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gamewallet.protocols.hrg.errors import STATUS
from gamewallet.protocols.hrg.schemas import xts
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.store.port import StoreError

from .conftest import Api, World, basic

GOLDEN = Path(__file__).parent / "golden"
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _scenarios() -> list[Any]:
    return [
        pytest.param(scenario, id=f"{path.stem}:{scenario['name']}")
        for path in sorted(GOLDEN.glob("*.json"))
        for scenario in json.loads(path.read_text())
    ]


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) and "<uuid>" in expected and isinstance(actual, str):
        pattern = "".join(
            UUID if part == "<uuid>" else re.escape(part) for part in re.split("(<uuid>)", expected)
        )
        return re.fullmatch(pattern, actual) is not None
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            _matches(expected[k], actual[k]) for k in expected
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            _matches(e, a) for e, a in zip(expected, actual, strict=True)
        )
    return bool(expected == actual and type(expected) is type(actual))


def _body(step: dict[str, Any]) -> dict[str, Any] | bytes:
    if "raw" in step:
        return str(step["raw"]).encode()
    if "raw_size" in step:
        size = int(step["raw_size"])
        head = b'{"agentId":"hrgag","pad":"'
        return head + b"x" * (size - len(head) - 2) + b'"}'
    body: dict[str, Any] = step["body"]
    return body


def _headers(step: dict[str, Any], clock: FakeClock) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if "agent" in step:
        headers["agent"] = step["agent"]
    if "credentials" in step:
        headers["authorization"] = basic(*step["credentials"])
    if "authorization" in step:
        headers["authorization"] = step["authorization"]
    if "xts" in step:
        headers["xts_header"] = step["xts"]
    if "xts_offset_s" in step:
        headers["xts_header"] = xts(clock.now_ms() + int(step["xts_offset_s"]) * 1000)
    return headers


async def _failing_run(*args: Any, **kwargs: Any) -> Any:
    for arg in args:
        close = getattr(arg, "close", None)
        if close is not None:
            close()
    raise StoreError("injected failure")


@pytest.mark.parametrize("scenario", _scenarios())
async def test_golden(
    scenario: dict[str, Any],
    api: Api,
    clock: FakeClock,
    services: Services,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every step of the scenario gets exactly its expected answer."""
    seen: dict[str, bytes] = {}
    for index, step in enumerate(scenario["steps"]):
        clock.advance(float(step.get("advance_s", 0)))
        with monkeypatch.context() as patch:
            if step.get("inject") == "store_error":
                patch.setattr(services.store, "run", _failing_run)
            status, answer, raw = await api.call(step["call"], _body(step), **_headers(step, clock))
        where = f"{scenario['name']} step {index} ({step['call']})"
        expected = step["expect"]
        default_status = 401 if expected.get("code") == "1001" else 200
        assert status == step.get("status", default_status), f"{where}: HTTP {status} {answer}"
        assert _matches(expected, answer), f"{where}: got {json.dumps(answer)}"
        if "same_bytes_as" in step:
            assert raw == seen[step["same_bytes_as"]], f"{where}: not a byte-exact replay"
        if "label" in step:
            seen[step["label"]] = raw


def test_every_status_code_has_a_golden_case() -> None:
    """Each code of spec 2.3 is produced by at least one golden step."""
    produced = {
        step["expect"]["code"]
        for path in GOLDEN.glob("*.json")
        for scenario in json.loads(path.read_text())
        for step in scenario["steps"]
    }
    assert produced == set(STATUS)
