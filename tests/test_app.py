"""The root app: global options, command listing, exit codes, the last-resort handler."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from typer.testing import Result

from cdb_cli import __version__
from cdb_cli.errors import ExitCode, exit_code_for


def test_version_prints_version(cdb: Callable[..., Result]) -> None:
    result = cdb("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"cdb {__version__}"


def test_help_lists_every_built_command_with_a_summary(cdb: Callable[..., Result]) -> None:
    result = cdb("--help")
    assert result.exit_code == 0, result.output
    commands = result.stdout.split("Commands:")[1]
    for name in (
        "env-validate",
        "db",
        "replay",
        "risk",
        "report",
        "events",
        "systemcheck",
        "backup",
    ):
        line = next(line for line in commands.splitlines() if line.strip().startswith(name))
        assert len(line.split()) > 1, f"{name} has no summary: {line!r}"


def test_no_arguments_shows_help_and_usage_exit(cdb: Callable[..., Result]) -> None:
    result = cdb()
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "Usage: cdb" in result.output


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["env-validate", "--bogus"], ["db", "nope"], ["env-validate", "--mode", "x"]],
)
def test_bad_usage_exits_2_on_stderr(cdb: Callable[..., Result], args: list[str]) -> None:
    result = cdb(*args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stdout == ""
    assert "Error" in result.stderr


@pytest.mark.parametrize(
    ("error_name", "code"),
    [
        ("ConfigurationError", ExitCode.CONFIGURATION),
        ("SchemaOutOfDate", ExitCode.CONFIGURATION),
        ("CheckFailed", ExitCode.CHECK_FAILED),
        ("DependencyError", ExitCode.FAILURE),
        ("VenueRejected", ExitCode.FAILURE),
        ("StateError", ExitCode.FAILURE),
    ],
)
def test_exit_code_for_maps_error_tree(error_name: str, code: ExitCode) -> None:
    from cdb_cli.engine import errors

    assert exit_code_for(getattr(errors, error_name)("x")) == code
    assert exit_code_for(KeyboardInterrupt()) == ExitCode.INTERRUPTED


def test_bad_settings_exit_3_naming_the_variable(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_HTTP_PORT", "99999")
    result = cdb("db", "status")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "CDB_HTTP_PORT" in result.stderr
    assert result.stdout == ""


def test_last_resort_handler_prints_one_line_without_locals() -> None:
    # A command that crashes unexpectedly while a secret sits in a local variable.
    script = (
        "import sys, typer\n"
        "from cdb_cli import app as root\n"
        "@root.app.command('crash')\n"
        "def crash() -> None:\n"
        "    api_secret = 'TOPSECRET' + 'VALUE'\n"
        "    raise RuntimeError('boom')\n"
        "sys.argv = ['cdb', 'crash']\n"
        "root.main()\n"
    )
    for debug in ("0", "1"):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env={"CDB_DEBUG": debug, "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
            check=False,
        )
        assert done.returncode == ExitCode.FAILURE, done.stderr
        assert "Unexpected error: RuntimeError: boom" in done.stderr
        assert "TOPSECRETVALUE" not in done.stderr + done.stdout
        assert ("Traceback" in done.stderr) == (debug == "1")


def test_errors_and_warnings_print_brackets_literally(capsys: pytest.CaptureFixture[str]) -> None:
    from cdb_cli.output import Terminal

    terminal = Terminal(no_color=True)
    terminal.error("Plotting needs matplotlib: pip install 'cdb-cli[plot]'", ["see [bold]x[/]"])
    terminal.warn("[red]not markup[/red]")
    assert capsys.readouterr().err.splitlines() == [
        "Error: Plotting needs matplotlib: pip install 'cdb-cli[plot]'",
        "  see [bold]x[/]",
        "Warning: [red]not markup[/red]",
    ]
