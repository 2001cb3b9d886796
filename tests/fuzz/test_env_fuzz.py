"""Fuzzed ``.env`` files (issue 22): seeded byte mutations of realistic files holding known secrets,
through ``cdb env-validate`` and ``cdb backup prune --dry-run`` (a command that loads the settings
and touches no service). No traceback, an exit code from the documented map, and no secret echoed.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import pytest
from fuzz_testkit import cases, mutate
from typer.testing import CliRunner

from cdb_cli.app import app
from cdb_cli.errors import ExitCode

KEY = "mx0vglFuzzKey0123456"
SECRET = "fedcba9876543210fedcba9876543210"
SMTP = "FuzzSmtpPassw0rd"
PG = "FuzzPgPassw0rd"
REDIS = "FuzzRedisPassw0rd"
SECRETS = (KEY, SECRET, SMTP, PG, REDIS)

SEEDS = [
    (
        "CDB_MODE=live\n"
        f"CDB_MEXC_API_KEY={KEY}\n"
        f"CDB_MEXC_API_SECRET={SECRET}\n"
        f"CDB_DATABASE_URL=postgresql+psycopg://cdb:{PG}@127.0.0.1:1/cdb\n"
        f"CDB_BUS_URL=redis://:{REDIS}@127.0.0.1:1/0\n"
        "CDB_SYMBOLS=BTCUSDT,ETHUSDT\n"
        "CDB_HTTP_PORT=8000\n"
    ),
    (
        "# mail\n"
        "CDB_SMTP_HOST=mail.example.org\n"
        "CDB_SMTP_USER=ops\n"
        f'CDB_SMTP_PASSWORD="{SMTP}"\n'
        "CDB_SMTP_FROM=cdb@example.org\n"
        "CDB_SMTP_TO=ops@example.org\n"
        f"export CDB_MEXC_API_SECRET='{SECRET}'\n"
        "CDB_MAX_SPREAD_PCT=0.2\n"
    ),
    (
        f"CDB_DATABASE_URL=postgresql://cdb@127.0.0.1:1/cdb?sslpassword={PG}&password={PG}\n"
        f"CDB_MEXC_API_KEY={KEY}\n"
        "CDB_SYMBOLS=${CDB_MEXC_API_KEY}\n"
        "CDB_EMA_FAST=9\nCDB_EMA_SLOW=21\n"
    ),
]
COMMANDS = (("env-validate",), ("backup", "prune", "--dry-run"))
DOCUMENTED = {int(code) for code in ExitCode}


@pytest.mark.fuzz
def test_fuzzed_env_files_never_crash_nor_echo_a_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = CliRunner()
    env = tmp_path / ".env"
    failures: list[str] = []
    for case in range(cases(ci=150, full=20_000)):
        rng = random.Random(case)
        data = mutate(SEEDS[case % len(SEEDS)].encode(), rng)
        env.write_bytes(data)
        os.chmod(env, 0o600)
        command = COMMANDS[case % len(COMMANDS)]
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            result = runner.invoke(app, ["--env-file", str(env), *command], prog_name="cdb")
        exception = "" if result.exception is None else f"{result.exception!r}"
        if isinstance(result.exception, SystemExit):
            exception = ""
        output = "\n".join((result.stdout, result.stderr, caplog.text, exception))
        problems = []
        if result.exit_code not in DOCUMENTED or exception:
            problems.append(f"exit {result.exit_code} {exception}")
        if "Traceback" in output or "Unexpected error" in output:
            problems.append("traceback")
        problems += [f"echoed {secret}" for secret in SECRETS if secret in output]
        if problems:
            failures.append(f"case {case} ({' '.join(command)}, {data!r}): {problems}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:10])
