"""Observability: request ids on every response, /metrics, /readyz, redaction of secrets,
and, against a real server, JSON logs with a request id on every request line and no secret
anywhere, with metrics added up across two worker processes."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, get

from gamewallet import demo
from gamewallet.observability import (
    Metrics,
    instrument,
    protocol_of,
    redact,
    request_id,
    set_endpoint,
    set_result_code,
)
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import open_store, ops
from gamewallet.store.port import do

from .conftest import OPERATOR_TOKEN, Desk, basic
from .live import server

# --- the observer on a bare app --------------------------------------------------------------


def _bare_app(metrics: Metrics) -> Litestar:
    @get("/wallet/ok", sync_to_thread=False)
    def ok() -> dict[str, str | None]:
        set_result_code("0000")
        set_endpoint("action19")
        return {"rid": request_id()}

    @get("/wallet/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("unexpected")

    app = Litestar([ok, boom], debug=False, logging_config=None)
    instrument(app, metrics)
    return app


async def test_every_response_has_a_request_id_and_is_counted() -> None:
    metrics = Metrics()
    app: Any = _bare_app(metrics)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        ok = await http.get("/wallet/ok")
        assert ok.json()["rid"] == ok.headers["x-request-id"]
        given = await http.get("/wallet/ok", headers={"X-Request-ID": "abc-123.x"})
        assert given.headers["x-request-id"] == "abc-123.x"
        assert given.json()["rid"] == "abc-123.x"
        hostile = await http.get("/wallet/ok", headers={"X-Request-ID": "a b;" + "x" * 80})
        assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])
        missing = await http.get("/nowhere")
        assert missing.status_code == 404
        assert missing.headers["x-request-id"]
        failed = await http.get("/wallet/boom")
        assert failed.status_code == 500
        assert failed.headers["x-request-id"]
        assert "unexpected" not in failed.text
    text = metrics.render().decode()
    assert (
        'gamewallet_requests_total{endpoint="action19",protocol="seamless",result="0000"} 3.0'
        in text
    )
    assert 'gamewallet_requests_total{endpoint="unmatched",protocol="other",result="404"}' in text
    assert 'endpoint="/wallet/boom",protocol="seamless",result="500"} 1.0' in text
    assert 'gamewallet_request_duration_seconds_bucket{endpoint="action19"' in text
    assert 'gamewallet_requests_in_progress{protocol="seamless"} 0.0' in text


def test_protocol_of_paths() -> None:
    assert protocol_of("/wallet/withdraw") == "seamless"
    assert protocol_of("/api/deposit") == "hrg"
    assert protocol_of("/apiRequest.do") == "jdb"
    assert protocol_of("/admin/api/players") == "admin"
    assert protocol_of("/metrics") == "other"


def test_redact_replaces_every_secret_value_at_any_depth() -> None:
    event: dict[str, Any] = {
        "event": "call",
        "Authorization": "Basic dTpw",
        "password": "hunter2",
        "client_secret": "s3",
        "x": "RK3wn-eTsqaq",
        "aes_key": "0123456789abcdef",
        "body": {"token": "t-1", "amount": "10", "nested": {"aesIv": 1, "csrf_token": "c"}},
        "headers": [(b"authorization", b"Bearer gwa_x"), (b"x-request-id", b"r")],
        "reason": "kept",
    }
    out = redact(None, "info", event)
    text = json.dumps(out, default=str)
    for secret in ("dTpw", "hunter2", "s3", "RK3wn", "0123456789abcdef", "t-1", "gwa_x"):
        assert secret not in text
    assert out["body"]["amount"] == "10"
    assert out["body"]["nested"]["csrf_token"] == "[redacted]"
    assert out["headers"][1] == (b"x-request-id", b"r")
    assert out["reason"] == "kept"
    assert out["event"] == "call"


# --- the whole app ---------------------------------------------------------------------------


async def test_metrics_count_protocol_results_and_read_the_database(desk: Desk) -> None:
    token = desk.sessions["p1"]
    body = {"token": token, "mmTransactionId": "m1", "amount": {"amount": 1, "currencyCode": "XAG"}}
    await desk.wallet("withdraw", body)
    await desk.wallet(
        "withdraw",
        {**body, "mmTransactionId": "m2", "amount": {"amount": 999, "currencyCode": "XAG"}},
    )
    await desk.http.post("/wallet/getBalance", json={"token": token})  # no credentials: 401
    now = desk.clock.now_ms()
    await desk.services.store.run(do(ops.Enqueue("payment_callback", None, None, {}, now, now)))
    text = (await desk.http.get("/metrics")).text
    withdraws = re.findall(
        r'gamewallet_requests_total\{endpoint="/wallet/withdraw",protocol="seamless",'
        r'result="([^"]+)"\} (\d+)\.0',
        text,
    )
    assert sum(int(n) for _, n in withdraws) == 2
    assert "106" in {result for result, _ in withdraws}  # insufficient funds, named by the route
    assert 'gamewallet_requests_total{endpoint="/wallet/getBalance",protocol="seamless"' in text
    assert "gamewallet_db_up 1.0" in text
    assert 'gamewallet_open_operations{currency="XAG",state="held"} 1.0' in text
    assert 'gamewallet_open_operations_amount{currency="XAG",state="held"} 1.0' in text
    assert 'gamewallet_outbox_messages{state="pending"} 1.0' in text
    assert 'gamewallet_outbox_messages{state="dead"} 0.0' in text
    assert 'gamewallet_db_pool{stat="max"}' in text
    assert 'gamewallet_oldest_open_operation_age_seconds{state="held"} 0.0' in text


def _counter(text: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{name}_total{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name}_total{labels} is not on /metrics"
    return float(found.group(1))


async def test_metrics_count_the_group_commits_and_checkpoints_of_the_store(desk: Desk) -> None:
    token = desk.sessions["p1"]
    for n in range(5):
        body = {
            "token": token,
            "mmTransactionId": f"g{n}",
            "amount": {"amount": 1, "currencyCode": "XAG"},
        }
        assert "errorCode" not in await desk.wallet("withdraw", body)
    text = (await desk.http.get("/metrics")).text
    after = desk.services.store.commit_stats()  # type: ignore[attr-defined]
    commits = _counter(text, "gamewallet_db_group_commits")
    carried = _counter(text, "gamewallet_db_group_commit_calls")
    assert commits <= carried <= after["batched_calls"]
    if "sqlite" in desk.services.settings.database_url:
        assert 5 <= commits <= after["batches"]  # every call is in some writer transaction
        assert "gamewallet_db_single_calls_total" not in text
        for mode in ("PASSIVE", "RESTART", "TRUNCATE"):
            seen = _counter(text, "gamewallet_sqlite_wal_checkpoints", f'{{mode="{mode}"}}')
            assert seen <= after[f"wal_{mode.lower()}"]
        waited = _counter(text, "gamewallet_sqlite_write_turn_wait_seconds")
        assert 0 <= waited <= after["write_turn_wait_us"] / 1_000_000
        flushed = _counter(text, "gamewallet_sqlite_wal_flush_seconds")
        assert 0 <= flushed <= after["flush_before_restart_us"] / 1_000_000
    else:
        # Five calls one after another: each goes on its own statement (nothing to batch with).
        single = _counter(text, "gamewallet_db_single_calls")
        assert 5 <= carried + single <= after["batched_calls"] + after["single_calls"]
        assert "gamewallet_sqlite_wal_checkpoints" not in text
        assert "gamewallet_sqlite_write_turn" not in text
        assert "gamewallet_sqlite_wal_flush" not in text


async def test_readyz_is_503_when_the_database_is_unreachable(
    desk: Desk, settings: Settings
) -> None:
    assert (await desk.http.get("/readyz")).status_code == 200
    await desk.services.store.close()
    try:
        response = await desk.http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert response.headers["x-request-id"]
        metrics = (await desk.http.get("/metrics")).text
        assert "gamewallet_db_up 0.0" in metrics
    finally:
        await desk.services.store.start()


async def test_readyz_is_503_when_postgresql_refuses_connections() -> None:
    url = "postgresql://postgres@127.0.0.1:1/none"  # nothing listens on port 1
    services = Services(Settings(database_url=url, ready_timeout_s=2.0), open_store(url))
    from gamewallet.app import create_app

    app: Any = create_app(services, manage_store=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503


# --- a real server ---------------------------------------------------------------------------


async def _seed(url: str) -> dict[str, Any]:
    services = Services(Settings(database_url=url), open_store(url))
    await services.start()
    try:
        return await demo.ensure(services)
    finally:
        await services.close()


@pytest.mark.slow
def test_a_real_server_logs_json_lines_without_secrets_and_sums_metrics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    from gamewallet.store import migrate

    migrate.upgrade(url)
    summary = asyncio.run(_seed(url))
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    log = tmp_path / "server.log"
    sm, jd = summary["seamless"], summary["jdb"]
    env = {"GAMEWALLET_LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    with server(url, log, env=env, workers=2) as base, httpx.Client(base_url=base) as http:
        auth = {"Authorization": basic(sm["username"], sm["password"])}
        for _ in range(6):
            reply = http.post("/wallet/getBalance", json={"token": sm["token"]}, headers=auth)
            assert reply.status_code == 200
        http.get("/apiRequest.do", params={"dc": jd["dc"], "x": "SECRETPAYLOAD"})
        http.get("/admin/api/me", headers={"Authorization": "Bearer gwa_notatoken_secret"})
        http.post(
            "/admin/login",
            data={"username": "admin", "password": "admin-demo-wrong", "csrf_token": "c"},
        )
        http.get("/nowhere", headers={"X-Request-ID": "trace-42"})
        # Each scrape may land on either process; in multiprocess mode each sees both.
        for _ in range(4):
            metrics = http.get("/metrics").text
            found = re.search(
                r'gamewallet_requests_total\{endpoint="/wallet/getBalance",protocol="seamless",'
                r'result="([^"]+)"\} (\d+)\.0',
                metrics,
            )
            assert found is not None, metrics[:2000]
            assert int(found.group(2)) == 6
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    requests = [r for r in records if r.get("event") == "request"]
    assert len(requests) >= 6 + 4 + 4
    assert all(re.fullmatch(r"[\w.:-]{1,64}", r["request_id"]) for r in requests)
    assert any(r["request_id"] == "trace-42" and r["status"] == 404 for r in requests)
    for secret in (
        sm["password"],
        sm["token"],
        "SECRETPAYLOAD",
        "gwa_notatoken_secret",
        "admin-demo-wrong",
        jd["key"],
    ):
        assert secret not in log.read_text(), secret
    assert {r["protocol"] for r in requests} >= {"seamless", "jdb", "admin", "other"}


@pytest.mark.slow
def test_the_cli_makes_users_and_tokens_that_work(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gamewallet.cli import main

    url = f"sqlite:///{tmp_path}/gw.db"
    runner = CliRunner()
    env = {"GAMEWALLET_DATABASE_URL": url}
    made = runner.invoke(
        main, ["--json", "admin", "create-user", "ann", "--role", "viewer", "--generate"], env=env
    )
    assert made.exit_code == 0, made.output
    password = json.loads(made.output)["password"]
    assert len(password) >= 16
    typed = runner.invoke(
        main,
        ["admin", "create-user", "bob", "--role", "operator", "--password", "bob-password-1"],
        env=env,
    )
    assert typed.exit_code == 0
    assert "bob-password-1" not in typed.output
    short = runner.invoke(
        main, ["admin", "create-user", "cy", "--role", "viewer", "--password", "short"], env=env
    )
    assert short.exit_code == 1
    again = runner.invoke(
        main,
        ["admin", "create-user", "bob", "--role", "viewer", "--password", "bob-password-2"],
        env=env,
    )
    assert again.exit_code == 1
    assert "exists" in again.output
    token_out = runner.invoke(main, ["--json", "admin", "create-token", "nightly"], env=env)
    token = json.loads(token_out.output)["token"]
    assert token.startswith("gwa_")
    listed = runner.invoke(main, ["--json", "admin", "list"], env=env)
    assert token not in listed.output
    assert password not in listed.output
    assert [u["name"] for u in json.loads(listed.output)["users"]] == ["ann", "bob"]
    log = tmp_path / "server.log"
    with server(url, log) as base, httpx.Client(base_url=base) as http:
        me = http.get("/admin/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json() == {"actor": "token:nightly", "role": "viewer", "via": "token"}
        revoked = runner.invoke(main, ["admin", "revoke-token", "nightly"], env=env)
        assert revoked.exit_code == 0
        refused = http.get("/admin/api/me", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401
        assert OPERATOR_TOKEN  # (another token format, used by the in-process tests)
