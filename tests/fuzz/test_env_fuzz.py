"""Fuzzed ``.env`` files (issue 22): seeded byte mutations of realistic files holding known secrets,
through ``cdb env-validate`` and ``cdb backup prune --dry-run`` (a command that loads the settings
and touches no service). No traceback, an exit code from the documented map, and no secret echoed.

Every file runs through the real root command in process, the way ``cdb``'s entry point
(:func:`cdb_cli.app.main`) runs it: the Click command built from the Typer app once, then
``command.main(args)`` in ``CliRunner.isolation()``. ``CliRunner.invoke`` rebuilds that command from
the app on every call (~75 ms, three quarters of a case), which made the full size (20,000 files)
take over half an hour. Every ``SUBPROCESS_EVERY``-th file also goes through the installed ``cdb``
in a subprocess: the console script with its last-resort handler and real streams.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import typer.main
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


SUBPROCESS_EVERY = cases(ci=75, full=500)  # 2 files (CI), 40 (full) also through the `cdb` script
ROOT = typer.main.get_command(app)  # what cdb_cli.app.main builds, once for every case
CDB = Path(sys.executable).with_name("cdb")


class Outcome(NamedTuple):
    exit_code: int
    output: str  # stdout and stderr (in process also the log records)
    crash: str  # an exception out of the command (in process), else ""


def mutated(case: int) -> bytes:
    """Case ``case``'s ``.env`` bytes: seeded, so a failure's number rebuilds the file."""
    return mutate(SEEDS[case % len(SEEDS)].encode(), random.Random(case))


def in_process(runner: CliRunner, args: list[str]) -> Outcome:
    """``cdb ARGS`` as :func:`cdb_cli.app.main` runs it, minus its last-resort handler (an
    exception out of the command is the crash this test looks for), with the exit code
    ``CliRunner.invoke`` would report."""
    crash = ""
    with runner.isolation() as (_, _, output):
        try:
            ROOT.main(args=args, prog_name="cdb")
            exit_code = 0
        except SystemExit as e:
            exit_code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        except Exception as e:  # a crash: what this test looks for
            exit_code, crash = 1, repr(e)
        sys.stdout.flush()
        sys.stderr.flush()
        text = output.getvalue().decode(errors="replace")
    return Outcome(exit_code, text, crash)


def in_subprocess(args: list[str]) -> Outcome:
    done = subprocess.run(
        [str(CDB), *args], capture_output=True, text=True, errors="replace", timeout=60, check=False
    )
    return Outcome(done.returncode, f"{done.stdout}\n{done.stderr}", "")


def problems(outcome: Outcome) -> list[str]:
    found = []
    if outcome.exit_code not in DOCUMENTED or outcome.crash:
        found.append(f"exit {outcome.exit_code} {outcome.crash}")
    text = f"{outcome.output}\n{outcome.crash}"
    if "Traceback" in text or "Unexpected error" in text:
        found.append("traceback")
    return found + [f"echoed {secret}" for secret in SECRETS if secret in text]


@pytest.mark.fuzz
def test_fuzzed_env_files_never_crash_nor_echo_a_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = CliRunner()
    env = tmp_path / ".env"
    failures: list[str] = []
    through_cdb = 0
    for case in range(cases(ci=150, full=20_000)):
        data = mutated(case)
        env.write_bytes(data)
        os.chmod(env, 0o600)
        args = ["--env-file", str(env), *COMMANDS[case % len(COMMANDS)]]
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            outcome = in_process(runner, args)
        found = problems(outcome._replace(output=f"{outcome.output}\n{caplog.text}"))
        if case % SUBPROCESS_EVERY == 0:
            through_cdb += 1
            script = in_subprocess(args)
            found += [f"cdb script: {problem}" for problem in problems(script)]
            if script.exit_code != outcome.exit_code:
                found.append(f"cdb script exit {script.exit_code}, in process {outcome.exit_code}")
        if found:
            failures.append(f"case {case} ({' '.join(args[2:])}, {data!r}): {found}")
    assert through_cdb >= 2
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:10])
