"""Per-client rate limiting: a token bucket per calling client, shared by the three protocols.

Each client may make ``rate`` calls per second on average with bursts of up to ``rate`` calls
(one second's worth). The rate is the client's own ``rate_limit_per_s`` config entry when it has
one, else the ``rate_limit_per_client`` setting; 0 means unlimited. A refused call costs nothing
and changes nothing: the protocol answers it before the body is read (seamless: HTTP 429 with
errorCode 100; HRG: HTTP 429 with code 9999; JDB: status 9019; see docs/reliability.md).

Buckets live in the process: with N server processes a client gets up to N times its rate in
total. That is a guard against a runaway or hostile caller, not a billing quota. Time comes from
the service clock, so tests drive the buckets with a fake clock. Memory is bounded by the number
of clients (buckets are keyed by client id, and clients are rows the operator creates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gamewallet.service.common import Clock
from gamewallet.store.records import ClientRecord

__all__ = ["CONFIG_KEY", "RateLimiter", "client_rate"]

#: The client config entry that overrides the default rate (calls per second, 0 = unlimited).
CONFIG_KEY = "rate_limit_per_s"


def client_rate(client: ClientRecord, default_per_s: int) -> int:
    """Calls per second allowed to ``client``: its own config entry, else the default."""
    own = client.config.get(CONFIG_KEY)
    if isinstance(own, int) and not isinstance(own, bool) and own >= 0:
        return own
    return default_per_s


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
    _buckets: dict[int, _Bucket] = field(default_factory=dict)

    def allow(self, client: ClientRecord) -> bool:
        """Whether ``client`` may make one more call now (and count it if so)."""
        default = self.default_per_s
        rate = client_rate(client, default if isinstance(default, int) else default())
        if rate <= 0:
            return True
        now_ms = self.clock.now_ms()
        bucket = self._buckets.get(client.id)
        if bucket is None:
            bucket = self._buckets[client.id] = _Bucket(float(rate), now_ms)
        # Refill for the time elapsed (a clock that steps back refills nothing), capped at one
        # second's worth: the burst a client may spend at once.
        elapsed_s = max(0, now_ms - bucket.at_ms) / 1000
        bucket.tokens = min(float(rate), bucket.tokens + elapsed_s * rate)
        bucket.at_ms = max(bucket.at_ms, now_ms)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
