"""The operator's live view of ``cdb run`` on a terminal (rich): one screen, refreshed each second.

Per symbol the last price and how fresh it is; the positions with their value and unrealized
PnL; what the strategy waits for on each symbol (its conditions on the latest closed bar, with
their values) and how long ago it last signalled; cash, equity, realized PnL, fees and drawdown;
the trading state; the last decisions with their verdict, the reasons they failed and their id
(``cdb explain ID``). Off a terminal the loop writes JSON log lines instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from cdb_cli.engine.events import Event, Topic
    from cdb_cli.runtime.loop import TradingLoop

__all__ = ["LastDecisions", "render"]

_LAST_DECISIONS = 8


def _ago(ns: int) -> str:
    seconds = max(0, ns // 1_000_000_000)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,f}"


class LastDecisions(deque[tuple[str, str, str, str, str, str]]):
    """(time, symbol, side, verdict, failing reasons, decision id) of the latest 50 risk
    decisions, noted as each batch is written (``cdb explain ID`` shows one in full)."""

    def __init__(self) -> None:
        super().__init__(maxlen=50)

    def note(self, events: Iterable[tuple[Topic, Event]]) -> None:
        from cdb_cli.engine.events import RiskDecision
        from cdb_cli.engine.report import iso_utc

        for _, event in events:
            if isinstance(event, RiskDecision):
                failing = ", ".join(c.code for c in event.checks if not c.passed) or "-"
                if event.verdict == "nothing_held":
                    failing = "exit signal, nothing held"
                self.append(
                    (
                        iso_utc(event.ts_event),
                        event.symbol,
                        str(event.side),
                        event.verdict,
                        failing,
                        event.event_id,
                    )
                )


def render(runtime: TradingLoop) -> RenderableType:
    """The screen for the runtime's current state."""
    from rich.console import Group
    from rich.table import Table

    from cdb_cli.engine.fees import describe_other
    from cdb_cli.engine.funnel import hhmm, waits_for

    pipeline = runtime.pipeline
    if pipeline is None:
        return "connecting to the market…"
    portfolio = pipeline.portfolio
    ages = runtime.feed_ages()
    marks = pipeline.marks()
    market = Table(title=f"cdb run {runtime.run_id} (paper)", expand=True)
    for column in ("symbol", "price", "data age", "position", "value", "unrealized"):
        market.add_column(column, justify="right" if column != "symbol" else "left")
    for symbol in runtime.symbols:
        age = ages.get(symbol)
        market.add_row(
            symbol,
            str(marks.get(symbol, "-")),
            "-" if age is None else f"{age:.1f} s",
            str(portfolio.quantity(symbol)),
            _money(portfolio.position_value(symbol)),
            _money(portfolio.unrealized_pnl(symbol)),
        )
    equity = portfolio.equity()
    state = pipeline.trading_state
    account = (
        f"equity {_money(equity)}  cash {_money(portfolio.cash)}  realized "
        f"{_money(portfolio.realized_pnl())}  fees {_money(portfolio.fees_paid)}"
        f"{describe_other(portfolio.other_fees)}  drawdown "
        f"{portfolio.drawdown_from_peak_pct():.2f} % from peak, "
        f"{portfolio.daily_drawdown_pct():.2f} % today  state {str(state).upper()}"
    )
    strategy = Table(title="strategy: what each symbol waits for", expand=True)
    for column in ("symbol", "bar (UTC)", "conditions on the last closed bar", "last signal"):
        strategy.add_column(column)
    tracer = pipeline.tracer
    now = runtime.clock.timestamp_ns()
    for symbol in runtime.symbols:
        trace = tracer.latest.get(symbol) if tracer is not None else None
        last = tracer.last_signal_ns.get(symbol) if tracer is not None else None
        live = tracer is not None and tracer.counts.get(symbol)
        when = "-" if trace is None else hhmm(trace.ts_event)[11:]
        strategy.add_row(
            symbol,
            when if live or trace is None else f"{when} (warm-up history)",
            "no closed bar yet" if trace is None else waits_for(trace),
            "none yet" if last is None else f"{_ago(now - last)} ago",
        )
    decisions = Table(title="last decisions", expand=True)
    for column in ("time", "symbol", "side", "verdict", "why", "id (cdb explain ID)"):
        decisions.add_column(column)
    for row in list(runtime.last_decisions)[-_LAST_DECISIONS:]:
        decisions.add_row(*row)
    summary = runtime.summary
    counts = (
        f"{summary.market_events:,} market events, {summary.bars} bars, {summary.signals} "
        f"signals, {summary.orders} orders, {summary.fills} fills"
    )
    parts: list[Any] = [market, strategy, account, decisions, counts]
    return Group(*parts)
