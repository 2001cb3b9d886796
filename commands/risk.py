"""``cdb risk``: why orders were rejected (explain, what-if), the trading state, the operator's
halt (the kill switch) and the reset that ends a halt."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import AppContext, app_context
from cdb_cli.options import JsonOpt, RunOpt, SinceOpt, SymbolOpt, UntilOpt, parse_when

if TYPE_CHECKING:
    from cdb_cli.engine.events import RiskDecision
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.output import Terminal

app = typer.Typer(
    help="Risk: explain rejections, what-if other limits, trading state, halt and reset.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _store(context: AppContext) -> Store:
    from cdb_cli.kernel import open_store

    return open_store(context.settings())


def _fail(context: AppContext, message: str) -> typer.Exit:
    context.terminal.error(message)
    return typer.Exit(1)


@app.command("explain")
def explain(
    ctx: typer.Context,
    decision_id: Annotated[
        str | None,
        typer.Argument(metavar="[DECISION_ID]", help="Show the full trace of this decision."),
    ] = None,
    *,
    since: SinceOpt = None,
    until: UntilOpt = None,
    symbol: SymbolOpt = None,
    run: RunOpt = None,
    what_if: Annotated[
        list[str] | None,
        typer.Option(
            "--what-if",
            metavar="LIMIT=VALUE",
            help="Re-decide the window with this risk limit changed (repeatable), "
            "e.g. --what-if max_spread_pct=0.2.",
        ),
    ] = None,
    show: Annotated[
        int, typer.Option("--show", min=0, help="How many flipped decisions to list.")
    ] = 20,
    json_output: JsonOpt = False,
) -> None:
    """Explain the risk decisions in a window: verdicts, reasons, the top blocker, per-rule
    observed values against their limits, and the limits at which rejections would pass.

    Reads CDB_DATABASE_URL. With DECISION_ID, the full trace of that one decision. Exit 1 when
    the window holds no decision or the id is unknown, 2 for a bad option.
    """
    context = app_context(ctx)
    changes = _parse_changes(what_if or [])
    window = (parse_when(since, "--since"), parse_when(until, "--until"))
    from cdb_cli.engine.explain import apply_what_if, summarize, trace
    from cdb_cli.engine.runs import select_decisions
    from cdb_cli.kernel import risk_limits

    limits = risk_limits(context.settings())
    try:
        apply_what_if(limits, changes)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--what-if") from None
    store = _store(context)
    try:
        decisions = select_decisions(  # the rules' decisions; a trace may show an operator's
            store,
            symbol=symbol,
            since_ns=window[0],
            until_ns=window[1],
            run_id=run,
            operator=decision_id is not None,
        )
        if decision_id is not None:
            chosen = next((d for d in decisions if d.event_id == decision_id), None)
            if chosen is None:
                raise _fail(context, f"No risk decision {decision_id!r} in the store")
            document = {"trace": trace(chosen), "signal": _signal_of(store, chosen)}
            _emit(context, json_output, document, _render_trace)
            return
    finally:
        store.close()
    if not decisions:
        raise _fail(
            context, f"No risk decisions in the window ({_window_text(window, symbol, run)})"
        )
    document = summarize(decisions, limits)
    if changes:
        from cdb_cli.engine.explain import what_if as run_what_if

        document["what_if"] = run_what_if(decisions, limits, changes).as_dict(flips_shown=show)
    _emit(context, json_output, document, _render_summary)


def _parse_changes(items: list[str]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise typer.BadParameter(f"{item!r} is not LIMIT=VALUE", param_hint="--what-if")
        changes[name.strip().lower().removeprefix("cdb_")] = value.strip()
    return changes


def _signal_of(store: Store, decision: RiskDecision) -> dict[str, Any] | None:
    from cdb_cli.engine.events import TradingSignal

    signals = store.events(
        TradingSignal,
        symbol=decision.symbol,
        since_ns=decision.ts_event,
        until_ns=decision.ts_event + 1,
    )
    for signal in signals:
        if signal.event_id == decision.signal_id:
            return {
                "signal_id": signal.event_id,
                "strategy": signal.strategy,
                "side": str(signal.side),
                "price": str(signal.price),
                "strength": signal.strength,
                "indicators": signal.indicators,
            }
    return None


def _window_text(window: tuple[int | None, int | None], symbol: str | None, run: str | None) -> str:
    from cdb_cli.engine.report import iso_utc

    parts = [
        f"from {iso_utc(window[0])}" if window[0] is not None else "from the start",
        f"until {iso_utc(window[1])}" if window[1] is not None else "until now",
    ]
    if symbol:
        parts.append(f"symbol {symbol}")
    if run:
        parts.append(f"run {run}")
    return ", ".join(parts)


def _emit(context: AppContext, json_output: bool, document: dict[str, Any], render: Any) -> None:
    if json_output or context.json:
        context.terminal.json(document)
    else:
        render(context.terminal, document)


def _render_summary(terminal: Terminal, doc: dict[str, Any]) -> None:
    from rich.table import Table

    from cdb_cli.engine.report import iso_utc

    out = terminal.out
    counts = doc["decisions"]
    out.print(
        f"Risk decisions {iso_utc(doc['first'])} .. {iso_utc(doc['last'])} (UTC): "
        f"{counts['total']} (buy {counts['buy']}, exit {counts['exit']}); approved "
        f"{counts['approved']}, reduced {counts['reduced']}, rejected {counts['rejected']}",
        markup=False,
    )
    top = doc["top_blocker"]
    if top:
        out.print(
            f"Top blocker: {top['rule']}: in {top['count']} of {counts['rejected']} rejected "
            f"decisions ({top['share'] * 100:.1f} %)",
            markup=False,
        )
    reasons = ", ".join(f"{code} {n}" for code, n in doc["by_reason"].items()) or "none"
    out.print(f"Failing reasons: {reasons}", markup=False)
    table = Table(title="Rules", show_lines=False)
    for column in ("rule", "ran", "failed", "limit", "observed p10", "median", "p90"):
        table.add_column(column)
    hints: list[str] = []
    for rule, row in doc["rules"].items():
        observed = row["observed"]
        table.add_row(
            rule,
            str(row["ran"]),
            str(row["failed"]),
            str(row["limit"] or "-"),
            str(observed["p10"] or "-"),
            str(observed["median"] or "-"),
            str(observed["p90"] or "-"),
        )
        for code, failed in row["failed_by_code"].items():
            hint = failed["hint"]
            if hint:
                hints.append(
                    f"{code}: {hint['setting']} is {hint['current']}; half of the "
                    f"{failed['count']} it failed would pass this rule at "
                    f"{hint['half_pass_at']}, 90 % at {hint['most_pass_at']}"
                )
    out.print(table)
    for line in hints:
        out.print(f"Hint: {line}", markup=False)
    if "what_if" in doc:
        _render_what_if(terminal, doc["what_if"])


def _render_what_if(terminal: Terminal, what: dict[str, Any]) -> None:
    from rich.table import Table

    from cdb_cli.engine.report import iso_utc

    changes = ", ".join(f"{k}={v}" for k, v in what["changes"].items())
    before = ", ".join(f"{k} {v}" for k, v in what["before"].items())
    after = ", ".join(f"{k} {v}" for k, v in what["after"].items())
    out = terminal.out
    out.print(f"What if {changes}: {what['flipped']} decisions flip", markup=False)
    out.print(f"  stored:  {before}", markup=False)
    out.print(f"  what-if: {after}", markup=False)
    if what["flips"]:
        table = Table()
        for column in ("time (UTC)", "symbol", "side", "stored", "what-if", "still failing"):
            table.add_column(column)
        for flip in what["flips"]:
            table.add_row(
                iso_utc(flip["ts_event"]),
                flip["symbol"],
                flip["side"],
                flip["before"],
                flip["after"],
                ", ".join(flip["failing"]) or "-",
            )
        out.print(table)


def _render_trace(terminal: Terminal, doc: dict[str, Any]) -> None:
    from rich.table import Table

    from cdb_cli.engine.report import iso_utc

    t = doc["trace"]
    out = terminal.out
    out.print(
        f"Decision {t['decision_id']} at {iso_utc(t['ts_event'])}: {t['side']} {t['symbol']} "
        f"-> {t['verdict']} (requested {t['requested_quote']}, final {t['final_quote']})",
        markup=False,
    )
    table = Table()
    for column in ("rule", "verdict", "code", "observed", "limit", "detail"):
        table.add_column(column)
    for check in t["checks"]:
        table.add_row(
            check["rule"],
            "pass" if check["passed"] else "FAIL",
            check["code"],
            check["observed"] or "-",
            check["limit"] or "-",
            check["detail"],
        )
    out.print(table)
    out.print(
        "Saw: " + ", ".join(f"{key} {value}" for key, value in t["state"].items()), markup=False
    )
    signal = doc["signal"]
    if signal:
        indicators = ", ".join(f"{k} {v:.6g}" for k, v in signal["indicators"].items())
        out.print(
            f"Signal {signal['signal_id']} ({signal['strategy']}): price {signal['price']}, "
            f"strength {signal['strength']:.3f}; {indicators}",
            markup=False,
        )


@app.command("status")
def status(ctx: typer.Context, *, run: RunOpt = None, json_output: JsonOpt = False) -> None:
    """Show the trading state (active, reducing, halted), why and since when, and the latest
    drawdown and exposure against their limits. Reads CDB_DATABASE_URL."""
    context = app_context(ctx)
    from cdb_cli.engine.halts import equity_figures
    from cdb_cli.engine.report import iso_utc
    from cdb_cli.engine.runs import trading_status
    from cdb_cli.kernel import risk_limits

    limits = risk_limits(context.settings())
    store = _store(context)
    try:
        current = trading_status(store, run)
        snapshots = store.equity_snapshots(limit=1, descending=True)
    finally:
        store.close()
    document: dict[str, Any] = {
        "state": str(current.state),
        "since": iso_utc(current.since_ns) if current.since_ns is not None else None,
        "reason": current.reason,
        "actor": current.actor,
        "run_id": current.run_id,
        "equity": None,
    }
    if snapshots:
        snap = snapshots[0]
        figures = equity_figures(snap)
        document["equity"] = {
            "at": iso_utc(snap.ts_event),
            "equity": str(snap.equity),
            "currency": snap.currency,
            "drawdown_from_peak_pct": figures["drawdown_from_peak_pct"],
            "circuit_breaker_pct": str(limits.circuit_breaker_pct),
            "daily_drawdown_pct": figures["daily_drawdown_pct"],
            "daily_drawdown_limit_pct": str(limits.daily_drawdown_pct),
            "exposure_pct": figures["exposure_pct"],
            "max_exposure_pct": str(limits.max_exposure_pct),
        }
    if json_output or context.json:
        context.terminal.json(document)
        return
    from cdb_cli.engine.display import money, percent

    out = context.terminal.out
    since = f" since {document['since']}" if document["since"] else ""
    out.print(f"Trading state: {document['state'].upper()}{since}", markup=False)
    out.print(
        f"  why: {current.reason}" + (f" (by {current.actor})" if current.actor else ""),
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
    import getpass
    import socket
    import time

    from cdb_cli.engine.halts import current_halt
    from cdb_cli.engine.records import AuditRecord
    from cdb_cli.engine.runs import RESET_ACTION, trading_status

    if not reason.strip():
        raise typer.BadParameter("must say why", param_hint="--reason")
    who = actor or f"{getpass.getuser()}@{socket.gethostname()}"
    store = _store(context)
    try:
        current = trading_status(store, run)
        ended = current_halt(store, current, run)
        if ended is None:
            context.terminal.err.print(_not_halted(current.state, current.reason), markup=False)
            return
        store.add_audit(
            AuditRecord(
                ts_event=time.time_ns(),
                action=RESET_ACTION,
                actor=who[:64],
                run_id=current.run_id,
                detail={
                    "reason": reason.strip(),
                    "previous": str(current.state),
                    "ended": ended.kind,
                },
            )
        )
    finally:
        store.close()
    out = context.terminal.out
    out.print(
        f"Ended {ended.describe()}: reset by {who}: {reason.strip()}",
        markup=False,
        highlight=False,
    )
    out.print(
        "A running cdb run resumes at its next flush; the breaker's peak restarts at the equity "
        "then.",
        markup=False,
        highlight=False,
    )


def _not_halted(state: Any, reason: str) -> str:
    from cdb_cli.engine.risk import TradingState

    if state is TradingState.REDUCING:
        return (
            f"Trading is reducing ({reason}), not halted: nothing to reset; a reset ends a "
            "halt, the daily reduction ends at the next UTC day"
        )
    return f"Trading is {state}, not halted: nothing to reset"


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
    import getpass
    import socket
    import time

    from cdb_cli.engine.halts import current_halt
    from cdb_cli.engine.records import AuditRecord
    from cdb_cli.engine.runs import HALT_ACTION, trading_status

    if not reason.strip():
        raise typer.BadParameter("must say why", param_hint="--reason")
    who = actor or f"{getpass.getuser()}@{socket.gethostname()}"
    store = _store(context)
    try:
        current = trading_status(store, run)
        already = current_halt(store, current, run)
        store.add_audit(
            AuditRecord(
                ts_event=time.time_ns(),
                action=HALT_ACTION,
                actor=who[:64],
                run_id=run or current.run_id,
                detail={
                    "reason": reason.strip(),
                    "flatten": "yes" if flatten else "no",
                    "via": "cli",
                    "previous": str(current.state),
                },
            )
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
