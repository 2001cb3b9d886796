"""``cdb backup``: create, list, verify, restore and prune backups of the store; schedule them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import AppContext, app_context
from cdb_cli.options import JsonOpt

if TYPE_CHECKING:
    from cdb_cli.kernel.backups import Manifest, VerifyReport

app = typer.Typer(
    help="Back up, verify, restore and prune the store.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

BackupArg = Annotated[
    str | None,
    typer.Argument(help="A backup file, or its name in CDB_BACKUP_DIR (default: the newest)."),
]


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def _summary(path: Path, manifest: Manifest) -> dict[str, Any]:
    return {
        "backup": path.name,
        "path": str(path),
        "engine": manifest.engine,
        "created_at": manifest.created_at.isoformat(),
        "source": manifest.source,
        "schema_revision": manifest.schema_revision,
        "cdb_version": manifest.cdb_version,
        "size_bytes": path.stat().st_size,
        "rows": manifest.total_rows,
        "tables": {name: digest.rows for name, digest in manifest.tables.items()},
    }


def _wants_json(context: AppContext, json_output: bool) -> bool:
    return json_output or context.json


@app.command("create")
def create(
    ctx: typer.Context,
    *,
    verify: Annotated[
        bool, typer.Option("--verify", help="Verify the new backup right away.")
    ] = False,
    prune_after: Annotated[
        bool, typer.Option("--prune", help="Then prune backups older than CDB_BACKUP_KEEP_DAYS.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Back up the store into CDB_BACKUP_DIR.

    SQLite via the online backup API (gzip), PostgreSQL via pg_dump --format=custom; with a
    manifest (SHA-256, rows and hashes per table, schema revision). Written atomically, mode
    0600; a failure leaves no file behind. Prints the new file's path.
    """
    context = app_context(ctx)
    settings = context.settings()
    from cdb_cli.kernel import backups

    path = backups.create_backup(settings)
    manifest = backups.read_manifest(path)
    document = _summary(path, manifest)
    as_json = _wants_json(context, json_output)
    terminal = context.terminal
    if not as_json:  # first, so a log shows the file even if --verify fails below
        terminal.out.print(str(path), markup=False)
        terminal.err.print(
            f"Backup written: {manifest.total_rows} rows in {len(manifest.tables)} tables, "
            f"{_size(document['size_bytes'])}",
            markup=False,
        )
    if verify:
        _verify(context, path)
        document["verified"] = True
        if not as_json:
            terminal.err.print("Verified: a scratch restore matches the manifest", markup=False)
    if prune_after:
        removed = _prune(context, settings.backup_keep_days, dry_run=False)
        document["pruned"] = [str(old) for old in removed]
        if not as_json:
            terminal.err.print(f"Pruned {len(removed)} old file(s)", markup=False)
    if as_json:
        terminal.json(document)


def _verify(
    context: AppContext, path: Path, scratch_server: str | None = None, *, as_json: bool = False
) -> VerifyReport:
    from cdb_cli.engine.errors import CheckFailed
    from cdb_cli.kernel.backups import verify_backup

    report = verify_backup(context.settings(), path, scratch_server)
    if as_json:
        document = _summary(path, report.manifest)
        context.terminal.json({**document, "ok": report.ok, "problems": report.problems})
    if not report.ok:
        raise CheckFailed(
            f"Backup {path.name} does not match its manifest", details=report.problems
        )
    return report


@app.command("list")
def list_(ctx: typer.Context, *, json_output: JsonOpt = False) -> None:
    """List the backups, oldest first.

    Shows the files in CDB_BACKUP_DIR with size, rows and schema revision; damaged files are
    marked, the last verified one too.
    """
    context = app_context(ctx)
    settings = context.settings()
    from cdb_cli.services.operator import backup_list

    document = backup_list(settings)
    rows = document["backups"]
    if _wants_json(context, json_output):
        context.terminal.json(document)
        return
    if not rows:
        context.terminal.err.print(f"No backups in {settings.backup_dir}", markup=False)
        return
    from rich.table import Column, Table

    table = Table(  # the name says the time and the engine
        Column("backup", no_wrap=True),
        Column("size", no_wrap=True),
        "rows",
        "schema",
        Column("note", min_width=8, overflow="fold"),
    )
    for row in rows:
        table.add_row(
            row["backup"],
            _size(row["size_bytes"]),
            "" if row["rows"] is None else str(row["rows"]),
            row["schema_revision"] or "",
            row["problem"] or ("verified" if row["last_verified"] else ""),
        )
    context.terminal.out.print(table)


@app.command("verify")
def verify(
    ctx: typer.Context,
    backup: BackupArg = None,
    *,
    scratch_server: Annotated[
        str | None,
        typer.Option(
            "--scratch-server",
            help="PostgreSQL URL whose server hosts the scratch database (default: "
            "CDB_DATABASE_URL). Needs CREATEDB.",
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Restore a backup into a scratch database and compare.

    Checks the file's SHA-256, then restores (a temporary SQLite file, or a throw-away
    PostgreSQL database that is dropped afterwards) and compares row counts and hashes per
    table. Exit 0 when equal, 4 when damaged or different. Recorded for cdb systemcheck.
    """
    context = app_context(ctx)
    from cdb_cli.kernel.backups import resolve_backup

    path = resolve_backup(context.settings(), backup)
    as_json = _wants_json(context, json_output)
    report = _verify(context, path, scratch_server, as_json=as_json)
    if not as_json:
        context.terminal.out.print(
            f"OK: {path.name} matches its manifest ({report.manifest.total_rows} rows in "
            f"{len(report.manifest.tables)} tables)",
            markup=False,
        )


@app.command("restore")
def restore(
    ctx: typer.Context,
    backup: Annotated[str, typer.Argument(help="A backup file, or its name in CDB_BACKUP_DIR.")],
    *,
    to: Annotated[
        str,
        typer.Option("--to", help="Database URL to restore into (sqlite:///… or postgresql://…)."),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a database that already has tables.")
    ] = False,
) -> None:
    """Restore a backup into the database at --to.

    Asks for confirmation unless --yes. Refuses a database that already has tables unless
    --force. Exit 4 when the restored data does not match the manifest.
    """
    context = app_context(ctx)
    settings = context.settings()
    from cdb_cli.kernel import backups

    path = backups.resolve_backup(settings, backup)
    manifest = backups.read_manifest(path)
    try:
        where = backups.restore_target(manifest, to)
    except ValueError:
        raise typer.BadParameter(
            f"{path.name} is a {manifest.engine} backup; --to must be a {manifest.engine} URL",
            param_hint="--to",
        ) from None
    question = (
        f"Restore {path.name} ({manifest.total_rows} rows, taken "
        f"{manifest.created_at:%Y-%m-%d %H:%M} UTC) into {where}"
        f"{' replacing its contents' if force else ''}?"
    )
    if not yes and not typer.confirm(question, err=True):
        context.terminal.err.print("Nothing restored", markup=False)
        raise typer.Exit(1)
    backups.restore_backup(settings, path, to, force=force)
    context.terminal.out.print(
        f"Restored {path.name} into {where}: {manifest.total_rows} rows, checked", markup=False
    )
    from cdb_cli.kernel.database import schema_status

    status = schema_status(to)
    if not status.up_to_date and status.pending:
        context.terminal.warn(
            f"The restored schema is at {status.current or 'no cdb revision'}; this cdb needs "
            f"{status.head}: run `cdb db upgrade` on it before `cdb run`"
        )
    elif not status.up_to_date:
        context.terminal.warn(
            f"The restored schema {status.current} is newer than this cdb ({status.head}); "
            "use the cdb version that wrote the backup"
        )


def _prune(context: AppContext, keep_days: int, *, dry_run: bool) -> list[Path]:
    from datetime import UTC, datetime

    from cdb_cli.kernel.backups import prune_backups

    return prune_backups(
        context.settings(), keep_days=keep_days, now=datetime.now(UTC), dry_run=dry_run
    )


@app.command("prune")
def prune_(
    ctx: typer.Context,
    *,
    keep_days: Annotated[
        int | None,
        typer.Option(
            "--keep-days", min=0, help="Keep backups this many days (default CDB_BACKUP_KEEP_DAYS)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be removed.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Remove old backups; the newest always stays.

    Removes backups older than --keep-days (default CDB_BACKUP_KEEP_DAYS, 30) and temporary
    files of interrupted runs.
    """
    context = app_context(ctx)
    days = context.settings().backup_keep_days if keep_days is None else keep_days
    removed = _prune(context, days, dry_run=dry_run)
    if _wants_json(context, json_output):
        context.terminal.json(
            {"keep_days": days, "dry_run": dry_run, "removed": [str(path) for path in removed]}
        )
        return
    verb = "Would remove" if dry_run else "Removed"
    for path in removed:
        context.terminal.out.print(f"{verb} {path}", markup=False)
    context.terminal.err.print(
        f"{verb} {len(removed)} file(s); keeping backups of the last {days} days", markup=False
    )


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    *,
    at: Annotated[str, typer.Option("--at", help="Daily time, HH:MM (local time of cron).")] = (
        "03:17"
    ),
    install: Annotated[
        bool, typer.Option("--install", help="Add the line to your crontab (idempotent).")
    ] = False,
) -> None:
    """Print (or --install) the daily cron line.

    The line works under cron's minimal environment: absolute cdb and --env-file, output
    appended to cdb-backup.log in CDB_BACKUP_DIR. --install adds it to your crontab, replacing
    an earlier cdb backup line.
    """
    context = app_context(ctx)
    settings = context.settings()
    from cdb_cli.kernel.backups import cron_job, install_cron_job

    job = cron_job(settings, at=at, env_file=context.env_file)
    context.terminal.out.print(job.line, markup=False, soft_wrap=True)
    if install:
        changed = install_cron_job(job)
        message = "Installed in your crontab" if changed else "Already in your crontab"
        context.terminal.err.print(message, markup=False)
    else:
        context.terminal.err.print(
            f"Add it with `crontab -e`, or run `cdb backup schedule --install`. "
            f"Log: {settings.backup_dir / 'cdb-backup.log'}",
            markup=False,
        )
