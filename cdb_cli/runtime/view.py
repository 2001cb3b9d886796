"""The operator's live view of ``cdb run`` on a terminal (rich): one screen, refreshed each second.

Per symbol the last price and how fresh it is; the positions with their value and unrealized
PnL; cash, equity, realized PnL, fees and drawdown; the trading state; the last decisions with
their verdict and the reasons they failed. Off a terminal the loop writes JSON log lines instead.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from cdb_cli.runtime.paper import PaperRuntime

__all__ = ["render"]

_LAST_DECISIONS = 8


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,f}"


def render(runtime: PaperRuntime) -> RenderableType:
    """The screen for the runtime's current state."""
    from rich.console import Group
    from rich.table import Table

    from cdb_cli.engine.fees import describe_other

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
    decisions = Table(title="last decisions", expand=True)
    for column in ("time", "symbol", "side", "verdict", "why"):
        decisions.add_column(column)
    for row in list(runtime.last_decisions)[-_LAST_DECISIONS:]:
        decisions.add_row(*row)
    summary = runtime.summary
    counts = (
        f"{summary.market_events:,} market events, {summary.bars} bars, {summary.signals} "
        f"signals, {summary.orders} orders, {summary.fills} fills"
    )
    parts: list[Any] = [market, account, decisions, counts]
    return Group(*parts)
