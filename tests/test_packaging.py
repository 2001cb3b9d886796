"""The wheel ships `commands/` as `cdb_cli.commands` and no generic top-level package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a clean copy: setuptools leaves build/ behind, whose stale files could leak.
    source = tmp_path_factory.mktemp("source") / "cdb"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("cdb_cli-*.whl")
    return built


def test_wheel_ships_every_source_module(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {path.relative_to(REPO).as_posix() for path in (REPO / "cdb_cli").rglob("*.py")}
    expected |= {
        "cdb_cli/commands/" + path.relative_to(REPO / "commands").as_posix()
        for path in (REPO / "commands").rglob("*.py")
    }
    expected.add("cdb_cli/adapters/sql/migrations/script.py.mako")
    assert expected - names == set()


def test_wheel_has_only_the_cdb_cli_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {
        name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
    }
    assert top_level == {"cdb_cli"}
    assert "cdb_cli/commands/env_validate.py" in names
    assert "cdb_cli/commands/db.py" in names
    assert not any(name.startswith(("commands/", "engine/", "tests/")) for name in names)


def test_wheel_installs_into_fresh_venv_and_runs(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Dependencies come from this environment (offline, fast); the project itself only from the
    # wheel: a .pth entry is a plain path, so this environment's editable-install hook stays off.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [venv / "bin" / "cdb", "--help"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "env-validate" in done.stdout
    where = subprocess.run(
        [python, "-c", "import cdb_cli.commands as c; print(c.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert where.startswith(site)
    generic = subprocess.run(
        [python, "-c", "import commands"], capture_output=True, cwd=tmp_path, check=False
    )
    assert generic.returncode != 0
    assert not Path(site, "commands").exists()
