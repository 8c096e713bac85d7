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

Deriving a template takes several renders (about as much CPU as the store's whole fast-path
call), so the offers use cached derivations that give the same bytes, and the same declines:

- The fingerprint template is a function of (fingerprint function, endpoint, amount,
  currency) and nothing else: :func:`seamless_fingerprint_template` caches it under exactly that
  key (``lru_cache``, typed, bounded).
- A body template also contains a value that changes with every call (the seamless
  ``mmTransactionId``, the HRG ``userId``): its *shape* is cached per renderer, and each call
  renders once, checks that the render fits the shape and splices its own value in
  (:class:`_Shape`). The shape is learned from the fresh derivation with probe values and
  checked at once against the fresh derivation for two other values (one of another length);
  a render that does not fit, or a renderer whose shape could not be learned, gets the fresh
  derivation for that call. This rests on what every renderer here is (a JSON encoder of a
  record): its output is fixed literal bytes around each field's own text, each field written
  independently of the others. A renderer is identified by what determines its output (its
  code, globals, defaults and the objects its closure holds, seen through nested closures), so
  a closure built anew per request (the HRG routes' ``render``) still hits the cache.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from types import FunctionType, MethodType
from typing import Any, Generic, TypeVar

from gamewallet.store.fastpath import FastOffer, HrgRequest, SeamlessRequest
from gamewallet.store.port import UseCase
from gamewallet.store.records import ClientRecord

# Two balances whose texts have the same length and differ in their first and last characters,
# and two currencies that differ everywhere: diffing renders of them locates each value.
_BALANCE_A, _BALANCE_B, _BALANCE_C = 123_456_789, 987_654_321, 5
_CURRENCY_A, _CURRENCY_B, _CURRENCY_C = "AAA", "ZZZ", "XAG"
_TEXT_A = b"12345.6789"  # format_minor(_BALANCE_A)
_PROBE_PLAYER_ID = 1
#: Probe values of the per-call field of a body template (an id the renderer writes as it is):
#: the first two have the same length and differ in their first and last characters, the
#: third is longer. Letters and digits only, so that any encoder writes them verbatim.
_VALUE_PROBES = ("q1w2e3r4", "z1w2e3r9", "q1w2e3r4t5y6u7i8")
#: Bounds of the caches: renderers (a handful per process; an HRG agent's renderer counts
#: once per client record) and fingerprint keys (endpoint x amount x currency).
_SHAPES_MAX = 256
_FINGERPRINTS_MAX = 4096
#: The JSON text of ``service.common.fingerprint`` (the same parameters as its ``json.dumps``).
_FP_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str)

X = TypeVar("X")
#: A body template: literal parts around the holes, and what says which hole is which.
Template = tuple[tuple[bytes, ...], X]


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
    head = _FP_JSON.encode([endpoint])
    tail = _FP_JSON.encode([amount_minor, currency])
    prefix, suffix = head[:-1] + ",", "," + tail[1:]
    probe = f"{prefix}{_PROBE_PLAYER_ID}{suffix}".encode()
    if hashlib.sha256(probe).hexdigest() != fingerprint_of(_PROBE_PLAYER_ID):
        return None
    return prefix, suffix


# --- cached derivations ----------------------------------------------------------------------


class _Behaviour:
    """A callable, hashed and compared by what determines its output.

    Two plain functions are the same renderer when they run the same code with the same
    globals and defaults over the same objects in their closures (function-valued cells are
    compared the same way, three levels deep); any other callable is compared by identity.
    Every object whose identity is part of the key is held, so no other object can take its
    identity while the key lives in a cache.
    """

    __slots__ = ("_key", "_pins", "fn")

    def __init__(self, fn: Callable[..., Any]) -> None:
        pins: list[object] = [fn]
        self.fn = fn
        self._key = _key_of(fn, pins, 3)
        self._pins = tuple(pins)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Behaviour) and self._key == other._key


_EMPTY_CELL = object()


def _key_of(value: object, pins: list[object], depth: int) -> Hashable:
    if depth and type(value) is FunctionType:
        cells = []
        for cell in value.__closure__ or ():
            try:
                content = cell.cell_contents
            except ValueError:  # a cell not yet bound
                content = _EMPTY_CELL
            pins.append(content)
            cells.append(_key_of(content, pins, depth - 1))
        globals_, defaults, kwdefaults = value.__globals__, value.__defaults__, value.__kwdefaults__
        code = value.__code__  # by identity: hashing a code object hashes all of it
        pins += (code, globals_, defaults, kwdefaults)  # each may be reassigned on ``value``
        return (id(code), id(globals_), id(defaults), id(kwdefaults), tuple(cells))
    if depth and type(value) is MethodType:
        pins.append(value.__self__)
        return ("method", _key_of(value.__func__, pins, depth - 1), id(value.__self__))
    pins.append(value)
    return id(value)


@dataclass(frozen=True, slots=True)
class _Shape(Generic[X]):
    """A body template with a hole for the one per-call value the renderer writes.

    The probe's render is ``head + value + tail``; the value's text sits in the template's
    literal part ``part``, between ``before`` and ``after``. ``part`` is -1 when the renderer
    does not write the value at all (then ``head`` is the whole render).
    """

    head: bytes
    tail: bytes
    parts: tuple[bytes, ...]
    part: int
    before: bytes
    after: bytes
    extra: X

    def fit(self, base: bytes) -> Template[X] | None:
        """The template of the call whose probe render is ``base``, or None if it does not
        have this shape."""
        if self.part < 0:
            return (self.parts, self.extra) if base == self.head else None
        head, tail = len(self.head), len(self.tail)
        if len(base) < head + tail or not base.startswith(self.head):
            return None
        if not base.endswith(self.tail):
            return None
        parts = list(self.parts)
        parts[self.part] = self.before + base[head : len(base) - tail] + self.after
        return tuple(parts), self.extra


def _learn(
    derive: Callable[[int], Template[X] | None],
    base_of: Callable[[int], bytes],
    texts_of: Callable[[X], Sequence[bytes]],
    value_of: Callable[[int], str],
) -> _Shape[X] | None:
    """The shape of a renderer, from fresh derivations at probe ``0``, ``1`` and ``2``.

    ``derive(i)`` is the fresh template for probe i, ``base_of(i)`` the render the template's
    holes were located in, ``texts_of`` the texts in those holes, ``value_of(i)`` the per-call
    value of probe i. None when the value is not one verbatim span inside a literal part, or
    when splicing does not reproduce the fresh derivation for probes 1 and 2.
    """
    template = derive(0)
    if template is None:
        return None
    parts, extra = template
    base, other = base_of(0), base_of(1)
    if base == other:
        shape: _Shape[X] = _Shape(base, b"", parts, -1, b"", b"", extra)
    else:
        if len(base) != len(other):
            return None
        start, end = _hole(base, other)
        if base[start:end] != value_of(0).encode():
            return None
        position = 0
        for index, (part, text) in enumerate(zip(parts, (*texts_of(extra), b""), strict=True)):
            if position <= start and end <= position + len(part):
                before, after = part[: start - position], part[end - position :]
                shape = _Shape(base[:start], base[end:], parts, index, before, after, extra)
                break
            position += len(part) + len(text)
        else:
            return None
    checks = all(shape.fit(base_of(i)) == derive(i) for i in (1, 2))
    return shape if checks else None


@functools.lru_cache(maxsize=_SHAPES_MAX)
def _seamless_shape(renderer: _Behaviour) -> _Shape[bool] | None:
    render = renderer.fn

    def derive(i: int) -> Template[bool] | None:
        value = _VALUE_PROBES[i]
        return body_template(lambda balance, currency: render(value, balance, currency))

    return _learn(
        derive,
        lambda i: render(_VALUE_PROBES[i], _BALANCE_A, _CURRENCY_A),
        lambda first: (_TEXT_A, _CURRENCY_A.encode())[:: 1 if first else -1],
        lambda i: _VALUE_PROBES[i],
    )


def seamless_body_template(
    render: Callable[[str, int, str], bytes], ext_id: str
) -> tuple[tuple[bytes, bytes, bytes], bool] | None:
    """:func:`body_template` of ``render(ext_id, balance, currency)``, with one render.

    ``render`` writes the answer of the call ``ext_id`` for a balance and a currency.
    """
    shape = _seamless_shape(_Behaviour(render))
    if shape is not None:
        fitted = shape.fit(render(ext_id, _BALANCE_A, _CURRENCY_A))
        if fitted is not None:
            parts, first = fitted
            return (parts[0], parts[1], parts[2]), first
    return body_template(lambda balance, currency: render(ext_id, balance, currency))


@functools.lru_cache(maxsize=_FINGERPRINTS_MAX, typed=True)
def seamless_fingerprint_template(
    fingerprint: Callable[[str, int, int | None, str | None], str],
    endpoint: str,
    amount_minor: int | None,
    currency: str | None,
) -> tuple[str, str] | None:
    """:func:`fingerprint_template` with ``fingerprint(endpoint, player_id, amount, currency)``
    as the fingerprint, cached under all four."""
    return fingerprint_template(
        endpoint,
        amount_minor,
        currency,
        lambda player_id: fingerprint(endpoint, player_id, amount_minor, currency),
    )


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
    render: Callable[[str, int, str], bytes],
    fingerprint: Callable[[str, int, int | None, str | None], str],
) -> UseCase[bytes]:
    """``generic`` offered with its single-statement form (or alone if a template fails).

    ``limits`` is (max amount, max balance) in minor units, None when the client's config
    cannot give them (the generic use case then reports that itself). ``render(ext_id,
    balance, currency)`` writes the call's answer; ``fingerprint(endpoint, player_id, amount,
    currency)`` is the call's fingerprint as the generic use case computes it.
    """
    if limits is None:
        return generic
    template = seamless_body_template(render, ext_id)
    fp = seamless_fingerprint_template(fingerprint, endpoint, amount_minor, currency)
    if template is None or fp is None:
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


#: Probe calls (transaction code, user id, time) for an HRG renderer's shape: only the user id
#: may be written (it is the spliced value); the others change too, so a renderer that wrote
#: them would get no shape.
_HRG_CALLS: tuple[tuple[str, str, int], ...] = tuple(
    zip(("k1", "m2", "k1x9"), _VALUE_PROBES, (1_111_111_111_111, 2_222_222_222_222, 3), strict=True)
)

#: ``render(transaction_code, user_id, now_ms, cash, free, cash_after, free_after, currency)``
HrgRender = Callable[[str, str, int, int, int, int, int, str], bytes]


def _hrg_split(render: HrgRender, code: str, user: str, at_ms: int) -> Callable[..., bytes]:
    """``render`` for one call, in the form :func:`hrg_template` probes."""

    def split(cash: int, free: int, cash_after: int, free_after: int, currency: str) -> bytes:
        return render(code, user, at_ms, cash, free, cash_after, free_after, currency)

    return split


@functools.lru_cache(maxsize=_SHAPES_MAX)
def _hrg_shape(renderer: _Behaviour, money: _Behaviour) -> _Shape[tuple[int, ...]] | None:
    def split(i: int) -> Callable[..., bytes]:
        return _hrg_split(renderer.fn, *_HRG_CALLS[i])

    def texts(order: tuple[int, ...]) -> list[bytes]:
        return [(money.fn(_HRG_A[k - 1]) if k < 4 else _HRG_A[3]).encode() for k in order]

    return _learn(
        lambda i: hrg_template(split(i), money.fn),
        lambda i: split(i)(_HRG_A[0], 0, _HRG_A[1], _HRG_A[2], _HRG_A[3]),
        texts,
        lambda i: _HRG_CALLS[i][1],
    )


def hrg_body_template(
    render: HrgRender, money: Callable[[int], str], transaction_code: str, user_id: str, now_ms: int
) -> tuple[tuple[bytes, ...], tuple[int, ...]] | None:
    """:func:`hrg_template` of ``render`` for one call, with one render."""
    split = _hrg_split(render, transaction_code, user_id, now_ms)
    shape = _hrg_shape(_Behaviour(render), _Behaviour(money))
    if shape is not None:
        fitted = shape.fit(split(_HRG_A[0], 0, _HRG_A[1], _HRG_A[2], _HRG_A[3]))
        if fitted is not None:
            return fitted
    return hrg_template(split, money)


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
    render: HrgRender,
    money: Callable[[int], str],
) -> UseCase[bytes]:
    """``generic`` (an HRG deposit or withdraw) offered with its single-statement form.

    ``render`` writes the answer of a transfer (see :data:`HrgRender`), ``money`` an amount as
    HRG does.
    """
    template = hrg_body_template(render, money, transaction_code, user_id, now_ms)
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
