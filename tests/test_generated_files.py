"""Files derived from the code match it: .env.example, README config table, completions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdb_cli.schema_doc import COMPLETION_SHELLS, completion_script, config_table, env_example
from cdb_cli.settings import Settings, env_name

REPO = Path(__file__).resolve().parents[1]
HINT = "run: python scripts/generate.py"


def test_env_example_matches_schema() -> None:
    assert (REPO / ".env.example").read_text(encoding="utf-8") == env_example(), HINT


def test_env_example_names_every_variable() -> None:
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"{env_name(name)}=" in text


def test_readme_config_table_matches_schema() -> None:
    assert config_table() in (REPO / "README.md").read_text(encoding="utf-8"), HINT


@pytest.mark.parametrize("shell", COMPLETION_SHELLS)
def test_completion_files_match_app(shell: str) -> None:
    committed = (REPO / "completions" / f"cdb.{shell}").read_text(encoding="utf-8")
    assert committed == completion_script(shell), HINT


def _cdb() -> str:
    found = shutil.which("cdb", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("the cdb console script is not installed next to this Python")
    return found


def test_show_completion_prints_the_committed_bash_script() -> None:
    # shellingham detects the parent shell: run the installed cdb under bash.
    done = subprocess.run(
        ["bash", "-c", f"{_cdb()} --show-completion"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (REPO / "completions" / "cdb.bash").read_text(encoding="utf-8")


def test_bash_completion_protocol_completes_commands() -> None:
    env = {
        **os.environ,
        "_CDB_COMPLETE": "complete_bash",
        "COMP_WORDS": "cdb en",
        "COMP_CWORD": "1",
    }
    done = subprocess.run([_cdb()], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "env-validate" in done.stdout.split()
