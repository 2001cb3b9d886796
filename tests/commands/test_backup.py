"""``cdb backup …`` end to end through the CLI, on SQLite and the real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from cdb_cli.adapters.sql import upgrade
from cdb_cli.errors import ExitCode


@pytest.fixture
def seeded(tmp_path: Path, seed_store: Callable[..., int], monkeypatch: pytest.MonkeyPatch) -> str:
    """CDB_DATABASE_URL at a seeded SQLite file, CDB_BACKUP_DIR in tmp_path."""
    url = f"sqlite:///{tmp_path / 'data' / 'cdb.db'}"
    upgrade(url)
    seed_store(url)
    monkeypatch.setenv("CDB_DATABASE_URL", url)
    monkeypatch.setenv("CDB_BACKUP_DIR", str(tmp_path / "backups"))
    return url


def _create(cdb: Callable[..., Result]) -> Path:
    result = cdb("backup", "create")
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path.is_file()
    assert "Backup written" in result.stderr
    return path


def test_create_list_verify_restore_on_sqlite(
    cdb: Callable[..., Result], seeded: str, tmp_path: Path
) -> None:
    path = _create(cdb)

    listed = cdb("backup", "list", "--json")
    assert listed.exit_code == 0, listed.output
    backups = json.loads(listed.stdout)["backups"]
    assert [item["backup"] for item in backups] == [path.name]
    assert backups[0]["rows"] > 40

    verified = cdb("backup", "verify", "--json")  # default: the newest
    assert verified.exit_code == 0, verified.output
    document = json.loads(verified.stdout)
    assert document["ok"] is True
    assert document["backup"] == path.name

    target = f"sqlite:///{tmp_path / 'restored.db'}"
    restored = cdb("backup", "restore", path.name, "--to", target, "--yes")
    assert restored.exit_code == 0, restored.output
    assert "checked" in restored.stdout

    from cdb_cli.adapters.backup import read_manifest
    from cdb_cli.adapters.backup.sqlite import digest_file

    manifest = read_manifest(path)
    assert digest_file(tmp_path / "restored.db") == (manifest.schema_revision, manifest.tables)


@pytest.mark.infra
@pytest.mark.usefixtures("pg_client_tools")
def test_create_verify_restore_on_postgres(
    cdb: Callable[..., Result],
    postgres_database: str,
    seed_store: Callable[..., int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upgrade(postgres_database)
    seed_store(postgres_database)
    monkeypatch.setenv("CDB_DATABASE_URL", postgres_database)
    monkeypatch.setenv("CDB_BACKUP_DIR", str(tmp_path / "backups"))

    created = cdb("backup", "create", "--verify", "--json")
    assert created.exit_code == 0, created.output
    document = json.loads(created.stdout)
    assert document["engine"] == "postgresql"
    assert document["verified"] is True

    refused = cdb("backup", "restore", document["backup"], "--to", postgres_database, "--yes")
    assert refused.exit_code == ExitCode.FAILURE, refused.output
    assert "not empty" in refused.stderr


def test_verify_exits_4_on_a_corrupted_byte(cdb: Callable[..., Result], seeded: str) -> None:
    path = _create(cdb)
    with tarfile.open(path) as archive:
        member = archive.getmembers()[1]
    data = bytearray(path.read_bytes())
    data[member.offset_data + member.size // 2] ^= 0x01
    path.write_bytes(bytes(data))

    result = cdb("backup", "verify", str(path))

    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "damaged" in result.stderr
    assert result.stdout == ""
    listed = json.loads(cdb("backup", "list", "--json").stdout)["backups"]
    assert listed[0]["rows"] is not None  # the manifest is intact; verify caught the dump


def test_verify_exits_4_on_a_truncated_file(cdb: Callable[..., Result], seeded: str) -> None:
    path = _create(cdb)
    with path.open("r+b") as stream:
        stream.truncate(1000)
    result = cdb("backup", "verify", path.name)
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_verify_without_backups_says_so(cdb: Callable[..., Result], seeded: str) -> None:
    result = cdb("backup", "verify")
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert "No backup" in result.stderr


def test_restore_asks_first_and_refuses_non_empty_without_force(
    cdb: Callable[..., Result], runner: object, seeded: str
) -> None:
    from typer.testing import CliRunner

    from cdb_cli.app import app

    path = _create(cdb)
    assert isinstance(runner, CliRunner)
    declined = runner.invoke(app, ["backup", "restore", path.name, "--to", seeded], input="n\n")
    assert declined.exit_code == ExitCode.FAILURE, declined.output
    assert "Nothing restored" in declined.stderr

    refused = runner.invoke(app, ["backup", "restore", path.name, "--to", seeded], input="y\n")
    assert refused.exit_code == ExitCode.FAILURE, refused.output
    assert "not empty" in refused.stderr
    assert "--force" in refused.stderr

    forced = cdb("backup", "restore", path.name, "--to", seeded, "--yes", "--force")
    assert forced.exit_code == 0, forced.output


def test_restore_into_another_engine_is_a_usage_error(
    cdb: Callable[..., Result], seeded: str
) -> None:
    path = _create(cdb)
    result = cdb("backup", "restore", path.name, "--to", "postgresql://u@127.0.0.1:1/x", "--yes")
    assert result.exit_code == ExitCode.USAGE, result.output


def test_prune_dry_run_then_prune(cdb: Callable[..., Result], seeded: str) -> None:
    first = _create(cdb)
    second = _create(cdb)
    planned = cdb("backup", "prune", "--keep-days", "0", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["removed"] == [str(first)]
    assert first.exists()
    done = cdb("backup", "prune", "--keep-days", "0")
    assert done.exit_code == 0, done.output
    assert not first.exists()
    assert second.exists()


def test_create_with_unwritable_backup_dir_is_one_line(
    cdb: Callable[..., Result], seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("CDB_BACKUP_DIR", str(tmp_path / "file" / "backups"))
    result = cdb("backup", "create")
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def _write_env(tmp_path: Path, seeded: str) -> Path:
    env_file = tmp_path / "conf" / ".env"
    env_file.parent.mkdir()
    env_file.write_text(
        f"CDB_DATABASE_URL={seeded}\nCDB_BACKUP_DIR={tmp_path / 'backups'}\n", encoding="utf-8"
    )
    env_file.chmod(0o600)
    return env_file


def test_schedule_line_runs_under_crons_minimal_environment(
    cdb: Callable[..., Result], seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = _write_env(tmp_path, seeded)
    monkeypatch.delenv("CDB_DATABASE_URL")
    monkeypatch.delenv("CDB_BACKUP_DIR")

    result = cdb("--env-file", str(env_file), "backup", "schedule", "--at", "04:05")
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert line.startswith("5 4 * * * ")
    assert "CDB_" not in line

    # What cron does: the command after five fields, \% back to %, /bin/sh -c, bare environment.
    command = line.split(maxsplit=5)[5].replace("\\%", "%")
    done = subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", "SHELL=/bin/sh", "LOGNAME=cron", "/bin/sh", "-c",
         command],
        cwd="/", capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    log = tmp_path / "backups" / "cdb-backup.log"
    assert done.returncode == 0, done.stderr + (log.read_text() if log.exists() else "")
    backups = sorted((tmp_path / "backups").glob("cdb-*.tar"))
    assert len(backups) == 1
    log_text = log.read_text()
    assert str(backups[0]) in log_text
    assert "Verified" in log_text
    assert "Pruned 0 old file(s)" in log_text
    assert (tmp_path / "backups" / ".cdb-verified.json").is_file()  # --verify ran


def test_schedule_refuses_settings_cron_would_not_see(
    cdb: Callable[..., Result], seeded: str, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CDB_MODE=paper\n", encoding="utf-8")
    result = cdb("--env-file", str(env_file), "backup", "schedule")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "CDB_BACKUP_DIR, CDB_DATABASE_URL" in result.stderr


def test_schedule_needs_an_env_file(cdb: Callable[..., Result], seeded: str) -> None:
    result = cdb("backup", "schedule")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "--env-file" in result.stderr


@pytest.fixture
def fake_crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A crontab program on PATH that keeps the table in a file (the real one is not installed)."""
    table = tmp_path / "crontab.txt"
    program = tmp_path / "fakebin" / "crontab"
    program.parent.mkdir()
    program.write_text(
        "#!/bin/sh\n"
        f'f="{table}"\n'
        'if [ "$1" = -l ]; then [ -f "$f" ] && exec cat "$f"; echo "no crontab for $USER" >&2;'
        " exit 1; fi\n"
        'if [ "$1" = - ]; then cat > "$f"; exit 0; fi\n'
        "exit 2\n",
        encoding="utf-8",
    )
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}{os.environ['PATH']}")
    return table


def test_schedule_install_is_idempotent_and_keeps_other_lines(
    cdb: Callable[..., Result],
    seeded: str,
    tmp_path: Path,
    fake_crontab: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_file = _write_env(tmp_path, seeded)
    monkeypatch.delenv("CDB_DATABASE_URL")
    monkeypatch.delenv("CDB_BACKUP_DIR")
    arguments = ("--env-file", str(env_file), "backup", "schedule", "--install")

    first = cdb(*arguments)
    assert first.exit_code == 0, first.output
    assert "Installed" in first.stderr
    fake_crontab.write_text("0 1 * * * /usr/bin/true\n" + fake_crontab.read_text())

    second = cdb(*arguments)
    assert second.exit_code == 0, second.output
    assert "Already" in second.stderr

    moved = cdb(*arguments[:-1], "--at", "05:00", "--install")  # replaces, never duplicates
    assert moved.exit_code == 0, moved.output
    lines = fake_crontab.read_text().splitlines()
    assert lines[0] == "0 1 * * * /usr/bin/true"
    assert len([line for line in lines if "backup create" in line]) == 1
    assert lines[1].startswith("0 5 * * * ")

    other = tmp_path / "other" / ".env"  # a second deployment on the same host
    other.parent.mkdir()
    other.write_bytes(env_file.read_bytes())
    added = cdb("--env-file", str(other), "backup", "schedule", "--install")
    assert added.exit_code == 0, added.output
    assert len([line for line in fake_crontab.read_text().splitlines() if "backup" in line]) == 2


def test_schedule_install_without_crontab_says_so(
    cdb: Callable[..., Result], seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = _write_env(tmp_path, seeded)
    monkeypatch.delenv("CDB_DATABASE_URL")
    monkeypatch.delenv("CDB_BACKUP_DIR")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = cdb("--env-file", str(env_file), "backup", "schedule", "--install")
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert "crontab is not installed" in result.stderr


def test_verify_json_reports_problems_and_exits_4(
    cdb: Callable[..., Result], seeded: str, tmp_path: Path
) -> None:
    from cdb_cli.adapters.backup import TableDigest, read_manifest
    from cdb_cli.adapters.backup.files import write_archive

    path = _create(cdb)
    manifest = read_manifest(path)
    payload = tmp_path / manifest.payload
    with tarfile.open(path) as archive:
        payload.write_bytes(archive.extractfile(manifest.payload).read())  # type: ignore[union-attr]
    tables = {**manifest.tables, "positions": TableDigest(rows=5, sha256="0" * 64)}
    (tmp_path / "forged").mkdir()
    forged = write_archive(tmp_path / "forged", manifest.model_copy(update={"tables": tables}),
                           payload)  # fmt: skip

    result = cdb("backup", "verify", str(forged), "--json")

    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["problems"] == ["table positions: 1 rows, the manifest says 5"]
    assert "does not match its manifest" in result.stderr


def test_list_and_prune_text_output(cdb: Callable[..., Result], seeded: str) -> None:
    empty = cdb("backup", "list")
    assert empty.exit_code == 0, empty.output
    assert empty.stdout == ""
    assert "No backups" in empty.stderr

    path = _create(cdb)
    assert cdb("backup", "verify").exit_code == 0
    listed = cdb("backup", "list")
    assert listed.exit_code == 0, listed.output
    assert path.name in listed.stdout
    assert "verified" in listed.stdout

    pruned = cdb("backup", "prune", "--dry-run")
    assert pruned.exit_code == 0, pruned.output
    assert pruned.stdout == ""
    assert "Would remove 0 file(s); keeping backups of the last 30 days" in pruned.stderr


def test_create_json_with_verify_and_prune(cdb: Callable[..., Result], seeded: str) -> None:
    result = cdb("--json", "backup", "create", "--verify", "--prune")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["verified"] is True
    assert document["pruned"] == []
    assert document["tables"]["market_trades"] == 40
    assert document["source"] == seeded  # no password to hide in a SQLite URL


def test_restore_warns_when_the_schema_is_behind(
    cdb: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine

    old = tmp_path / "old.db"  # a database from before cdb's migrations
    engine = create_engine(f"sqlite:///{old}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE trades (id INTEGER PRIMARY KEY, price TEXT)")
        connection.exec_driver_sql("INSERT INTO trades (price) VALUES ('1.5'), ('2.5')")
    engine.dispose()
    monkeypatch.setenv("CDB_DATABASE_URL", f"sqlite:///{old}")
    monkeypatch.setenv("CDB_BACKUP_DIR", str(tmp_path / "backups"))
    path = _create(cdb)

    result = cdb("backup", "restore", path.name, "--to", f"sqlite:///{tmp_path / 'new.db'}", "-y")

    assert result.exit_code == 0, result.output
    assert "2 rows, checked" in result.stdout
    assert "cdb db upgrade" in result.stderr
