"""The checks of ``cdb systemcheck`` that need neither MEXC nor the trading pipeline.

Each function measures one thing and says what to do when it is off. ``CORE_CHECKS`` is the
ordered list the command runs; MEXC (REST, clock skew, WebSocket, permissions) and the full path
(signal → risk → paper execution → portfolio) are appended as further ``Check`` entries when
those parts exist.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from cdb_cli.services.systemcheck.model import Check, CheckContext, Outcome, Status

__all__ = [
    "CORE_CHECKS",
    "check_backup_age",
    "check_backup_disk",
    "check_backup_tools",
    "check_database",
    "check_database_auth",
    "check_database_disk",
    "check_file_modes",
    "check_redis",
    "check_round_trip",
    "check_schema",
    "check_settings",
    "check_smtp",
]

MiB: Final = 1024 * 1024
DISK_FAIL_BYTES: Final = 256 * MiB
DISK_WARN_BYTES: Final = 2048 * MiB
DISK_WARN_FRACTION: Final = 0.05
REDIS_WARN_MS: Final = 50.0
DATABASE_WARN_MS: Final = 200.0
REDIS_PINGS: Final = 3
NO_PASSWORD: Final = {
    "redis": "Redis accepts commands without a password: anyone who reaches it can read and "
    "write the bus; require one (docker-compose.yml does) and put it in CDB_BUS_URL",
    "postgresql": "PostgreSQL let cdb in without a password (trust or peer authentication); "
    "give the cdb role a password (docker-compose.yml does) and put it in CDB_DATABASE_URL",
}
"""The hints of a service that takes commands without authentication (a warning: it works)."""


def check_settings(context: CheckContext) -> Outcome:
    """The settings load and pass ``cdb env-validate`` (typos, secrets, .env permissions)."""
    from cdb_cli.envcheck import validate_environment

    report = validate_environment(context.env_file)
    if context.settings_error is not None or not report.ok:
        lines = [problem.line() for problem in report.problems]
        if not lines and context.settings_error is not None:
            lines = context.settings_error.details or [context.settings_error.message]
        shown = "; ".join(lines[:3]) + ("; …" if len(lines) > 3 else "")
        return Outcome(Status.FAIL, f"{len(lines)} problem(s)", f"{shown}; run `cdb env-validate`")
    settings = context.require_settings()
    source = context.env_file.name if context.env_file is not None else "environment"
    return Outcome(Status.OK, f"{source}, {settings.mode} mode, {len(settings.symbols)} symbols")


def check_database(context: CheckContext) -> Outcome:
    """The store's database answers (a SQLite file that is not there yet is a warning)."""
    from cdb_cli.adapters.sql.probe import database_exists, ping

    url = context.require_settings().database_url
    if not database_exists(url):
        return Outcome(
            Status.WARN,
            "not created yet",
            "`cdb db upgrade` (or the first `cdb run`) creates the SQLite file",
        )
    where, elapsed = ping(url)
    status = Status.WARN if elapsed > DATABASE_WARN_MS else Status.OK
    hint = "slow answer; is the server overloaded?" if status is Status.WARN else ""
    return Outcome(status, f"{where}, {elapsed:.1f} ms", hint)


def check_database_auth(context: CheckContext) -> Outcome:
    """PostgreSQL asked cdb for a password (the database row connected without one: trust or
    peer authentication is a warning); a SQLite file is guarded by its mode (``file modes``)."""
    from cdb_cli.adapters.sql.database import parse_url

    url = parse_url(context.require_settings().database_url)
    if url.get_backend_name() != "postgresql":
        return Outcome(Status.SKIP, "SQLite", "a file: see the file modes row")
    if not url.password:
        return Outcome(
            Status.WARN,
            f"role {url.username or '(default)'}, no password",
            NO_PASSWORD["postgresql"],
        )
    return Outcome(Status.OK, f"role {url.username}, password")


def check_schema(context: CheckContext) -> Outcome:
    """The schema is at the code's head revision."""
    from cdb_cli.adapters.sql.migrations import schema_status

    result = schema_status(context.require_settings().database_url)
    if result.up_to_date:
        return Outcome(Status.OK, f"at head {result.head}")
    if result.current is None:
        return Outcome(Status.FAIL, "no cdb schema", "run `cdb db upgrade`")
    if not result.pending:
        return Outcome(
            Status.FAIL,
            f"{result.current}, unknown to this cdb (head {result.head})",
            "upgrade cdb, or restore a backup that matches it",
        )
    return Outcome(
        Status.FAIL,
        f"{result.current}, {len(result.pending)} behind head {result.head}",
        "run `cdb db upgrade`",
    )


def check_round_trip(context: CheckContext) -> Outcome:
    """A row written to the store reads back the same (then it is rolled back)."""
    from cdb_cli.adapters.sql.probe import round_trip

    elapsed = round_trip(context.require_settings().database_url)
    status = Status.WARN if elapsed > DATABASE_WARN_MS else Status.OK
    hint = "slow write; check the disk or the server" if status is Status.WARN else ""
    return Outcome(status, f"write/read {elapsed:.1f} ms, rolled back", hint)


def check_redis(context: CheckContext) -> Outcome:
    """Redis answers PING, and how fast (only when ``CDB_BUS_URL`` is a Redis URL)."""
    settings = context.require_settings()
    if urlsplit(settings.bus_url).scheme not in {"redis", "rediss", "unix"}:
        return Outcome(Status.SKIP, "not configured", "CDB_BUS_URL is memory:// (in process)")
    from cdb_cli.adapters.redis_bus import RedisBus
    from cdb_cli.context import run_async

    async def measure() -> tuple[str, float]:
        bus = RedisBus(
            settings.bus_url,
            prefix=settings.bus_prefix,
            connect_timeout_s=2.0,
            command_timeout_s=2.0,
        )
        try:
            latencies = [await bus.ping_latency_ms() for _ in range(REDIS_PINGS)]
        finally:
            await bus.close()
        return bus.where, sorted(latencies)[len(latencies) // 2]

    where, latency = run_async(measure())
    if not urlsplit(settings.bus_url).password:  # it answered with no password asked
        return Outcome(Status.WARN, f"{where}, {latency:.1f} ms", NO_PASSWORD["redis"])
    if latency > REDIS_WARN_MS:
        return Outcome(Status.WARN, f"{where}, {latency:.1f} ms", "slow PING; network or load?")
    return Outcome(Status.OK, f"{where}, {latency:.1f} ms")


def check_smtp(context: CheckContext) -> Outcome:
    """The mail server answers, upgrades to TLS and accepts the login (no mail is sent)."""
    from cdb_cli.adapters.notify import EmailNotifier

    notifier = EmailNotifier.from_settings(context.require_settings())
    if notifier is None:
        return Outcome(Status.SKIP, "not configured", "set CDB_SMTP_HOST for alert and daily mail")
    elapsed = notifier.probe()
    return Outcome(Status.OK, f"{notifier.config.describe()}, {elapsed:.1f} ms")


def check_backup_tools(context: CheckContext) -> Outcome:
    """pg_dump and pg_restore exist and can handle the server (PostgreSQL only)."""
    settings = context.require_settings()
    if not settings.database_url.startswith("postgres"):
        return Outcome(Status.OK, "SQLite online backup (built in)")
    from cdb_cli.adapters.backup.postgres import find_tool, server_major

    server = server_major(settings.database_url)
    tools = [find_tool(name, settings.pg_bin_dir) for name in ("pg_dump", "pg_restore")]
    value = ", ".join(str(tool) for tool in tools) + f" for PostgreSQL {server}"
    old = [str(tool) for tool in tools if tool.major < server]
    if old:
        return Outcome(
            Status.FAIL,
            value,
            f"{' and '.join(old)} cannot handle PostgreSQL {server}: install "
            f"postgresql-client-{server} or set CDB_PG_BIN_DIR",
        )
    return Outcome(Status.OK, value)


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")  # pragma: no cover - the root always exists


def _disk(path: Path) -> Outcome:
    usage = shutil.disk_usage(_nearest_existing(path))
    free_fraction = usage.free / usage.total if usage.total else 0.0
    value = f"{usage.free / (1024 * MiB):.1f} GiB free ({free_fraction:.0%}) at {path}"
    if usage.free < DISK_FAIL_BYTES:
        return Outcome(Status.FAIL, value, "free space now: the store and backups will fail")
    if usage.free < DISK_WARN_BYTES or free_fraction < DISK_WARN_FRACTION:
        return Outcome(
            Status.WARN, value, "free space soon; `cdb backup prune` removes old backups"
        )
    return Outcome(Status.OK, value)


def check_database_disk(context: CheckContext) -> Outcome:
    """Free space where the database lives: the SQLite file, or a local PostgreSQL's data dir."""
    from cdb_cli.adapters.sql.database import is_memory_url, parse_url

    settings = context.require_settings()
    url = parse_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        database = context.rows.get("database")
        if database is not None and database.status is not Status.OK:
            return Outcome(Status.SKIP, hint="needs database to pass first")
        from cdb_cli.adapters.sql.probe import local_data_directory

        folder = local_data_directory(settings.database_url)
        if folder is None:
            return Outcome(Status.SKIP, "on the server", "watch the PostgreSQL server's disk")
        return _disk(folder)
    if is_memory_url(url):
        return Outcome(Status.SKIP, "in memory")
    return _disk(Path(url.database or ".").expanduser().absolute().parent)


def check_file_modes(context: CheckContext) -> Outcome:
    """What cdb keeps on disk is for its owner only: the SQLite database (0600) and its folder,
    the backup and spill folders (0700). One that group or others may read is a warning, with
    the ``chmod`` that fixes it (cdb creates them so; an older or hand-made one may be open)."""
    from cdb_cli.adapters.sql.database import is_memory_url, parse_url

    settings = context.require_settings()
    files: list[Path] = []
    folders = [settings.backup_dir, settings.spill_dir]
    url = parse_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not is_memory_url(url):
        database = Path(url.database or "").expanduser().absolute()
        files.append(database)
        folders.insert(0, database.parent)
    loose_files = [(path, mode) for path in files if (mode := _mode(path)) & 0o077]
    loose_folders = [(path, mode) for path in folders if (mode := _mode(path)) & 0o077]
    if not loose_files and not loose_folders:
        return Outcome(Status.OK, f"{len(files)} file(s), {len(folders)} folder(s) owner-only")
    value = ", ".join(f"{path} ({mode:04o})" for path, mode in [*loose_files, *loose_folders])
    fixes = [f"chmod 600 {path}" for path, _ in loose_files]
    fixes += [f"chmod 700 {path}" for path, _ in loose_folders]
    return Outcome(Status.WARN, value, "others may read the ledger or backups: " + "; ".join(fixes))


def _mode(path: Path) -> int:
    """The permission bits of ``path`` (0 when it does not exist yet)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0


def check_backup_disk(context: CheckContext) -> Outcome:
    """Free space in ``CDB_BACKUP_DIR``."""
    return _disk(context.require_settings().backup_dir)


def check_backup_age(context: CheckContext) -> Outcome:
    """Age of the newest backup that passed ``cdb backup verify``; a later failed verify fails."""
    from cdb_cli.adapters.backup import read_verify_records

    settings = context.require_settings()
    records = read_verify_records(settings.backup_dir)
    last_ok, last_failed = records.get("last_ok"), records.get("last_failed")
    if last_failed is not None and (
        last_ok is None or last_failed.verified_at > last_ok.verified_at
    ):
        return Outcome(
            Status.FAIL,
            f"verify of {last_failed.backup} failed",
            f"{last_failed.problem or 'see cdb backup verify'}; take a new backup",
        )
    if last_ok is None:
        return Outcome(
            Status.WARN,
            "no verified backup",
            "run `cdb backup create --verify`; `cdb backup schedule` prints the cron line",
        )
    age = context.now - last_ok.created_at
    value = f"{_hours(age)} old ({last_ok.backup})"
    if last_ok.path and not Path(last_ok.path).exists():
        return Outcome(
            Status.WARN, value, f"{last_ok.path} is gone; run `cdb backup create --verify`"
        )
    if age > timedelta(hours=settings.backup_max_age_hours):
        return Outcome(
            Status.WARN,
            value,
            f"older than CDB_BACKUP_MAX_AGE_HOURS={settings.backup_max_age_hours}; "
            "is the cron job running?",
        )
    return Outcome(Status.OK, value)


def _hours(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    if hours < 1:
        return f"{age.total_seconds() / 60:.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


CORE_CHECKS: Final[tuple[Check, ...]] = (
    Check("settings", check_settings, uses_settings=False),
    Check("database", check_database),
    Check("schema", check_schema, needs=("database",)),
    Check("database write", check_round_trip, needs=("schema",)),
    Check("database auth", check_database_auth, needs=("database",)),
    Check("redis", check_redis, network=True),
    Check("smtp", check_smtp, network=True),
    Check("disk (database)", check_database_disk),
    Check("disk (backups)", check_backup_disk),
    Check("file modes", check_file_modes),
    Check("backup tools", check_backup_tools, needs=("database",)),
    Check("backup", check_backup_age),
)
