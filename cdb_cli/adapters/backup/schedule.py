"""The crontab line that runs ``cdb backup create`` daily, and installing it idempotently.

cron runs a job with almost nothing: ``PATH=/usr/bin:/bin``, ``SHELL=/bin/sh``, no ``CDB_*``
variables, often another working directory. So the line names everything itself: the absolute
cdb executable, the absolute ``--env-file``, the working directory (for relative SQLite paths),
``HOME`` (and ``XDG_DATA_HOME`` when set) so the default database and backup folder resolve as they
do now, and ``PATH`` with the folder of pg_dump when it is not in ``/usr/bin:/bin``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cdb_cli.engine.errors import ConfigurationError, DependencyError

__all__ = [
    "CRON_PATH",
    "MARKER",
    "CronJob",
    "cdb_executable",
    "cron_job",
    "install",
    "shell_only_variables",
]

MARKER: Final = "# cdb backup schedule:"
"""Starts the comment that ends a cdb line; with the env file it identifies one deployment."""
CRON_PATH: Final = "/usr/bin:/bin"
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class CronJob:
    """One crontab entry: five time fields and a ``sh -c`` command."""

    minute: int
    hour: int
    command: str
    marker: str  # the trailing comment: one line per env file (deployment)

    @property
    def line(self) -> str:
        """The crontab line; ``%`` is escaped because cron turns it into a newline."""
        text = f"{self.command} {self.marker}".replace("%", "\\%")
        return f"{self.minute} {self.hour} * * * {text}"


def cdb_executable() -> Path:
    """The absolute path of the running cdb's console script (beside its Python)."""
    beside = Path(sys.executable).absolute().parent / "cdb"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("cdb")
    if found is None:
        raise DependencyError("Cannot find the cdb executable to schedule; install cdb first")
    return Path(found).absolute()


def _q(value: str | Path) -> str:
    return shlex.quote(str(value))


def cron_job(
    *,
    at: str,
    env_file: Path,
    log_file: Path,
    working_dir: Path,
    environment: Mapping[str, str],
    tool_dirs: list[Path],
    executable: Path | None = None,
) -> CronJob:
    """Build the daily job ``cdb backup create --verify --prune`` at ``at`` (``HH:MM``).

    ``environment`` is the current process environment: only ``HOME`` and ``XDG_DATA_HOME`` are
    carried into the line (they decide the default paths); ``tool_dirs`` are folders to put on
    PATH before cron's ``/usr/bin:/bin`` (e.g. where pg_dump lives).
    """
    match = _TIME.match(at)
    if match is None:
        raise ConfigurationError(f"--at {at!r} is not a time like 03:17 (24-hour HH:MM)")
    assignments = []
    for name in ("HOME", "XDG_DATA_HOME"):
        if environment.get(name):
            assignments.append(f"{name}={_q(environment[name])}")
    extra = [str(folder) for folder in tool_dirs if str(folder) not in CRON_PATH.split(":")]
    if extra:
        assignments.append(f"PATH={_q(':'.join([*dict.fromkeys(extra), CRON_PATH]))}")
    program = executable or cdb_executable()
    command = " ".join(
        [
            f"cd {_q(working_dir.absolute())} &&",
            *assignments,
            _q(program),
            f"--env-file {_q(env_file.absolute())}",
            "backup create --verify --prune",
            f">> {_q(log_file.absolute())} 2>&1",
        ]
    )
    marker = f"{MARKER} {env_file.absolute()}"
    return CronJob(int(match.group(2)), int(match.group(1)), command, marker)


def shell_only_variables(
    environment: Mapping[str, str], env_file_keys: set[str], settings_variables: set[str]
) -> list[str]:
    """Settings variables set in this shell but not in the env file: cron will not see them."""
    return sorted(
        name for name in environment if name in settings_variables and name not in env_file_keys
    )


def install(job: CronJob) -> bool:
    """Add ``job`` to the user's crontab, replacing the earlier line of the same env file.

    Returns False when the exact line is already installed (nothing changes). Raises
    ``DependencyError`` when ``crontab`` is not installed or refuses.
    """
    crontab = shutil.which("crontab")
    if crontab is None:
        raise DependencyError(
            "crontab is not installed (install the cron package), or add the line printed by "
            "`cdb backup schedule` to your scheduler by hand"
        )
    listed = subprocess.run(  # noqa: S603 - the crontab program, no shell
        [crontab, "-l"], capture_output=True, text=True, check=False, timeout=30
    )
    if listed.returncode != 0 and "no crontab" not in listed.stderr.lower():
        reason = listed.stderr.strip().splitlines()[0] if listed.stderr.strip() else "failed"
        raise DependencyError(f"crontab -l: {reason}")
    current = listed.stdout.splitlines() if listed.returncode == 0 else []
    if job.line in current:
        return False
    tail = job.marker.replace("%", "\\%")  # as it appears in the crontab
    kept = [line for line in current if not line.endswith(tail)]
    written = subprocess.run(  # noqa: S603 - the crontab program, no shell
        [crontab, "-"],
        input="\n".join([*kept, job.line]) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if written.returncode != 0:
        reason = written.stderr.strip().splitlines()[0] if written.stderr.strip() else "failed"
        raise DependencyError(f"crontab -: {reason}")
    return True
