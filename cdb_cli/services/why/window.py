"""The window: per symbol the funnel from market data to fills, its first stop, the near
misses; and what the other questions share (the window, the run's span, the one-line error)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cdb_cli.engine.events import Bar, RiskDecision, StrategyTrace, TradingSignal
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.records import OrderRecord
    from cdb_cli.settings import Settings

SECOND_NS: Final = 1_000_000_000


class ExplainError(Exception):
    """Nothing to explain, in one line: an unknown symbol, a time with no bar, an empty window."""


@dataclass(frozen=True)
class Window:
    """What the operator asked about: symbols (None: every symbol seen), time window, run."""

    symbol: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    run_id: str | None = None


def interval_ns(settings: Settings) -> int:
    return int(settings.bar_seconds) * SECOND_NS


def _of_run(events: Sequence[Any], run_id: str | None) -> list[Any]:
    if run_id is None:
        return list(events)
    return [e for e in events if e.event_id.startswith(f"{run_id}-")]


def symbols_of(store: Store, settings: Settings, window: Window) -> list[str]:
    from cdb_cli.engine.events import Bar, StrategyTrace, TradingSignal

    if window.symbol:
        return [window.symbol.upper()]
    seen: set[str] = set()
    for kind in (StrategyTrace, Bar, TradingSignal):
        for event in _of_run(
            store.events(kind, since_ns=window.since_ns, until_ns=window.until_ns),
            window.run_id if kind is not Bar else None,
        ):
            seen.add(event.symbol)
    return sorted(seen) or list(settings.symbols)


def run_span(store: Store, window: Window) -> Window:
    """With ``--run``, the window narrowed to the span of the run's traces and signals."""
    from cdb_cli.engine.events import RiskDecision, StrategyTrace, TradingSignal

    if window.run_id is None:
        return window
    times: list[int] = []
    for kind in (StrategyTrace, TradingSignal, RiskDecision):
        events = store.events(
            kind, symbol=window.symbol, since_ns=window.since_ns, until_ns=window.until_ns
        )
        times += [e.ts_event for e in _of_run(events, window.run_id)]
    if not times:
        raise ExplainError(f"No run {window.run_id!r} in the store (in this window)")
    return Window(window.symbol, min(times) - 1, max(times) + 1, window.run_id)


def explain_window(
    store: Store, settings: Settings, window: Window, *, near: int = 5
) -> dict[str, Any]:
    """The funnel of every symbol in the window, its first stop, and the near misses."""
    from cdb_cli.engine.events import (
        QuoteTick,
        StrategyTrace,
        TradeTick,
        TradingSignal,
    )
    from cdb_cli.engine.funnel import near_misses, symbol_funnel
    from cdb_cli.engine.runs import select_decisions, select_fills

    span = run_span(store, window)
    symbols = symbols_of(store, settings, window)
    interval_s = int(settings.bar_seconds)
    since, until, run = span.since_ns, span.until_ns, span.run_id
    funnels: list[dict[str, Any]] = []
    misses: list[dict[str, Any]] = []
    for symbol in symbols:
        traces: list[StrategyTrace] = _of_run(
            store.events(StrategyTrace, symbol=symbol, since_ns=since, until_ns=until), run
        )
        signals: list[TradingSignal] = _of_run(
            store.events(TradingSignal, symbol=symbol, since_ns=since, until_ns=until), run
        )
        decisions: list[RiskDecision] = select_decisions(
            store, symbol=symbol, since_ns=since, until_ns=until, run_id=run
        )
        bars = _bars_closing_in(store, symbol, since, until, interval_ns(settings))
        orders = _orders_of(store, symbol, since, until, {d.event_id for d in decisions}, run)
        fills = select_fills(store, symbol=symbol, since_ns=since, until_ns=until, run_id=run)
        market = sum(
            store.count_events(kind, symbol=symbol, since_ns=since, until_ns=until)
            for kind in (TradeTick, QuoteTick)
        )
        funnel = symbol_funnel(
            symbol,
            market_events=market,
            bars=bars,
            traces=traces,
            signals=signals,
            decisions=decisions,
            orders=orders,
            fills=fills,
            interval_s=interval_s,
        )
        funnels.append(funnel.as_dict())
        misses += near_misses(traces, near)
    if not any(
        f["market_events"] or f["bars"] or f["traced"] or sum(f["signals"].values())
        for f in funnels
    ):
        if not window.symbol:
            raise ExplainError("Nothing stored in this window: no market data, bars or signals")
        known = ", ".join(sorted(set(settings.symbols))) or "none"
        raise ExplainError(
            f"Nothing stored for {window.symbol.upper()} in this window (configured symbols: "
            f"{known})"
        )
    misses.sort(key=lambda miss: (miss["distance"], -miss["ts"]))
    return {
        "window": {
            "since": since,
            "until": until,
            "run": run,
            "symbol": window.symbol,
        },
        "symbols": funnels,
        "near_misses": misses[:near],
    }


def _bar_length_ns(bar: Bar, default_ns: int) -> int:
    """A stored bar's length from its interval (``1m``, ``5s``), else ``default_ns``."""
    unit = {"s": 1, "m": 60, "h": 3600}.get(bar.interval[-1:])
    count = bar.interval[:-1]
    if unit is None or not count.isdigit() or int(count) == 0:
        return default_ns
    return int(count) * unit * SECOND_NS


def _bars_closing_in(
    store: Store, symbol: str, since: int | None, until: int | None, default_ns: int
) -> list[Bar]:
    """The bars that closed in the window (a bar is stored at its open, traced at its close)."""
    from cdb_cli.engine.events import Bar

    reach = 24 * 3600 * SECOND_NS  # the longest bar there is: a day
    bars = store.events(
        Bar,
        symbol=symbol,
        since_ns=None if since is None else since - reach,
        until_ns=until,
    )
    return [
        bar
        for bar in bars
        if (since is None or bar.ts_event + _bar_length_ns(bar, default_ns) >= since)
        and (until is None or bar.ts_event + _bar_length_ns(bar, default_ns) < until)
    ]


def _orders_of(
    store: Store,
    symbol: str,
    since: int | None,
    until: int | None,
    decision_ids: set[str],
    run_id: str | None,
) -> list[OrderRecord]:
    orders = store.orders(symbol=symbol, since_ns=since, until_ns=until)
    if run_id is None:
        return orders
    return [order for order in orders if order.decision_id in decision_ids]
