"""Signing against the official MEXC vectors (mexc_api.md §1.4) and the secret-hiding rules."""

from __future__ import annotations

import pickle

import pytest

from cdb_cli.adapters.mexc.signing import Credentials, encode_params, mask_key, sign

SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"
API_KEY = "mx0aBYs33eIilxBWC5"
QUERY = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # Official Example 2: everything in the query string.
        (QUERY, "fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a"),
        # Official Example 3: query + body concatenated without '&'.
        (
            "symbol=BTCUSDT&side=BUY&type=LIMIT"
            "quantity=1&price=11&recvWindow=5000&timestamp=1644489390087",
            "d1a676610ceb39174c8039b3f548357994b2a34139a8addd33baadba65684592",
        ),
        (
            "recvWindow=5000&timestamp=1644489390087",
            "1103ce19f47c037fc03b8b9d674e10ee76e53272851eb2a3b10321cd353fb9bf",
        ),
        (
            "symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=10&newClientOrderId=bot123"
            "&recvWindow=5000&timestamp=1644489390087",
            "6c03510bc26e1ca73214d5915c8f7e91fd756c2670663185d17493377539030b",
        ),
    ],
)
def test_sign_matches_official_vectors(message: str, expected: str) -> None:
    assert sign(SECRET, message) == expected
    assert Credentials(API_KEY, SECRET).sign(message) == expected


def test_sign_does_not_verify_the_misprinted_example_1() -> None:
    # The docs' Example 1 signature is a documentation error (mexc_api.md §1.4).
    assert sign(SECRET, QUERY) != "323c96ab85a745712e95e63cad28903dd8292e4a905e99c4ee3932023843a117"


def test_encode_params_keeps_order_and_uppercases_percent_escapes() -> None:
    params = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "1")]
    assert encode_params(params) == "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1"
    assert encode_params([("symbols", "A,B c")]) == "symbols=A%2CB%20c"


def test_credentials_never_show_the_secret() -> None:
    credentials = Credentials(API_KEY, SECRET)
    for text in (repr(credentials), str(credentials), f"{credentials}", f"{credentials!r}"):
        assert SECRET not in text
        assert API_KEY not in text
        assert "mx0a" in text
    assert credentials.api_key_masked == "mx0a…WC5"
    with pytest.raises(TypeError):
        pickle.dumps(credentials)


def test_mask_key_hides_short_keys_entirely() -> None:
    assert mask_key("abc") == "***"
    assert mask_key(API_KEY) == "mx0a…WC5"


def test_credentials_require_both_parts() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Credentials("", SECRET)
