"""The root ``cdb`` app: global options, command registration, errors → exit codes. Wiring only.

Commands live one module each in ``commands/`` (shipped as ``cdb_cli.commands``) and import
nothing heavy at module level, so ``cdb --help`` stays fast (benchmarks/run.py measures it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from cdb_cli import __version__
from cdb_cli.commands import (
    backup,
    data,
    db,
    env_validate,
    events,
    explain,
    mcp,
    notify,
    parity,
    reconcile,
    replay,
    report,
    risk,
    run,
    sim_exchange,
    systemcheck,
)
from cdb_cli.context import AppContext
from cdb_cli.errors import ExitCode, exit_code_for
from cdb_cli.output import Terminal

if TYPE_CHECKING:
    from typer._click.core import Context as ClickContext  # typer >= 0.29 vendors Click

__all__ = ["app", "main"]


class CdbGroup(TyperGroup):
    """Root group: turns every ``CdbError`` and Ctrl-C into a one-line message and its exit code.

    Doing it here (and not only in ``main``) means ``CliRunner`` tests see the real exit codes.
    """

    def invoke(self, ctx: ClickContext) -> Any:
        from cdb_cli.engine.errors import CdbError

        try:
            return super().invoke(ctx)
        except CdbError as e:
            from cdb_cli.redaction import redact

            terminal = ctx.obj.terminal if isinstance(ctx.obj, AppContext) else Terminal()
            terminal.error(redact(e.message), [redact(line) for line in e.details])
            raise typer.Exit(exit_code_for(e)) from None
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted\n")
            raise typer.Exit(ExitCode.INTERRUPTED) from None


app = typer.Typer(
    name="cdb",
    cls=CdbGroup,
    help="Claire de Binare: operator toolkit and trading engine for the MEXC spot market.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain Click help: rich help costs ~120 ms of imports per call
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"cdb {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            envvar="CDB_ENV_FILE",
            help="Read settings from this .env file (default: ./.env when it exists).",
            dir_okay=False,
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")
    ] = 0,
    quiet: Annotated[
        int, typer.Option("--quiet", "-q", count=True, help="Less log output (-qq: critical).")
    ] = 0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Commands that return data print one JSON document.")
    ] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="Plain output without colour.")] = (
        False
    ),
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Claire de Binare: operator toolkit and trading engine for the MEXC spot market."""
    from cdb_cli.logs import setup_logging

    if env_file is None and Path(".env").is_file():
        env_file = Path(".env")
    setup_logging(verbose - quiet)
    ctx.obj = AppContext(
        env_file=env_file,
        verbosity=verbose - quiet,
        json=json_output,
        terminal=Terminal(no_color=no_color),
    )


app.command("run")(run.run)
app.command("explain")(explain.explain)
app.command("env-validate")(env_validate.env_validate)
app.add_typer(db.app, name="db")
app.command("replay")(replay.replay)
app.add_typer(risk.app, name="risk")
app.command("report")(report.report)
app.add_typer(events.app, name="events")
app.add_typer(backup.app, name="backup")
app.command("systemcheck")(systemcheck.systemcheck)
app.add_typer(data.app, name="data")
app.command("sim-exchange")(sim_exchange.sim_exchange)
app.command("reconcile")(reconcile.reconcile)
app.command("parity")(parity.parity)
app.add_typer(notify.app, name="notify")
app.command("mcp")(mcp.mcp)


def main() -> None:
    """Console entry point with the last-resort handler.

    Anything unexpected prints one line and a traceback **without locals** (this process holds
    API secrets) on stderr and exits 1.
    """
    command = typer.main.get_command(app)
    try:
        command.main(prog_name="cdb")
    except Exception as e:  # last resort: every expected error was mapped in CdbGroup
        from rich.console import Console
        from rich.markup import escape
        from rich.traceback import Traceback

        from cdb_cli.redaction import redact

        console = Console(stderr=True)
        if os.environ.get("CDB_DEBUG") == "1":
            console.print(
                Traceback.from_exception(
                    type(e), e, e.__traceback__, show_locals=False, suppress=[typer]
                )
            )
        console.print(
            f"[red]Unexpected error:[/red] {type(e).__name__}: {escape(redact(str(e)))} "
            "(set CDB_DEBUG=1 for the traceback)",
            markup=True,
            highlight=False,
        )
        sys.exit(ExitCode.FAILURE)
