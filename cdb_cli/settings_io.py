"""Settings in and out of a command: ``--set`` overrides, the sanitized dump and its hash (a
report's and an audit record's provenance), and the environment of a child ``cdb``.

The schema itself is ``cdb_cli.settings``; nothing here defines a setting.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

from cdb_cli.redaction import redact_url
from cdb_cli.settings import ENV_PREFIX, SECRET_FIELDS, Settings, env_name

__all__ = ["parse_overrides", "sanitized", "settings_env", "settings_hash"]


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["max_spread_pct=0.2", "CDB_EMA_FAST=9"]`` → field name → raw value.

    Raises ``ValueError`` (one line, with a did-you-mean) for a malformed item or an unknown name.
    """
    known = set(Settings.model_fields)
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not NAME=VALUE")
        field = name.strip().lower().removeprefix(ENV_PREFIX.lower())
        if field not in known:
            guess = difflib.get_close_matches(field, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {guess[0]}?" if guess else ""
            raise ValueError(f"unknown setting {name.strip()!r}{hint}")
        result[field] = value.strip()
    return result


def sanitized(settings: Settings) -> dict[str, Any]:
    """A JSON-able dump: secrets become ``REDACTED`` (None when unset), URL passwords ``***``."""
    data = settings.model_dump(mode="json")
    for name in SECRET_FIELDS:
        data[name] = None if getattr(settings, name) is None else "REDACTED"
    for name in ("database_url", "bus_url"):
        data[name] = redact_url(data[name])
    return data


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as ``CDB_*`` environment variables (secrets included: for a child process's
    environment only, never for output), so a ``cdb`` subprocess sees the same settings."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(str(item) for item in value)
        env[env_name(name)] = str(value)
    return env


def settings_hash(settings: Settings) -> str:
    """A stable hash of the effective settings, secrets excluded (for audit records)."""
    payload = json.dumps(sanitized(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
