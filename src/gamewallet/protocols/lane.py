"""The fast lane: a raw-ASGI front that serves the hot wallet calls without the framework.

Litestar's per-request machinery (routing, DTO extraction, the kwargs model, Response objects)
costs more CPU than a wallet call itself. The lane sits between the request observer and the
Litestar app and serves a few exact routes (``POST`` + a fixed path) itself, through the
protocol packages' own lane handlers, which call the same use cases and the same rendering
functions as the routes. It may *decline* a request, and then hands it to Litestar unchanged.

Invariants:

- A handler declines only before anything was changed: before the rate limiter counted the
  call and before any use case ran. Everything that can refuse a request up to that point
  (authentication, allowlist, body decoding, field checks) is re-done by the route, whose
  answer is then the one the caller gets, so every refusal keeps its one implementation.
- Once a handler has passed that point it answers itself, result or error, with the route's
  own rendering functions (:class:`Reply` is what both send), so nothing runs twice.
- A declined request reaches Litestar with the body it would have read: the messages the lane
  consumed are re-delivered by a wrapped ``receive``, then the original one takes over. When
  nothing was consumed, the original ``receive`` itself is passed (uvicorn's bound method is
  how the seamless route drops a connection from an address outside the allowlist).
- Only plain requests are taken: no query string, no root path, no duplicated header, a
  ``Content-Length`` within the body limit, no ``Transfer-Encoding``; anything else is
  declined up front.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from litestar import Response

__all__ = ["FastLane", "LaneHandler", "LaneRequest", "Reply", "install_lane", "is_json"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = "application/json"
_UTF8 = frozenset({"utf-8", "utf8"})


def is_json(content_type: str | None) -> bool:
    """Whether a request's ``Content-Type`` is JSON as the protocols define it: exactly
    ``application/json``, or with a UTF-8 charset parameter (``application/json;
    charset=UTF-8``, any case and spacing), as many HTTP clients send it. Any other type or
    parameter is not: the lane declines it and the route answers as the protocol says."""
    if content_type == JSON:  # the common case: no parsing
        return True
    if content_type is None:
        return False
    media, _, params = content_type.partition(";")
    if media.strip().lower() != JSON:
        return False
    if not params.strip():
        return True
    name, equals, value = params.partition("=")
    return (
        bool(equals)
        and name.strip().lower() == "charset"
        and value.strip().strip('"').lower() in _UTF8
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer as the routes render it: status, body, media type and extra headers (in
    the order Litestar sends them, before ``content-type`` and ``content-length``)."""

    status: int
    body: bytes
    media_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()

    def response(self) -> Response[bytes]:
        """The Litestar response of this reply (what the routes return)."""
        return Response(
            self.body,
            status_code=self.status,
            media_type=self.media_type,
            headers=dict(self.headers) if self.headers else None,
        )

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The header list Litestar sends for :meth:`response` (checked by the differential
        tests): extra headers lower-cased, then the content type (``text/*`` with a charset)
        and the length."""
        media = self.media_type
        if media.startswith("text/") and "charset" not in media:
            media += "; charset=utf-8"
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        headers.append((b"content-type", media.encode("latin-1")))
        headers.append((b"content-length", str(len(self.body)).encode("ascii")))
        return headers


class LaneRequest:
    """What a lane handler sees of a request: the path, single-valued headers, the peer, and
    the body once read (``None`` if the caller went away or sent other than announced)."""

    __slots__ = ("_length", "_receive", "consumed", "headers", "path", "peer")

    def __init__(
        self, path: str, headers: Mapping[str, str], peer: str | None, length: int, receive: Receive
    ) -> None:
        self.path = path
        self.headers = headers
        self.peer = peer
        self._length = length
        self._receive = receive
        #: The messages read from ``receive`` so far (re-delivered if the lane declines).
        self.consumed: list[Message] = []

    async def body(self) -> bytes | None:
        """The whole body, or None when it does not arrive exactly as announced."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            self.consumed.append(message)
            if message["type"] != "http.request":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self._length:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if size != self._length:
            return None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def replay(self) -> Receive:
        """A ``receive`` for the app that gets a declined request: what the lane consumed,
        then the original callable (which is passed itself if nothing was consumed)."""
        if not self.consumed:
            return self._receive
        pending = list(self.consumed)
        receive = self._receive

        async def replaying() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        return replaying


#: A protocol's lane handler: the reply, or None to decline (only before any effect).
LaneHandler = Callable[[LaneRequest], Awaitable[Reply | None]]


class FastLane:
    """ASGI middleware: serves ``routes`` (exact POST paths) itself, everything else (and
    whatever a handler declines) through ``app``."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, LaneHandler], max_body_bytes: int):
        self.app = app
        self.routes = dict(routes)
        self.max_body_bytes = max_body_bytes
        #: Requests answered by the lane (the rest went to the app); for tests and debugging.
        self.served = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if (
            handler is None
            or scope.get("method") != "POST"
            or scope.get("query_string")
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        request = self._request(scope, receive)
        reply = None if request is None else await handler(request)
        if reply is None:
            await self.app(scope, receive if request is None else request.replay(), send)
            return
        # The observer labels the call by the route's template, which is the path itself.
        scope["path_template"] = scope["path"]
        self.served += 1
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": reply.raw_headers()}
        )
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})

    def _request(self, scope: Scope, receive: Receive) -> LaneRequest | None:
        """The request as a handler sees it, or None if it is not plain enough to take."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name = raw_name.decode("latin-1").lower()
            if name in headers:
                return None  # which one would the framework read? let it decide
            headers[name] = raw_value.decode("latin-1")
        length_text = headers.get("content-length")
        if (
            length_text is None
            or "transfer-encoding" in headers
            or not (length_text.isascii() and length_text.isdigit())  # "²" is a digit too
        ):
            return None
        length = int(length_text)
        if not 0 < length <= self.max_body_bytes:
            return None
        client = scope.get("client")
        peer = client[0] if client else None
        return LaneRequest(scope["path"], headers, peer, length, receive)


def install_lane(app: Any, routes: Mapping[str, LaneHandler], max_body_bytes: int) -> None:
    """Put the lane in front of a Litestar app's request handling (inside the observer,
    which :func:`gamewallet.observability.instrument` wraps around it afterwards)."""
    app.asgi_handler = FastLane(app.asgi_handler, routes, max_body_bytes)
