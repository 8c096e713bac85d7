"""Who is calling: HTTP Basic credentials per client and the client's IP allowlist (spec 1.1).

Order: the Basic user name names the client; a client with an allowlist (``allow_ips``, CIDRs;
empty or absent = any address) ignores calls from other addresses before the password is even
checked, so a stranger learns nothing; then the password is compared in constant time against
its keyed hash. Any missing, malformed or wrong credential is the same :class:`Unauthorized`
(HTTP 401 with ``WWW-Authenticate: Basic``), and an unknown user costs the same hash as a known
one. ``X-Forwarded-For`` is believed only when the direct peer is a trusted proxy.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
from collections.abc import Iterable, Sequence

from gamewallet.service.common import check_secret
from gamewallet.service.context import Services
from gamewallet.store.records import ClientRecord

PROTOCOL = "seamless"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Longest Authorization header we look at; real ones are far shorter.
AUTH_HEADER_MAX = 1024
#: Stands in for the stored hash of an unknown user, so that refusing it takes as long.
_NO_SUCH_HASH = "0" * 64


class Unauthorized(Exception):
    """Missing, malformed or wrong Basic credentials (answered 401)."""


class Ignored(Exception):
    """A call from an address outside the client's allowlist (dropped, never answered)."""

    def __init__(self, client: str, address: IPAddress | None) -> None:
        super().__init__(f"{address} is not allowed for client {client}")
        self.client = client
        self.address = address


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic …`` header, or None if malformed."""
    if not header or len(header) > AUTH_HEADER_MAX:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # bad base64; UnicodeDecodeError is a ValueError
        return None
    user, colon, password = text.partition(":")
    if not colon or not user:
        return None
    return user, password


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # An IPv4 peer seen through a dual-stack socket must match IPv4 allowlist entries.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def peer_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[IPNetwork]
) -> IPAddress | None:
    """The caller's address: the direct peer, or, behind trusted proxies, the nearest
    untrusted address of ``X-Forwarded-For`` (read right to left). None if unparseable."""
    address = _address(peer) if peer else None
    if address is None or not forwarded_for or not _within(address, trusted_proxies):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = _address(hop)
        if hop_address is None:
            return None  # a garbled chain: we cannot tell who called
        if not _within(hop_address, trusted_proxies):
            return hop_address
        address = hop_address
    return address


@functools.lru_cache(maxsize=256)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def address_allowed(client: ClientRecord, address: IPAddress | None) -> bool:
    """Whether ``client``'s allowlist lets ``address`` call (no allowlist = everyone)."""
    cidrs = client.config.get("allow_ips") or ()
    assert isinstance(cidrs, list | tuple), "allow_ips must be a list of CIDRs"
    if not cidrs:
        return True
    return address is not None and _within(address, _networks(tuple(map(str, cidrs))))


async def authenticate(
    services: Services, authorization: str | None, peer: str | None, forwarded_for: str | None
) -> ClientRecord:
    """The calling client, or :class:`Unauthorized` / :class:`Ignored`."""
    credentials = basic_credentials(authorization)
    if credentials is None:
        raise Unauthorized
    user, password = credentials
    client = await services.clients.by_username(PROTOCOL, user)
    if client is None:
        check_secret(password, _NO_SUCH_HASH, services.key)  # same work as a known user
        raise Unauthorized
    address = peer_address(peer, forwarded_for, services.settings.trusted_proxies)
    if not address_allowed(client, address):
        raise Ignored(client.name, address)
    if not check_secret(password, client.secret_hash, services.key):
        raise Unauthorized
    return client
