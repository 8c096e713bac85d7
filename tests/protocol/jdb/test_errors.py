"""The JDB status table: every core error code mapped, the vendor's texts, and every status
the API can produce covered by a test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gamewallet.core.errors import ErrorCode
from gamewallet.protocols.jdb.errors import ERROR_STATUS, STATUS_TEXT, JdbError, status_of

#: Statuses the envelope and concurrency tests produce (test_envelope.py, test_concurrency.py).
TESTED_OUTSIDE_GOLDEN = {
    "0000", "9001", "9002", "9003", "9004", "9005", "9006", "9007", "9012", "9019", "9999",
    "8000", "6005", "6012",
}  # fmt: skip
#: Statuses of protocols.md 3.4 that no action of ours produces (docs/protocols/jdb.md says why).
NEVER_PRODUCED = {"6003", "9013"}


def test_every_core_code_is_mapped() -> None:
    assert set(ERROR_STATUS) == set(ErrorCode)
    for code in ErrorCode:
        assert status_of(code) in STATUS_TEXT


def test_the_table_is_the_vendors() -> None:
    assert len(STATUS_TEXT) == 36
    assert STATUS_TEXT["0000"] == "Succeed"
    assert STATUS_TEXT["9005"] == "Assertion(SAML) didn't pass the timestamp validation"
    assert STATUS_TEXT["9002"] == "Domain is null or the length of domain less than 2"
    assert STATUS_TEXT["6901"] == "User is playing game, and not allow transfer balance"
    assert STATUS_TEXT["6012"] == "Serial no is in progress"
    assert all(len(code) == 4 and code.isdigit() for code in STATUS_TEXT)


def test_money_refusals_map_to_the_vendors_codes() -> None:
    assert status_of(ErrorCode.INSUFFICIENT_FUNDS) == "6001"
    assert status_of(ErrorCode.ZERO_BALANCE) == "6002"
    assert status_of(ErrorCode.ALREADY_COMPLETED) == "6005"
    assert status_of(ErrorCode.CREDIT_LIMIT_EXCEEDED) == "6006"
    assert status_of(ErrorCode.LIMIT_EXCEEDED) == "6009"
    assert status_of(ErrorCode.BALANCE_LIMIT_EXCEEDED) == "6010"
    assert status_of(ErrorCode.IN_PROGRESS) == "6012"
    assert status_of(ErrorCode.PLAYER_IN_GAME) == "6901"


def test_jdb_error() -> None:
    error = JdbError("9998", text="none match uid: [a]", reason="unknown uids")
    assert (error.status, error.text, error.reason) == (
        "9998",
        "none match uid: [a]",
        "unknown uids",
    )
    assert JdbError("8001").text == "The parameter cannot be empty"
    with pytest.raises(AssertionError):
        JdbError("1234")


def test_every_producible_status_is_tested() -> None:
    cases = json.loads((Path(__file__).parent / "golden.json").read_text(encoding="utf-8"))
    golden = {case["response"]["status"] for case in cases}
    tested = golden | TESTED_OUTSIDE_GOLDEN
    assert tested | NEVER_PRODUCED == set(STATUS_TEXT), set(STATUS_TEXT) - tested - NEVER_PRODUCED
    assert not tested & NEVER_PRODUCED
