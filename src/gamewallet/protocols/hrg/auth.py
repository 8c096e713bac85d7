"""Who is calling: HTTP Basic credentials of an HRG agent, its address, and the ``xts`` clock.

``Authorization: Basic base64(client_id:client_secret)`` names an agent through its
``client_id``; the secret is checked against the stored keyed hash in constant time, and an
unknown ``client_id`` costs the same hash so that response times do not reveal which ids
exist. An agent with an ``allow_ips`` list only accepts calls from those networks
(``X-Forwarded-For`` counts only when the peer is a trusted proxy). All of this is 1001.
The ``xts`` header must be HRG's time format within ``hrg_xts_skew_s`` of our clock (1002).
None of it reads the request body.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

from gamewallet.protocols.hrg.errors import AUTH_FAILED, BAD_XTS, HrgError
from gamewallet.protocols.hrg.schemas import epoch_ms
from gamewallet.protocols.hrg.timefmt import parse_xts
from gamewallet.service.common import check_secret, hash_secret
from gamewallet.service.context import Services
from gamewallet.store.records import ClientRecord

PROTOCOL = "hrg"
#: Longer Authorization headers are refused before any decoding.
AUTH_HEADER_MAX = 1024

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` of a Basic header, or None if it is not one."""
    if header is None or len(header) > AUTH_HEADER_MAX:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = text.partition(":")
    if not sep or not client_id or not secret:
        return None
    return client_id, secret


async def authenticate(
    services: Services, authorization: str | None, address: str | None
) -> ClientRecord:
    """The enabled HRG agent these credentials belong to, calling from an allowed address;
    otherwise 1001."""
    credentials = parse_basic(authorization)
    if credentials is None:
        raise HrgError(AUTH_FAILED)
    client_id, secret = credentials
    client = await services.clients.by_username(PROTOCOL, client_id)
    stored = client.secret_hash if client is not None else _decoy(services.key)
    if not check_secret(secret, stored, services.key) or client is None:
        raise HrgError(AUTH_FAILED)
    if not address_allowed(client.config.get("allow_ips"), address):
        raise HrgError(AUTH_FAILED)
    return client


def _decoy(key: bytes) -> str:
    # A hash no secret matches in practice, checked so that unknown ids take as long.
    return hash_secret("\x00unknown-client\x00", key)


def caller_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """The caller's address: the peer, or, when the peer is a trusted proxy, the last
    address in ``X-Forwarded-For`` that is not itself a trusted proxy."""
    if peer is None or not forwarded_for or not _in_any(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if not _in_any(hop, trusted):
            return hop
    return peer


def address_allowed(allow_ips: object, address: str | None) -> bool:
    """True if the agent has no allowlist, or ``address`` is inside one of its networks."""
    if not allow_ips or not isinstance(allow_ips, list | tuple):
        return True
    networks = _networks(tuple(str(cidr) for cidr in allow_ips))
    return address is not None and _in_any(address, networks)


@lru_cache(maxsize=256)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _in_any(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def check_xts(value: str | None, now_ms: int, skew_s: int) -> None:
    """Refuse (1002) a missing or malformed ``xts``, or one more than ``skew_s`` from now."""
    if value is None:
        raise HrgError(BAD_XTS)
    try:
        sent_ms = epoch_ms(parse_xts(value.strip()))
    except ValueError:
        raise HrgError(BAD_XTS) from None
    if abs(sent_ms - now_ms) > skew_s * 1000:
        raise HrgError(BAD_XTS)
