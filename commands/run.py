"""``cdb run``: the long-lived trading loop."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import AppContext, app_context, run_async
from cdb_cli.options import SetOpt, StrategyOpt, SymbolsAliasOpt, SymbolsOpt, symbols_of

if TYPE_CHECKING:
    from cdb_cli.runtime.lifecycle import RunSummary
    from cdb_cli.settings import Settings


def run(
    ctx: typer.Context,
    *,
    paper: Annotated[
        bool, typer.Option("--paper", help="Simulated fills on live market data (default).")
    ] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Real MEXC orders (behind the governance gate).")
    ] = False,
    symbol: SymbolsOpt = None,
    symbols: SymbolsAliasOpt = None,
    feed: Annotated[
        str,
        typer.Option(
            "--feed",
            metavar="mexc|sim",
            help="Market data: mexc (CDB_MEXC_*_URL) or sim (a simulated MEXC in this process).",
        ),
    ] = "mexc",
    confirm_live: Annotated[
        bool,
        typer.Option(
            "--confirm-live",
            help="With --live: confirm real-money trading without the prompt (unattended runs).",
        ),
    ] = False,
    component: Annotated[
        str | None,
        typer.Option(
            "--component",
            metavar="marketdata|signals|risk|execution|portfolio",
            help="With --paper: run only this component, talking to the others over "
            "CDB_BUS_URL=redis://… (README: Scale-out).",
        ),
    ] = None,
    strategy: StrategyOpt = None,
    overrides: SetOpt = None,
    latency_log: Annotated[
        Path | None,
        typer.Option("--latency-log", hidden=True, help="Benchmark: bar_id time_ns lines."),
    ] = None,
) -> None:
    """Run the trading loop until Ctrl-C or SIGTERM: market data, signals, risk, execution,
    portfolio; everything is written to CDB_DATABASE_URL and a restart resumes from it.

    --live first passes the governance gate (keys valid, systemcheck green, risk limits set,
    metrics on, the store reconciled with the account, the operator's confirmation) and places
    nothing when one fails. Exit 0 after a clean stop, 3 when the settings or the schema are not
    right, 4 when a check of the gate or of the start-up reconciliation fails.
    """
    context = app_context(ctx)
    if paper and live:
        raise typer.BadParameter("choose one of --paper and --live")
    if feed not in ("mexc", "sim"):
        raise typer.BadParameter(f"{feed!r} is not mexc or sim", param_hint="--feed")
    settings = _settings(context, strategy, overrides)
    import sys

    from cdb_cli.runtime.run import run_live, run_paper

    view = sys.stderr.isatty() and not context.json  # the live screen on a terminal only
    if not view:
        from cdb_cli.logs import log_as_a_service

        log_as_a_service(context.verbosity)
    trading = symbols_of(symbol, symbols) or settings.symbols
    if component is not None:
        if live or (not paper and settings.mode == "live"):
            raise typer.BadParameter("components run --paper only", param_hint="--component")
        _run_component(context, settings, component, trading, feed, latency_log)
        return
    if live or (not paper and settings.mode == "live"):
        if feed == "sim":
            raise typer.BadParameter("--live trades on CDB_MEXC_*_URL; --feed sim is for --paper")
        prompt = typer.prompt if sys.stdin.isatty() else None
        from cdb_cli.services.governance import pass_gate

        def report(line: str) -> None:
            context.terminal.err.print(line, markup=False)

        run_async(
            pass_gate(
                settings,
                trading,
                confirm_live=confirm_live,
                prompt=prompt,
                report=report,
                env_file=context.env_file,
            )
        )
        summary = run_async(run_live(settings, symbols=trading, view=view))
    else:
        if confirm_live:
            raise typer.BadParameter("only with --live", param_hint="--confirm-live")
        _warn_loose_files(context)
        summary = run_async(
            run_paper(settings, symbols=trading, feed="sim" if feed == "sim" else "mexc", view=view)
        )
    _stopped(context, _stop_line(summary), run_id=summary.run_id)


def _settings(context: AppContext, strategy: str | None, overrides: list[str] | None) -> Settings:
    """The settings with ``--strategy`` and ``--set``; the strategy loaded and probed first (a
    broken one: one line, exit 3, before anything is opened)."""
    if strategy is None and not overrides:
        settings = context.settings()
    else:
        from cdb_cli.services.strategy import command_settings

        try:
            settings = command_settings(context.env_file, overrides or [], strategy)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--set") from None
    from cdb_cli.kernel import strategy_factory

    strategy_factory(settings)  # a broken strategy: one line, exit 3, before anything starts
    return settings


def _stop_line(summary: RunSummary) -> str:
    """The run's last line: what it did, or what it still waited for when stopped early."""
    if summary.stopped_starting:
        return (
            f"Stopped run {summary.run_id} before trading began, while waiting for "
            f"{summary.stopped_starting}"
        )
    return (
        f"Stopped run {summary.run_id}: {summary.market_events} market events, {summary.bars} "
        f"bars, {summary.signals} signals, {summary.orders} orders, {summary.fills} fills"
        + "".join(f". {line}" for line in summary.strategy)
    )


def _stopped(context: Any, line: str, *, run_id: str = "") -> None:
    """The last line of a run: on the terminal, or a log line (JSON off one) like the rest."""
    import logging

    from cdb_cli.logs import RUN_ID

    logger = logging.getLogger("cdb_cli.run")
    if logger.isEnabledFor(logging.INFO):
        if run_id:
            RUN_ID.set(run_id)
        logger.info("%s", line)
    else:
        context.terminal.err.print(line, markup=False)


def _run_component(
    context: AppContext,
    settings: Settings,
    component: str,
    symbols: list[str],
    feed: str,
    latency_log: Path | None,
) -> None:
    """``cdb run --paper --component NAME``: one stage of the loop in this process."""
    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.runtime.components import check_component_settings, run_component

    check_component_settings(settings, component)
    if feed == "sim":
        raise ConfigurationError(
            "--feed sim runs a simulator inside one process; for components start "
            "'cdb sim-exchange' and point CDB_MEXC_REST_URL and CDB_MEXC_WS_URL at it"
        )
    counts = run_async(
        run_component(settings, component=component, symbols=symbols, latency_log=latency_log)
    )
    done = ", ".join(f"{value} {key}" for key, value in sorted(counts.items())) or "nothing"
    _stopped(context, f"Stopped component {component}: {done}")


def _warn_loose_files(context: AppContext) -> None:
    """A paper run starts with a loose ``.env`` or credential file, but says so loudly: the live
    gate would refuse it."""
    from cdb_cli.envcheck import loose_files

    for problem in loose_files(context.env_file):
        context.terminal.err.print(
            f"WARNING: {problem.line()} (cdb run --live refuses to start with it)",
            style="bold red",
            markup=False,
        )
