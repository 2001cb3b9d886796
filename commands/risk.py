"""``cdb risk``: why orders were rejected (``explain``, in :mod:`risk_explain`), the trading
state, the operator's halt (the kill switch) and the reset that ends a halt. Parses, calls the
engine (``engine.halts``) and renders."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cdb_cli.commands.risk_explain import explain
from cdb_cli.context import app_context
from cdb_cli.options import JsonOpt, RunOpt

app = typer.Typer(
    help="Risk: explain rejections, what-if other limits, trading state, halt and reset.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.command("explain")(explain)


def _operator(actor: str | None) -> str:
    """``--actor``, else ``user@host``."""
    import getpass
    import socket

    return actor or f"{getpass.getuser()}@{socket.gethostname()}"


@app.command("status")
def status(ctx: typer.Context, *, run: RunOpt = None, json_output: JsonOpt = False) -> None:
    """Show the trading state (active, reducing, halted), why and since when, the latest
    drawdown and exposure against their limits, the open positions, and whether the run on
    CDB_HTTP_PORT is ready (its /ready, 1 s at most). Reads CDB_DATABASE_URL."""
    context = app_context(ctx)
    from cdb_cli.services.operator import status as trading_status

    document = trading_status(context.settings(), run)
    if json_output or context.json:
        context.terminal.json(document)
        return
    _render_status(context.terminal.out, document)


def _render_status(out: Any, document: dict[str, Any]) -> None:
    from cdb_cli.engine.display import money, percent

    since = f" since {document['since']}" if document["since"] else ""
    out.print(f"Trading state: {document['state'].upper()}{since}", markup=False)
    out.print(
        f"  why: {document['reason']}"
        + (f" (by {document['actor']})" if document["actor"] else ""),
        markup=False,
    )
    if document["equity"]:
        e = document["equity"]
        out.print(
            f"  equity {money(e['equity'], e['currency'])} {e['currency']} at {e['at']}: "
            f"drawdown from peak {percent(e['drawdown_from_peak_pct'])} % (breaker "
            f"{e['circuit_breaker_pct']} %), today {percent(e['daily_drawdown_pct'])} % (limit "
            f"{e['daily_drawdown_limit_pct']} %), exposure {percent(e['exposure_pct'])} % "
            f"(limit {e['max_exposure_pct']} %)",
            markup=False,
        )
    for p in document["positions"]:
        out.print(
            f"  position {p['symbol']}: {p['quantity']} at {p['average_price']}",
            markup=False,
            highlight=False,
        )
    ready = document["readiness"]
    if not ready["running"]:
        line = f"  run: none answers {ready['url']}"
    elif ready["ready"]:
        line = f"  run {ready['run_id']}: ready"
    else:
        line = f"  run {ready['run_id']}: not ready: {', '.join(ready['reasons'])}"
    out.print(line, markup=False, highlight=False)


@app.command("reset")
def reset(
    ctx: typer.Context,
    *,
    reason: Annotated[
        str, typer.Option("--reason", help="Why trading may resume (kept in the audit trail).")
    ],
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who resets (default: user@host).")
    ] = None,
    run: RunOpt = None,
) -> None:
    """Reset a halt (the circuit breaker's or an operator's cdb risk halt): written to the audit
    table with who and why; a running cdb run resumes trading. Says which halt it ended. Does
    nothing (exit 0) when trading is not halted: a daily reduction ends at the next UTC day."""
    context = app_context(ctx)
    import time

    from cdb_cli.engine.halts import not_halted, reset_halt
    from cdb_cli.kernel import open_store

    if not reason.strip():
        raise typer.BadParameter("must say why", param_hint="--reason")
    who = _operator(actor)
    store = open_store(context.settings())
    try:
        done = reset_halt(
            store, reason=reason.strip(), actor=who, run_id=run, now_ns=time.time_ns()
        )
    finally:
        store.close()
    if done.ended is None:
        context.terminal.err.print(not_halted(done.status), markup=False)
        return
    out = context.terminal.out
    out.print(
        f"Ended {done.ended.describe()}: reset by {who}: {reason.strip()}",
        markup=False,
        highlight=False,
    )
    out.print(
        "A running cdb run resumes at its next flush; the breaker's peak restarts at the equity "
        "then.",
        markup=False,
        highlight=False,
    )


@app.command("halt")
def halt(
    ctx: typer.Context,
    *,
    reason: Annotated[
        str, typer.Option("--reason", help="Why trading stops (kept in the audit trail).")
    ],
    flatten: Annotated[
        bool,
        typer.Option(
            "--flatten",
            help="Also sell every open position (a running cdb run does it through its normal "
            "execution path; working buys of those symbols are canceled).",
        ),
    ] = False,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who halts (default: user@host).")
    ] = None,
    run: RunOpt = None,
) -> None:
    """The kill switch: halt new entries, written to the audit table with who and why. A running
    cdb run halts at its next flush (within a second); the halt holds across restarts until
    cdb risk reset. With --flatten the running run also sells every position. Reads
    CDB_DATABASE_URL. Exit 0 when written (also when already halted), 2 without a reason.
    A running cdb run also halts, without flattening, on SIGUSR1."""
    context = app_context(ctx)
    import time

    from cdb_cli.engine.halts import halt_trading
    from cdb_cli.kernel import open_store

    if not reason.strip():
        raise typer.BadParameter("must say why", param_hint="--reason")
    who = _operator(actor)
    store = open_store(context.settings())
    try:
        already = halt_trading(
            store,
            reason=reason.strip(),
            actor=who,
            flatten=flatten,
            run_id=run,
            now_ns=time.time_ns(),
        )
    finally:
        store.close()
    out = context.terminal.out
    out.print(f"Trading halted by {who}: {reason.strip()}", markup=False, highlight=False)
    if already is not None:
        out.print(
            f"It was halted already: {already.describe()}; one reset ends both.",
            markup=False,
            highlight=False,
        )
    if flatten:
        out.print(
            "A running cdb run sells every open position at its next flush.",
            markup=False,
            highlight=False,
        )
    out.print("Resume with: cdb risk reset --reason ...", markup=False, highlight=False)
