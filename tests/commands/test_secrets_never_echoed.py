"""Hostile ``.env`` input (issue 22): a bad encoding is one line and exit 3 for every command, and
no secret (MEXC keys, SMTP password, URL passwords) ever reaches stdout, stderr, a log record or an
exception's text, whichever error path echoes the value."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from cdb_cli.errors import ExitCode

KEY = "mx0vglKnownKeyAbc123"
SECRET = "0123456789abcdef0123456789abcdef"
SMTP = "SmtpPassw0rdXyz"
PG = "PgPassw0rdQrs"
SECRETS = (KEY, SECRET, SMTP, PG)

# (name, .env text, command) → exit code and the one line that must be printed
CASES = [
    (
        "unsupported scheme",
        f"CDB_DATABASE_URL=postgres://cdb:{PG}@db:5432/cdb\n",
        ("risk", "status"),
        ExitCode.CONFIGURATION,
        "CDB_DATABASE_URL: must start with sqlite:/// or postgresql+psycopg://",
    ),
    (
        "unsupported scheme, env-validate",
        f"CDB_DATABASE_URL=postgres://cdb:{PG}@db:5432/cdb\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_DATABASE_URL: must start with sqlite:/// or postgresql+psycopg://",
    ),
    (
        "malformed host",
        f"CDB_DATABASE_URL=postgresql://cdb:{PG}@db[:5432/cdb\n",
        ("db", "status"),
        ExitCode.CONFIGURATION,
        "CDB_DATABASE_URL: Invalid IPv6 URL",
    ),
    (
        "password with an @ and a /",
        f"CDB_DATABASE_URL=mysql://cdb:{PG}@x/y@db:5432/cdb\n",
        ("db", "upgrade"),
        ExitCode.CONFIGURATION,
        "CDB_DATABASE_URL: must start with",
    ),
    (
        "sslpassword query parameter, unsupported scheme",
        f"CDB_DATABASE_URL=pg://cdb@db/cdb?sslmode=require&sslpassword={PG}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_DATABASE_URL: must start with",
    ),
    (
        "bus URL password",
        f"CDB_BUS_URL=amqp://cdb:{PG}@mq:5672/\n",
        ("backup", "prune", "--dry-run"),
        ExitCode.CONFIGURATION,
        "CDB_BUS_URL: must be memory:// or redis://HOST:PORT/DB",
    ),
    (
        "secret with a colon instead of =",
        f"CDB_MEXC_API_SECRET:{SECRET}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        ":1: line is not NAME=VALUE",
    ),
    (
        "unclosed quote swallows the secret line",
        f'CDB_SYMBOLS="BTCUSDT\nCDB_MEXC_API_SECRET={SECRET}\nCDB_MODE=paper"\n',
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_SYMBOLS:",
    ),
    (
        "unclosed quote, every command",
        f"CDB_MODE='paper\nCDB_SMTP_PASSWORD={SMTP}\nCDB_SMTP_USER=ops'\n",
        ("risk", "status"),
        ExitCode.CONFIGURATION,
        "CDB_MODE: Input should be 'paper' or 'live'",
    ),
    (
        "interpolation of the secret",
        f"CDB_MEXC_API_SECRET={SECRET}\nCDB_SYMBOLS=${{CDB_MEXC_API_SECRET}}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_SYMBOLS:",
    ),
    (
        "interpolation of the key into a URL",
        f"CDB_MEXC_API_KEY={KEY}\nCDB_MEXC_REST_URL=ftp://${{CDB_MEXC_API_KEY}}\n",
        ("risk", "status"),
        ExitCode.CONFIGURATION,
        "CDB_MEXC_REST_URL: must be an http:// or https:// URL",
    ),
    (
        "a missing newline glues the secret to another value",
        f"CDB_HTTP_PORT=80CDB_SMTP_PASSWORD={SMTP}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_HTTP_PORT:",
    ),
    (
        "secret-named unknown variable",
        f"CDB_MEXC_API_SECRETT={SECRET}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_MEXC_API_SECRETT: unknown variable; did you mean CDB_MEXC_API_SECRET?",
    ),
    (
        "an invalid secret is not quoted",
        f"CDB_MEXC_API_KEY={KEY}\nCDB_MEXC_API_SECRET=not-{SECRET}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_MEXC_API_SECRET: does not look like a MEXC secret key",
    ),
    (
        "not UTF-8",
        f"CDB_MEXC_API_SECRET={SECRET}\nCDB_MODE=p\xe4per\n",
        ("risk", "status"),
        ExitCode.CONFIGURATION,
        ":2: not valid UTF-8 (byte 0xe4); save the env file as UTF-8",
    ),
    (
        "not UTF-8, env-validate",
        f"CDB_MEXC_API_SECRET={SECRET}\n\xff\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        ":2: not valid UTF-8 (byte 0xff)",
    ),
    (
        "a NUL byte",
        f"CDB_SMTP_PASSWORD={SMTP}\nCDB_MODE=paper\x00\n",
        ("db", "status"),
        ExitCode.CONFIGURATION,
        ":2: holds a NUL byte",
    ),
    # Found by tests/fuzz/test_env_fuzz.py at CDB_FUZZ=full (59 of 20,000 files echoed a secret).
    (
        "a secret copied by ${} before a later line replaces it",
        f"CDB_SMTP_PASSWORD={SMTP}\nCDB_SYMBOLS=${{CDB_SMTP_PASSWORD}}\nCDB_SMTP_PASSWORD=other\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_SYMBOLS: '***' is not a MEXC spot symbol",
    ),
    (
        "a quoted secret assignment merged into the line before",
        f'CDB_SMTP_TO=ops@exampleCDB_SMTP_PASSWORD="{SMTP}"\n',
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_SMTP_TO: 'ops@exampleCDB_SMTP_PASSWORD=\"***\"' is not a mail address",
    ),
    (
        "a secret key glued to its name (the = lost)",
        f"CDB_MEXC_API_SECRE{SECRET}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_MEXC_API_SECRE***: unknown variable",
    ),
    (
        "an access key pasted into another value",
        f"CDB_MODE=live{KEY}\n",
        ("backup", "prune", "--dry-run"),
        ExitCode.CONFIGURATION,
        "CDB_MODE: Input should be 'paper' or 'live' (received 'live***')",
    ),
    (
        "a bus URL whose user info is only a password",
        f"CDB_BUS_URL=redis{PG}@127.0.0.1:1/0\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_BUS_URL: must be memory:// or redis://HOST:PORT/DB (received '***@127.0.0.1:1/0')",
    ),
    (
        "a database URL that lost its @",
        f"CDB_DATABASE_URL=postgresul+psycopg://cdb:{PG}.1:1/cdb\n",
        ("backup", "prune", "--dry-run"),
        ExitCode.CONFIGURATION,
        "(received 'postgresul+psycopg://cdb:***/cdb')",
    ),
    (
        "a mangled query parameter name",
        f"CDB_DATABASE_URL=prd&pad={PG}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "(received 'prd&pad=***')",
    ),
    (
        "a typo in a secret's name, its value copied into another",
        f"CDB_SMTP_PASWORD={SMTP}\nCDB_SMTP_FROM=c{SMTP}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_SMTP_FROM: 'c***' is not a mail address",
    ),
    (
        "a secret-looking unknown name holding a secret",
        f"CDB_MEXC_API_{SMTP}SECRET={SMTP}\n",
        ("env-validate",),
        ExitCode.CONFIGURATION,
        "CDB_MEXC_API_***SECRET: unknown variable",
    ),
]


def write_env(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("latin-1") if "\xe4" in text or "\xff" in text else text.encode())
    os.chmod(path, 0o600)
    return path


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} echoed in:\n{text}"


@pytest.mark.parametrize(
    ("env_text", "command", "code", "line"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_env_gives_one_line_and_no_secret(
    cdb: Callable[..., Result],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    env_text: str,
    command: tuple[str, ...],
    code: int,
    line: str,
) -> None:
    env = write_env(tmp_path / ".env", env_text)
    with caplog.at_level(logging.DEBUG):
        result = cdb("--env-file", str(env), *command)
    exception = "" if result.exception is None else f"{result.exception!r} {result.exception}"
    assert_no_secret(result.stdout, result.stderr, caplog.text, exception)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "Unexpected error" not in result.output
    assert line in result.output, result.output


def test_json_failure_document_has_no_secret(cdb: Callable[..., Result], tmp_path: Path) -> None:
    env = write_env(tmp_path / ".env", f"CDB_DATABASE_URL=postgres://cdb:{PG}@db/cdb\n")
    result = cdb("--env-file", str(env), "--json", "env-validate")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert_no_secret(result.stdout, result.stderr)
    assert "postgres://cdb:***@db/cdb" in result.stdout


@pytest.mark.infra
@pytest.mark.parametrize("parameter", ["password", "sslpassword"])
def test_db_status_hides_a_query_password(
    cdb: Callable[..., Result], tmp_path: Path, postgres_url: str, parameter: str
) -> None:
    url = f"{postgres_url}?{parameter}={PG}"  # the password is ignored by a trusting server
    env = write_env(tmp_path / ".env", f"CDB_DATABASE_URL={url}\n")
    result = cdb("--env-file", str(env), "db", "status")
    assert_no_secret(result.stdout, result.stderr)
    assert f"{parameter}=***" in result.stdout, result.output


def test_a_real_cdb_process_prints_one_line_and_no_secret(tmp_path: Path) -> None:
    env = write_env(tmp_path / ".env", f"CDB_MEXC_API_SECRET={SECRET}\nCDB_MODE=\xffpaper\n")
    cdb = Path(sys.executable).with_name("cdb")
    for command in (["env-validate"], ["risk", "status"]):
        done = subprocess.run(
            [str(cdb), "--env-file", str(env), *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert_no_secret(done.stdout, done.stderr)
        assert done.returncode == ExitCode.CONFIGURATION, done.stderr
        assert f"{env}:2: not valid UTF-8 (byte 0xff)" in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert "Unexpected error" not in done.stderr
