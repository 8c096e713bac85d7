"""Per-client rate limiting: a token bucket per calling client, shared by the three protocols.

Each client may make ``rate`` calls per second on average with bursts of up to ``rate`` calls
(one second's worth). The rate is the client's own ``rate_limit_per_s`` config entry when it has
one, else the ``rate_limit_per_client`` setting; 0 means unlimited. A refused call costs nothing
and changes nothing: the protocol answers it before the body is read (seamless: HTTP 429 with
errorCode 100; HRG: HTTP 429 with code 9999; JDB: status 9019; see docs/reliability.md).

Buckets live in the process unless ``GAMEWALLET_RATE_LIMIT_FILE`` names a file: then every
process that names the same file shares one bucket per client (:class:`SharedBuckets`), so a
client gets its rate in total however many processes serve it. ``gamewallet serve --workers N``
makes such a file for its own processes when none is named. Time comes from the service clock,
so tests drive the buckets with a fake clock. Memory is bounded by the number of clients
(buckets are keyed by client id, and clients are rows the operator creates).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gamewallet.service.common import Clock
from gamewallet.store.records import ClientRecord

__all__ = ["CONFIG_KEY", "RateLimiter", "SharedBuckets", "client_rate", "take_token"]

#: The client config entry that overrides the default rate (calls per second, 0 = unlimited).
CONFIG_KEY = "rate_limit_per_s"


def client_rate(client: ClientRecord, default_per_s: int) -> int:
    """Calls per second allowed to ``client``: its own config entry, else the default."""
    own = client.config.get(CONFIG_KEY)
    if isinstance(own, int) and not isinstance(own, bool) and own >= 0:
        return own
    return default_per_s


def take_token(tokens: float, at_ms: int, rate: int, now_ms: int) -> tuple[bool, float, int]:
    """One call against a bucket holding ``tokens`` as of ``at_ms``: whether it may go, and
    the bucket after. The bucket refills for the time elapsed (a clock that steps back
    refills nothing), up to one second's worth: the burst a client may spend at once."""
    elapsed_s = max(0, now_ms - at_ms) / 1000
    tokens = min(float(rate), tokens + elapsed_s * rate)
    at_ms = max(at_ms, now_ms)
    if tokens < 1.0:
        return False, tokens, at_ms
    return True, tokens - 1.0, at_ms


class SharedBuckets:
    """Token buckets in a file that every server process maps into memory.

    The file is a header (``MAGIC``, the slot count) and a table of slots, each a client id
    (0: free), its tokens and the time they were counted, found by open addressing on the
    client id. A call takes a POSIX record lock on the whole file (``lockf``: released by the
    kernel if the process dies), reads and writes its slot, and lets go: two system calls and a
    few bytes, only for clients with a rate. More clients than slots (``SLOTS``, far more than
    an installation has) fall back to a bucket in the process, never to no limit.

    The file holds no money and nothing that must survive: it lives in ``/dev/shm`` when
    ``serve`` makes it, and a new file simply starts every bucket full.
    """

    MAGIC = b"GWRATE01"
    SLOTS = 4096
    _HEADER = struct.Struct("<8sq")
    _SLOT = struct.Struct("<qdq")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        size = self._HEADER.size + self.SLOTS * self._SLOT.size
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                found = os.fstat(self._fd).st_size
                if found == 0:
                    os.ftruncate(self._fd, size)
                    os.pwrite(self._fd, self._HEADER.pack(self.MAGIC, self.SLOTS), 0)
                elif found != size or os.pread(self._fd, self._HEADER.size, 0) != (
                    self._HEADER.pack(self.MAGIC, self.SLOTS)
                ):
                    raise ValueError(
                        f"{self.path} is not a gamewallet rate-limit file"
                        " (GAMEWALLET_RATE_LIMIT_FILE must name a file of its own)"
                    )
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise

    def take(self, client_id: int, rate: int, now_ms: int) -> bool | None:
        """:func:`take_token` on ``client_id``'s bucket, under the file's lock; None when the
        table has no slot left for a new client."""
        assert client_id > 0, "client ids start at 1; 0 marks a free slot"
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            offset = self._find(client_id)
            if offset is None:
                return None
            found, tokens, at_ms = self._SLOT.unpack_from(self._map, offset)
            if found != client_id:  # a new bucket starts full
                tokens, at_ms = float(rate), now_ms
            allowed, tokens, at_ms = take_token(tokens, at_ms, rate, now_ms)
            self._SLOT.pack_into(self._map, offset, client_id, tokens, at_ms)
            return allowed
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _find(self, client_id: int) -> int | None:
        """The offset of ``client_id``'s slot, or of the free slot it would take."""
        for probe in range(self.SLOTS):
            offset = self._HEADER.size + ((client_id + probe) % self.SLOTS) * self._SLOT.size
            (found,) = struct.unpack_from("<q", self._map, offset)
            if found in (client_id, 0):
                return offset
        return None

    def close(self) -> None:
        """Unmap and close the file (it stays for the other processes)."""
        self._map.close()
        os.close(self._fd)


@dataclass
class _Bucket:
    tokens: float
    at_ms: int


@dataclass
class RateLimiter:
    """Token buckets by client id. :meth:`allow` takes one token or says no."""

    clock: Clock
    #: The default rate, or a function returning it (read at every call, so that a change of
    #: the process's settings takes effect at once).
    default_per_s: int | Callable[[], int]
    #: Buckets shared with other processes (None: this process's own).
    shared: SharedBuckets | None = None
    _buckets: dict[int, _Bucket] = field(default_factory=dict)

    def allow(self, client: ClientRecord) -> bool:
        """Whether ``client`` may make one more call now (and count it if so)."""
        default = self.default_per_s
        rate = client_rate(client, default if isinstance(default, int) else default())
        if rate <= 0:
            return True
        now_ms = self.clock.now_ms()
        if self.shared is not None:
            allowed = self.shared.take(client.id, rate, now_ms)
            if allowed is not None:
                return allowed
        bucket = self._buckets.get(client.id)
        if bucket is None:
            bucket = self._buckets[client.id] = _Bucket(float(rate), now_ms)
        allowed, bucket.tokens, bucket.at_ms = take_token(bucket.tokens, bucket.at_ms, rate, now_ms)
        return allowed
