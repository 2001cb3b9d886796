"""``cdb risk explain``: why orders were rejected: the verdicts and reasons of a window, the top
blocker, per-rule observed values against their limits, what-if other limits, one decision's
trace. Parses, calls the engine (``engine.explain``, ``engine.runs``) and renders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import AppContext, app_context
from cdb_cli.options import JsonOpt, RunOpt, SinceOpt, SymbolOpt, UntilOpt, parse_when

if TYPE_CHECKING:
    from cdb_cli.output import Terminal

__all__ = ["explain"]


def _fail(context: AppContext, message: str) -> typer.Exit:
    context.terminal.error(message)
    return typer.Exit(1)


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
    as_json = json_output or context.json
    from cdb_cli.services.operator import BadOption, Unanswered, Window, decision_trace
    from cdb_cli.services.operator import risk_explain as build_risk_explain

    with context.json_failures(as_json):
        window = Window(
            symbol=symbol,
            since_ns=parse_when(since, "--since"),
            until_ns=parse_when(until, "--until"),
            run_id=run,
        )
        settings = context.settings()
        try:
            if decision_id is not None:
                _emit(
                    context, as_json, decision_trace(settings, decision_id, window), _render_trace
                )
                return
            document = build_risk_explain(settings, window, what_if or [], show)
        except BadOption as e:
            raise typer.BadParameter(e.message, param_hint=e.param_hint) from None
        except Unanswered as e:
            if as_json:
                context.terminal.json(e.document)
            raise _fail(context, e.message) from None
        _emit(context, as_json, document, _render_summary)


def _emit(context: AppContext, json_output: bool, document: dict[str, Any], render: Any) -> None:
    if json_output or context.json:
        context.terminal.json(document)
    else:
        render(context.terminal, document)


def _line(terminal: Terminal, text: str) -> None:
    """One line as it is: no markup, no highlighting, no wrapping inside an id."""
    terminal.out.print(text, markup=False, highlight=False, soft_wrap=True)


def _render_summary(terminal: Terminal, doc: dict[str, Any]) -> None:
    _render_counts(terminal, doc)
    _render_rules(terminal, doc["rules"])
    if "what_if" in doc:
        _render_what_if(terminal, doc["what_if"])


def _render_counts(terminal: Terminal, doc: dict[str, Any]) -> None:
    """The counts, the exits with nothing held, the top blocker, the reasons and the latest
    blocked or reduced decisions, each with a decision id to copy."""
    from cdb_cli.engine.report import iso_utc

    counts = doc["decisions"]
    _line(
        terminal,
        f"Risk decisions {iso_utc(doc['first'])} .. {iso_utc(doc['last'])} (UTC): "
        f"{counts['total']} (buy {counts['buy']}, exit {counts['exit']}); approved "
        f"{counts['approved']}, reduced {counts['reduced']}, rejected {counts['rejected']}, "
        f"nothing held {counts['nothing_held']}",
    )
    held = doc["nothing_held"]
    if held["count"]:
        _line(
            terminal,
            f"Exit signal, nothing held: {held['count']} decisions (no position to sell: no "
            f"order, not a rejection), e.g. cdb risk explain {held['example_decision_id']}",
        )
    top = doc["top_blocker"]
    if top:
        _line(
            terminal,
            f"Top blocker: {top['rule']}: in {top['count']} of {counts['rejected']} rejected "
            f"decisions ({top['share'] * 100:.1f} %), e.g. cdb risk explain "
            f"{top['example_decision_id']}",
        )
    else:
        _line(terminal, "Top blocker: none (no decision was rejected)")
    reasons = ", ".join(f"{code} {n}" for code, n in doc["by_reason"].items()) or "none"
    _line(terminal, f"Failing reasons of rejected decisions: {reasons}")
    if doc["latest_blocked"]:
        _line(terminal, "Latest rejected or reduced (cdb risk explain ID for the trace):")
        for item in doc["latest_blocked"]:
            size = f"{item['final_quote']} of {item['requested_quote']}"
            _line(
                terminal,
                f"  {item['decision_id']}  {iso_utc(item['ts_event'])} {item['symbol']} "
                f"{item['side']} {item['verdict']} ({size}): {', '.join(item['why'])}",
            )


def _short(value: str | None) -> str:
    """An observed statistic for the table (the JSON has 6 decimals): 2 decimals from 100 up,
    else 4, no trailing zeros."""
    from decimal import Decimal

    if value is None:
        return "-"
    number = Decimal(value)
    rounded = number.quantize(Decimal("0.01") if abs(number) >= 100 else Decimal("0.0001"))
    return f"{rounded.normalize():f}"


def _render_rules(terminal: Terminal, rules: dict[str, Any]) -> None:
    """Per rule: how often it ran, failed, reduced an order or found nothing held (an exit
    signal with nothing to sell, not a failure), its limit and the observed values."""
    from rich import box
    from rich.table import Table

    table = Table(title="Rules", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("rule", no_wrap=True)
    for column in ("ran", "failed", "reduced", "held", "limit", "p10", "median", "p90"):
        table.add_column(column, justify="right", no_wrap=True)
    hints: list[str] = []
    for rule, row in rules.items():
        observed = row["observed"]
        table.add_row(
            rule,
            str(row["ran"]),
            str(row["failed"]),
            str(row["reduced"]),
            str(row["nothing_held"]),
            str(row["limit"] or "-"),
            _short(observed["p10"]),
            _short(observed["median"]),
            _short(observed["p90"]),
        )
        for code, failed in row["failed_by_code"].items():
            hint = failed["hint"]
            if hint:
                hints.append(
                    f"{code}: {hint['setting']} is {hint['current']}; half of the "
                    f"{failed['count']} it failed would pass this rule at "
                    f"{hint['half_pass_at']}, 90 % at {hint['most_pass_at']}"
                )
    terminal.out.print(table)
    _line(
        terminal,
        "reduced: orders the rule made smaller; held: exit signals with nothing held (not "
        "failures); p10, median, p90: the values observed",
    )
    for line in hints:
        _line(terminal, f"Hint: {line}")


def _render_what_if(terminal: Terminal, what: dict[str, Any]) -> None:
    from cdb_cli.engine.report import iso_utc

    changes = ", ".join(f"{k}={v}" for k, v in what["changes"].items())
    before = ", ".join(f"{k} {v}" for k, v in what["before"].items())
    after = ", ".join(f"{k} {v}" for k, v in what["after"].items())
    _line(terminal, f"What if {changes}: {what['flipped']} decisions flip")
    _line(terminal, f"  stored:  {before}")
    _line(terminal, f"  what-if: {after}")
    for flip in what["flips"]:
        still = ", ".join(flip["failing"]) or "-"
        _line(
            terminal,
            f"  {flip['decision_id']}  {iso_utc(flip['ts_event'])} {flip['symbol']} "
            f"{flip['side']} {flip['before']} -> {flip['after']} (still failing: {still})",
        )
    if len(what["flips"]) < what["flipped"]:
        _line(terminal, f"  ... {what['flipped'] - len(what['flips'])} more (--show N)")


_OUTCOME_TEXT = {"fail": "FAIL", "nothing_held": "nothing held"}


def _render_trace(terminal: Terminal, doc: dict[str, Any]) -> None:
    from rich.table import Table

    from cdb_cli.engine.report import iso_utc

    t = doc["trace"]
    verdict = t["verdict"]
    if verdict == "nothing_held":
        verdict = "nothing_held (exit signal, nothing held: no order, not a rejection)"
    stored = f"; stored as {t['stored_verdict']}" if "stored_verdict" in t else ""
    _line(
        terminal,
        f"Decision {t['decision_id']} at {iso_utc(t['ts_event'])}: {t['side']} {t['symbol']} "
        f"-> {verdict} (requested {t['requested_quote']}, final {t['final_quote']}{stored})",
    )
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("rule", "outcome", "code"):
        table.add_column(column, no_wrap=True)
    for column in ("observed", "limit", "detail"):
        table.add_column(column, overflow="fold")  # exact figures, never cut short
    for check in t["checks"]:
        outcome = _OUTCOME_TEXT.get(check["outcome"], check["outcome"])
        if check["reduced_to"] is not None:
            outcome = f"reduced to {check['reduced_to']}"
        table.add_row(
            check["rule"],
            outcome,
            check["code"],
            check["observed"] or "-",
            check["limit"] or "-",
            check["detail"],
        )
    terminal.out.print(table)
    _line(terminal, "Saw: " + ", ".join(f"{key} {value}" for key, value in t["state"].items()))
    signal = doc["signal"]
    if signal:
        indicators = ", ".join(f"{k} {v:.6g}" for k, v in signal["indicators"].items())
        _line(
            terminal,
            f"Signal {signal['signal_id']} ({signal['strategy']}): price {signal['price']}, "
            f"strength {signal['strength']:.3f}; {indicators}",
        )
