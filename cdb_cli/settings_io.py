"""Settings in and out of a command: ``--set`` overrides, the sanitized dump and its hash (a
report's and an audit record's provenance), and the environment of a child ``cdb``.

The schema itself is ``cdb_cli.settings``; nothing here defines a setting.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.envfile import env_file_bindings, env_file_values
from cdb_cli.redaction import (
    looks_secret,
    mask_userinfo,
    redact,
    redact_key_shapes,
    redact_url,
    url_secrets,
)
from cdb_cli.settings import ENV_PREFIX, SECRET_FIELDS, STRATEGY_PREFIX, Settings, env_name

__all__ = [
    "describe_validation_error",
    "load_settings",
    "sanitized",
    "secret_values",
    "settings_env",
    "settings_hash",
    "split_overrides",
    "strategy_variables",
]


def split_overrides(items: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``--set`` items → (settings by field name, the rest by name: the strategy's settings,
    ``strategy_`` prefix removed). ``ValueError`` for a malformed item; the rest's names are
    checked against the strategy (:func:`cdb_cli.services.strategy.command_settings`, which
    says "unknown setting" with a did-you-mean)."""
    known = set(Settings.model_fields)
    settings: dict[str, str] = {}
    rest: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not NAME=VALUE")
        field = name.strip().lower().removeprefix(ENV_PREFIX.lower())
        if field in known:
            settings[field] = value.strip()
        else:
            rest[field.removeprefix("strategy_")] = value.strip()
    return settings, rest


def strategy_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """The strategy's settings among ``CDB_*`` variables: ``CDB_STRATEGY_BB_PERIOD=20`` →
    ``{"bb_period": "20"}`` (not the settings named so, e.g. ``CDB_STRATEGY_MAX_ERRORS``)."""
    params: dict[str, str] = {}
    for key, value in variables.items():
        upper = key.upper()
        name = upper.removeprefix(STRATEGY_PREFIX).lower()
        if (
            upper.startswith(STRATEGY_PREFIX)
            and name
            and f"strategy_{name}" not in Settings.model_fields
        ):
            params[name] = value
    return params


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
    env: dict[str, str] = {
        f"{STRATEGY_PREFIX}{name.upper()}": value
        for name, value in settings.strategy_params.items()
    }
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None or name == "strategy_params":  # as CDB_STRATEGY_<NAME> above
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(str(item) for item in value)
        env[env_name(name)] = str(value)
    return env


def settings_payload(settings: Settings) -> str:
    """The effective settings as one canonical JSON text, secrets excluded (:func:`sanitized`):
    what a run's start audit records, so ``cdb parity`` can re-run it at its own settings."""
    return json.dumps(sanitized(settings), sort_keys=True, separators=(",", ":"))


def payload_hash(payload: str) -> str:
    """The hash of a :func:`settings_payload` (the audit records' ``settings_sha256``)."""
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def settings_hash(settings: Settings) -> str:
    """A stable hash of the effective settings, secrets excluded (for audit records)."""
    return payload_hash(settings_payload(settings))


_URL_FIELDS = frozenset({"database_url", "bus_url"})


def _error_variable(location: tuple[int | str, ...]) -> str:
    return env_name(str(location[0])) if location else "settings"


def describe_validation_error(error: ValidationError, secrets: Iterable[str] = ()) -> list[str]:
    """One line per invalid variable. Secret inputs are never echoed; other inputs are, through
    :func:`~cdb_cli.redaction.redact` (``secrets``: the known secret values, see
    :func:`secret_values`) and :func:`~cdb_cli.redaction.redact_key_shapes`, so a URL password or
    a secret swallowed by another value is not; an invalid URL setting without its user info."""
    secrets = list(secrets)
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        message = item["msg"].removeprefix("Value error, ")
        if field in SECRET_FIELDS:
            # a validator's message may quote the value; the webhook URLs' names the entry only
            message = message if field == "webhook_urls" else "invalid value"
        elif field and "input" in item:
            received = item["input"]
            if field in _URL_FIELDS and isinstance(received, str) and received:
                message = message.replace(received, mask_userinfo(received))
                received = mask_userinfo(received)
            message = f"{message} (received {received!r})"
        line = redact(f"{_error_variable(item['loc'])}: {message}", secrets)
        lines.append(redact_key_shapes(line))
    return lines


def secret_values(
    *sources: Mapping[str, str | None] | Iterable[tuple[str, str | None]],
) -> list[str]:
    """The secret values among raw ``CDB_*`` variables or field values (later sources listed too;
    a source may be ``(name, value)`` pairs, a name more than once: every binding of a ``.env``):
    the MEXC keys, the SMTP password, what a secret-looking name or a typo of theirs holds, and
    the passwords of every URL. For :func:`redact`."""
    secret_names = {env_name(name) for name in SECRET_FIELDS}
    # a setting of its own is no typo of a secret one (CDB_SMTP_PORT is close to …_PASSWORD)
    settings_names = {env_name(name) for name in Settings.model_fields} - secret_names
    found: list[str] = []
    for source in sources:
        pairs = source.items() if isinstance(source, Mapping) else source
        for key, value in pairs:
            if not value:
                continue
            upper = key.upper()
            named = upper in secret_names or env_name(upper.lower()) in secret_names
            typo = upper not in settings_names and looks_secret(upper, secret_names)
            if named or typo:
                found += [value, value.strip()]  # also a typo's: CDB_SMTP_PASSWROD=…
            found += url_secrets(value)
    return list(dict.fromkeys(found))  # each once


def load_settings(
    env_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Load and validate the settings, the same way for every command.

    ``overrides`` (field name → raw value, e.g. from ``--set``) win over the environment and are
    validated like it. A secret not set in either may come from a file
    (:mod:`cdb_cli.secret_files`: ``CDB_…_FILE``, systemd credentials, ``/run/secrets``). The
    strategy's settings come from the ``CDB_STRATEGY_<NAME>`` variables (file, then environment)
    and ``overrides["strategy_params"]``, which wins.

    Raises
    ------
    ConfigurationError
        With one detail line per invalid variable (never a secret value).
    """
    if env_file is not None and not env_file.is_file():
        raise ConfigurationError(f"Env file {env_file} does not exist")
    from cdb_cli.secret_files import read_secret, secret_files

    file_values = env_file_values(env_file) if env_file is not None else {}
    values: dict[str, Any] = dict(overrides or {})
    environment = {k: v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
    params = strategy_variables({**file_values, **environment})
    if params or "strategy_params" in values:
        values["strategy_params"] = {**params, **values.get("strategy_params", {})}
    from_files = {  # secrets that need not sit in .env: *_FILE, systemd credentials, /run/secrets
        source.field: read_secret(source)
        for source in secret_files({**file_values, **environment})
        if source.field not in values
    }
    values.update(from_files)
    try:
        return Settings(_env_file=env_file, _env_file_encoding="utf-8-sig", **values)
    except ValidationError as e:
        bindings = env_file_bindings(env_file) if env_file is not None else []
        given = {**dict(overrides or {}), **from_files}
        secrets = secret_values(file_values, bindings, environment, given)
        details = describe_validation_error(e, secrets)
        raise ConfigurationError(
            f"Invalid settings: {len(details)} problem(s); run 'cdb env-validate'",
            details=details,
        ) from None
