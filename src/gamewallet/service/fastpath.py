"""The service side of the store fast path: a wallet call offered as plain data.

:func:`seamless_offer` wraps the generic use case of one seamless two-phase call in a
:class:`~gamewallet.store.fastpath.FastOffer` that also carries the call as a
:class:`~gamewallet.store.fastpath.SeamlessRequest`. A store that can run the request as one
statement does; any other store runs the generic use case it wraps.

The request holds templates derived here from the real renderer and the real fingerprint, and
each is checked before it is offered: the body template must reproduce ``render`` for a balance
of another length, and the fingerprint template must hash to ``fingerprint_of(player_id)``.
When a check fails (a renderer that repeats the balance, say) no offer is made and the generic
use case runs: the fast path can be slower to qualify, never different.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

from gamewallet.store.fastpath import FastOffer, HrgRequest, SeamlessRequest
from gamewallet.store.port import UseCase
from gamewallet.store.records import ClientRecord

# Two balances whose texts have the same length and differ in their first and last characters,
# and two currencies that differ everywhere: diffing renders of them locates each value.
_BALANCE_A, _BALANCE_B, _BALANCE_C = 123_456_789, 987_654_321, 5
_CURRENCY_A, _CURRENCY_B, _CURRENCY_C = "AAA", "ZZZ", "XAG"
_TEXT_A = b"12345.6789"  # format_minor(_BALANCE_A)
_PROBE_PLAYER_ID = 1


def _hole(base: bytes, other: bytes) -> tuple[int, int]:
    """Start and end of the one span where ``base`` and ``other`` (same length) differ."""
    start = 0
    while start < len(base) and base[start] == other[start]:
        start += 1
    end = len(base)
    while end > start and base[end - 1] == other[end - 1]:
        end -= 1
    return start, end


def body_template(
    render_balance: Callable[[int, str], bytes],
) -> tuple[tuple[bytes, bytes, bytes], bool] | None:
    """The literal parts around the balance text and the currency in ``render_balance``'s
    output, and whether the balance comes first; None if the output has another shape."""
    base = render_balance(_BALANCE_A, _CURRENCY_A)
    other_balance = render_balance(_BALANCE_B, _CURRENCY_A)
    other_currency = render_balance(_BALANCE_A, _CURRENCY_B)
    if not len(base) == len(other_balance) == len(other_currency):
        return None
    b0, b1 = _hole(base, other_balance)
    c0, c1 = _hole(base, other_currency)
    if base[b0:b1] != _TEXT_A or base[c0:c1] != _CURRENCY_A.encode():
        return None
    if b1 <= c0:
        parts, balance_first = (base[:b0], base[b1:c0], base[c1:]), True
    elif c1 <= b0:
        parts, balance_first = (base[:c0], base[c1:b0], base[b1:]), False
    else:
        return None
    # A balance of another length must come out exactly as the renderer writes it.
    texts = (b"0.0005", _CURRENCY_C.encode())
    first, second = texts if balance_first else texts[::-1]
    expected = render_balance(_BALANCE_C, _CURRENCY_C)
    if parts[0] + first + parts[1] + second + parts[2] != expected:
        return None
    return parts, balance_first


def fingerprint_template(
    endpoint: str,
    amount_minor: int | None,
    currency: str | None,
    fingerprint_of: Callable[[int], str],
) -> tuple[str, str] | None:
    """The JSON text of ``[endpoint, player_id, amount, currency]`` split around the player id,
    or None if it does not hash to what ``fingerprint_of`` says."""
    head = json.dumps([endpoint], separators=(",", ":"), sort_keys=True, default=str)
    tail = json.dumps([amount_minor, currency], separators=(",", ":"), sort_keys=True, default=str)
    prefix, suffix = head[:-1] + ",", "," + tail[1:]
    probe = f"{prefix}{_PROBE_PLAYER_ID}{suffix}".encode()
    if hashlib.sha256(probe).hexdigest() != fingerprint_of(_PROBE_PLAYER_ID):
        return None
    return prefix, suffix


def seamless_offer(
    generic: UseCase[bytes],
    *,
    client: ClientRecord,
    endpoint: str,
    kind: str,
    call: str,
    token: str,
    ext_id: str,
    amount_minor: int | None,
    currency: str | None,
    now_ms: int,
    retention_s: int,
    limits: tuple[int, int] | None,
    note: Mapping[str, Any],
    render_balance: Callable[[int, str], bytes],
    fingerprint_of: Callable[[int], str],
) -> UseCase[bytes]:
    """``generic`` offered with its single-statement form (or alone if a template fails).

    ``limits`` is (max amount, max balance) in minor units, None when the client's config
    cannot give them (the generic use case then reports that itself).
    """
    template = body_template(render_balance)
    fp = fingerprint_template(endpoint, amount_minor, currency, fingerprint_of)
    if template is None or fp is None or limits is None:
        return generic
    parts, balance_first = template
    request = SeamlessRequest(
        client_id=client.id,
        endpoint=endpoint,
        kind=kind,
        call=call,
        token=token,
        ext_id=ext_id,
        amount_minor=amount_minor,
        currency=currency,
        now_ms=now_ms,
        retention_ms=retention_s * 1000,
        max_amount_minor=limits[0],
        max_balance_minor=limits[1],
        credit_limit_minor=client.credit_limit_minor,
        shards=client.shards,
        note=dict(note),
        fp_prefix=fp[0],
        fp_suffix=fp[1],
        body_parts=parts,
        balance_first=balance_first,
    )
    return FastOffer(generic, request)


# --- HRG transfers ---------------------------------------------------------------------------

#: Probe values of the four HRG holes (signed total, cash after, free credit after, currency):
#: A and B texts have the same length and differ in their first and last characters.
_HRG_A: tuple[int, int, int, str] = (1_234_567, 2_345_678, 3_456_789, "AAA")
_HRG_B: tuple[int, int, int, str] = (9_876_543, 8_765_432, 7_654_321, "ZZZ")


def hrg_template(
    render_split: Callable[[int, int, int, int, str], bytes],
    money: Callable[[int], str],
) -> tuple[tuple[bytes, ...], tuple[int, ...]] | None:
    """Literal parts and hole order of an HRG answer, or None if it has another shape.

    ``render_split(cash, free, cash_after, free_after, currency)`` renders a transfer whose
    signed amounts are ``cash`` and ``free``; ``money`` writes an amount as HRG does. The
    template is checked against a render with other lengths, a negative total and both
    buckets non-zero.
    """
    base = render_split(_HRG_A[0], 0, _HRG_A[1], _HRG_A[2], _HRG_A[3])
    holes: list[tuple[int, int, int]] = []
    for index in range(4):
        values: list[Any] = list(_HRG_A)
        values[index] = _HRG_B[index]
        other = render_split(values[0], 0, values[1], values[2], values[3])
        if len(other) != len(base):
            return None
        start, end = _hole(base, other)
        expected = money(_HRG_A[index]) if index < 3 else _HRG_A[3]  # type: ignore[arg-type]
        if base[start:end] != expected.encode():
            return None
        holes.append((start, end, index + 1))
    holes.sort()
    if any(a[1] > b[0] for a, b in itertools.pairwise(holes)):
        return None
    parts, position = [], 0
    for start, end, _ in holes:
        parts.append(base[position:start])
        position = end
    parts.append(base[position:])
    order = tuple(kind for _, _, kind in holes)
    cash, free, after_cash, after_free, currency = -10_000_000, -5_000, 0, 5, "THB"
    texts = {1: money(cash + free), 2: money(after_cash), 3: money(after_free), 4: currency}
    filled = parts[0] + b"".join(
        texts[kind].encode() + parts[i + 1] for i, kind in enumerate(order)
    )
    if filled != render_split(cash, free, after_cash, after_free, currency):
        return None
    return tuple(parts), order


def hrg_offer(
    generic: UseCase[bytes],
    *,
    client: ClientRecord,
    kind: str,
    user_id: str,
    transaction_code: str,
    all_buckets: bool,
    cash_minor: int,
    free_minor: int,
    fingerprint: str,
    now_ms: int,
    max_amount_minor: int,
    max_balance_minor: int,
    render_split: Callable[[int, int, int, int, str], bytes],
    money: Callable[[int], str],
) -> UseCase[bytes]:
    """``generic`` (an HRG deposit or withdraw) offered with its single-statement form."""
    template = hrg_template(render_split, money)
    if template is None:
        return generic
    parts, order = template
    request = HrgRequest(
        client_id=client.id,
        kind=kind,
        user_id=user_id,
        transaction_code=transaction_code,
        all_buckets=all_buckets,
        cash_minor=cash_minor,
        free_minor=free_minor,
        fingerprint=fingerprint,
        now_ms=now_ms,
        max_amount_minor=max_amount_minor,
        max_balance_minor=max_balance_minor,
        credit_limit_minor=client.credit_limit_minor,
        shards=client.shards,
        body_parts=parts,
        hole_order=order,
    )
    return FastOffer(generic, request)
