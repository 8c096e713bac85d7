"""Tests for the JDB payload codec: the vendor-compatible vector, lenient decoding, typed errors."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import sys
from collections.abc import Callable
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from gamewallet.protocols.jdb import crypto
from gamewallet.protocols.jdb.crypto import (
    JdbCipher,
    PayloadError,
    decrypt_payload,
    encrypt_payload,
    main,
    mask_secret,
)

KEY = "testKey"
IV = "testIVtestIVtest"
PLAIN = (
    '{"action":21,"ts":1609430400000,"parent":"testParent","uid":"testPlayID",'
    '"balance":1000,"lang":"en","gType":"0","mType":"8001"}'
)
VECTOR = (
    "RK3wn-eTsqaqNKQbX9kz6ngE6UktzyXXHiPZh1mQH1Oz9tITxuP7GdX8SZhtbOMPnONlHoiJ3QGgMYHm7oc-OAGBBHBY"
    "Tr9AWRkb2DgEqVaQEA2iBdBfSLtTeeLIeRA7vjw39gpYIcXqnRKvoMX7JkB58pryC-yDisadqo0TPvU"
)
KEY16 = "0123456789abcdef"


def _raw_cbc(data: bytes, key: bytes = b"testKey".ljust(16, b"\0")) -> bytes:
    """Encrypt already block-aligned bytes as an independent client would."""
    enc = Cipher(algorithms.AES(key), modes.CBC(IV.encode())).encryptor()
    return enc.update(data) + enc.finalize()


def _b64(raw: bytes, *, urlsafe: bool = True, strip: bool = True) -> str:
    text = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    return text.rstrip("=") if strip else text


# Text that survives the round trip unchanged: decrypt strips trailing bytes <= 0x20 by design,
# so the generated text must not end in one (JSON always ends in `}` or `]`).
round_trip_text = st.text(st.characters(codec="utf-8")).filter(lambda s: not s or ord(s[-1]) > 0x20)


def test_vendor_vector_encrypts_exactly() -> None:
    assert len(PLAIN.encode()) == 127  # so the single space of the vector is our padding
    assert encrypt_payload(PLAIN, KEY, IV) == VECTOR
    assert encrypt_payload(PLAIN + " ", KEY, IV) == VECTOR
    assert encrypt_payload(PLAIN.encode(), KEY, IV) == VECTOR


def test_vendor_vector_decrypts() -> None:
    assert decrypt_payload(VECTOR, KEY, IV) == PLAIN


def test_output_is_unpadded_urlsafe() -> None:
    x = encrypt_payload('{"action":65,"ts":1}', KEY16, KEY16)
    assert "=" not in x
    assert set(x) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_padding_is_spaces_to_whole_blocks() -> None:
    for size in (1, 15, 16, 17, 32):
        text = "a" * size
        raw = base64.urlsafe_b64decode(encrypt_payload(text, KEY, IV) + "==")
        expected_len = -(-size // 16) * 16
        assert raw == _raw_cbc(text.encode().ljust(expected_len, b" "))


def test_empty_plaintext_encrypts_to_one_block() -> None:
    x = encrypt_payload("", KEY, IV)
    assert len(base64.urlsafe_b64decode(x + "==")) == 16
    assert decrypt_payload(x, KEY, IV) == ""


@given(round_trip_text)
def test_round_trip_any_unicode(text: str) -> None:
    assert decrypt_payload(encrypt_payload(text, KEY16, KEY16), KEY16, KEY16) == text


@given(
    st.dictionaries(
        st.text(max_size=10),
        st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none()),
        max_size=6,
    )
)
def test_round_trip_json_objects(obj: dict[str, object]) -> None:
    text = json.dumps(obj, ensure_ascii=False)
    cipher = JdbCipher(KEY, IV)
    assert json.loads(cipher.decrypt(cipher.encrypt(text))) == obj


def test_base64_padding_present_or_absent() -> None:
    raw = base64.urlsafe_b64decode(VECTOR + "=" * (-len(VECTOR) % 4))
    padded = _b64(raw, strip=False)
    assert padded.endswith("=")
    assert decrypt_payload(padded, KEY, IV) == PLAIN
    assert decrypt_payload(padded.rstrip("="), KEY, IV) == PLAIN


def test_standard_alphabet_accepted() -> None:
    raw = base64.urlsafe_b64decode(VECTOR + "=" * (-len(VECTOR) % 4))
    standard = _b64(raw, urlsafe=False, strip=False)
    assert "+" in standard or "/" in standard
    assert decrypt_payload(standard, KEY, IV) == PLAIN


def test_url_encoded_x_accepted() -> None:
    raw = base64.urlsafe_b64decode(VECTOR + "=" * (-len(VECTOR) % 4))
    standard = _b64(raw, urlsafe=False, strip=False)
    encoded = quote(standard, safe="")
    assert "%3D" in encoded
    assert "%2B" in encoded or "%2F" in encoded
    assert decrypt_payload(encoded, KEY, IV) == PLAIN
    lower_escapes = encoded.replace("%3D", "%3d").replace("%2B", "%2b").replace("%2F", "%2f")
    assert decrypt_payload(lower_escapes, KEY, IV) == PLAIN  # %3d is as valid as %3D


def test_plus_turned_into_space_by_a_query_parser() -> None:
    raw = base64.urlsafe_b64decode(VECTOR + "=" * (-len(VECTOR) % 4))
    standard = _b64(raw, urlsafe=False)
    assert "+" in standard
    assert decrypt_payload(standard.replace("+", " "), KEY, IV) == PLAIN


def test_pkcs7_client_decrypts() -> None:
    for text in ('{"action":65,"ts":1}', "x" * 16, PLAIN):
        padder = padding.PKCS7(128).padder()
        data = padder.update(text.encode()) + padder.finalize()
        assert decrypt_payload(_b64(_raw_cbc(data)), KEY, IV) == text


def test_zero_padding_client_decrypts() -> None:
    text = '{"action":65,"ts":1}'
    assert decrypt_payload(_b64(_raw_cbc(text.encode().ljust(32, b"\0"))), KEY, IV) == text


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "=",
        "====",
        "   ",
        "A",  # 4n+1 characters: impossible base64
        "AAAA",  # 3 bytes: not a whole block
        VECTOR[:-2],  # truncated: not a whole block
        VECTOR[:-1],
        VECTOR + "A",
        "not base64!",
        "AB=CD",  # `=` inside
        "%ZZ",
        "%FF%FE",
        "ÄÖÜ" * 8,
        "\u0663" * 24,  # Arabic-Indic digits are not base64 digits
    ],
)
def test_malformed_input_raises_payload_error(bad: str) -> None:
    with pytest.raises(PayloadError):
        decrypt_payload(bad, KEY, IV)


def test_too_long_input_raises_payload_error() -> None:
    with pytest.raises(PayloadError):
        decrypt_payload("A" * (256 * 1024 + 4), KEY, IV)


def test_payload_error_is_a_value_error() -> None:
    assert issubclass(PayloadError, ValueError)


def test_non_utf8_plaintext_raises_payload_error() -> None:
    x = _b64(_raw_cbc(b"\xff\xfe" + b"a" * 14))
    with pytest.raises(PayloadError) as info:
        decrypt_payload(x, KEY, IV)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_tampered_ciphertext_never_yields_the_plaintext() -> None:
    raw = bytearray(base64.urlsafe_b64decode(VECTOR + "=" * (-len(VECTOR) % 4)))
    for position in (0, 17, len(raw) - 1):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        try:
            result = decrypt_payload(_b64(bytes(tampered)), KEY, IV)
        except PayloadError:
            continue
        assert result != PLAIN


@given(st.text(min_size=1, max_size=16).filter(lambda k: len(k.encode()) <= 16))
def test_wrong_key_never_yields_the_plaintext(key: str) -> None:
    if key.encode().ljust(16, b"\0") == KEY.encode().ljust(16, b"\0"):
        return
    try:
        result = decrypt_payload(VECTOR, key, IV)
    except PayloadError:
        return
    assert result != PLAIN


@given(st.binary(min_size=16, max_size=80).filter(lambda b: len(b) % 16 == 0))
def test_random_ciphertext_gives_text_or_payload_error(raw: bytes) -> None:
    # No other exception type may escape, whatever the bytes.
    try:
        result = decrypt_payload(_b64(raw), KEY, IV)
    except PayloadError:
        return
    assert isinstance(result, str)


@given(st.text(max_size=64))
def test_arbitrary_text_gives_text_or_payload_error(x: str) -> None:
    with contextlib.suppress(PayloadError):
        decrypt_payload(x, KEY, IV)


@pytest.mark.parametrize(("key", "iv"), [("", IV), (KEY, ""), ("k" * 17, IV), (KEY, "é" * 9)])
def test_bad_key_material_rejected_without_echoing_it(key: str, iv: str) -> None:
    with pytest.raises(ValueError, match="JDB AES") as info:
        JdbCipher(key, iv)
    if key:
        assert key not in str(info.value)
    if iv:
        assert iv not in str(info.value)


def test_cipher_instance_reusable_and_repr_masks_secrets() -> None:
    cipher = JdbCipher(KEY16, "fedcba9876543210")
    assert [cipher.encrypt(PLAIN) for _ in range(3)] == [cipher.encrypt(PLAIN)] * 3
    assert cipher.decrypt(cipher.encrypt(PLAIN)) == PLAIN
    text = repr(cipher)
    assert KEY16 not in text
    assert "fedcba9876543210" not in text
    assert "01************ef" in text


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("0123456789abcdef", "01************ef"),
        ("abcdefgh", "ab****gh"),
        ("testKey", "*******"),
        ("abc", "***"),
        ("", ""),
    ],
)
def test_mask_secret(secret: str, masked: str) -> None:
    assert mask_secret(secret) == masked


def test_cli_encrypt_and_decrypt(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encrypt", "--key", KEY, "--iv", IV, PLAIN]) == 0
    assert capsys.readouterr().out == VECTOR + "\n"
    assert main(["decrypt", "--key", KEY, "--iv", IV, VECTOR]) == 0
    assert capsys.readouterr().out == PLAIN + "\n"


def test_cli_reads_stdin_and_masks_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(encrypt_payload(PLAIN, KEY16, IV) + "\n"))
    assert main(["decrypt", "-v", "--key", KEY16, "--iv", IV]) == 0
    captured = capsys.readouterr()
    assert captured.out == PLAIN + "\n"
    assert KEY16 not in captured.err
    assert "01************ef" in captured.err


def test_cli_reports_bad_payload(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decrypt", "--key", KEY, "--iv", IV, "abc"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error:")


def _normalised(normalise: Callable[[str], str], x: str) -> str:
    try:
        return normalise(x)
    except PayloadError as exc:
        return f"PayloadError: {exc}"


_SPELLINGS = st.text(alphabet=st.sampled_from("ABCxyz019-_+/= %2Bf\r\n\tÄ"), max_size=40) | st.text(
    alphabet=st.sampled_from("AZaz09-_"), max_size=40
)


@given(_SPELLINGS)
def test_plain_urlsafe_shortcut_normalises_as_the_lenient_path(x: str) -> None:
    """The shortcut for plain URL-safe text (what we send) answers exactly what the lenient
    normalisation answers, result or error message, for every spelling."""
    assert _normalised(crypto._normalise_encoded, x) == _normalised(crypto._normalise_lenient, x)


def test_plain_urlsafe_shortcut_is_taken_for_our_own_payloads() -> None:
    x = JdbCipher(KEY16, KEY16).encrypt(PLAIN)
    assert crypto._normalise_encoded(x) is x  # returned as given: no copy, no translation
