"""The layer rules are enforced by ruff (pyproject.toml), so a violation fails CI, not review."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _ruff(filename: str, source: str) -> str:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed (it is in the [test] extra)")
    done = subprocess.run(
        [
            ruff,
            "check",
            "--no-cache",
            "--output-format",
            "concise",
            "--stdin-filename",
            filename,
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    return done.stdout


@pytest.mark.parametrize(
    "statement",
    [
        "import redis",
        "import httpx",
        "import aiohttp",
        "import prometheus_client",
        "from sqlalchemy import select",
        "import typer",
        "from cdb_cli.adapters import sql",
        "from cdb_cli import kernel",
    ],
)
def test_engine_may_not_import_edges(statement: str) -> None:
    source = f'"""x."""\n\nfrom __future__ import annotations\n\n{statement}\n'
    assert "TID251" in _ruff("cdb_cli/engine/example.py", source)
    assert "TID251" not in _ruff("cdb_cli/adapters/example.py", source)


def test_commands_import_heavy_modules_only_inside_functions() -> None:
    source = '"""x."""\n\nfrom __future__ import annotations\n\nimport sqlalchemy\n'
    assert "TID253" in _ruff("commands/example.py", source)
    inside = (
        '"""x."""\n\nfrom __future__ import annotations\n\n\ndef f() -> None:\n'
        "    import sqlalchemy\n\n    del sqlalchemy\n"
    )
    assert "TID253" not in _ruff("commands/example.py", inside)


@pytest.mark.parametrize(
    "statement",
    [
        "from cdb_cli.adapters.mexc.http import MexcHttpClient",
        "import cdb_cli.adapters.metrics",
        "from cdb_cli.adapters import sql",
    ],
)
def test_runtime_reaches_adapters_only_through_the_kernel(statement: str) -> None:
    source = f'"""x."""\n\nfrom __future__ import annotations\n\n{statement}\n'
    assert "TID251" in _ruff("cdb_cli/runtime/example.py", source)
    assert "TID251" in _ruff("cdb_cli/runtime/components/example.py", source)
    assert "TID251" not in _ruff("cdb_cli/kernel/example.py", source)


def test_the_runtime_may_use_its_own_libraries() -> None:
    source = '"""x."""\n\nfrom __future__ import annotations\n\nimport apscheduler\nimport rich\n'
    assert "TID25" not in _ruff("cdb_cli/runtime/example.py", source)


@pytest.mark.parametrize(
    "statement",
    [
        "from cdb_cli.adapters.backup import create_backup",
        "import cdb_cli.adapters.sql.migrations",
        "from cdb_cli.adapters import plot",
    ],
)
def test_commands_reach_adapters_only_through_a_door(statement: str) -> None:
    """commands/ruff.toml: at module level, inside a function, and under TYPE_CHECKING alike."""
    top = f'"""x."""\n\nfrom __future__ import annotations\n\n{statement}\n'
    inside = (
        f'"""x."""\n\nfrom __future__ import annotations\n\n\ndef f() -> None:\n    {statement}\n'
    )
    typing_only = (
        '"""x."""\n\nfrom __future__ import annotations\n\nfrom typing import TYPE_CHECKING\n\n'
        f"if TYPE_CHECKING:\n    {statement}\n"
    )
    for source in (top, inside, typing_only):
        assert "TID251" in _ruff("commands/example.py", source)
    assert "TID251" not in _ruff("cdb_cli/kernel/example.py", inside)
    assert "TID251" not in _ruff("cdb_cli/services/example.py", inside)


def test_commands_still_keep_heavy_imports_and_the_kernel_inside_functions() -> None:
    """The door's own ruff.toml keeps pyproject's TID253 for commands/ (``cdb --help`` fast)."""
    source = '"""x."""\n\nfrom __future__ import annotations\n\nfrom cdb_cli import kernel\n'
    assert "TID253" in _ruff("commands/example.py", source)
    assert "TID251" not in _ruff("commands/example.py", source)


def test_no_command_imports_an_adapter() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff is not None
    done = subprocess.run(
        [
            ruff,
            "check",
            "--no-cache",
            "--output-format",
            "concise",
            "--select",
            "TID251",
            "commands",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_no_python_file_is_over_500_lines() -> None:
    """Each module holds one idea: past 500 lines it is time to split it (issue 23)."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.split()
    assert len(tracked) > 300  # the tree's own files, not an empty listing
    lengths = {name: len((REPO / name).read_text().splitlines()) for name in tracked}
    assert {name: n for name, n in lengths.items() if n > 500} == {}
