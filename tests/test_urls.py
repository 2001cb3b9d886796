"""redact_url: a password in a URL never reaches output."""

from __future__ import annotations

import pytest

from cdb_cli.redaction import redact_url


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
