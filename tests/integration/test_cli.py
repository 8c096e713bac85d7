"""The ``gamewallet`` command against real databases (SQLite file and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gamewallet.cli import main
from gamewallet.service import jdb
from gamewallet.store import migrate, open_store, ops
from gamewallet.store.port import do


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cli.db"
    url: str = request.getfixturevalue("pg_url")
    return url


def gw(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"GAMEWALLET_DATABASE_URL": url})


def gwj(url: str, *args: str) -> dict[str, object]:
    result = gw(url, "--json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.output.strip().splitlines()[-1])
    return data


def test_cli_end_to_end(db_url: str) -> None:
    assert gw(db_url, "db", "upgrade").exit_code == 0
    added = gwj(
        db_url,
        "client",
        "add",
        "seamless",
        "game1",
        "--username",
        "u1",
        "--password",
        "p1",
        "--allow-ip",
        "10.0.0.0/8",
        "--game-url",
        "https://g.example/?t={token}",
    )
    assert added["protocol"] == "seamless"
    assert added["config"] == {
        "allow_ips": ["10.0.0.0/8"],
        "game_url": "https://g.example/?t={token}",
    }
    jdb = gwj(
        db_url,
        "client",
        "add",
        "jdb",
        "jb",
        "--parent",
        "ag",
        "--key",
        "0123456789abcdef",
        "--iv",
        "fedcba9876543210",
        "--currency",
        "RMB",
        "--credit-limit",
        "500",
    )
    config = jdb["config"]
    assert isinstance(config, dict)
    assert config["aes_key"] == "01************ef"  # never printed back in full
    assert jdb["creditLimit"] == "500"
    gwj(
        db_url,
        "client",
        "add",
        "hrg",
        "hrgag",
        "--client-id",
        "c1",
        "--client-secret",
        "s1",
        "--currency",
        "THB",
    )

    player = gwj(
        db_url, "player", "add", "game1", "alice", "--currency", "XAG", "--balance", "52030.5"
    )
    assert player["balance"] == "52030.5"
    assert gwj(db_url, "player", "block", "game1", "alice")["blocked"] is True
    assert gwj(db_url, "player", "unblock", "game1", "alice")["blocked"] is False
    assert gwj(db_url, "balance", "game1", "alice")["balance"] == "52030.5"
    session = gwj(db_url, "session", "open", "game1", "alice", "--ttl-s", "60")
    assert session["launchUrl"] == f"https://g.example/?t={session['token']}"

    # The JDB client has a credit limit of 500: funding 600 would pass it.
    refused = gw(db_url, "player", "add", "jb", "bob", "--currency", "RMB", "--balance", "600")
    assert refused.exit_code == 1
    assert gwj(db_url, "audit") == {"ok": True, "violations": []}

    listed = gwj(db_url, "client", "list")["clients"]
    assert isinstance(listed, list)
    assert "s1" not in json.dumps(listed)


def _launch(url: str, uid: str, game: str) -> None:
    """JDB action 11 for ``uid`` of the only JDB client, straight on the database."""

    async def run() -> None:
        store = open_store(url)
        await store.start()
        try:
            clients = await store.run(do(ops.ListClients()))
            (dc,) = [c for c in clients if c.protocol == "jdb"]
            await store.run(jdb.launch(dc, uid, game, int(time.time() * 1000)))
        finally:
            await store.close()

    asyncio.run(run())


def test_cli_ends_a_jdb_game(db_url: str) -> None:
    assert gw(db_url, "db", "upgrade").exit_code == 0
    key = ("--key", "0123456789abcdef", "--iv", "fedcba9876543210")
    gwj(db_url, "client", "add", "jdb", "jb", "--parent", "ag", *key, "--currency", "RMB")
    gwj(db_url, "player", "add", "jb", "carol", "--currency", "RMB", "--balance", "10")
    idle = gw(db_url, "player", "end-game", "jb", "carol")
    assert idle.exit_code == 0
    assert "player carol is not in a game" in idle.output
    _launch(db_url, "carol", "18:0")
    assert gwj(db_url, "balance", "jb", "carol")["inGame"] == "18:0"
    ended = gw(db_url, "player", "end-game", "jb", "carol")
    assert ended.exit_code == 0
    assert "player carol left game 18:0" in ended.output
    assert gwj(db_url, "balance", "jb", "carol")["inGame"] is None
    assert gw(db_url, "player", "end-game", "jb", "nobody").exit_code == 1
    assert gw(db_url, "player", "end-game", "no-such-client", "carol").exit_code == 1


def test_cli_refuses_bad_input(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bad.db"
    gwj(
        url,
        "client",
        "add",
        "hrg",
        "ag",
        "--client-id",
        "c",
        "--client-secret",
        "s",
        "--currency",
        "THB",
    )
    for args in (
        (
            "client",
            "add",
            "hrg",
            "ag",
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--currency",
            "THB",
        ),  # duplicate
        (
            "client",
            "add",
            "hrg",
            "ag2",
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--currency",
            "thb",
        ),
        (
            "client",
            "add",
            "jdb",
            "jb",
            "--parent",
            "p",
            "--key",
            "short",
            "--iv",
            "x" * 16,
            "--currency",
            "RMB",
        ),
        ("player", "add", "ag", "p1", "--currency", "THB", "--balance", "1.00001"),
        ("player", "add", "nobody", "p1", "--currency", "THB"),
        ("balance", "ag", "ghost"),
    ):
        result = gw(url, "--json", *args)
        assert result.exit_code != 0, args
        assert "error" in result.output


def test_audit_reports_a_corrupted_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/audit.db"
    gwj(
        url,
        "client",
        "add",
        "hrg",
        "ag",
        "--client-id",
        "c",
        "--client-secret",
        "s",
        "--currency",
        "THB",
    )
    gwj(url, "player", "add", "ag", "p1", "--currency", "THB", "--balance", "10")
    with sqlite3.connect(f"{tmp_path}/audit.db") as conn:
        conn.execute(
            "UPDATE accounts SET posted_minor = posted_minor + 1 WHERE owner_kind='player'"
            " AND bucket='cash'"
        )
    result = gw(url, "audit")
    assert result.exit_code == 1
    assert "ledger audit FAILED" in result.output
    assert "posted balances sum to 1" in result.output


def test_demo_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    first = gwj(url, "demo")
    second = gwj(url, "demo")
    seamless = first["seamless"]
    assert isinstance(seamless, dict)
    assert seamless["token"] != second["seamless"]["token"]  # type: ignore[index]
    assert gwj(url, "balance", "hrgag", "hrgpl0001")["freeCredit"] == "50"
    assert gwj(url, "balance", "demo-game", "player1")["balance"] == "52030"
    text = gw(url, "demo").output
    assert "curl -s -u demo:demo-pass" in text
    assert gwj(url, "audit")["ok"] is True


def test_migrations_apply_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    migrate.upgrade(url)
    migrate.upgrade(url)
    with sqlite3.connect(f"{tmp_path}/m.db") as conn:
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == migrate.current_head()
