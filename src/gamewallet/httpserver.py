"""uvicorn's httptools protocol with a bound on the request head (request line and headers).

httptools itself enforces no limit: measured on uvicorn 0.54 / httptools 0.9, a single 10 MB
header or 20,000 headers are buffered and handed to the app. This protocol counts the bytes a
connection sends while a request head is being read and, past ``max_header_bytes`` (a setting,
default 32 KiB), answers ``431 Request Header Fields Too Large`` and closes the connection
before the app sees anything, so one caller can make the server hold at most that much (plus
one read) per connection. Bodies are bounded separately (``max_body_bytes``, answered 413 in each
protocol's envelope).

``gamewallet serve`` uses it; a uvicorn command line selects it with
``--http gamewallet.httpserver:BoundedHttpToolsProtocol``.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gamewallet.settings import Settings

__all__ = ["BoundedHttpToolsProtocol"]

_REFUSAL_TEXT = b"request header fields too large"
_REFUSAL = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_REFUSAL_TEXT)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _REFUSAL_TEXT
)
_limit_bytes: int | None = None


def _head_limit() -> int:
    """The configured bound, read from the settings once per process."""
    global _limit_bytes  # one read of the settings per process, then a constant
    if _limit_bytes is None:
        _limit_bytes = Settings.from_env().max_header_bytes
    return _limit_bytes


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head that is over the bound."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses a request head longer than ``max_header_bytes``.

    Two counts, because httptools hands a header over only once it is complete: the request
    line and headers parsed so far (exact; checked as each one arrives, so a head that
    completes in one read is refused before the app sees it), and the bytes of reads that
    ended inside an unfinished head (so that one endless header is cut off too).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_max_bytes = _head_limit()
        self._in_head = True
        self._head_bytes = 0  # bytes of reads that ended inside the current head
        self._parsed_bytes = 0  # request line and headers of the current head, as parsed
        self._head_began_in_this_read = False
        self._refused = False

    def _parsed(self, size: int) -> None:
        self._parsed_bytes += size
        if self._parsed_bytes > self.head_max_bytes:
            self._refused = True
            raise _HeadTooLarge

    def on_message_begin(self) -> None:
        """A new request: its head is being read."""
        super().on_message_begin()
        self._parsed_bytes = 0

    def on_url(self, url: bytes) -> None:
        """Count the request target (it may come in pieces)."""
        self._parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count one header line (name, value, ": " and CRLF)."""
        self._parsed(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete: from here on the bytes are the body's."""
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is complete; whatever comes next is the next request's head."""
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
        self._head_began_in_this_read = True

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; ours is 431 when the error is our bound."""
        if not self._refused:
            super().send_400_response(msg)
            return
        self._refuse()

    def _refuse(self) -> None:
        self.logger.warning("request head over %d bytes refused", self.head_max_bytes)
        self.transport.write(_REFUSAL)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Feed the parser, then count the read if it all went into an unfinished head."""
        self._head_began_in_this_read = False
        super().data_received(data)
        if not self._in_head or self._head_began_in_this_read or self.transport.is_closing():
            # The head ended in this read (and was counted as parsed), or the next one began
            # in it: not counted here.
            return
        self._head_bytes += len(data)
        if self._head_bytes > self.head_max_bytes:
            self._refused = True
            self._refuse()
