"""The templates the PostgreSQL fast path fills in must reproduce the Python renderer exactly.

``service.fastpath`` derives, from the real seamless renderer, the literal parts around the
balance and the currency, and the fingerprint text around the player id. Filling them in (what
``gw_seamless_call_v1`` does) must give the renderer's bytes and ``call_fingerprint``'s hash for
any values; a renderer of another shape must get no template (the generic path then runs).
"""

from __future__ import annotations

import hashlib

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from gamewallet.core.money import MAX_MINOR, format_minor
from gamewallet.core.states import Call
from gamewallet.protocols.seamless.routes import _render_tx
from gamewallet.service import seamless
from gamewallet.service.fastpath import body_template, fingerprint_template
from gamewallet.store.fastpath import FastOffer, SeamlessRequest
from gamewallet.store.records import ClientRecord

CLIENT = ClientRecord(7, "seamless", "game", "game", None, None, None, 16)
IDS = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64)
CURRENCIES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)


def _fill(parts: tuple[bytes, bytes, bytes], first: bool, balance: int, currency: str) -> bytes:
    texts = (format_minor(balance).encode(), currency.encode())
    a, b = texts if first else texts[::-1]
    return parts[0] + a + parts[1] + b + parts[2]


@given(ext_id=IDS, balance=st.integers(0, MAX_MINOR), currency=CURRENCIES)
def test_body_template_reproduces_the_renderer(ext_id: str, balance: int, currency: str) -> None:
    def render(b: int, c: str) -> bytes:
        return _render_tx(seamless.Outcome(ext_id, b, c))

    template = body_template(render)
    assert template is not None
    parts, first = template
    assert _fill(parts, first, balance, currency) == render(balance, currency)


def test_currency_before_balance_is_located_too() -> None:
    def render(b: int, c: str) -> bytes:
        return msgspec.json.encode({"c": c, "b": msgspec.Raw(format_minor(b).encode())})

    template = body_template(render)
    assert template is not None
    parts, first = template
    assert not first
    assert _fill(parts, first, 51_569_5000, "XAG") == render(51_569_5000, "XAG")


def test_a_renderer_that_repeats_the_balance_gets_no_template() -> None:
    def render(b: int, c: str) -> bytes:
        text = format_minor(b)
        return f'{{"a":{text},"b":{text},"c":"{c}"}}'.encode()

    assert body_template(render) is None


def test_a_renderer_that_drops_the_currency_gets_no_template() -> None:
    assert body_template(lambda b, c: format_minor(b).encode()) is None


@given(
    amount=st.one_of(st.none(), st.integers(1, MAX_MINOR)),
    currency=st.one_of(st.none(), CURRENCIES),
    player_id=st.integers(1, 2**62),
)
def test_fingerprint_template_hashes_like_call_fingerprint(
    amount: int | None, currency: str | None, player_id: int
) -> None:
    call = seamless.WalletCall(
        CLIENT,
        "rollbackDeposit" if amount is None else "deposit",
        seamless.KIND_DEPOSIT,
        Call.ROLLBACK if amount is None else Call.OPEN,
        "token",
        "id-1",
        amount,
        None if amount is None else (currency or "EUR"),
    )
    split = fingerprint_template(
        call.endpoint,
        call.amount_minor,
        call.currency,
        lambda pid: seamless.call_fingerprint(call, pid),
    )
    assert split is not None
    text = f"{split[0]}{player_id}{split[1]}".encode()
    assert hashlib.sha256(text).hexdigest() == seamless.call_fingerprint(call, player_id)


def test_a_drifting_fingerprint_gets_no_template() -> None:
    assert fingerprint_template("withdraw", 1, "EUR", lambda pid: "not the same hash") is None


def test_wallet_call_is_offered_with_its_fast_form_and_still_runs_generically() -> None:
    call = seamless.WalletCall(
        CLIENT, "withdraw", seamless.KIND_WITHDRAW, Call.OPEN, "tok", "x1", 15_000, "EUR", "spin"
    )
    offer = seamless.wallet_call(call, 1_000, 60, _render_tx)
    assert isinstance(offer, FastOffer)
    request = offer.request
    assert isinstance(request, SeamlessRequest)
    assert (request.call, request.ext_id, request.amount_minor) == ("open", "x1", 15_000)
    assert request.note == {"description": "spin"}
    assert request.retention_ms == 60_000
    # Driven like any use case, it asks the store for the session first (the generic path).
    first = next(offer)
    assert type(first).__name__ == "GetSession"
    offer.close()


def test_a_client_with_a_broken_limit_config_is_not_offered() -> None:
    broken = ClientRecord(8, "seamless", "g", "g", None, None, None, 16, {"max_amount": "lots"})
    call = seamless.WalletCall(
        broken, "withdraw", seamless.KIND_WITHDRAW, Call.OPEN, "tok", "x1", 15_000, "EUR"
    )
    assert not isinstance(seamless.wallet_call(call, 1_000, 60, _render_tx), FastOffer)
