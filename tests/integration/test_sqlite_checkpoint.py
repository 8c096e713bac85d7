"""The SQLite store's WAL checkpointer and its ``synchronous`` setting, on real files.

The writer connection never checkpoints (``wal_autocheckpoint=0``); the checkpointer thread
must keep the WAL bounded under a stream of commits, truncate it when idle, stop with the store,
and never lose or hide a committed row from other connections and processes reading the file.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gamewallet.settings import Settings
from gamewallet.store import open_store, ops, sqlite_checkpoint
from gamewallet.store.port import do
from gamewallet.store.sqlite import CACHE_MAX_KIB, WAL_SIZE_LIMIT, SqliteStore, cache_kib
from gamewallet.store.sqlite_checkpoint import RESTART_FRAMES, WalCheckpointer, wal_size

PAGE = 4096
#: A value of about half a page: every committed row dirties at least one fresh page.
VALUE = "v" * 2000


async def write_batch(store: SqliteStore, prefix: str, n: int = 32) -> None:
    """``n`` rows written concurrently, so the writer commits them as one group."""
    calls = [store.run(do(ops.SetMetaIfAbsent(f"{prefix}-{i}", VALUE))) for i in range(n)]
    assert await asyncio.gather(*calls) == [VALUE] * n


async def write_until_restarted(
    store: SqliteStore, prefix: str, *, restarts: int, at_least: int = 0
) -> int:
    """Batches back to back (``prefix`` + round) until the writer has started the WAL over
    ``restarts`` times and ``at_least`` batches are in (bounded); the batches written."""
    assert store.checkpointer is not None
    rounds = 0
    while rounds < at_least or store.checkpointer.runs["RESTART"] < restarts:
        await write_batch(store, f"{prefix}{rounds}")
        rounds += 1
        assert rounds < 3000, store.checkpointer.runs
    return rounds


async def checkpointed(store: SqliteStore, mode: str, before: int) -> None:
    """Wait (bounded) until the checkpointer has run ``mode`` more than ``before`` times."""
    assert store.checkpointer is not None
    for _ in range(1000):
        if store.checkpointer.runs[mode] > before:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {mode} checkpoint ran: {store.checkpointer.runs}")


def count_rows(path: Path, prefix: str) -> int:
    conn = sqlite3.connect(path)
    try:
        (n,) = conn.execute(
            "SELECT count(*) FROM meta WHERE key LIKE ?", (prefix + "%",)
        ).fetchone()
        return int(n)
    finally:
        conn.close()


def checkpointer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "gamewallet-sqlite-checkpoint"]


# --- synchronous -----------------------------------------------------------------------

LEVELS = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}


@pytest.mark.parametrize("level", ["OFF", "normal", "FULL", "Extra"])
async def test_the_configured_synchronous_is_in_effect(tmp_path: Path, level: str) -> None:
    settings = Settings.from_env({"GAMEWALLET_SQLITE_SYNCHRONOUS": level})
    store = open_store(
        f"sqlite:///{tmp_path}/gw.db", sqlite_synchronous=settings.sqlite_synchronous
    )
    assert isinstance(store, SqliteStore)
    await store.start()
    try:
        assert store.pragmas["synchronous"] == LEVELS[level.upper()]
        assert store.pragmas["wal_autocheckpoint"] == 0
    finally:
        await store.close()


def test_the_default_is_full(tmp_path: Path) -> None:
    store = open_store(
        f"sqlite:///{tmp_path}/gw.db", sqlite_synchronous=Settings().sqlite_synchronous
    )
    assert isinstance(store, SqliteStore)
    assert store._synchronous == "FULL"


@pytest.mark.parametrize("value", ["", "2", "ON", "FULL;", "normal sync"])
def test_an_unknown_synchronous_is_refused_before_anything_opens(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ValueError, match="OFF, NORMAL, FULL, EXTRA"):
        open_store(f"sqlite:///{tmp_path}/gw.db", sqlite_synchronous=value)
    assert not (tmp_path / "gw.db").exists()


def test_the_server_refuses_an_unknown_synchronous_at_start(tmp_path: Path) -> None:
    env = {"GAMEWALLET_DATABASE_URL": f"sqlite:///{tmp_path}/gw.db"}
    code = "from gamewallet.app import app_factory; app_factory()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "GAMEWALLET_SQLITE_SYNCHRONOUS": "SOMETIMES", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "SQLite synchronous must be one of OFF, NORMAL, FULL, EXTRA" in done.stderr


# --- the checkpointer -------------------------------------------------------------------


async def test_the_wal_stays_bounded_under_a_stream_of_commits(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = SqliteStore(
        f"sqlite:///{path}", synchronous="NORMAL", checkpoint_interval_s=0.01, wal_restart_frames=64
    )
    await store.start()
    try:
        assert store.checkpointer is not None
        for round_ in range(40):
            runs = store.checkpointer.runs["PASSIVE"]
            await write_batch(store, f"r{round_}")
            await checkpointed(store, "PASSIVE", runs)
        written = 40 * 32 * len(VALUE)
        # Without checkpoints the WAL would hold every page written (> 2.5 MB); with them it
        # starts over after each batch and never holds much more than one batch.
        assert wal_size(str(path)) < 200 * PAGE < written
        assert count_rows(path, "r") == 40 * 32
    finally:
        await store.close()


async def test_a_busy_writer_cannot_outgrow_the_restart_bound(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = SqliteStore(
        f"sqlite:///{path}", synchronous="OFF", checkpoint_interval_s=0.01, wal_restart_frames=64
    )
    await store.start()
    try:
        # No pause between batches: the writer is (nearly) always in a transaction, so the WAL
        # only starts over when the checkpointer forces it.
        rounds = await write_until_restarted(store, "s", restarts=1, at_least=300)
        written = rounds * 32 * len(VALUE)  # 19 MB or more
        # The file's size is the WAL's high-water mark: the pages written between two
        # checkpoints at most, which is far from everything written.
        assert wal_size(str(path)) < written / 4
        assert count_rows(path, "s") == rounds * 32
    finally:
        await store.close()


async def test_an_idle_wal_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = SqliteStore(f"sqlite:///{path}", checkpoint_interval_s=0.01, wal_idle_s=0.05)
    await store.start()
    try:
        assert store.checkpointer is not None
        await write_batch(store, "idle")
        assert wal_size(str(path)) > 0
        await checkpointed(store, "TRUNCATE", store.checkpointer.runs["TRUNCATE"])
        assert wal_size(str(path)) == 0
        assert count_rows(path, "idle") == 32
    finally:
        await store.close()


async def test_close_stops_the_checkpointer_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    url = f"sqlite:///{path}"
    before = len(checkpointer_threads())
    store = SqliteStore(url, checkpoint_interval_s=0.01)
    await store.start()
    assert len(checkpointer_threads()) == before + 1
    for round_ in range(10):
        await write_batch(store, f"c{round_}")
    await store.close()
    assert len(checkpointer_threads()) == before
    assert store.checkpointer is None
    # The last connection closed: SQLite copied the rest into the file and removed the WAL.
    assert wal_size(str(path)) == 0  # (and the file is gone)

    again = SqliteStore(url)
    await again.start()
    try:
        for round_ in range(10):
            for i in range(32):
                assert await again.run(do(ops.GetMeta(f"c{round_}-{i}"))) == VALUE
    finally:
        await again.close()


READER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=10)
last = 0
for _ in range(int(sys.argv[2])):
    # One read transaction: the count and the newest row agree (a consistent snapshot).
    conn.execute("BEGIN")
    (n,) = conn.execute("SELECT count(*) FROM meta WHERE key LIKE 'p%'").fetchone()
    rows = conn.execute("SELECT value FROM meta WHERE key LIKE 'p%'").fetchall()
    conn.execute("COMMIT")
    assert len(rows) == n and all(v == "v" * 2000 for (v,) in rows), n
    assert n >= last, (n, last)
    last = n
print(last)
"""


async def test_readers_in_another_process_and_connection_see_consistent_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gw.db"
    store = SqliteStore(
        f"sqlite:///{path}", synchronous="NORMAL", checkpoint_interval_s=0.01, wal_restart_frames=64
    )
    await store.start()
    reader = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        READER,
        str(path),
        "300",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # A connection of this process holds a snapshot for a while: the WAL cannot start over
    # past it, and nothing it reads may change under it.
    held = sqlite3.connect(path, check_same_thread=False)
    try:
        held.execute("BEGIN")
        (seen,) = held.execute("SELECT count(*) FROM meta WHERE key LIKE 'p%'").fetchone()
        for round_ in range(30):
            await write_batch(store, f"p{round_}")
            if round_ == 15:
                (still,) = held.execute("SELECT count(*) FROM meta WHERE key LIKE 'p%'").fetchone()
                assert still == seen
                held.execute("COMMIT")
        out, err = await asyncio.wait_for(reader.communicate(), 120)
        assert reader.returncode == 0, err.decode()
        assert 0 <= int(out) <= 30 * 32
        assert count_rows(path, "p") == 30 * 32
    finally:
        held.close()
        if reader.returncode is None:
            reader.kill()
            await reader.wait()
        await store.close()


# --- the page cache ------------------------------------------------------------------------


def test_the_page_cache_follows_the_size_of_the_database() -> None:
    assert cache_kib(0) == 2000  # SQLite's default: a small database's RSS stays as it was
    assert cache_kib(100 * 2**20) == 2000
    assert cache_kib(1 * 2**30) == 4096  # about 1/256 of the file
    assert cache_kib(5 * 10**9) == CACHE_MAX_KIB


async def test_a_new_database_gets_the_default_page_cache(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path}/gw.db")
    await store.start()
    try:
        assert store.pragmas["cache_size"] == -2000
    finally:
        await store.close()


# --- the writer's restart and the checkpointer's own checkpoints ---------------------------


def test_a_due_restart_holds_back_the_passive_checkpoint_for_a_bounded_number_of_rounds() -> None:
    checkpointer = WalCheckpointer(":memory:", restart_wait_rounds=3)  # no thread: the test is it
    assert not checkpointer._hold_back_for_restart()  # nothing due: checkpoint as usual
    checkpointer.restart_due = True
    assert [checkpointer._hold_back_for_restart() for _ in range(5)] == [
        True,
        True,
        True,
        False,  # the writer took no batch in time: the checkpointer does not wait for ever
        True,
    ]
    checkpointer.restart_due = False
    assert not checkpointer._hold_back_for_restart()
    checkpointer.restart_due = True
    assert checkpointer._hold_back_for_restart()  # the count starts again after a checkpoint
    assert checkpointer.rounds_held_back == 5


def test_the_restart_clears_the_flag_only_when_it_is_over_and_restores_the_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gw.db"
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("CREATE TABLE t (v TEXT)")
        writer.executemany("INSERT INTO t VALUES (?)", [(VALUE,)] * 50)
        writer.execute("PRAGMA busy_timeout=5000")
        checkpointer = WalCheckpointer(str(path), busy_timeout_ms=100)
        seen_during: list[bool] = []

        def trace(statement: str) -> None:
            if "wal_checkpoint(RESTART)" in statement:
                seen_during.append(checkpointer.restart_due)

        writer.set_trace_callback(trace)
        checkpointer.restart_due = True
        checkpointer.restart(writer, 5000)
        writer.set_trace_callback(None)
        assert seen_during == [True]  # still due while the restart ran: no PASSIVE competes
        assert not checkpointer.restart_due
        assert checkpointer.runs["RESTART"] == 1
        (timeout,) = writer.execute("PRAGMA busy_timeout").fetchone()
        assert timeout == 5000
        (rows,) = writer.execute("SELECT count(*) FROM t").fetchone()
        assert rows == 50
        # The WAL started over: the next commit writes from its beginning.
        writer.execute("INSERT INTO t VALUES ('x')")
        (_busy, frames, _copied) = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert 0 < frames < 10
    finally:
        writer.close()


async def test_a_store_with_commits_from_elsewhere_still_checkpoints_while_a_restart_is_due(
    tmp_path: Path,
) -> None:
    # The restart is the store's writer's to run; when the commits come from another connection
    # and the writer gets no batch, the held-back PASSIVE checkpoint still runs, a few rounds on.
    path = tmp_path / "gw.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (v TEXT)")
    store = SqliteStore(f"sqlite:///{path}", checkpoint_interval_s=0.01)
    await store.start()
    try:
        assert store.checkpointer is not None
        await checkpointed(store, "PASSIVE", 0)  # the first round: everything so far
        store.checkpointer.restart_due = True
        runs = store.checkpointer.runs["PASSIVE"]
        with other:  # one commit
            other.execute("BEGIN")
            other.executemany("INSERT INTO t VALUES (?)", [(VALUE,)] * 20)
        await checkpointed(store, "PASSIVE", runs)
        assert store.checkpointer.rounds_held_back == store.checkpointer.restart_wait_rounds
        assert store.checkpointer.runs["RESTART"] == 0
    finally:
        other.close()
        await store.close()


async def test_a_wal_at_the_restart_bound_is_not_cut_back_when_it_starts_over(
    tmp_path: Path,
) -> None:
    # A WAL file of RESTART_FRAMES frames (each a page plus its 24-byte header, after the
    # 32-byte file header) must fit under journal_size_limit, else every restart truncates the
    # file and the next commits grow it again (block allocation inside the WAL's fsync).
    store = SqliteStore(f"sqlite:///{tmp_path / 'gw.db'}")
    await store.start()
    try:
        at_bound = 32 + RESTART_FRAMES * (PAGE + 24)
        assert int(store.pragmas["journal_size_limit"]) == WAL_SIZE_LIMIT > at_bound * 3 // 2
    finally:
        await store.close()


# --- the flush of the database file before a restart -----------------------------------


@pytest.mark.skipif(
    sys.platform != "linux" or shutil.which("sync") is None, reason="needs Linux's sync -d"
)
def test_flush_file_syncs_a_file_and_says_when_it_could_not(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"x" * PAGE)
    assert sqlite_checkpoint.flush_file(str(path))
    assert not sqlite_checkpoint.flush_file(str(tmp_path / "absent"))  # sync fails: False


def test_flush_file_without_the_command_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"x" * PAGE)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert not sqlite_checkpoint.flush_file(str(path))


async def test_a_due_restart_is_preceded_by_a_flush_of_the_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flush runs on the checkpointer's thread before it flags the restart, so the writer's
    # restart (whose own fsync durability rests on) finds little left to write.
    flushed: list[tuple[str, bool]] = []
    real_flush = sqlite_checkpoint.flush_file

    def recording_flush(file: str, timeout_s: float = sqlite_checkpoint.FLUSH_TIMEOUT_S) -> bool:
        assert store.checkpointer is not None
        flushed.append((file, store.checkpointer.restart_due))
        return real_flush(file, timeout_s)

    monkeypatch.setattr(sqlite_checkpoint, "flush_file", recording_flush)
    path = tmp_path / "gw.db"
    store = SqliteStore(
        f"sqlite:///{path}", synchronous="OFF", checkpoint_interval_s=0.01, wal_restart_frames=64
    )
    await store.start()
    try:
        rounds = await write_until_restarted(store, "f", restarts=2)
        assert store.checkpointer is not None
        assert len(flushed) >= store.checkpointer.runs["RESTART"]
        assert all(file == str(path) and not due for file, due in flushed)  # before the flag
        if sys.platform == "linux" and shutil.which("sync") is not None:
            assert store.checkpointer.flushes == len(flushed)
            assert store.commit_stats()["flush_before_restart_us"] > 0
        assert count_rows(path, "f") == rounds * 32
    finally:
        await store.close()
