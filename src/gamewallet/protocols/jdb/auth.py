"""Who is calling `apiRequest.do`: the domain (`dc`), its address allowlist, its AES key, and
the freshness and agent of the decrypted payload.

JDB has no HTTP auth: a caller proves itself by encrypting with its domain's key, from an allowed
address, with a fresh `ts`, naming its own `parent`. Checks run in this order, first failure
wins: `dc` missing/short 9002, unknown 9003, address 9001, rate 9019, `x` empty 9004, cannot
decrypt or parse 9006, `ts` outside the window 9005, unknown action 9007 (routes), `parent`
missing 8001 or not the domain's 9003. One `JdbCipher` per domain is built once and cached,
and rebuilt only when the domain's configured key or IV changes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta, timezone, tzinfo
from typing import Any

import structlog

from gamewallet.protocols.jdb import schemas
from gamewallet.protocols.jdb.crypto import JdbCipher, PayloadError
from gamewallet.protocols.jdb.errors import JdbError
from gamewallet.service.context import Services
from gamewallet.service.ratelimit import RateLimiter
from gamewallet.store.records import ClientRecord

PROTOCOL = "jdb"
#: Domain codes shorter than this are refused with 9002 (vendor text: "less than 2").
DC_MIN = 2
DC_MAX = 50
#: Default zone of a domain's dates: GMT+8 (protocols.md 3.1).
DEFAULT_TZ_OFFSET_MIN = 480

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Domain:
    """A JDB client ready to serve: its record and everything derived from its config once."""

    client: ClientRecord
    parent: str
    cipher: JdbCipher
    networks: tuple[_Network, ...] | None  # None = every address is allowed
    tz: tzinfo


def _networks(value: object) -> tuple[_Network, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    assert isinstance(value, Sequence), "allow_ips must be a list of CIDRs"
    return tuple(ipaddress.ip_network(str(cidr), strict=False) for cidr in value) or None


def _domain_of(client: ClientRecord) -> Domain:
    """Build a domain from its client's config; ValueError if the config is unusable."""
    config: Mapping[str, Any] = client.config
    parent, key, iv = config.get("parent"), config.get("aes_key"), config.get("aes_iv")
    if not (isinstance(parent, str) and parent and isinstance(key, str) and isinstance(iv, str)):
        raise ValueError("a JDB client needs config parent, aes_key and aes_iv")
    if client.currency is None:
        raise ValueError("a JDB client needs a currency")
    offset = int(config.get("tz_offset_min", DEFAULT_TZ_OFFSET_MIN))
    return Domain(
        client=client,
        parent=parent,
        cipher=JdbCipher(key, iv),
        networks=_networks(config.get("allow_ips")),
        tz=timezone(timedelta(minutes=offset)),
    )


def _same_setup(old: ClientRecord, new: ClientRecord) -> bool:
    return old is new or (old.config == new.config and old.currency == new.currency)


class DomainAuth:
    """Resolves and checks callers; holds the per-domain cache of ciphers and allowlists."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._cache: dict[int, tuple[ClientRecord, Domain]] = {}
        self._limiter = RateLimiter(
            services.clock,
            lambda: services.settings.rate_limit_per_client,
            shared=services.rate_buckets,
        )

    @property
    def limiter(self) -> RateLimiter:
        """The per-domain rate limiter (shared with the fast lane)."""
        return self._limiter

    async def find(self, dc: str | None) -> Domain | None:
        """The domain named by ``dc``, or None for any refusal (nothing logged: the fast
        lane's look-up, which leaves refusals to :meth:`domain`)."""
        try:
            return await self.domain(dc, quiet=True)
        except JdbError:
            return None

    async def domain(self, dc: str | None, *, quiet: bool = False) -> Domain:
        """The domain named by ``dc``: 9002 if missing or short, 9003 if unknown or unusable."""
        if dc is None or len(dc) < DC_MIN:
            raise JdbError("9002")
        if len(dc) > DC_MAX:
            raise JdbError("9003", reason="dc is too long")
        client = await self._services.clients.by_name(PROTOCOL, dc)
        if client is None:
            raise JdbError("9003", reason="unknown dc")
        cached = self._cache.get(client.id)
        # The directory hands out a fresh record on every reload: rebuild the cipher only
        # when what it is derived from has changed.
        if cached is not None and _same_setup(cached[0], client):
            domain = cached[1] if cached[0] is client else replace(cached[1], client=client)
            self._cache[client.id] = (client, domain)
            return domain
        try:
            domain = _domain_of(client)
        except (ValueError, TypeError, AssertionError) as exc:
            if not quiet:
                log.error("jdb_client_misconfigured", dc=dc, error=str(exc))
            raise JdbError("9003", reason="domain is misconfigured") from None
        self._cache[client.id] = (client, domain)
        return domain

    def check_address(self, domain: Domain, peer: str | None, forwarded_for: str | None) -> None:
        """9001 unless the caller's address is in the domain's allowlist (if it has one)."""
        if not self.address_allowed(domain, peer, forwarded_for):
            log.warning("jdb_address_refused", dc=domain.client.name, address=peer)
            raise JdbError("9001", reason="address not allowed")

    def address_allowed(self, domain: Domain, peer: str | None, forwarded_for: str | None) -> bool:
        """Whether the caller's address is in the domain's allowlist (if it has one)."""
        if domain.networks is None:
            return True
        address = client_address(peer, forwarded_for, self._services.settings.trusted_proxies)
        return address is not None and any(address in net for net in domain.networks)

    def check_rate(self, domain: Domain, now_ms: int) -> None:
        """9019 when the domain is over its rate: ``rate_limit_per_client`` calls per second, or
        its own ``rate_limit_per_s`` (0 = unlimited); a token bucket per process, see
        :mod:`gamewallet.service.ratelimit`. ``now_ms`` is the limiter's clock's time too."""
        del now_ms
        if not self._limiter.allow(domain.client):
            raise JdbError("9019")

    def open(self, domain: Domain, x: str | None) -> dict[str, Any]:
        """Decrypt and parse ``x``: 9004 if empty, 9006 if it cannot be read as a JSON object."""
        if x is None or x == "":
            raise JdbError("9004")
        try:
            plain = domain.cipher.decrypt(x)
        except PayloadError as exc:
            raise JdbError("9006", reason=str(exc)) from None
        return schemas.decode_payload(plain)

    def check_time(self, payload: Mapping[str, Any], now_ms: int) -> None:
        """9005 unless ``|now − ts|`` is within ``jdb_ts_window_s`` (expired or from the future)."""
        ts = schemas.ts_of(payload)
        if abs(now_ms - ts) > self._services.settings.jdb_ts_window_s * 1000:
            raise JdbError("9005", reason=f"ts is {now_ms - ts} ms away from our clock")

    @staticmethod
    def check_parent(domain: Domain, payload: Mapping[str, Any], top_parent: str | None) -> None:
        """The payload's ``parent`` (and a top-level one, if sent) must be the domain's agent:
        8001 if missing, 9003 if it is another agent."""
        parent = payload.get("parent")
        if parent is None or parent == "":
            raise JdbError("8001", reason="parent is missing")
        if parent != domain.parent or top_parent not in (None, "", domain.parent):
            raise JdbError("9003", reason="parent is not this domain's agent")


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[_Network]
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The caller's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
    address in ``X-Forwarded-For`` that is not itself a trusted proxy. None if unparsable."""
    try:
        address = ipaddress.ip_address(peer) if peer else None
    except ValueError:
        return None
    if address is None or not forwarded_for or not any(address in net for net in trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return None
        if not any(address in net for net in trusted):
            return address
    return address
