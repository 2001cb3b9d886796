"""Names of the test data in the shared Redis and PostgreSQL, and their removal.

Every name carries this test run's mark ``RUN`` so that the end-of-run check in tests/conftest.py
tells this run's leftovers from another run's on the same servers. ``pythonpath`` in
pyproject.toml makes this module importable from every test (and it is imported once, so ``RUN``
is the same everywhere).
"""

from __future__ import annotations

import re
import secrets

RUN = secrets.token_hex(4)
"""This test run's mark in the names it gives Redis keys and PostgreSQL databases."""
REDIS_TEST_KEYS = "cdbtest*"
"""The pattern of every test key in the shared Redis."""
POSTGRES_TEST_DATABASES = "cdb_test_"
"""The prefix of every test database on the shared PostgreSQL server."""
OTHER_RUN = re.compile(r"^(?:cdbtest:|cdb_test_)([0-9a-f]{8})[:_]")
"""A name given by ``new_key_prefix`` or ``new_database_name``; group 1 is the run's mark."""


def new_key_prefix() -> str:
    """A Redis key prefix of one test: ``cdbtest:<run>:<hex>``."""
    return f"cdbtest:{RUN}:{secrets.token_hex(6)}"


def new_database_name() -> str:
    """A PostgreSQL database name of one test: ``cdb_test_<run>_<hex>``."""
    return f"cdb_test_{RUN}_{secrets.token_hex(6)}"


def delete_keys(url: str, prefix: str) -> None:
    """Delete every key of the real Redis at ``url`` that starts with ``prefix``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
