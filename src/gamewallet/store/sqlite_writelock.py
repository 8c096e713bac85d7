"""The write turn that the SQLite stores of one database file take, across processes.

SQLite lets one connection write at a time. A connection that finds the write lock taken
does not queue for it: its busy handler sleeps (1, 2, 5, 10, 15, 20, 25, 25, 50, 50, 100 ms)
and tries again, so a second server process on the same file loses milliseconds on every
batch it could have started in microseconds. Two server processes did worse than one
(docs/performance.md, "The fifth round").

So each store's writer thread takes an OS lock before ``BEGIN IMMEDIATE`` and lets go after
``COMMIT``: a waiting process sleeps in the kernel and runs the moment the holder lets go.
Two ``flock(2)`` locks on two files beside the database make the turns fair:

- ``<db>-writelock`` is the turn itself: held from ``BEGIN`` to ``COMMIT``;
- ``<db>-writegate`` is the way to it: a writer takes the gate, then the turn, then lets go of
  the gate. One that waits for the turn holds the gate, so the holder, done with its batch,
  cannot take the turn again before the waiter has had it (with two processes they alternate;
  a plain lock went back to whichever process asked first, the one already running).

``flock`` locks belong to an open file, not to a process: two stores of one file in one
process exclude each other like two processes do, and a process that dies releases its locks
with its files. Nothing here replaces SQLite's own locking (a writer that does not take the
turn, the ``sqlite3`` shell say, still waits in SQLite's busy handler); it only saves the
sleeping. The files stay after the last process ends (empty; remove them only while no
process has the database open).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

#: Suffixes of the two lock files, after the database file's name.
TURN_SUFFIX = "-writelock"
GATE_SUFFIX = "-writegate"


class WriteTurn:
    """The fair write turn of the database at ``db_path``."""

    def __init__(self, db_path: str) -> None:
        self.turn_path = db_path + TURN_SUFFIX
        self.gate_path = db_path + GATE_SUFFIX
        self._turn = -1
        self._gate = -1
        #: Turns taken (diagnostics) and the seconds spent waiting for them (/metrics); written
        #: by the thread that takes them only.
        self.taken = 0
        self.wait_s = 0.0

    def open(self) -> None:
        """Open (creating when missing) both lock files; raises ``OSError`` if it cannot."""
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        gate = os.open(self.gate_path, flags, 0o644)
        try:
            turn = os.open(self.turn_path, flags, 0o644)
        except OSError:
            os.close(gate)
            raise
        self._gate, self._turn = gate, turn

    def close(self) -> None:
        """Close both files (a turn still held is released with them)."""
        for fd in (self._turn, self._gate):
            if fd >= 0:
                os.close(fd)
        self._turn = self._gate = -1

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the turn for the body: the gate, then the turn, then the gate let go (the
        files are opened again if they were closed; ``OSError`` if the turn is not taken)."""
        if self._turn < 0:
            self.open()
        started = time.monotonic()
        fcntl.flock(self._gate, fcntl.LOCK_EX)  # blocks with the GIL released
        try:
            fcntl.flock(self._turn, fcntl.LOCK_EX)
        finally:
            self._unlock(self._gate)
        if self._turn < 0:
            raise OSError(f"the write turn {self.turn_path} was closed while taken")
        self.taken += 1
        self.wait_s += time.monotonic() - started
        try:
            yield
        finally:
            self._unlock(self._turn)

    def _unlock(self, fd: int) -> None:
        # Never raises: the body's work is done (committed, say) whatever happens here. A lock
        # that cannot be let go is let go by closing both files; the next turn opens them again.
        if fd < 0:
            return  # closed meanwhile: closing let go of it
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            log.exception("a write-turn lock of %s could not be let go; closing", self.turn_path)
            self.close()
