"""The write turn of SQLite stores that share one database file (store/sqlite_writelock.py).

A store's writer waits for the turn another holder has, in the kernel, and runs as soon as it
is let go; two holders that both want it take it in turns; two stores of one file (as two
server processes have) commit every call between them.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from gamewallet.store import ops
from gamewallet.store.port import StoreError, do
from gamewallet.store.sqlite import SqliteStore
from gamewallet.store.sqlite_writelock import GATE_SUFFIX, TURN_SUFFIX, WriteTurn

HOLD_S = 0.3


def _turn(path: Path) -> WriteTurn:
    turn = WriteTurn(str(path))
    turn.open()
    return turn


async def test_a_store_waits_for_the_turn_another_holds_and_then_commits(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = SqliteStore(f"sqlite:///{path}")
    await store.start()
    other = _turn(path)
    try:
        with other.held():
            pending = asyncio.ensure_future(store.run(do(ops.SetMetaIfAbsent("k", "v"))))
            await asyncio.sleep(HOLD_S)
            assert not pending.done(), "the store wrote while another holder had the turn"
        assert await asyncio.wait_for(pending, 5) == "v"
        assert store.commit_stats()["write_turn_wait_us"] >= HOLD_S * 0.8 * 1_000_000
    finally:
        other.close()
        await store.close()
    assert (tmp_path / f"gw.db{TURN_SUFFIX}").exists()
    assert (tmp_path / f"gw.db{GATE_SUFFIX}").exists()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_a_holder_that_asks_again_goes_after_the_one_waiting(tmp_path: Path) -> None:
    """On one CPU the holder that lets go runs on and asks again before the kernel has run
    the waiter it woke: with a plain lock the holder won every time (20 of 20); the gate
    makes it wait for the waiter's turn."""
    path = tmp_path / "gw.db"
    first, second = _turn(path), _turn(path)
    order: list[str] = []
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # this thread, and the waiter started from it
    try:
        holding = first.held()
        holding.__enter__()

        def wait_for_turn() -> None:
            with second.held():
                order.append("waiter")

        waiter = threading.Thread(target=wait_for_turn)
        waiter.start()
        time.sleep(HOLD_S)  # the waiter is now blocked on the turn, holding the gate
        assert order == []
        holding.__exit__(None, None, None)
        with first.held():
            order.append("holder again")
        waiter.join(timeout=5)
        assert order == ["waiter", "holder again"]
    finally:
        os.sched_setaffinity(0, cpus)
        first.close()
        second.close()


def test_a_closed_turn_is_released(tmp_path: Path) -> None:
    """A holder whose files close (a process that dies) lets the next one in."""
    path = tmp_path / "gw.db"
    first, second = _turn(path), _turn(path)
    try:
        holding = first.held()
        holding.__enter__()
        taken = threading.Event()

        def take() -> None:
            with second.held():
                taken.set()

        thread = threading.Thread(target=take)
        thread.start()
        assert not taken.wait(HOLD_S)
        first.close()  # without letting go first
        assert taken.wait(5)
        thread.join(timeout=5)
    finally:
        second.close()


async def test_two_stores_of_one_file_commit_every_call(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    stores = [SqliteStore(url), SqliteStore(url)]
    for store in stores:
        await store.start()
    try:
        calls = [
            stores[i % 2].run(do(ops.SetMetaIfAbsent(f"key-{i}", f"from {i % 2}")))
            for i in range(400)
        ]
        assert await asyncio.wait_for(asyncio.gather(*calls), 60) == [
            f"from {i % 2}" for i in range(400)
        ]
        for i in range(400):
            assert await stores[(i + 1) % 2].run(do(ops.GetMeta(f"key-{i}"))) == f"from {i % 2}"
        assert sum(store.commit_stats()["batches"] for store in stores) >= 2
    finally:
        for store in stores:
            await store.close()


async def test_an_in_memory_store_takes_no_turn() -> None:
    store = SqliteStore("sqlite:///:memory:")
    await store.start()
    try:
        assert await store.run(do(ops.SetMetaIfAbsent("k", "v"))) == "v"
        assert store.turn is None
        assert "write_turn_wait_us" not in store.commit_stats()
    finally:
        await store.close()


async def test_a_turn_not_taken_fails_its_batch_and_the_writer_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path}/gw.db")
    await store.start()
    try:
        assert store.turn is not None
        real_flock = fcntl.flock

        def no_locks_left(fd: int, operation: int) -> None:
            raise OSError(errno.ENOLCK, "No locks available")

        monkeypatch.setattr(fcntl, "flock", no_locks_left)
        with pytest.raises(StoreError, match="write turn not taken"):
            await asyncio.wait_for(store.run(do(ops.SetMetaIfAbsent("a", "never"))), 5)
        monkeypatch.setattr(fcntl, "flock", real_flock)
        assert await asyncio.wait_for(store.run(do(ops.SetMetaIfAbsent("b", "next"))), 5) == "next"
        assert await store.run(do(ops.GetMeta("a"))) is None  # nothing of the failed batch ran
    finally:
        await store.close()


def test_a_turn_that_cannot_be_let_go_is_closed_and_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gw.db"
    turn, other = _turn(path), _turn(path)
    real_flock = fcntl.flock

    def unlock_fails(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_UN and fd == turn._turn:
            raise OSError(errno.EIO, "I/O error")
        real_flock(fd, operation)

    try:
        monkeypatch.setattr(fcntl, "flock", unlock_fails)
        done = []
        with turn.held():
            done.append("work")  # the body's work stands
        assert done == ["work"]
        monkeypatch.setattr(fcntl, "flock", real_flock)
        with other.held():  # closing let go of it
            pass
        with turn.held():  # opened again
            assert turn.taken == 2
    finally:
        turn.close()
        other.close()
