"""The cached template derivations of ``service.fastpath`` give what a fresh derivation gives.

The offers no longer derive their templates afresh for every call: the fingerprint template is
cached per (fingerprint function, endpoint, amount, currency), and a body template's shape per
renderer, with the call's own value (``mmTransactionId``, HRG ``userId``) spliced in after one
render. Here, for random values, the cached result must equal the fresh derivation byte for
byte, declines included: with the real seamless renderer, the real HRG renderers (taken from
the routes, one closure per request as in production, for several agents), and a family of
synthetic renderers of other shapes (fields in any order, the value written twice or not at
all or escaped, a balance written twice, a currency dropped, a layout that depends on the
value's length). JDB's action 19 offer carries no template (its function returns columns the
service turns into the result), so there is nothing to cache there.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any
from unittest import mock

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from gamewallet.core.money import MAX_MINOR, format_minor
from gamewallet.core.states import Call
from gamewallet.protocols.hrg.routes import HrgApi
from gamewallet.protocols.seamless.routes import _render_tx
from gamewallet.service import fastpath, hrg, seamless
from gamewallet.store.fastpath import FastOffer, HrgRequest, SeamlessRequest
from gamewallet.store.records import ClientRecord

SEAMLESS = ClientRecord(7, "seamless", "game", "game", None, None, None, 16)
AGENTS = [
    ClientRecord(20 + n, "hrg", name, name, None, "THB", None, 16)
    for n, name in enumerate(("agent-1", "b", 'agent\u00e9"2'))
]
#: Any text a caller may send as an id, quotes, backslashes, control characters and all.
IDS = st.text(max_size=40)
HRG_USERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=50)
FieldsRender = Callable[[str, int, str], bytes]


def _fresh_body(render: FieldsRender, ext_id: str) -> Any:
    return fastpath.body_template(lambda balance, currency: render(ext_id, balance, currency))


def _render_outcome(ext_id: str, balance: int, currency: str) -> bytes:
    return _render_tx(seamless.Outcome(ext_id, balance, currency))


# --- seamless ----------------------------------------------------------------------------


@given(ext_ids=st.lists(IDS, min_size=1, max_size=5))
def test_seamless_body_template_is_the_fresh_one(ext_ids: list[str]) -> None:
    for ext_id in ext_ids:
        cached = fastpath.seamless_body_template(_render_outcome, ext_id)
        assert cached is not None
        assert cached == _fresh_body(_render_outcome, ext_id)


@given(
    ext_id=IDS,
    endpoint=st.sampled_from(["withdraw", "confirmWithdrawal", "deposit", "confirmDeposit"]),
    amount=st.integers(1, MAX_MINOR),
    currency=st.text(min_size=1, max_size=5),
)
def test_a_wallet_call_offer_carries_the_fresh_templates(
    ext_id: str, endpoint: str, amount: int, currency: str
) -> None:
    kind = seamless.KIND_DEPOSIT if "eposit" in endpoint else seamless.KIND_WITHDRAW
    call_kind = Call.OPEN if endpoint in ("withdraw", "deposit") else Call.CONFIRM
    call = seamless.WalletCall(SEAMLESS, endpoint, kind, call_kind, "tok", ext_id, amount, currency)
    offer = seamless.wallet_call(call, 1_000, 60, _render_tx)
    assert isinstance(offer, FastOffer)
    request = offer.request
    assert isinstance(request, SeamlessRequest)
    fresh_body = fastpath.body_template(
        lambda balance, cur: _render_tx(seamless.Outcome(ext_id, balance, cur))
    )
    fresh_fp = fastpath.fingerprint_template(
        endpoint, amount, currency, lambda pid: seamless.call_fingerprint(call, pid)
    )
    assert (request.body_parts, request.balance_first) == fresh_body
    assert (request.fp_prefix, request.fp_suffix) == fresh_fp
    offer.close()


def test_a_known_renderer_costs_one_render_per_call() -> None:
    renders = [0]

    def render(ext_id: str, balance: int, currency: str) -> bytes:
        renders[0] += 1
        return _render_tx(seamless.Outcome(ext_id, balance, currency))

    assert fastpath.seamless_body_template(render, "first") is not None
    for n in range(5):
        before = renders[0]
        cached = fastpath.seamless_body_template(render, f"id-{n}")
        assert renders[0] - before == 1  # a fresh derivation renders four times
        assert cached == _fresh_body(render, f"id-{n}")


# Synthetic renderers: JSON-ish objects whose fields come from a layout.
LAYOUT_FIELDS = ["ext", "bal", "cur", "ext again", "bal again", "lit", "ext if long"]
ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "json": msgspec.json.encode,
    "raw": lambda s: s.encode("utf-8", "surrogatepass"),
    "upper": lambda s: msgspec.json.encode(s.upper()),
}


def _synthetic(layout: tuple[str, ...], encoding: str) -> FieldsRender:
    encode = ENCODINGS[encoding]

    def render(ext_id: str, balance: int, currency: str) -> bytes:
        values = {
            "ext": encode(ext_id),
            "ext again": encode(ext_id),
            "ext if long": encode(ext_id) if len(ext_id) > 12 else b"0",
            "bal": format_minor(balance).encode(),
            "bal again": format_minor(balance).encode(),
            "cur": msgspec.json.encode(currency),
            "lit": b'"AAA 12345.6789"',
        }
        body = b",".join(b'"%d":%s' % (n, values[name]) for n, name in enumerate(layout))
        return b"{" + body + b"}"

    return render


@settings(max_examples=300)
@given(
    layout=st.lists(st.sampled_from(LAYOUT_FIELDS), unique=True, max_size=6).map(tuple),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    ext_ids=st.lists(IDS, min_size=1, max_size=4),
)
def test_any_renderer_gets_the_fresh_template_or_the_same_decline(
    layout: tuple[str, ...], encoding: str, ext_ids: list[str]
) -> None:
    render = _synthetic(layout, encoding)
    for ext_id in ext_ids:
        assert fastpath.seamless_body_template(render, ext_id) == _fresh_body(render, ext_id)


def test_the_synthetic_family_covers_declines_and_other_shapes() -> None:
    """The property above must see templates, declines, and renderers without a shape."""
    declines = _synthetic(("ext", "bal", "bal again", "cur"), "json")
    assert _fresh_body(declines, "x") is None
    assert fastpath.seamless_body_template(declines, "x") is None
    twice = _synthetic(("ext", "bal", "cur", "ext again"), "json")
    assert fastpath._seamless_shape(fastpath._Behaviour(twice)) is None
    assert fastpath.seamless_body_template(twice, "y") == _fresh_body(twice, "y") != None  # noqa: E711
    by_length = _synthetic(("ext if long", "bal", "cur"), "json")
    assert fastpath._seamless_shape(fastpath._Behaviour(by_length)) is None
    currency_first = _synthetic(("cur", "ext", "bal"), "raw")
    shape = fastpath._seamless_shape(fastpath._Behaviour(currency_first))
    assert shape is not None
    assert shape.extra is False
    absent = _synthetic(("bal", "cur"), "json")
    absent_shape = fastpath._seamless_shape(fastpath._Behaviour(absent))
    assert absent_shape is not None
    assert absent_shape.part == -1


# --- fingerprint -------------------------------------------------------------------------


@given(
    endpoint=st.text(max_size=20),
    amount=st.one_of(st.none(), st.integers(-(2**70), 2**70)),
    currency=st.one_of(st.none(), st.text(max_size=5)),
)
def test_the_fingerprint_template_is_the_fresh_one(
    endpoint: str, amount: int | None, currency: str | None
) -> None:
    fingerprint = seamless.request_fingerprint
    for _ in range(2):  # a miss, then a hit
        cached = fastpath.seamless_fingerprint_template(fingerprint, endpoint, amount, currency)
        fresh = fastpath.fingerprint_template(
            endpoint, amount, currency, lambda pid: fingerprint(endpoint, pid, amount, currency)
        )
        assert cached == fresh
        assert cached is not None


def test_the_fingerprint_cache_tells_apart_what_json_tells_apart() -> None:
    fingerprint = seamless.request_fingerprint
    as_bool = fastpath.seamless_fingerprint_template(fingerprint, "withdraw", True, "EUR")
    as_int = fastpath.seamless_fingerprint_template(fingerprint, "withdraw", 1, "EUR")
    assert as_bool is not None
    assert as_int is not None
    assert as_bool[1] == ',true,"EUR"]'
    assert as_int[1] == ',1,"EUR"]'


def test_a_drifting_fingerprint_function_is_declined_cached_too() -> None:
    def drifting(endpoint: str, player_id: int, amount: int | None, currency: str | None) -> str:
        return "not the hash"

    for _ in range(2):
        assert fastpath.seamless_fingerprint_template(drifting, "withdraw", 5, "EUR") is None


# --- HRG ---------------------------------------------------------------------------------


class _Capture:
    async def run(self, use_case: Any) -> Any:
        return use_case


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the capture store never suspends")


API = HrgApi(
    SimpleNamespace(  # type: ignore[arg-type]
        store=_Capture(),
        clock=SimpleNamespace(now_ms=lambda: 1_700_000_000_000),
        settings=SimpleNamespace(rate_limit_per_client=0),
        rate_buckets=None,
    )
)


@contextmanager
def _spying() -> Iterator[list[dict[str, Any]]]:
    """The arguments each HRG offer is built from (the routes' real renderer among them)."""
    seen: list[dict[str, Any]] = []
    real = fastpath.hrg_offer

    def spy(generic: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(generic, **kwargs)

    with mock.patch.object(fastpath, "hrg_offer", spy):
        yield seen


def _fresh_hrg(kwargs: dict[str, Any]) -> Any:
    render: fastpath.HrgRender = kwargs["render"]
    code, user, at = kwargs["transaction_code"], kwargs["user_id"], kwargs["now_ms"]

    def split(cash: int, free: int, cash_after: int, free_after: int, currency: str) -> bytes:
        return render(code, user, at, cash, free, cash_after, free_after, currency)

    template: Any = fastpath.hrg_template(split, kwargs["money"])
    return template


@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(range(len(AGENTS))),
            st.booleans(),
            HRG_USERS,
            st.text(min_size=1, max_size=30),
            st.integers(1, 10**12),
            st.integers(0, 10**12),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_hrg_offers_carry_the_fresh_template(
    calls: list[tuple[int, bool, str, str, int, int]],
) -> None:
    with _spying() as seen:
        for agent, withdraw, user, code, cash, free in calls:
            client = AGENTS[agent]
            if withdraw:
                request = hrg.WithdrawRequest(user, code, False, cash, free)
                offer = _run(API.withdraw(client, request))
            else:
                offer = _run(API.deposit(client, hrg.DepositRequest(user, code, cash, free)))
            assert isinstance(offer, FastOffer)
            assert isinstance(offer.request, HrgRequest)
            fresh = _fresh_hrg(seen[-1])
            assert fresh is not None
            assert (offer.request.body_parts, offer.request.hole_order) == fresh
            assert client.name.encode() in b"".join(fresh[0]) or '"' in client.name
            offer.close()


def test_hrg_renderers_are_known_again_across_requests() -> None:
    """Each request builds a new closure; the shape is still learned once per agent."""
    with _spying() as seen:
        for n in range(3):
            offer = _run(API.deposit(AGENTS[0], hrg.DepositRequest(f"u{n}", f"t{n}", 100, 0)))
            offer.close()
    renders = [fastpath._Behaviour(kwargs["render"]) for kwargs in seen]
    assert renders[0] == renders[1] == renders[2]
    assert renders[0].fn is not renders[1].fn
    shape = fastpath._hrg_shape(renders[0], fastpath._Behaviour(seen[0]["money"]))
    assert shape is not None
    assert shape.part >= 0
    other_agent = fastpath._Behaviour(_capture_render(AGENTS[1]))
    assert other_agent != renders[0]


def _capture_render(client: ClientRecord) -> Any:
    with _spying() as seen:
        _run(API.withdraw(client, hrg.WithdrawRequest("u", "t", True))).close()
    return seen[0]["render"]


def test_an_hrg_renderer_that_writes_the_transaction_code_gets_the_fresh_template() -> None:
    def render(
        code: str, user: str, at: int, cash: int, free: int, after: int, free_after: int, cur: str
    ) -> bytes:
        parts = [code, user, format_minor(cash + free, min_fraction_digits=1)]
        parts += [format_minor(after, min_fraction_digits=1)]
        parts += [format_minor(free_after, min_fraction_digits=1), cur]
        return msgspec.json.encode(parts)

    money = _hrg_money()
    assert fastpath._hrg_shape(fastpath._Behaviour(render), fastpath._Behaviour(money)) is None
    for code in ("a", "bb", 'c"'):
        kwargs: dict[str, Any] = {"render": render, "money": money, "transaction_code": code}
        kwargs |= {"user_id": "u1", "now_ms": 5}
        cached = fastpath.hrg_body_template(render, money, code, "u1", 5)
        assert cached == _fresh_hrg(kwargs)
        assert cached is not None


def _hrg_money() -> Callable[[int], str]:
    with _spying() as seen:
        _run(API.deposit(AGENTS[0], hrg.DepositRequest("u", "t", 1, 0))).close()
    money: Callable[[int], str] = seen[0]["money"]
    return money
