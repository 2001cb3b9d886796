"""``cdb explain``: why the bot did (not) trade — the whole path, from market data to fills."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import AppContext, app_context
from cdb_cli.options import (
    JsonOpt,
    RunOpt,
    SinceOpt,
    StrategyOpt,
    SymbolOpt,
    UntilOpt,
    parse_when,
)

if TYPE_CHECKING:
    from cdb_cli.output import Terminal

_MARK = {True: "✓", False: "✗", None: "?"}


def explain(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="[SYMBOL@TIME | ID]",
            help="One bar's whole path: BTCUSDT@2026-12-07T12:03 (UTC), or a decision, signal or "
            "trace id.",
        ),
    ] = None,
    *,
    symbol: SymbolOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    run: RunOpt = None,
    what_if: Annotated[
        list[str] | None,
        typer.Option(
            "--what-if",
            metavar="NAME=VALUE",
            help="Re-run the stored bars with this strategy setting or risk limit changed "
            "(repeatable), e.g. --what-if volume_factor=1.0.",
        ),
    ] = None,
    strategy: StrategyOpt = None,
    near: Annotated[int, typer.Option("--near", min=0, help="How many near misses to list.")] = 5,
    json_output: JsonOpt = False,
) -> None:
    """Why did (or didn't) the bot trade? Per symbol, the path market data → bars → strategy
    conditions → signals → risk → orders → fills, the first stage that stopped things in one
    sentence, and the bars that came closest to a buy.

    Reads CDB_DATABASE_URL. Exit 1 when there is nothing to explain (unknown symbol, a time with
    no bar, an empty window), 2 for a bad option. --strategy re-runs the stored bars with
    another strategy as the what-if (its settings with --what-if NAME=VALUE); 3 when it is broken.
    """
    context = app_context(ctx)
    as_json = json_output or context.json
    window_options = (symbol, since, until, run)
    with context.json_failures(as_json):
        document, render = _explain(
            context, as_json, target, window_options, (what_if, strategy), near
        )
    if as_json:
        context.terminal.json(document)
    else:
        render(context.terminal, document)


def _explain(
    context: AppContext,
    as_json: bool,
    target: str | None,
    window_options: tuple[str | None, str | None, str | None, str | None],
    what_if_options: tuple[list[str] | None, str | None],
    near: int,
) -> tuple[dict[str, Any], Any]:
    """The document to print and its renderer (one line and exit 1 when nothing to explain)."""
    from cdb_cli.services.operator import BadOption, Unanswered, Window
    from cdb_cli.services.operator import explain as build_explain

    symbol, since, until, run = window_options
    what_if, strategy = what_if_options
    settings = context.settings()
    window = Window(
        symbol=symbol,
        since_ns=parse_when(since, "--since"),
        until_ns=parse_when(until, "--until"),
        run_id=run,
    )
    try:
        document = build_explain(
            settings,
            context.env_file,
            target=target,
            window=window,
            what_if=what_if or [],
            strategy=strategy,
            near=near,
            parse_time=lambda text: _when(text, target or ""),
        )
    except BadOption as e:
        raise typer.BadParameter(e.message, param_hint=e.param_hint) from None
    except Unanswered as e:
        raise _nothing(context, as_json, e.message) from None
    if target is not None:
        return document, _render_bar
    if what_if or strategy:
        return document, _render_what_if
    return document, _render_window


def _when(text: str, target: str) -> int:
    moment = parse_when(text, "SYMBOL@TIME")
    if moment is None:  # pragma: no cover - parse_when returns None only for None
        raise typer.BadParameter(f"no time in {target!r}", param_hint="SYMBOL@TIME")
    return moment


def _nothing(context: AppContext, as_json: bool, message: str) -> typer.Exit:
    """One line and exit 1; with --json a document that says why (scripts never get nothing)."""
    if as_json:
        context.terminal.json({"error": message, "symbols": []})
    else:
        context.terminal.error(message)
    return typer.Exit(1)


def _pct(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} ({100 * part / whole:.0f} %)" if whole else f"{part:,}"


def _render_window(terminal: Terminal, doc: dict[str, Any]) -> None:
    from rich.table import Table

    from cdb_cli.engine.display import DASH

    for f in doc["symbols"]:
        terminal.out.print(f["sentence"], markup=False, highlight=False)
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column("stage")
        table.add_column("count")
        table.add_row("market events", f"{f['market_events']:,}")
        table.add_row("closed bars", f"{f['bars']:,}")
        evaluated = f"{f['evaluated']:,}"
        if f["warming_up"]:
            evaluated += f" ({f['warming_up']:,} while warming up)"
        if f["gap_bars"]:
            evaluated += f"; {f['gap_bars']:,} intervals without a bar"
        table.add_row("bars evaluated", evaluated)
        for name, row in f["conditions"].items():
            table.add_row(f"  {name} ({row['side']})", _pct(row["passed"], row["judged"]))
        table.add_row("  every buy condition", f"{f['buy_conditions_all_passed']:,}")
        signals = f["signals"]
        table.add_row("signals", f"buy {signals['buy']:,}, exit {signals['exit']:,}")
        table.add_row("exits while flat", f"{f['exits_while_flat']:,} (nothing held: no order)")
        risk = f["risk"]
        table.add_row(
            "risk",
            f"approved {risk['approved']:,}, reduced {risk['reduced']:,}, "
            f"rejected {risk['rejected']:,}",
        )
        orders = ", ".join(f"{status} {n}" for status, n in f["orders"].items()) or "0"
        table.add_row("orders", orders)
        table.add_row("fills", f"{f['fills']:,}")
        table.add_row("last signal", f["last_signal"] or DASH)
        terminal.out.print(table)
        terminal.out.print()
    misses = doc["near_misses"]
    if misses:
        table = Table(title="Nearest to a buy", title_justify="left")
        for column in ("symbol", "bar (UTC close)", "distance", "conditions"):
            table.add_column(column)
        for miss in misses:
            conditions = "; ".join(f"{c['text']} {_MARK[c['passed']]}" for c in miss["conditions"])
            table.add_row(miss["symbol"], miss["bar"], f"{miss['distance']:.3g}", conditions)
        terminal.out.print(table)
        terminal.out.print(
            "Any bar in full: cdb explain SYMBOL@TIME, e.g. "
            f"cdb explain {misses[0]['symbol']}@{misses[0]['bar'].replace(' ', 'T')}",
            markup=False,
            highlight=False,
        )


def _render_bar(terminal: Terminal, doc: dict[str, Any]) -> None:
    from cdb_cli.engine.display import instrument_of, money, price, quantity, quote_of

    out = terminal.out
    instrument = instrument_of(doc["symbol"])
    quote = quote_of(doc["symbol"])
    out.print(f"{doc['symbol']} bar closing {doc['bar']} UTC", markup=False, highlight=False)
    market = doc["market"]
    if market is None:
        out.print("  market: the bar itself is not stored", markup=False)
    else:
        late = market["closed_late_s"]
        out.print(
            f"  market: O {price(market['open'], instrument)} "
            f"H {price(market['high'], instrument)} L {price(market['low'], instrument)} "
            f"C {price(market['close'], instrument)} V {quantity(market['volume'], instrument)}"
            + (f"; closed {late:.1f} s after its end" if late is not None else ""),
            markup=False,
            highlight=False,
        )
    strategy = doc["strategy"]
    gap = f" after {strategy['gap_bars']} intervals without a bar" if strategy["gap_bars"] else ""
    out.print(f"  strategy {strategy['name']}: {strategy['status']}{gap}", markup=False)
    for condition in strategy["conditions"]:
        out.print(
            f"    {_MARK[condition['passed']]} {condition['side']}: {condition['text']}",
            markup=False,
            highlight=False,
        )
    signal = doc["signal"]
    if signal is not None:
        out.print(
            f"  signal {signal['signal_id']}: {signal['side']} at "
            f"{price(signal['price'], instrument)} "
            f"(strength {signal['strength']:.2f})",
            markup=False,
            highlight=False,
        )
    risk = doc["risk"]
    if risk is not None:
        out.print(
            f"  risk {risk['decision_id']}: {risk['outcome']}, final "
            f"{money(risk['final_quote'], quote)} {quote}",
            markup=False,
            highlight=False,
        )
        for check in risk["checks"]:
            mark = "✓" if check["passed"] else "✗"
            out.print(
                f"    {mark} {check['rule']}: {check['observed']} vs {check['limit']} "
                f"{check['detail']}".rstrip(),
                markup=False,
                highlight=False,
            )
    for order in doc["orders"]:
        out.print(
            f"  order {order['client_order_id']}: {order['side']} {order['type']}, "
            f"{order['status']}",
            markup=False,
            highlight=False,
        )
        for report in order["venue"]:
            reason = f" ({report['reason']})" if report["reason"] else ""
            out.print(f"    venue {report['status']} at {report['at']}{reason}", markup=False)
        for fill in order["fills"]:
            out.print(
                f"    fill {quantity(fill['quantity'], instrument)} at "
                f"{price(fill['price'], instrument)}, fee {money(fill['fee'], fill['fee_asset'])} "
                f"{fill['fee_asset']} ({fill['at']})",
                markup=False,
                highlight=False,
            )
    stopped = doc["stopped_at"]
    out.print(
        f"  stopped at {stopped}" if stopped else "  traded: filled", markup=False, highlight=False
    )


def _render_what_if(terminal: Terminal, doc: dict[str, Any]) -> None:
    from rich.table import Table

    from cdb_cli.engine.display import DASH

    changes = ", ".join(f"{k}={v}" for k, v in doc["changes"].items())
    for s in doc["symbols"]:
        terminal.out.print(
            f"{s['symbol']}: {s['signals_with_changes']} signals with {changes} "
            f"(as set: {s['signals_as_set']}); {len(s['new'])} new, {len(s['gone'])} gone",
            markup=False,
            highlight=False,
        )
        if not s["would_signal"]:
            continue
        table = Table(title=f"{s['symbol']}: bars that would signal", title_justify="left")
        for column in ("bar (UTC close)", "side", "new", "risk", "failed rules"):
            table.add_column(column)
        new = {row["ts"] for row in s["new"]}
        for row in s["would_signal"]:
            table.add_row(
                row["bar"],
                row["side"],
                "new" if row["ts"] in new else "",
                row["risk"] or DASH,
                ", ".join(row["failed_rules"]) or DASH,
            )
        terminal.out.print(table)
