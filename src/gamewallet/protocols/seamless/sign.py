"""The seamless payment callback signature (the `sign` field), as the game vendor defines it.

sign = UPPER(hex(MD5(cpOrderId + serverId + uid + productPrice + productId + ts + secretKey))),
a plain concatenation of the values exactly as they travel on the wire (`4.99` stays `4.99`; never
re-format a number before signing). MD5 is the vendor's choice, not ours; we only reproduce it.
Invariants: the secret is never logged or returned; verification compares in constant time and
answers False (never raises) for a missing or malformed `sign` in the caller's fields.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["SIGNED_FIELDS", "payment_sign", "verify_payment_sign"]

SIGNED_FIELDS = ("cpOrderId", "serverId", "uid", "productPrice", "productId", "ts")
"""Callback fields that enter the signature, in signing order (`extParams` is not signed)."""


def payment_sign(
    cp_order_id: str,
    server_id: str,
    uid: str,
    product_price: str,
    product_id: str,
    ts_ms: str,
    secret_key: str,
) -> str:
    """Return the 32-character upper-case hex `sign` for one payment callback.

    Every argument is the wire string (`ts_ms` is epoch milliseconds as digits). Raises ValueError
    for an empty `secret_key`, which would make signatures forgeable by anyone.
    """
    if not secret_key:
        raise ValueError("payment callback secret key must not be empty")
    material = "".join((cp_order_id, server_id, uid, product_price, product_id, ts_ms, secret_key))
    # usedforsecurity=False only tells FIPS-mode OpenSSL builds to allow MD5, which the vendor's
    # protocol mandates; it does not change the digest.
    digest = hashlib.md5(material.encode("utf-8"), usedforsecurity=False).hexdigest()
    return digest.upper()


def verify_payment_sign(fields: Mapping[str, str], secret_key: str) -> bool:
    """Tell whether `fields["sign"]` matches the other fields of a callback, in constant time.

    `fields` holds the callback's form fields by their wire names (see SIGNED_FIELDS plus `sign`).
    A missing field gives False. Hex case is ignored: the vendor writes upper case, but lower-case
    hex carries the same digest. Raises ValueError only for an empty `secret_key` (our config bug).
    """
    if not secret_key:
        raise ValueError("payment callback secret key must not be empty")
    given = fields.get("sign")
    if given is None or any(name not in fields for name in SIGNED_FIELDS):
        return False
    expected = payment_sign(
        fields["cpOrderId"],
        fields["serverId"],
        fields["uid"],
        fields["productPrice"],
        fields["productId"],
        fields["ts"],
        secret_key,
    )
    # Compare bytes: compare_digest refuses non-ASCII str, and a hostile `sign` may contain any.
    return hmac.compare_digest(given.upper().encode("utf-8"), expected.encode("ascii"))
