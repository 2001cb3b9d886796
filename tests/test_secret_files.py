"""Secret settings from files (issue 27): ``CDB_…_FILE``, systemd credentials
(``$CREDENTIALS_DIRECTORY``) and Docker secrets (``/run/secrets``), read by every command's
settings load and judged by env-validate; a loose file is a problem, a secret is never echoed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.errors import ExitCode
from cdb_cli.secret_files import SecretFile, read_secret, secret_files
from cdb_cli.settings_io import load_settings

KEY = "mx0aBYs33eIilxBWC5"
SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"


def secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


@pytest.fixture(autouse=True)
def no_outside_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CDB_MEXC_API_KEY", "CDB_MEXC_API_SECRET", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


def test_a_file_variable_gives_the_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = secret_file(tmp_path / "secret", SECRET + "\n")  # a final line break is not part of it
    monkeypatch.setenv("CDB_MEXC_API_SECRET_FILE", str(path))
    settings = load_settings(None)
    assert settings.mexc_api_secret is not None
    assert settings.mexc_api_secret.get_secret_value() == SECRET


def test_systemd_credentials_give_both_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``LoadCredential=CDB_MEXC_API_KEY:/etc/cdb/key`` provides them: files named after the
    variable in $CREDENTIALS_DIRECTORY (or in lower case)."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    secret_file(credentials / "CDB_MEXC_API_KEY", KEY)
    secret_file(credentials / "cdb_mexc_api_secret", SECRET, mode=0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_settings(None)
    assert settings.mexc_api_key is not None
    assert settings.mexc_api_secret is not None
    assert settings.mexc_api_key.get_secret_value() == KEY
    assert settings.mexc_api_secret.get_secret_value() == SECRET


def test_docker_secrets_are_read_from_their_folder(tmp_path: Path) -> None:
    secret_file(tmp_path / "CDB_MEXC_API_KEY", KEY)
    (source,) = secret_files({}, environ={}, docker_secrets=tmp_path)
    assert source == SecretFile("mexc_api_key", tmp_path / "CDB_MEXC_API_KEY", "docker secret")
    assert read_secret(source) == KEY


def test_a_value_set_directly_wins_over_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = secret_file(tmp_path / "secret", "ff" * 16)
    monkeypatch.setenv("CDB_MEXC_API_SECRET_FILE", str(path))
    monkeypatch.setenv("CDB_MEXC_API_SECRET", SECRET)
    settings = load_settings(None)
    assert settings.mexc_api_secret is not None
    assert settings.mexc_api_secret.get_secret_value() == SECRET
    assert secret_files({"CDB_MEXC_API_SECRET": SECRET}, environ={}) == []


def test_a_missing_file_is_one_line_naming_it_never_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_MEXC_API_SECRET_FILE", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigurationError) as caught:
        load_settings(None)
    assert caught.value.message == (
        f"CDB_MEXC_API_SECRET: cannot read {tmp_path / 'nowhere'} (CDB_MEXC_API_SECRET_FILE): "
        "No such file or directory"
    )


def test_env_validate_fails_a_loose_credential_file_and_never_echoes_it(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    loose = secret_file(credentials / "CDB_MEXC_API_SECRET", SECRET, mode=0o644)
    secret_file(credentials / "CDB_MEXC_API_KEY", KEY)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    result = cdb("env-validate", "--mode", "live", "--json")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    report = json.loads(result.stdout)
    assert [(p["variable"], p["code"]) for p in report["problems"]] == [
        (str(loose), "file_permissions")
    ]
    assert "mode 0644" in report["problems"][0]["message"]
    assert SECRET not in result.output
    assert KEY not in result.output
    os.chmod(loose, 0o600)
    clean = cdb("env-validate", "--mode", "live")
    assert clean.exit_code == 0, clean.output  # both keys present, from files: live is satisfied


def test_env_validate_judges_a_secret_from_a_file_like_any_other(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_MEXC_API_KEY_FILE", str(secret_file(tmp_path / "k", "your-key-here")))
    result = cdb("env-validate")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "CDB_MEXC_API_KEY: holds a placeholder value" in result.stdout
    assert "your-key-here" not in result.output
    assert "unknown variable" not in result.stdout  # CDB_MEXC_API_KEY_FILE is known
