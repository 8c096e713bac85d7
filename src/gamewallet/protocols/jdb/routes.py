"""HTTP routes of the jdb protocol (placeholder until the protocol is implemented)."""

from __future__ import annotations

from litestar import Router

from gamewallet.service.context import Services


def build_router(services: Services) -> Router:
    """The router of this protocol."""
    return Router(path="/", route_handlers=[])
