"""One bar's whole path: the bar, every condition, the signal, the risk trace, the orders, the
venue's answers and the fills."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cdb_cli.engine.events import Bar, StrategyTrace
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.settings import Settings

from cdb_cli.services.why.window import SECOND_NS, ExplainError, interval_ns

_FOLLOW_NS: Final = 15 * 60 * SECOND_NS
"""How long after a bar its signal, decision and order are looked for (component mode decides
later than the bar's close; a working order lives longer and is found by its decision id)."""


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

    interval = interval_ns(settings)
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
        for o in store.orders(symbol=symbol, since_ns=decision.ts_event - SECOND_NS)
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
    late = (bar.closed_at - close_ns) / SECOND_NS if bar.closed_at else None
    return {
        "open": str(bar.open),
        "high": str(bar.high),
        "low": str(bar.low),
        "close": str(bar.close),
        "volume": str(bar.volume),
        "closed_late_s": late,
    }
