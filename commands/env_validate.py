"""``cdb env-validate``: check a .env file and the environment against the settings schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from cdb_cli.context import app_context
from cdb_cli.errors import ExitCode
from cdb_cli.options import JsonOpt


def env_validate(
    ctx: typer.Context,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="The .env file to check (default: the global --env-file, else ./.env).",
            dir_okay=False,
        ),
    ] = None,
    *,
    mode: Annotated[
        Literal["paper", "live"] | None,
        typer.Option("--mode", help="Check the rules of this mode (default: CDB_MODE or paper)."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Check .env and environment against the schema.

    Reports unknown variables (with a did-you-mean), malformed values, MEXC key formats, empty or
    placeholder secrets, a .env readable by group/others, and mode rules (live needs keys).
    Exit 0 when clean, 3 with one line per problem. Never prints a secret value; no network.
    """
    from cdb_cli.envcheck import validate_environment

    context = app_context(ctx)
    report = validate_environment(env_file or context.env_file, mode=mode)
    terminal = context.terminal
    if json_output or context.json:
        terminal.json(report.to_dict())
    elif report.ok:
        source = report.env_file or "environment"
        terminal.out.print(f"OK: {source} is valid for {report.mode} mode", markup=False)
    else:
        for problem in report.problems:
            terminal.out.print(problem.line(), markup=False, highlight=False)
        terminal.err.print(f"{len(report.problems)} problem(s) found", markup=False)
    if not report.ok:
        raise typer.Exit(ExitCode.CONFIGURATION)
