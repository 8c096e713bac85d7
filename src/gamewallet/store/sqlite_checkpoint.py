"""The WAL checkpointer of the SQLite store: its own thread and its own connection.

SQLite's default is to checkpoint inside the connection that commits, every 1000 WAL pages:
on a large database that copies scattered pages back into the main file and fsyncs it while
the writer thread, and with it every queued wallet call, waits. The store turns that off on
its writer connection (``PRAGMA wal_autocheckpoint=0``) and runs this checkpointer instead.

How it keeps the WAL bounded:

- every ``interval_s`` it reads ``PRAGMA data_version``, which changes whenever any
  connection (this process's writer, another server process, the CLI, the worker) has
  committed; after a change it runs ``wal_checkpoint(PASSIVE)``, which copies what it can
  without taking a lock that the writer needs. Once everything is copied, the writer's next
  transaction starts the WAL file over from its beginning, so the file stops growing;
- the WAL only starts over when a checkpoint has copied everything before the writer commits
  again, which a busy writer rarely allows (and a checkpoint that waits for the write lock
  rarely gets it from a writer that begins its next batch at once). So when a checkpoint finds
  more than ``restart_frames`` pages in the WAL, it sets :attr:`WalCheckpointer.restart_due`,
  and the writer thread, between two batches, runs :meth:`WalCheckpointer.restart` on its own
  connection: ``wal_checkpoint(RESTART)`` copies the few pages PASSIVE left and starts the WAL
  over. The writer pauses briefly once per ``restart_frames`` pages instead of the file growing
  without bound. Before it flags the restart, the checkpointer flushes the database file to
  disk itself (:func:`flush_file`): the restart ends with SQLite's fsync of that file, which
  otherwise writes out every page the checkpoints copied since the last one (on a 4.7 GB
  database 19-166 ms with every writer waiting; 0-34 ms after the flush, measured). While a
  restart is due the checkpointer starts no PASSIVE checkpoint of its
  own, for at most ``restart_wait_rounds`` rounds: the restart needs the checkpoint lock, and one
  that found a PASSIVE checkpoint under way would hold the writer, and every queued call, until
  that checkpoint ended (15 to 66 ms on a 4.7 GB database, measured). A writer that gets no
  batch in that time (an idle server, or commits from another process) does not keep the WAL
  from being checkpointed;
- after ``idle_s`` without commits it runs ``wal_checkpoint(TRUNCATE)`` once, so an idle
  database leaves an empty WAL file behind.

RESTART and TRUNCATE wait on readers and the writer for at most ``busy_timeout_ms`` (short)
and then fall back to what PASSIVE does, so a long reader (an audit) never blocks the writer
for long; a reader that holds an old snapshot keeps the WAL from being reset until it ends,
as with SQLite's own checkpoints.

Durability is unchanged: a checkpoint only copies pages that are already committed (and
fsynced, per ``synchronous``) in the WAL into the database file.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: How often the checkpointer looks for new commits.
INTERVAL_S = 0.1
#: WAL pages past which a checkpoint takes the write lock to start the WAL over (256 MiB of
#: 4 KiB pages). Each restart holds the writer for the last pages' copy and the database file's
#: fsync, 4-100 ms on a 4.7 GB file; at 16,384 pages it came every ~1.3 s under load, so the
#: calls in flight at each one (64 of ~3,800, 1.7 %) set the p99 (docs/performance.md).
RESTART_FRAMES = 65_536
#: Without commits for this long, the WAL file is truncated to zero bytes.
IDLE_S = 2.0
#: How long RESTART/TRUNCATE wait on the writer and readers before giving up for this round.
BUSY_TIMEOUT_MS = 100
#: Rounds the checkpointer holds back its PASSIVE checkpoint while the writer's restart is due.
RESTART_WAIT_ROUNDS = 5
#: How long the flush before a restart may take before the restart goes ahead without it.
FLUSH_TIMEOUT_S = 10.0


class WalCheckpointer:
    """Checkpoints the WAL of the database at ``path`` from a thread of its own."""

    def __init__(
        self,
        path: str,
        *,
        interval_s: float = INTERVAL_S,
        restart_frames: int = RESTART_FRAMES,
        idle_s: float = IDLE_S,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        restart_wait_rounds: int = RESTART_WAIT_ROUNDS,
    ) -> None:
        self.path = path
        self.interval_s = interval_s
        self.restart_frames = restart_frames
        self.idle_s = idle_s
        self.busy_timeout_ms = busy_timeout_ms
        self.restart_wait_rounds = restart_wait_rounds
        #: Checkpoints run so far by mode (for tests and diagnostics).
        self.runs: dict[str, int] = {"PASSIVE": 0, "RESTART": 0, "TRUNCATE": 0}
        #: Pages in the WAL after the last checkpoint (-1 before the first).
        self.wal_frames = -1
        #: Set here when the WAL has grown past ``restart_frames``; the writer thread then calls
        #: :meth:`restart` between two batches (a plain attribute: read once per batch).
        self.restart_due = False
        #: Flushes of the database file before a restart, and the seconds they took (diagnostics).
        self.flushes = 0
        self.flush_s = 0.0
        #: Rounds in a row this thread held back its PASSIVE checkpoint for a due restart.
        self._held_back = 0
        #: Rounds held back in all (diagnostics).
        self.rounds_held_back = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the connection and start the thread (raises if the file cannot be opened)."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        self._thread = threading.Thread(
            target=self._serve, args=(conn,), name="gamewallet-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close its connection (a checkpoint under way finishes first)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _serve(self, conn: sqlite3.Connection) -> None:
        try:
            # None: the first round checkpoints whatever is there, including commits made
            # before this thread got to read the version (a thread started under load may
            # first run after the store's first batches).
            seen: int | None = None
            last_commit = time.monotonic()
            truncated = False
            while not self._stop.wait(self.interval_s):
                version = _data_version(conn)
                if version != seen:
                    last_commit, truncated = time.monotonic(), False
                    if self._hold_back_for_restart():
                        continue  # these commits stay unseen: checkpointed in a later round
                    seen = version
                    if self._checkpoint(conn, "PASSIVE") > self.restart_frames:
                        self._flush_before_restart()
                        self.restart_due = True
                elif not truncated and time.monotonic() - last_commit >= self.idle_s:
                    self._checkpoint(conn, "TRUNCATE")
                    truncated = True
        except sqlite3.Error:
            # The store goes on without checkpoints in this process; SQLite still checkpoints
            # when the last connection closes, and another process's checkpointer may run.
            log.exception("the SQLite WAL checkpointer stopped")
        finally:
            conn.close()

    def _flush_before_restart(self) -> None:
        """Write the pages the checkpoints copied into the database file out to disk now, on
        this thread, so that the restart's own fsync, with every writer waiting, has little
        left to write. Durability never depends on it: the restart still fsyncs."""
        started = time.monotonic()
        if flush_file(self.path):
            self.flushes += 1
            self.flush_s += time.monotonic() - started

    def _hold_back_for_restart(self) -> bool:
        """Whether to skip this round's PASSIVE checkpoint: the writer's restart is due."""
        if self.restart_due and self._held_back < self.restart_wait_rounds:
            self._held_back += 1
            self.rounds_held_back += 1
            return True
        self._held_back = 0
        return False

    def restart(self, conn: sqlite3.Connection, writer_busy_timeout_ms: int) -> None:
        """On the writer thread, between batches: copy what is left and start the WAL over.

        ``conn`` is the writer's connection, idle; it waits on readers for the checkpointer's
        short busy timeout only (then it does what PASSIVE does), and gets its own back.
        ``restart_due`` is cleared only once the restart is over, so the checkpointer does not
        start a checkpoint that the restart would then wait for.
        """
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        try:
            self._checkpoint(conn, "RESTART")
        finally:
            self.restart_due = False
            conn.execute(f"PRAGMA busy_timeout={int(writer_busy_timeout_ms)}")

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> int:
        """Run one checkpoint; the pages in the WAL it found (copied or not)."""
        row = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        self.runs[mode] += 1
        # (busy, pages in the WAL, pages copied); -1s when the database is not in WAL mode.
        _busy, frames, copied = row
        self.wal_frames = max(int(frames), 0)
        log.debug("WAL checkpoint %s: %s pages, %s copied, busy %s", mode, frames, copied, _busy)
        return self.wal_frames


def flush_file(path: str, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
    """``fdatasync`` the file at ``path`` from a short-lived process (``sync -d``); whether
    it did. False, and nothing else, off Linux, without the command, or when it fails.

    Not ``os.open`` + ``os.fsync`` + ``os.close`` here: closing any descriptor of a file
    releases every POSIX lock the process holds on it, including the locks SQLite's own
    connections in this process hold on the database file (SQLite keeps its descriptors open
    for that reason); another process's descriptor shares the page cache and none of the
    locks.
    """
    command = shutil.which("sync") if sys.platform == "linux" else None
    if command is None:
        return False
    try:
        done = subprocess.run(  # noqa: S603 - a fixed command on the store's own file
            [command, "-d", path], capture_output=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.SubprocessError):
        log.debug("flushing %s before a WAL restart failed", path, exc_info=True)
        return False
    if done.returncode != 0:
        log.debug("sync -d %s: %s", path, done.stderr.decode(errors="replace").strip())
    return done.returncode == 0


def _data_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA data_version").fetchone()
    return int(row[0])


def wal_size(path: str) -> int:
    """The size of the WAL file of ``path`` in bytes (0 when there is none)."""
    with contextlib.suppress(FileNotFoundError):
        return Path(path + "-wal").stat().st_size
    return 0
