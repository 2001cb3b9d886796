"""The what-if: the stored bars through the run's pipeline as set and with other settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdb_cli.engine.events import RiskDecision, TradingSignal
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.settings import Settings

from cdb_cli.services.why.window import ExplainError, Window, interval_ns, run_span, symbols_of


def what_if_names(strategy_fields: Iterable[str] = ()) -> list[str]:
    """The settings ``--what-if`` may change: the strategy's and the risk limits."""
    from cdb_cli.engine.risk import RiskLimits
    from cdb_cli.engine.signals import SignalConfig

    return sorted({*SignalConfig.model_fields, *RiskLimits.model_fields, *strategy_fields})


def parse_changes(items: Sequence[str], strategy_fields: Iterable[str] = ()) -> dict[str, str]:
    """``["volume_factor=1.0"]`` → {name: value}; ``ValueError`` listing the valid names (the
    seed rule's, the risk limits and ``strategy_fields``, those of the chosen strategy)."""
    names = what_if_names(strategy_fields)
    changes: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        key = name.strip().lower().removeprefix("cdb_").removeprefix("strategy_")
        if not sep or not key or not value.strip():
            raise ValueError(f"{item!r} is not NAME=VALUE")
        if key not in names:
            raise ValueError(f"unknown setting {name.strip()!r}; valid: {', '.join(names)}")
        changes[key] = value.strip()
    return changes


def _series(store: Store, symbol: str, until: int | None, interval: int) -> Any:
    from cdb_cli.engine.events import Bar
    from cdb_cli.engine.replay import BarSeries

    series = BarSeries(symbol, interval)
    last = -1
    for bar in store.events(Bar, symbol=symbol, until_ns=until):  # in time order
        if not bar.closed or bar.ts_event == last:  # one bar per open time (any interval)
            continue
        last = bar.ts_event
        series.ts.append(bar.ts_event)
        for name, column in (
            ("open", series.open),
            ("high", series.high),
            ("low", series.low),
            ("close", series.close),
            ("volume", series.volume),
        ):
            column.append(float(getattr(bar, name)))
    return series


def _rerun(settings: Settings, series: Any, interval: int) -> list[tuple[Any, Any]]:

    from cdb_cli.engine.recorders import MemoryRecorder
    from cdb_cli.engine.records import Mode
    from cdb_cli.engine.replay import replay_bars
    from cdb_cli.kernel import build_pipeline, clock_for

    clock = clock_for(Mode.REPLAY)
    recorder = MemoryRecorder()
    pipeline = build_pipeline(
        settings,
        Mode.REPLAY,
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
    span = run_span(store, window)
    interval = interval_ns(settings)
    result: dict[str, Any] = {"changes": dict(changes), "symbols": []}
    for symbol in symbols_of(store, settings, window):
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
