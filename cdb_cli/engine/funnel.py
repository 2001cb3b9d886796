"""Why a bot did (not) trade: the whole path per symbol, from market data to fills.

:func:`symbol_funnel` counts, for one symbol and window, each stage a trade passes — market events
→ closed bars → bars the strategy evaluated → each condition's pass rate → signals → risk
verdicts → orders → fills — and names the first stage that stopped things, in one sentence
("BTCUSDT: 40 bars, 0 crosses up; the fast EMA stayed above the slow one since 12:03").
:func:`near_misses` ranks the bars that came closest to a buy by how far their failing conditions
were from their thresholds. Both read only what the run stored (traces, signals, decisions,
orders, fills), so they answer the same for paper, live and persisted replay runs.

An exit signal while nothing is held is its own outcome, not a risk rejection: it is counted as
``nothing_held`` (:func:`decision_outcome`, which reads decisions stored before that verdict
existed through :func:`~cdb_cli.engine.risk.normalize_decision`).

Pure: ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cdb_cli.engine.events import Bar, RiskDecision, StrategyTrace, TradingSignal
from cdb_cli.engine.records import FillRecord, OrderRecord
from cdb_cli.engine.risk import normalize_decision

__all__ = [
    "NOTHING_HELD",
    "Funnel",
    "decision_outcome",
    "distance",
    "hhmm",
    "near_misses",
    "symbol_funnel",
    "waits_for",
]

NOTHING_HELD: Final = "nothing_held"
"""The outcome of an exit signal while nothing is held: nothing to do, not a rejection."""


def decision_outcome(decision: RiskDecision) -> str:
    """The decision's verdict as the engine gives it today (``nothing_held`` for an exit while
    flat, also when it was stored as a ``no_position`` rejection before that verdict existed)."""
    return str(normalize_decision(decision).verdict)


def hhmm(ts_ns: int) -> str:
    """A bar time as an operator reads it: ``2026-12-07 12:03`` (UTC), with seconds when the
    time has any (bars shorter than a minute)."""
    moment = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


def waits_for(trace: StrategyTrace) -> str:
    """One line: what the strategy waits for on this bar, each buy condition marked ✓ / ✗."""
    if trace.status == "warming_up":
        return f"warming up: {trace.bars_needed} more bar{'s' if trace.bars_needed != 1 else ''}"
    marks = {True: "✓", False: "✗", None: "?"}
    return "; ".join(
        f"{condition.text} {marks[condition.passed]}"
        for condition in trace.conditions
        if condition.side == "buy"
    )


def distance(trace: StrategyTrace) -> float:
    """How far the bar was from a buy: the sum, over its failing buy conditions, of the shortfall
    relative to the threshold (|threshold - value| / |threshold|, or the absolute shortfall for a
    threshold of 0, as the EMA gap in %). 0 when every buy condition passed."""
    total = 0.0
    for condition in trace.conditions:
        if condition.side != "buy" or condition.passed:
            continue
        if condition.value is None or condition.threshold is None:
            total += 1.0
            continue
        gap = abs(condition.threshold - condition.value)
        total += gap / abs(condition.threshold) if condition.threshold else gap
    return total


@dataclass
class Funnel:
    """One symbol's path through the stages in a window, and where it stopped."""

    symbol: str
    market_events: int = 0
    bars: int = 0
    traced: int = 0
    warming_up: int = 0
    evaluated: int = 0
    bars_needed: int = 0
    gap_bars: int = 0
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    buy_ready: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    orders: Counter[str] = field(default_factory=Counter)
    fills: int = 0
    stage: str = ""
    """The first stage that stopped trading (``""`` when trades went through)."""
    sentence: str = ""
    last_signal_ns: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "stage": self.stage or None,
            "sentence": self.sentence,
            "market_events": self.market_events,
            "bars": self.bars,
            "traced": self.traced,
            "warming_up": self.warming_up,
            "evaluated": self.evaluated,
            "gap_bars": self.gap_bars,
            "conditions": self.conditions,
            "buy_conditions_all_passed": self.buy_ready,
            "signals": {"buy": self.signals["buy"], "exit": self.signals["exit"]},
            "exits_while_flat": self.outcomes[NOTHING_HELD],
            "risk": {
                verdict: self.outcomes[verdict] for verdict in ("approved", "reduced", "rejected")
            },
            "orders": dict(sorted(self.orders.items())),
            "fills": self.fills,
            "last_signal": hhmm(self.last_signal_ns) if self.last_signal_ns else None,
        }


def symbol_funnel(
    symbol: str,
    *,
    market_events: int,
    bars: Sequence[Bar],
    traces: Sequence[StrategyTrace],
    signals: Sequence[TradingSignal],
    decisions: Sequence[RiskDecision],
    orders: Sequence[OrderRecord],
    fills: Sequence[FillRecord],
    interval_s: int = 60,
) -> Funnel:
    """Count each stage for ``symbol`` (every input already narrowed to it and the window)."""
    funnel = Funnel(symbol, market_events=market_events, fills=len(fills))
    funnel.bars = sum(1 for bar in bars if bar.closed)
    funnel.traced = len(traces)
    evaluated = [t for t in traces if t.status == "evaluated"]
    funnel.evaluated = len(evaluated)
    funnel.warming_up = funnel.traced - funnel.evaluated
    funnel.gap_bars = sum(t.gap_bars for t in traces)
    if traces and traces[-1].status == "warming_up":
        funnel.bars_needed = traces[-1].bars_needed
    for trace in evaluated:
        buy = [c for c in trace.conditions if c.side == "buy"]
        if buy and all(c.passed for c in buy):
            funnel.buy_ready += 1
        for condition in trace.conditions:
            row = funnel.conditions.setdefault(
                condition.name,
                {"side": condition.side, "judged": 0, "passed": 0, "threshold": None},
            )
            row["threshold"] = condition.threshold
            if condition.passed is not None:
                row["judged"] += 1
                row["passed"] += 1 if condition.passed else 0
    for row in funnel.conditions.values():
        row["pass_rate"] = round(row["passed"] / row["judged"], 4) if row["judged"] else None
    funnel.signals.update(str(signal.side) for signal in signals if signal.strategy != "operator")
    if signals:
        funnel.last_signal_ns = max(signal.ts_event for signal in signals)
    funnel.outcomes.update(decision_outcome(d) for d in decisions if d.source != "operator")
    funnel.orders.update(str(order.status) for order in orders)
    funnel.stage, funnel.sentence = _first_stop(funnel, evaluated, decisions, interval_s)
    return funnel


def _venue_sentence(f: Funnel, s: str, approved: int) -> str:
    """Every approved order ended without entering: rejected by the venue, or expired."""
    expired = f.orders.get("EXPIRED", 0)
    if not expired:
        return (
            f"{s}: {approved} approved orders, every one rejected by the venue "
            f"({f.orders['REJECTED']} REJECTED)."
        )
    return (
        f"{s}: {approved} approved orders, none placed: {f.orders.get('REJECTED', 0)} "
        f"rejected by the venue, {expired} expired (the approval reached execution after "
        "its bar)."
    )


def _first_stop(
    f: Funnel,
    evaluated: Sequence[StrategyTrace],
    decisions: Sequence[RiskDecision],
    interval_s: int,
) -> tuple[str, str]:
    s = f.symbol
    if f.market_events == 0 and f.bars == 0 and f.traced == 0:
        return "market_data", f"{s}: no market data in the window — the feed is silent."
    if f.bars == 0 and f.traced == 0:
        return (
            "bars",
            f"{s}: {f.market_events:,} market events but no closed bar yet "
            f"(bars close every {interval_s} s).",
        )
    if f.traced == 0:
        return (
            "traces",
            f"{s}: {f.bars:,} bars, but no strategy trace stored for them (a run of an older "
            "cdb, or one without traces): the strategy's conditions are unknown.",
        )
    if f.evaluated == 0:
        return (
            "warming_up",
            f"{s}: {f.traced:,} bars, all while the strategy warmed up: "
            f"{f.bars_needed} more bar{'s' if f.bars_needed != 1 else ''} needed.",
        )
    if f.signals["buy"] == 0:
        return "strategy", _strategy_sentence(f, evaluated)
    approved = f.outcomes["approved"] + f.outcomes["reduced"]
    if approved == 0:
        return "risk", _risk_sentence(f, decisions)
    entered = sum(n for status, n in f.orders.items() if status not in ("REJECTED", "EXPIRED"))
    if entered == 0 and f.orders:
        return "venue", _venue_sentence(f, s, approved)
    if not f.orders:
        return "execution", f"{s}: {approved} approved, but no order was stored for them."
    if f.fills == 0:
        return "fills", f"{s}: {sum(f.orders.values())} orders placed, none filled yet."
    return "", (
        f"{s}: {f.bars:,} bars, {f.signals['buy']} buy signals, {approved} approved, "
        f"{f.fills} fills: trading."
    )


def _strategy_sentence(f: Funnel, evaluated: Sequence[StrategyTrace]) -> str:
    s = f.symbol
    cross = f.conditions.get("cross_up")
    crosses = cross["passed"] if cross else 0
    head = f"{s}: {f.evaluated:,} bars evaluated"
    if f.gap_bars:
        head += f" ({f.gap_bars:,} intervals without a bar)"
    if cross is None:
        return f"{head}, {f.buy_ready} with every buy condition met."
    if crosses == 0:
        last = evaluated[-1]
        gap = last.values.get("gap_pct", 0.0)
        since, turned = last.ts_event, False
        for trace in reversed(evaluated):
            if (trace.values.get("gap_pct", 0.0) > 0) != (gap > 0):
                turned = True
                break
            since = trace.ts_event
        where = "above" if gap > 0 else "below"
        when = f"since {hhmm(since)}" if turned else f"on every bar from {hhmm(since)}"
        return (
            f"{head}, 0 crosses up; the fast EMA stayed {where} the slow one {when} "
            f"(gap now {gap:+.3f} %)."
        )
    failed: Counter[str] = Counter()
    texts: dict[str, str] = {}
    for trace in evaluated:
        conditions = {c.name: c for c in trace.conditions}
        if not conditions.get("cross_up") or not conditions["cross_up"].passed:
            continue
        for condition in trace.conditions:
            if condition.side == "buy" and condition.name != "cross_up" and not condition.passed:
                failed[condition.name] += 1
                texts[condition.name] = condition.text
    reasons = ", ".join(
        f"{name} on {count} (e.g. {texts[name]})" for name, count in failed.most_common()
    )
    return f"{head}, {crosses} crosses up, none confirmed: {reasons}."


def _risk_sentence(f: Funnel, decisions: Sequence[RiskDecision]) -> str:
    blockers: Counter[str] = Counter()
    for decision in decisions:
        if decision.source == "operator" or decision_outcome(decision) != "rejected":
            continue
        if decision.side != "buy":
            continue
        for check in decision.checks:
            if not check.passed:
                blockers[check.code] += 1
    buys = f.signals["buy"]
    if not blockers:
        return f"{f.symbol}: {buys} buy signals, no decision stored for them."
    top, count = blockers.most_common(1)[0]
    return (
        f"{f.symbol}: {buys} buy signals, all rejected by risk; top blocker {top} "
        f"({count} of {f.outcomes['rejected']}) — see cdb risk explain."
    )


def near_misses(traces: Sequence[StrategyTrace], limit: int = 5) -> list[dict[str, Any]]:
    """The evaluated bars without a buy that came closest to one, nearest first."""
    ranked = sorted(
        (
            (distance(trace), trace.ts_event, trace)
            for trace in traces
            if trace.status == "evaluated" and trace.signal != "buy"
        ),
        key=lambda item: (item[0], -item[1]),
    )
    return [
        {
            "symbol": trace.symbol,
            "bar": hhmm(trace.ts_event),
            "ts": trace.ts_event,
            "distance": round(score, 6),
            "failed": [c.name for c in trace.conditions if c.side == "buy" and not c.passed],
            "conditions": [
                {
                    "name": c.name,
                    "value": c.value,
                    "threshold": c.threshold,
                    "passed": c.passed,
                    "text": c.text,
                }
                for c in trace.conditions
                if c.side == "buy"
            ],
        }
        for score, _, trace in ranked[:limit]
    ]
