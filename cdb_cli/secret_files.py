"""Secret settings read from files, so that they need not sit in ``.env`` (issue 27; the seed's
"secrets only via .env until Vault" step).

For each secret setting (:data:`~cdb_cli.settings.SECRET_FIELDS`), the first of these that
exists gives its value:

1. the variable itself, in the environment or the ``.env`` file (``CDB_MEXC_API_SECRET=…``);
2. ``CDB_MEXC_API_SECRET_FILE=/path``: a file that holds it (Docker's ``*_FILE`` convention);
3. ``$CREDENTIALS_DIRECTORY/CDB_MEXC_API_SECRET``: systemd's ``LoadCredential=`` /
   ``SetCredentialEncrypted=`` (the file may also be named in lower case, ``cdb_mexc_api_secret``);
4. ``/run/secrets/CDB_MEXC_API_SECRET``: Docker and compose secrets (the same two names).

A file's text is the value, without its final line break. The value is a secret like any other:
redacted from every message, judged by ``cdb env-validate`` (empty, placeholder, key shape). A
file that group or others may read is a problem for env-validate, ``cdb systemcheck`` and the
live gate, as a loose ``.env`` is.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.settings import SECRET_FIELDS, env_name

__all__ = [
    "DOCKER_SECRETS",
    "FILE_SUFFIX",
    "SecretFile",
    "file_variables",
    "loose_mode",
    "read_secret",
    "secret_files",
]

FILE_SUFFIX: Final = "_FILE"
DOCKER_SECRETS: Final = Path("/run/secrets")
"""Where Docker and compose mount secrets."""


@dataclass(frozen=True)
class SecretFile:
    """Where one secret setting comes from: a file, and what named it."""

    field: str
    """The setting (``mexc_api_secret``)."""
    path: Path
    via: str
    """``CDB_MEXC_API_SECRET_FILE``, ``systemd credential`` or ``docker secret``."""

    @property
    def variable(self) -> str:
        return env_name(self.field)


def file_variables() -> frozenset[str]:
    """The ``*_FILE`` variables cdb reads (``CDB_MEXC_API_SECRET_FILE`` …)."""
    return frozenset(env_name(field) + FILE_SUFFIX for field in SECRET_FIELDS)


def _in_directory(folder: Path, field: str) -> Path | None:
    for name in (env_name(field), env_name(field).lower()):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def secret_files(
    variables: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    docker_secrets: Path = DOCKER_SECRETS,
) -> list[SecretFile]:
    """The secret settings that come from files, given the ``CDB_*`` ``variables`` already set
    (environment and ``.env``, any case); a setting set there directly is not looked up."""
    given = {name.upper(): value for name, value in variables.items()}
    env = os.environ if environ is None else environ
    credentials = env.get("CREDENTIALS_DIRECTORY")
    found = []
    for field in sorted(SECRET_FIELDS):
        variable = env_name(field)
        if variable in given:
            continue
        named = given.get(variable + FILE_SUFFIX)
        if named:
            found.append(SecretFile(field, Path(named).expanduser(), variable + FILE_SUFFIX))
            continue
        if credentials and (path := _in_directory(Path(credentials), field)) is not None:
            found.append(SecretFile(field, path, "systemd credential"))
            continue
        if (path := _in_directory(docker_secrets, field)) is not None:
            found.append(SecretFile(field, path, "docker secret"))
    return found


def read_secret(source: SecretFile) -> str:
    """The value in ``source``'s file, without its final line break.

    Raises ``ConfigurationError`` naming the variable and the file (never its text) when the
    file cannot be read or is not UTF-8 text.
    """
    try:
        text = source.path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigurationError(
            f"{source.variable}: cannot read {source.path} ({source.via}): {e.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"{source.variable}: {source.path} ({source.via}) is not UTF-8 text"
        ) from None
    return text.removesuffix("\n").removesuffix("\r")


def loose_mode(path: Path) -> int | None:
    """The file's mode when group or others may read or write it (else None)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & (stat.S_IRWXG | stat.S_IRWXO) else None
