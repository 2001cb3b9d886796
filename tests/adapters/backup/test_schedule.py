"""The cron line: it must run ``cdb backup create`` under cron's minimal environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdb_cli.adapters.backup.schedule import MARKER, CronJob, cron_job, shell_only_variables
from cdb_cli.engine.errors import ConfigurationError


def _job(tmp_path: Path, **overrides: object) -> CronJob:
    arguments: dict[str, object] = {
        "at": "03:17",
        "env_file": tmp_path / "my env" / ".env",
        "log_file": tmp_path / "backups" / "cdb-backup.log",
        "working_dir": tmp_path,
        "environment": {"HOME": "/home/op", "CDB_MODE": "paper", "PATH": "/opt/x:/usr/bin"},
        "tool_dirs": [],
        "executable": Path("/opt/cdb/.venv/bin/cdb"),
    }
    arguments.update(overrides)
    return cron_job(**arguments)  # type: ignore[arg-type]


def test_cron_line_names_everything_absolutely(tmp_path: Path) -> None:
    line = _job(tmp_path).line

    fields = line.split(maxsplit=5)
    assert fields[:5] == ["17", "3", "*", "*", "*"]
    assert "/opt/cdb/.venv/bin/cdb" in line
    assert f"--env-file '{tmp_path / 'my env' / '.env'}'" in line  # quoted: it has a space
    assert "backup create --verify --prune" in line
    assert f">> {tmp_path / 'backups' / 'cdb-backup.log'} 2>&1" in line
    assert "HOME=/home/op" in line
    assert "CDB_" not in line  # settings come from the env file only
    assert "/opt/x" not in line  # the shell's PATH is not carried over
    assert line.endswith(f"{MARKER} {tmp_path / 'my env' / '.env'}")


def test_cron_line_puts_tool_folders_before_crons_path(tmp_path: Path) -> None:
    line = _job(tmp_path, tool_dirs=[Path("/usr/lib/postgresql/15/bin"), Path("/usr/bin")]).line
    assert "PATH=/usr/lib/postgresql/15/bin:/usr/bin:/bin" in line


def test_cron_line_escapes_percent_signs(tmp_path: Path) -> None:
    line = _job(tmp_path, working_dir=tmp_path / "100%").line
    assert "100\\%" in line
    assert "100%'" not in line.replace("\\%", "")


@pytest.mark.parametrize("at", ["3:17", "24:00", "03:60", "noon", ""])
def test_cron_time_must_be_hh_mm(tmp_path: Path, at: str) -> None:
    if at == "3:17":
        assert _job(tmp_path, at=at).hour == 3
        return
    with pytest.raises(ConfigurationError, match="HH:MM"):
        _job(tmp_path, at=at)


def test_shell_only_variables_are_those_missing_from_the_env_file() -> None:
    environment = {"CDB_DATABASE_URL": "x", "CDB_MODE": "paper", "CDB_ENV_FILE": "e", "HOME": "h"}
    known = {"CDB_DATABASE_URL", "CDB_MODE"}
    assert shell_only_variables(environment, {"CDB_MODE"}, known) == ["CDB_DATABASE_URL"]
