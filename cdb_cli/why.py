"""``cdb explain`` as a service: why the bot did (not) trade, from the store alone.

Three questions, each answered as one JSON-able document that the command renders:

* :func:`explain_window` — per symbol, the funnel from market data to fills, the first stage that
  stopped things in one sentence, and the near misses (``cdb explain --since 10m``);
* :func:`explain_bar` — one bar's whole path: the bar and how late it closed, every condition,
  the signal, the risk trace, the orders, the venue's answers and the fills
  (``cdb explain BTCUSDT@12:03`` or ``cdb explain ID`` for a decision, signal or trace id);
* :func:`what_if` — the stored bars of the window through the same pipeline the run used, once
  with the settings as they are and once with ``--what-if`` changes (strategy settings and risk
  limits alike): which bars would have signalled, and what risk would then have said.

Errors are :class:`ExplainError` (one line for the operator, exit 1) and ``ValueError`` for a
bad ``--what-if`` (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cdb_cli.engine.events import Bar, RiskDecision, StrategyTrace, TradingSignal
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.records import OrderRecord
    from cdb_cli.settings import Settings

__all__ = [
    "ExplainError",
    "Window",
    "explain_bar",
    "explain_window",
    "parse_bar_target",
    "what_if",
    "what_if_names",
]

_SECOND: Final = 1_000_000_000
_FOLLOW_NS: Final = 15 * 60 * _SECOND
"""How long after a bar its signal, decision and order are looked for (component mode decides
later than the bar's close; a working order lives longer and is found by its decision id)."""


class ExplainError(Exception):
    """Nothing to explain, in one line: an unknown symbol, a time with no bar, an empty window."""


@dataclass(frozen=True)
class Window:
    """What the operator asked about: symbols (None: every symbol seen), time window, run."""

    symbol: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    run_id: str | None = None


def _interval_ns(settings: Settings) -> int:
    return int(settings.bar_seconds) * _SECOND


def _of_run(events: Sequence[Any], run_id: str | None) -> list[Any]:
    if run_id is None:
        return list(events)
    return [e for e in events if e.event_id.startswith(f"{run_id}-")]


def _symbols(store: Store, settings: Settings, window: Window) -> list[str]:
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


def _run_span(store: Store, window: Window) -> Window:
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

    span = _run_span(store, window)
    symbols = _symbols(store, settings, window)
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
        bars = _bars_closing_in(store, symbol, since, until, _interval_ns(settings))
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
    if window.symbol and not any(
        f["market_events"] or f["bars"] or f["traced"] or sum(f["signals"].values())
        for f in funnels
    ):
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
    return int(count) * unit * _SECOND


def _bars_closing_in(
    store: Store, symbol: str, since: int | None, until: int | None, default_ns: int
) -> list[Bar]:
    """The bars that closed in the window (a bar is stored at its open, traced at its close)."""
    from cdb_cli.engine.events import Bar

    reach = 24 * 3600 * _SECOND  # the longest bar there is: a day
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


# --- one bar -------------------------------------------------------------------------------------


def parse_bar_target(target: str) -> tuple[str, str] | None:
    """``BTCUSDT@2026-12-07T12:03`` → (symbol, time text); None for an id."""
    symbol, sep, when = target.partition("@")
    if not sep:
        return None
    if not symbol.strip() or not when.strip():
        raise ValueError(f"{target!r} is not SYMBOL@TIME (e.g. BTCUSDT@2026-12-07T12:03)")
    return symbol.strip().upper(), when.strip()


def _trace_at(store: Store, symbol: str, at_ns: int, interval_ns: int) -> StrategyTrace:
    """The bar closing at ``at_ns``, else the one whose interval holds it."""
    from cdb_cli.engine.events import StrategyTrace
    from cdb_cli.engine.funnel import hhmm

    traces = store.events(
        StrategyTrace, symbol=symbol, since_ns=at_ns, until_ns=at_ns + interval_ns
    )
    exact = [t for t in traces if t.ts_event == at_ns]
    if exact:
        return exact[-1]
    later = [t for t in traces if t.ts_event > at_ns]
    if later:
        return later[0]
    before = store.events(StrategyTrace, symbol=symbol, until_ns=at_ns, limit=1, descending=True)
    after = store.events(StrategyTrace, symbol=symbol, since_ns=at_ns, limit=1)
    if not before and not after:
        raise ExplainError(f"No bar of {symbol} is stored (is it traded by this bot?)")
    nearest = ", ".join(hhmm(t.ts_event) for t in (*before, *after))
    raise ExplainError(f"No bar of {symbol} at {hhmm(at_ns)} (nearest: {nearest})")


def _trace_for_id(store: Store, event_id: str) -> StrategyTrace:
    """A decision, signal or trace id → the trace of the bar behind it."""
    from cdb_cli.engine.events import RiskDecision, StrategyTrace, TradingSignal

    trace = store.find_event(StrategyTrace, event_id)
    if trace is not None:
        return trace
    decision = store.find_event(RiskDecision, event_id)
    signal_id = decision.signal_id if decision is not None else event_id
    signal = store.find_event(TradingSignal, signal_id)
    if signal is None:
        raise ExplainError(
            f"No decision, signal or bar trace {event_id!r} in the store"
            if decision is None
            else f"Decision {event_id!r} has no stored signal {signal_id!r}"
        )
    trace = store.find_event(StrategyTrace, signal.trace_id) if signal.trace_id else None
    if trace is None:
        raise ExplainError(
            f"The signal {signal.event_id!r} has no stored bar trace (a run of an older cdb)"
        )
    return trace


def explain_bar(
    store: Store,
    settings: Settings,
    *,
    target: str,
    parse_time: Any,
) -> dict[str, Any]:
    """One bar's whole path, from the market data to the fill.

    ``target`` is ``SYMBOL@TIME`` (``parse_time`` turns the time into ns) or an id.
    """
    from cdb_cli.engine.events import Bar, ExecutionReport, RiskDecision, TradingSignal
    from cdb_cli.engine.explain import trace as decision_trace
    from cdb_cli.engine.funnel import decision_outcome, hhmm, waits_for

    interval = _interval_ns(settings)
    try:
        bar_target = parse_bar_target(target)
    except ValueError as e:
        raise ExplainError(str(e)) from None
    if bar_target is not None:
        symbol, when = bar_target
        trace = _trace_at(store, symbol, parse_time(when), interval)
    else:
        trace = _trace_for_id(store, target)
    symbol, close_ns = trace.symbol, trace.ts_event
    bars = store.events(Bar, symbol=symbol, since_ns=close_ns - interval, until_ns=close_ns)
    bar: Bar | None = bars[-1] if bars else None
    path: dict[str, Any] = {
        "symbol": symbol,
        "bar": hhmm(close_ns),
        "ts_close": close_ns,
        "trace_id": trace.event_id,
        "market": _bar_doc(bar, close_ns),
        "strategy": {
            "name": trace.strategy,
            "status": trace.status,
            "bars_needed": trace.bars_needed,
            "gap_bars": trace.gap_bars,
            "waits_for": waits_for(trace),
            "conditions": [c.model_dump(mode="json") for c in trace.conditions],
            "values": trace.values,
        },
        "signal": None,
        "risk": None,
        "orders": [],
        "stopped_at": "",
    }
    if not trace.signal_id:
        path["stopped_at"] = (
            "strategy: still warming up"
            if trace.status == "warming_up"
            else "strategy: no signal on this bar"
        )
        return path
    signal = store.find_event(TradingSignal, trace.signal_id)
    if signal is None:
        path["stopped_at"] = "signal: raised but not stored"
        return path
    path["signal"] = {
        "signal_id": signal.event_id,
        "side": str(signal.side),
        "price": str(signal.price),
        "strength": signal.strength,
        "at": hhmm(signal.ts_event),
    }
    decisions = [
        d
        for d in store.events(
            RiskDecision,
            symbol=symbol,
            since_ns=signal.ts_event,
            until_ns=signal.ts_event + _FOLLOW_NS,
        )
        if d.signal_id == signal.event_id
    ]
    if not decisions:
        path["stopped_at"] = "risk: no decision stored for the signal"
        return path
    decision = decisions[0]
    outcome = decision_outcome(decision)
    path["risk"] = {**decision_trace(decision), "outcome": outcome}
    if outcome not in ("approved", "reduced"):
        path["stopped_at"] = (
            "strategy: an exit signal with nothing held"
            if outcome == "nothing_held"
            else "risk: rejected"
        )
        return path
    orders = [
        o
        for o in store.orders(symbol=symbol, since_ns=decision.ts_event - _SECOND)
        if o.decision_id == decision.event_id
    ]
    if not orders:
        path["stopped_at"] = "execution: no order stored for the approval"
        return path
    filled = False
    for order in orders:
        reports = [
            r
            for r in store.events(ExecutionReport, symbol=symbol, since_ns=order.ts_created)
            if r.client_order_id == order.client_order_id
        ]
        fills = store.fills(client_order_id=order.client_order_id)
        filled = filled or bool(fills)
        path["orders"].append(
            {
                "client_order_id": order.client_order_id,
                "side": str(order.side),
                "type": order.order_type,
                "status": order.status,
                "venue": [
                    {"status": r.status, "at": hhmm(r.ts_event), "reason": r.reason}
                    for r in reports
                ],
                "fills": [
                    {
                        "quantity": str(f.quantity),
                        "price": str(f.price),
                        "fee": str(f.fee),
                        "fee_asset": f.fee_asset,
                        "at": hhmm(f.ts_event),
                    }
                    for f in fills
                ],
            }
        )
    path["stopped_at"] = "" if filled else f"venue: {orders[-1].status}, no fill"
    return path


def _bar_doc(bar: Bar | None, close_ns: int) -> dict[str, Any] | None:
    if bar is None:
        return None
    late = (bar.closed_at - close_ns) / _SECOND if bar.closed_at else None
    return {
        "open": str(bar.open),
        "high": str(bar.high),
        "low": str(bar.low),
        "close": str(bar.close),
        "volume": str(bar.volume),
        "closed_late_s": late,
    }


# --- what-if ---------------------------------------------------------------------------------


def what_if_names() -> list[str]:
    """The settings ``--what-if`` may change: the strategy's and the risk limits."""
    from cdb_cli.engine.risk import RiskLimits
    from cdb_cli.engine.signals import SignalConfig

    return sorted({*SignalConfig.model_fields, *RiskLimits.model_fields})


def parse_changes(items: Sequence[str]) -> dict[str, str]:
    """``["volume_factor=1.0"]`` → {name: value}; ``ValueError`` listing the valid names."""
    names = what_if_names()
    changes: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        key = name.strip().lower().removeprefix("cdb_")
        if not sep or not key or not value.strip():
            raise ValueError(f"{item!r} is not NAME=VALUE")
        if key not in names:
            raise ValueError(f"unknown setting {name.strip()!r}; valid: {', '.join(names)}")
        changes[key] = value.strip()
    return changes


def _series(store: Store, symbol: str, until: int | None, interval: int) -> Any:
    from array import array

    from cdb_cli.engine.events import Bar
    from cdb_cli.engine.replay import BarSeries

    bars = [b for b in store.events(Bar, symbol=symbol, until_ns=until) if b.closed]
    series = BarSeries(symbol, interval)
    seen: set[int] = set()
    for bar in bars:
        if bar.ts_event in seen:
            continue
        seen.add(bar.ts_event)
        series.ts.append(bar.ts_event)
        for name, column in (
            ("open", series.open),
            ("high", series.high),
            ("low", series.low),
            ("close", series.close),
            ("volume", series.volume),
        ):
            column.append(float(getattr(bar, name)))
    order = sorted(range(len(series.ts)), key=series.ts.__getitem__)
    if order != list(range(len(order))):
        for name in ("ts", "open", "high", "low", "close", "volume"):
            column = getattr(series, name)
            setattr(series, name, array(column.typecode, (column[i] for i in order)))
    return series


def _rerun(settings: Settings, series: Any, interval: int) -> list[tuple[Any, Any]]:
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.pipeline import MemoryRecorder
    from cdb_cli.engine.replay import replay_bars
    from cdb_cli.kernel import Environment, build_pipeline

    clock = TestClock()
    recorder = MemoryRecorder()
    pipeline = build_pipeline(
        settings,
        Environment.REPLAY,
        symbols=[series.symbol],
        clock=clock,
        recorder=recorder,
        run_id="whatif",
        trace_interval_ns=interval,
    )
    replay_bars(pipeline, series, clock)
    return recorder.events


def _signals_of(
    events: Sequence[tuple[Any, Any]], since: int | None, until: int | None
) -> dict[int, dict[str, Any]]:
    """Bar close → the signal it raised and what risk said, within the window."""
    from cdb_cli.engine.events import RiskDecision, StrategyTrace, TradingSignal
    from cdb_cli.engine.funnel import decision_outcome, hhmm
    from cdb_cli.engine.risk import normalize_decision

    decisions = {e.signal_id: e for _, e in events if isinstance(e, RiskDecision)}
    signals = {e.event_id: e for _, e in events if isinstance(e, TradingSignal)}
    found: dict[int, dict[str, Any]] = {}
    for _, trace in events:
        if not isinstance(trace, StrategyTrace) or not trace.signal_id:
            continue
        ts = trace.ts_event
        if (since is not None and ts < since) or (until is not None and ts >= until):
            continue
        decision: RiskDecision | None = decisions.get(trace.signal_id)
        signal: TradingSignal = signals[trace.signal_id]
        found[ts] = {
            "bar": hhmm(ts),
            "ts": ts,
            "side": str(signal.side),
            "risk": decision_outcome(decision) if decision is not None else None,
            "failed_rules": [c.code for c in normalize_decision(decision).checks if not c.passed]
            if decision is not None
            else [],
            "conditions": [c.text for c in trace.conditions if c.side == str(signal.side)],
        }
    return found


def what_if(
    store: Store,
    settings: Settings,
    changed: Settings,
    window: Window,
    changes: Mapping[str, str],
) -> dict[str, Any]:
    """The window's bars through the pipeline with ``settings`` and with ``changed`` (the same
    settings with ``changes``): the signals of each, and what risk said of them.

    Every stored bar before the window warms the strategy (a persisted replay's bars from its
    first one, so its signals come out exactly as the replay's).
    """
    span = _run_span(store, window)
    interval = _interval_ns(settings)
    result: dict[str, Any] = {"changes": dict(changes), "symbols": []}
    for symbol in _symbols(store, settings, window):
        series = _series(store, symbol, span.until_ns, interval)
        if not len(series):
            continue
        before = _signals_of(_rerun(settings, series, interval), span.since_ns, span.until_ns)
        after = _signals_of(_rerun(changed, series, interval), span.since_ns, span.until_ns)
        result["symbols"].append(
            {
                "symbol": symbol,
                "bars": len(series),
                "signals_as_set": len(before),
                "signals_with_changes": len(after),
                "would_signal": [after[ts] for ts in sorted(after)],
                "new": [after[ts] for ts in sorted(after.keys() - before.keys())],
                "gone": [before[ts] for ts in sorted(before.keys() - after.keys())],
            }
        )
    if not result["symbols"]:
        raise ExplainError("No stored bars in the window to re-run the strategy on")
    return result
