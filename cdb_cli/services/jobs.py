"""Daily jobs of the running loop (``CDB_RUN_BACKUP_AT``, ``CDB_RUN_DAILY_CHECK_AT``).

They run the very commands an operator puts in cron — ``cdb backup create --verify --prune`` and
``cdb systemcheck --daily`` — as child processes with the loop's own settings in their
environment: the backup's work (pg_dump, gzip, the verify restore) never holds up the trading
loop, and the job does exactly what the command does.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdb_cli.settings import Settings

__all__ = ["BACKUP", "DAILY_CHECK", "daily_backup", "daily_check", "run_cdb", "schedule_times"]

Notify = Callable[[str, str], Awaitable[None]]
"""Mail an alert (subject, body); never raises."""

logger = logging.getLogger(__name__)

BACKUP = ("backup", "create", "--verify", "--prune")
DAILY_CHECK = ("systemcheck", "--daily")


def schedule_times(settings: Settings) -> dict[str, tuple[int, int]]:
    """The configured daily jobs: name → (hour, minute) in UTC."""
    times: dict[str, tuple[int, int]] = {}
    for name, value in (
        ("backup", settings.run_backup_at),
        ("daily_check", settings.run_daily_check_at),
    ):
        if value:
            hour, minute = value.split(":")
            times[name] = (int(hour), int(minute))
    return times


async def run_cdb(settings: Settings, *args: str, timeout_s: float = 3600.0) -> tuple[int, str]:
    """Run ``cdb ARGS`` with ``settings`` in its environment; (exit code, its last stderr line).

    A run that takes longer than ``timeout_s`` is killed and reported with exit code -1.
    """
    from cdb_cli.kernel import cdb_executable
    from cdb_cli.settings_io import settings_env

    env = {**os.environ, **settings_env(settings), "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        str(cdb_executable()),
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"killed after {timeout_s:.0f} s"
    lines = err.decode("utf-8", errors="replace").strip().splitlines()
    return (process.returncode if process.returncode is not None else -1), (
        lines[-1] if lines else ""
    )


async def daily_backup(settings: Settings, notify: Notify, who: str) -> int:
    """The daily backup (``CDB_RUN_BACKUP_AT``): ``cdb backup create --verify --prune`` in a
    child process; a failure is logged and mailed. Returns its exit code."""
    code, last = await run_cdb(settings, *BACKUP)
    if code == 0:
        logger.info("Scheduled backup done")
    else:
        logger.error("Scheduled backup failed (exit %d): %s", code, last)
        await notify("cdb backup failed", f"{who}: the scheduled backup exited {code}: {last}")
    return code


async def daily_check(settings: Settings, notify: Notify, who: str) -> int:
    """The daily check (``CDB_RUN_DAILY_CHECK_AT``): ``cdb systemcheck --daily``, which mails
    its report itself when SMTP is configured. Exit 4 (a check failed) is in that report;
    anything else is logged and mailed. Returns its exit code."""
    code, last = await run_cdb(settings, *DAILY_CHECK)
    if code == 0:
        logger.info("Scheduled daily check: every check passed")
    elif code == 4:
        logger.warning("Scheduled daily check: a check failed (see its report): %s", last)
    else:
        logger.error("Scheduled daily check could not run (exit %d): %s", code, last)
        await notify(
            "cdb daily check failed", f"{who}: cdb systemcheck --daily exited {code}: {last}"
        )
    return code
