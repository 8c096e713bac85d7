"""The fast lane's plumbing and the cheap observer, at the ASGI level (no database).

The differential tests prove the lane answers as the routes do; these pin down the parts a
protocol handler relies on: the body is reassembled exactly as announced, a declined request
reaches the app with every message the lane consumed and then the original ``receive`` (the
very callable, when nothing was consumed), requests that are not plain never reach a handler,
and a :class:`Reply` is sent with the headers Litestar sends for the same response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import pytest
import structlog
from litestar import Litestar, Response, post

from gamewallet import observability
from gamewallet.observability import Metrics, instrument
from gamewallet.protocols.lane import FastLane, LaneRequest, Reply, is_json

Message = MutableMapping[str, Any]


def _scope(headers: list[tuple[bytes, bytes]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/hot",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        **extra,
    }


def _receiver(messages: list[Message]) -> Callable[[], Awaitable[Message]]:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return receive


class _App:
    """The app behind the lane: records what it was called with and what it received."""

    def __init__(self) -> None:
        self.calls = 0
        self.receive: Any = None
        self.received: list[Message] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        self.receive = receive
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _run(
    lane: FastLane, scope: dict[str, Any], receive: Callable[[], Awaitable[Message]]
) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await lane(scope, receive, send)
    return sent


async def test_a_body_in_pieces_is_reassembled_and_answered() -> None:
    seen: list[bytes | None] = []

    async def handler(request: LaneRequest) -> Reply | None:
        seen.append(await request.body())
        return Reply(200, b'{"ok":1}', headers=(("Retry-After", "1"),))

    app = _App()
    lane = FastLane(app, {"/hot": handler}, 100)
    pieces: list[Message] = [
        {"type": "http.request", "body": b'{"a"', "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b":1}", "more_body": False},
    ]
    sent = await _run(lane, _scope([(b"content-length", b"7")]), _receiver(pieces))
    assert seen == [b'{"a":1}']
    assert app.calls == 0
    assert lane.served == 1
    assert sent[0]["headers"] == [
        (b"retry-after", b"1"),
        (b"content-type", b"application/json"),
        (b"content-length", b"8"),
    ]
    assert sent[1]["body"] == b'{"ok":1}'


@pytest.mark.parametrize(
    ("length", "messages"),
    [
        (5, [{"type": "http.request", "body": b"123456", "more_body": False}]),
        (5, [{"type": "http.request", "body": b"1234", "more_body": False}]),
        (
            5,
            [
                {"type": "http.request", "body": b"12", "more_body": True},
                {"type": "http.disconnect"},
            ],
        ),
    ],
    ids=["longer", "shorter", "disconnect"],
)
async def test_a_body_not_as_announced_is_declined_and_replayed(
    length: int, messages: list[Message]
) -> None:
    async def handler(request: LaneRequest) -> Reply | None:
        assert await request.body() is None
        return None

    app = _App()
    lane = FastLane(app, {"/hot": handler}, 100)
    headers = [(b"content-length", str(length).encode())]
    await _run(lane, _scope(headers), _receiver(messages))
    assert app.calls == 1
    assert app.received[: len(messages)] == messages
    assert lane.served == 0


async def test_a_declined_request_gets_its_body_back_then_the_original_receive() -> None:
    async def handler(request: LaneRequest) -> Reply | None:
        assert await request.body() == b"abc"
        return None

    app = _App()
    lane = FastLane(app, {"/hot": handler}, 100)
    body = {"type": "http.request", "body": b"abc", "more_body": False}
    await _run(lane, _scope([(b"content-length", b"3")]), _receiver([body]))
    assert app.received == [body]
    assert await app.receive() == {"type": "http.disconnect"}  # the original, after the replay


async def test_declined_before_reading_the_app_gets_the_original_receive() -> None:
    async def handler(request: LaneRequest) -> Reply | None:
        return None

    app = _App()
    lane = FastLane(app, {"/hot": handler}, 100)
    receive = _receiver([{"type": "http.request", "body": b"abc", "more_body": False}])
    await _run(lane, _scope([(b"content-length", b"3")]), receive)
    assert app.receive is receive


@pytest.mark.parametrize(
    "scope_change",
    [
        {"method": "GET"},
        {"path": "/cold"},
        {"query_string": b"a=1"},
        {"root_path": "/prefix"},
        {"headers": [(b"content-length", b"3"), (b"content-length", b"3")]},
        {"headers": [(b"content-length", b"3"), (b"transfer-encoding", b"chunked")]},
        {"headers": [(b"content-length", b"-3")]},
        {"headers": [(b"content-length", "\u00b3".encode("latin-1"))]},
        {"headers": [(b"content-length", b"0")]},
        {"headers": [(b"content-length", b"101")]},
        {"headers": []},
        {"type": "websocket"},
    ],
)
async def test_requests_that_are_not_plain_never_reach_a_handler(
    scope_change: dict[str, Any],
) -> None:
    async def handler(request: LaneRequest) -> Reply | None:
        raise AssertionError("a handler saw a request it must not")

    app = _App()
    lane = FastLane(app, {"/hot": handler}, 100)
    receive = _receiver([{"type": "http.request", "body": b"abc", "more_body": False}])
    await _run(lane, {**_scope([(b"content-length", b"3")]), **scope_change}, receive)
    assert app.calls == 1
    assert app.receive is receive


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b'{"a":1}'),
        Reply(429, b"{}", headers=(("Retry-After", "1"),)),
        Reply(401, b"", "text/plain", (("WWW-Authenticate", 'Basic realm="x"'),)),
        Reply(200, b"{}", headers=(("X-Request-ID", "r1"), ("Allow", "GET, POST"))),
    ],
)
async def test_a_reply_is_sent_with_litestars_headers(reply: Reply) -> None:
    @post("/r", sync_to_thread=False)
    def route() -> Response[bytes]:
        return reply.response()

    app: Any = Litestar([route], debug=False, logging_config=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        answer = await http.post("/r")
    expected = [(k.decode(), v.decode()) for k, v in reply.raw_headers()]
    assert answer.headers.multi_items() == expected
    assert answer.status_code == reply.status
    assert answer.content == reply.body


# --- the observer ------------------------------------------------------------------------------


async def _observed(metrics: Metrics, headers: dict[str, str] | None = None) -> httpx.Response:
    @post("/wallet/x", sync_to_thread=False, status_code=200)
    def route() -> dict[str, str | None]:
        structlog.get_logger("test").warning("inside")
        return {"rid": observability.request_id()}

    app: Any = Litestar([route], debug=False, logging_config=None)
    instrument(app, metrics)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        return await http.post("/wallet/x", headers=headers or {})


async def test_new_request_ids_are_unique_hex_and_change_prefix_after_a_fork() -> None:
    metrics = Metrics()
    ids = [(await _observed(metrics)).headers["x-request-id"] for _ in range(3)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == 3
    assert len({i[:16] for i in ids}) == 1
    observability._IDS.reseed()  # what a forked child does
    assert (await _observed(metrics)).headers["x-request-id"][:16] != ids[0][:16]


async def test_the_access_line_follows_its_level_and_lines_carry_the_request_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quiet = logging.getLogger("gamewallet.test.quiet")
    quiet.setLevel(logging.WARNING)
    monkeypatch.setattr(observability, "_access_logger", quiet)
    metrics = Metrics()
    with structlog.testing.capture_logs(processors=[observability.add_request_id]) as captured:
        answer = await _observed(metrics, {"X-Request-ID": "given-1"})
    assert [e["event"] for e in captured] == ["inside"]
    assert captured[0]["request_id"] == "given-1" == answer.json()["rid"]
    quiet.setLevel(logging.INFO)
    with structlog.testing.capture_logs() as captured:
        await _observed(metrics)
    assert [e["event"] for e in captured] == ["inside", "request"]
    text = metrics.render().decode()
    assert (
        'gamewallet_requests_total{endpoint="/wallet/x",protocol="seamless",result="200"} 2.0'
        in text
    )


@pytest.mark.parametrize(
    ("content_type", "taken"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("APPLICATION/JSON;CHARSET=UTF-8", True),
        ('application/json; charset="utf8"', True),
        ("application/json;", True),
        (None, False),
        ("", False),
        ("application/json; charset=iso-8859-1", False),
        ("application/json; charset", False),
        ("application/json; version=2", False),
        ("application/json-patch+json", False),
        ("text/json", False),
    ],
)
def test_is_json_takes_json_alone_or_with_a_utf8_charset(
    content_type: str | None, taken: bool
) -> None:
    assert is_json(content_type) is taken
