"""The JDB payload codec: the `x` parameter of `apiRequest.do`, both directions.

`x` is AES-128-CBC over the JSON text, space-padded to whole 16-byte blocks (no cipher padding),
then Base64-URL without `=`. We encode exactly that. We decode leniently, because real operator
clients differ: `=` kept or stripped, URL-encoded, standard `+/` alphabet, PKCS#7 or zero padding.
Invariants: whatever cannot be turned back into UTF-8 text raises `PayloadError` and nothing else;
no message, repr or exception chain ever contains the key or IV (print them with `mask_secret`).
Key and IV are the UTF-8 bytes of the configured strings, NUL-padded on the right to 16 bytes.
Run `python -m gamewallet.protocols.jdb.crypto --help` to build or read an `x` by hand.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import sys
from collections.abc import Sequence
from urllib.parse import unquote

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "BLOCK_BYTES",
    "MAX_ENCODED_CHARS",
    "JdbCipher",
    "PayloadError",
    "decrypt_payload",
    "encrypt_payload",
    "main",
    "mask_secret",
]

BLOCK_BYTES = 16
"""AES block size, and the exact length of JDB's key and IV."""

MAX_ENCODED_CHARS = 256 * 1024
"""Longest `x` we try to decode. The HTTP edge already refuses bodies over 64 KiB; this bound keeps
the codec safe on its own (e.g. when fed from a query string or the command line)."""

# After normalisation only the URL-safe alphabet may remain; `=` is handled separately because it
# may only appear at the very end.
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_-]*")
# Line breaks and tabs come from MIME-style encoders that wrap base64 output; never meaningful.
_WRAPPING_WHITESPACE = str.maketrans("", "", "\r\n\t")
_STANDARD_TO_URLSAFE = str.maketrans("+/", "-_")
# Every byte <= 0x20: space (our padding), NUL (zero-padding clients), 0x01..0x10 (PKCS#7).
_TRAILING_FILLER = bytes(range(0x21))


class PayloadError(ValueError):
    """An `x` that cannot be decoded, decrypted or read as UTF-8 (JDB status 9006).

    The message says what was wrong with the input's shape, never anything about the key.
    """


def mask_secret(s: str) -> str:
    """Return `s` with all but its first 2 and last 2 characters replaced by `*`.

    For logs and CLI output of AES keys and other secrets. Strings shorter than 8 characters are
    masked entirely, since showing four of them would give most of the secret away.
    """
    if len(s) < 8:
        return "*" * len(s)
    return s[:2] + "*" * (len(s) - 4) + s[-2:]


def _key_material(value: str, what: str) -> bytes:
    """UTF-8 bytes of a key or IV, NUL-padded to 16 bytes (JDB's sample keys are shorter)."""
    raw = value.encode("utf-8")
    if not raw:
        raise ValueError(f"JDB AES {what} must not be empty")
    if len(raw) > BLOCK_BYTES:
        # Report the length only: the value itself is a secret.
        raise ValueError(
            f"JDB AES {what} must be at most {BLOCK_BYTES} bytes in UTF-8, got {len(raw)}"
        )
    return raw.ljust(BLOCK_BYTES, b"\0")


def _normalise_encoded(x: str) -> str:
    """Turn any accepted spelling of `x` into unpadded URL-safe base64, or raise PayloadError."""
    if len(x) > MAX_ENCODED_CHARS:
        raise PayloadError(f"encrypted data longer than {MAX_ENCODED_CHARS} characters")
    if x and _URLSAFE_B64.fullmatch(x) is not None:
        # The spelling we and most clients send: `_normalise_lenient` would return it as it is
        # (no `%`, space, wrapping, `+/` or `=`), and its two str.translate passes over the
        # whole text cost more than the AES itself (6 us of 11 per call, measured).
        if len(x) % 4 == 1:
            raise PayloadError("encrypted data has an impossible base64 length")
        return x
    return _normalise_lenient(x)


def _normalise_lenient(x: str) -> str:
    """:func:`_normalise_encoded` for every other spelling (its length already checked)."""
    if "%" in x:
        # `unquote`, not `unquote_plus`: a literal `+` here is base64's `+`, not an encoded space.
        # Undecodable escapes become U+FFFD, which the alphabet check below then refuses.
        x = unquote(x, errors="replace")
    # A standard-alphabet `+` that travelled unencoded through a query string arrives as a space;
    # base64 never contains spaces, so mapping them back is unambiguous.
    x = x.replace(" ", "+").translate(_WRAPPING_WHITESPACE).translate(_STANDARD_TO_URLSAFE)
    x = x.rstrip("=")
    if not x:
        raise PayloadError("encrypted data is empty")
    if _URLSAFE_B64.fullmatch(x) is None:
        raise PayloadError("encrypted data is not base64")
    if len(x) % 4 == 1:
        # No byte string encodes to 4n+1 characters: the text was truncated or corrupted.
        raise PayloadError("encrypted data has an impossible base64 length")
    return x


def _b64decode(x: str) -> bytes:
    """Decode normalised unpadded URL-safe base64 into ciphertext bytes."""
    try:
        return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    except (binascii.Error, ValueError):
        raise PayloadError("encrypted data is not base64") from None


class JdbCipher:
    """AES-128-CBC with one JDB key/IV pair, prepared once and reused for every call.

    The `Cipher` object (key schedule inputs, mode) is built in the constructor; each call gets
    its own encryptor/decryptor context, because CBC contexts are stateful and single-use. An
    instance is therefore safe to share between threads and tasks.
    """

    __slots__ = ("_cipher", "_iv_hint", "_key_hint")

    def __init__(self, key: str, iv: str) -> None:
        """Prepare the cipher; raise ValueError if `key` or `iv` is empty or over 16 bytes."""
        self._cipher = Cipher(
            algorithms.AES128(_key_material(key, "key")), modes.CBC(_key_material(iv, "IV"))
        )
        self._key_hint = mask_secret(key)
        self._iv_hint = mask_secret(iv)

    def __repr__(self) -> str:
        return f"JdbCipher(key={self._key_hint!r}, iv={self._iv_hint!r})"

    def encrypt(self, plaintext: str | bytes) -> str:
        """Encrypt `plaintext` (text is UTF-8 encoded) into JDB's `x` form.

        The plaintext is right-padded with spaces to whole blocks; an empty plaintext becomes one
        block of spaces, so the result is never empty (an empty `x` means "missing" to JDB).
        """
        data = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
        padded_len = max(BLOCK_BYTES, -(-len(data) // BLOCK_BYTES) * BLOCK_BYTES)
        encryptor = self._cipher.encryptor()
        ciphertext = encryptor.update(data.ljust(padded_len, b" ")) + encryptor.finalize()
        return base64.urlsafe_b64encode(ciphertext).decode("ascii").rstrip("=")

    def decrypt(self, x: str) -> str:
        """Decrypt an `x` in any accepted spelling; return the text without trailing filler.

        Raises PayloadError for an empty, non-base64, truncated or non-UTF-8 payload. A wrong key
        usually yields PayloadError (invalid UTF-8) but may yield unrelated text: callers must still
        parse and validate the JSON.
        """
        ciphertext = _b64decode(_normalise_encoded(x))
        if not ciphertext or len(ciphertext) % BLOCK_BYTES:
            raise PayloadError(
                f"encrypted data is {len(ciphertext)} bytes, not a whole number of AES blocks"
            )
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(ciphertext) + decryptor.finalize()
        try:
            # `from None`: a UnicodeDecodeError carries the decrypted bytes, keep them out of logs.
            return plain.rstrip(_TRAILING_FILLER).decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("decrypted data is not UTF-8 text (wrong key or IV?)") from None


def encrypt_payload(plaintext: str | bytes, key: str, iv: str) -> str:
    """Encrypt `plaintext` with `key`/`iv` into JDB's `x` (see `JdbCipher.encrypt`).

    Convenience for one-off calls; hot paths should keep a `JdbCipher` per domain instead.
    """
    return JdbCipher(key, iv).encrypt(plaintext)


def decrypt_payload(x: str, key: str, iv: str) -> str:
    """Decrypt JDB's `x` with `key`/`iv` (see `JdbCipher.decrypt`); PayloadError if unreadable."""
    return JdbCipher(key, iv).decrypt(x)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gamewallet.protocols.jdb.crypto",
        description="Build or read the encrypted `x` parameter of a JDB apiRequest.do call.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, what in (("encrypt", "JSON text to encrypt"), ("decrypt", "the x value to decrypt")):
        cmd = sub.add_parser(name, help=f"{name} one payload")
        cmd.add_argument("--key", required=True, help="the domain's AES key (<= 16 bytes)")
        cmd.add_argument("--iv", required=True, help="the domain's AES IV (<= 16 bytes)")
        cmd.add_argument("-v", "--verbose", action="store_true", help="echo masked key/IV")
        cmd.add_argument("text", nargs="?", default="-", help=f"{what}; '-' or omitted: stdin")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status (0 ok, 1 bad payload/key)."""
    args = _build_parser().parse_args(argv)
    text: str = sys.stdin.read().rstrip("\r\n") if args.text == "-" else args.text
    if args.verbose:
        sys.stderr.write(f"key={mask_secret(args.key)} iv={mask_secret(args.iv)}\n")
    try:
        cipher = JdbCipher(args.key, args.iv)
        result = cipher.encrypt(text) if args.command == "encrypt" else cipher.decrypt(text)
    except ValueError as exc:  # PayloadError included; messages never contain key material
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(result + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
