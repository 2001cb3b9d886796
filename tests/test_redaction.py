"""redact_url: a password in a URL never reaches output."""

from __future__ import annotations

import pytest

from cdb_cli.redaction import (
    looks_secret,
    mask_userinfo,
    redact,
    redact_key_shapes,
    redact_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://cdb:pw@db:5432/cdb", "postgresql+psycopg://cdb:***@db:5432/cdb"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://:pw@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("sqlite:////tmp/cdb.db", "sqlite:////tmp/cdb.db"),
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u@h/db?sslmode=require&sslpassword=pw", "?sslmode=require&sslpassword=***"),
        ("postgresql://u@h/db?password=pw", "postgresql://u@h/db?password=***"),
        ("received 'postgres://u:pw@ho[st/db'", "received 'postgres://u:***@ho[st/db'"),
        ("postgresql//u:pw@h/db", "postgresql//u:***@h/db"),
        ("redis://:p@ss@h:6379/0", "redis://:***@h:6379/0"),
        ("'BTCCDB_MEXC_API_SECRET=0123abcd'", "'BTCCDB_MEXC_API_SECRET=***'"),
        ("CDB_SYMBOLS: 'abcdef123'", "CDB_SYMBOLS: '***'"),
    ],
)
def test_redact_masks_passwords_query_secrets_and_known_values(text: str, expected: str) -> None:
    assert expected in redact(text, ["abcdef123"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CDB_MEXC_API_SECREfedcba9876543210fedcba9876543210", "CDB_MEXC_API_SECRE***"),
        ("BTCUSDfedcba9876543210fedcba9876543210", "BTCUSD***"),
        ("livemx0vglFuzzKey0123456", "live***"),
        ("sha256 " + "ab" * 32, "sha256 " + "ab" * 32),  # 64 hex digits: not a key
        ("mx0 and mx0abc stay", "mx0 and mx0abc stay"),
    ],
)
def test_redact_key_shapes_masks_mexc_keys_wherever_they_are(text: str, expected: str) -> None:
    assert redact_key_shapes(text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://cdb:pw@db/cdb", "postgres://cdb:***@db/cdb"),
        ("redisPassw0rd@127.0.0.1:1/0", "***@127.0.0.1:1/0"),
        ("redis://Passw0rd@h:6379/0", "redis://***@h:6379/0"),
        ("sqlite:///data/cdb.db", "sqlite:///data/cdb.db"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("postgresql://cdb:Passw0rd.1:1/cdb", "postgresql://cdb:***/cdb"),  # the @ lost
        ("prd&pad=Passw0rd", "prd&pad=***"),
    ],
)
def test_mask_userinfo_hides_a_password_without_its_colon(url: str, expected: str) -> None:
    assert mask_userinfo(url) == expected


def test_a_quoted_secret_assignment_is_masked() -> None:
    assert redact('x SMTP_PASSWORD="Passw0rd" y') == 'x SMTP_PASSWORD="***" y'
    assert redact("API_SECRET='abc'") == "API_SECRET='***'"


def test_a_secret_looking_name_or_a_typo_of_a_secret_one_holds_a_secret() -> None:
    secret_names = ["CDB_SMTP_PASSWORD", "CDB_MEXC_API_SECRET"]
    assert looks_secret("CDB_X_TOKEN")
    assert looks_secret("CDB_SMTP_SSWORD", secret_names)
    assert looks_secret("cdb_mexc_api_secrte", secret_names)
    assert not looks_secret("CDB_SMTP_USER", secret_names)
    assert not looks_secret("CDB_SYMBOLS", secret_names)
