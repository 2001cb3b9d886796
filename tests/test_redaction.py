"""redact_url: a password in a URL never reaches output."""

from __future__ import annotations

import pytest

from cdb_cli.redaction import redact, redact_url


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
