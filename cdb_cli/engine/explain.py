"""Why orders were (not) placed: risk decisions summarised, and re-decided under other limits.

Everything here reads stored :class:`~cdb_cli.engine.events.RiskDecision` events, which carry the
trace of every rule (reason code, observed value, limit) and the inputs the engine saw, so
``cdb risk explain`` answers from the store alone. The what-if runs
:meth:`RiskEngine.verdict <cdb_cli.engine.risk.RiskEngine.verdict>` — the code that decided — on
those stored inputs with the changed limits, so an explanation cannot drift from what is enforced.

The *top blocker* is the failing reason code found in most rejected decisions; its share is that
count over the rejected decisions. Hints say, per blocking rule, at which limit half (the median
of the observed values it failed on) or most (90 %) of the decisions it rejected would pass
*that rule* — other rules may still refuse them; the what-if tells the whole story.

An exit signal with nothing held (verdict ``nothing_held``) wanted no order, so it is no
rejection: it is counted apart, never a blocker or a failing reason, and the rules table counts
it only in the ``exit_position`` row (its ``nothing_held`` column), not in the other rules' rows.
Every view here reads decisions through :func:`~cdb_cli.engine.risk.normalize_decision`, so data
stored before that verdict existed reads the same. A reduced order counts in the ``reduced``
column of the rule that reduced it (exposure: ``reduced to X``; position size: ``capped``).
Decision ids come with the examples, the latest blocked or reduced decisions and the flips, for
``cdb risk explain ID``.

Pure: stdlib, pydantic models and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Final

from cdb_cli.engine.events import CheckResult, RiskDecision, SignalSide
from cdb_cli.engine.portfolio import NS_PER_DAY
from cdb_cli.engine.risk import (
    NOTHING_HELD,
    NOTHING_HELD_DETAIL,
    ORDER_VERDICTS,
    RULE_ORDER,
    RiskEngine,
    RiskInputs,
    RiskLimits,
    TradingState,
    is_reduction,
    next_state,
    normalize_decision,
)

__all__ = [
    "LIMIT_OF_CODE",
    "WhatIf",
    "apply_what_if",
    "percentile",
    "summarize",
    "trace",
    "what_if",
]

LIMIT_OF_CODE: Final = {
    "circuit_breaker": "circuit_breaker_pct",
    "daily_drawdown": "daily_drawdown_pct",
    "stale_data": "stale_data_seconds",
    "spread": "max_spread_pct",
    "position_size_min": "min_position_quote",
    "exposure": "max_exposure_pct",
}
"""The setting that moves each failing reason code (codes without one are facts, not limits)."""

_LOWER_BOUND: Final = frozenset({"position_size_min"})  # fails when observed < limit
_PCT_GRID: Final = Decimal("0.01")


def percentile(values: Sequence[Decimal], fraction: float) -> Decimal | None:
    """Nearest-rank percentile of ``values`` (``fraction`` in [0, 1]); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def _round_limit(code: str, value: Decimal) -> Decimal:
    """A limit an operator would type: whole seconds; 0.01 steps otherwise, on the safe side."""
    if code == "stale_data":
        return value.to_integral_value(ROUND_CEILING)
    if code in _LOWER_BOUND:
        return value.quantize(_PCT_GRID, rounding=ROUND_FLOOR)
    return value.quantize(_PCT_GRID, rounding=ROUND_CEILING)


def _exposure_needed(decision: RiskDecision, limits: RiskLimits) -> Decimal | None:
    """The max_exposure_pct at which this entry would have had room for the minimum order."""
    try:
        inputs = RiskInputs.from_strings(decision.state)
    except ValueError:
        return None
    if inputs.equity <= 0:
        return None
    return (inputs.exposure_quote + limits.min_position_quote) / inputs.equity * 100


def _hint(
    code: str, failures: list[RiskDecision], observed: list[Decimal], limits: RiskLimits
) -> dict[str, Any] | None:
    setting = LIMIT_OF_CODE.get(code)
    if setting is None or not failures:
        return None
    values = observed
    if code == "exposure":
        values = [v for v in (_exposure_needed(d, limits) for d in failures) if v is not None]
    if not values:
        return None
    lower = code in _LOWER_BOUND
    half = percentile(values, 0.5)
    most = percentile(values, 0.1 if lower else 0.9)
    if half is None or most is None:  # pragma: no cover - values is not empty
        return None
    return {
        "setting": setting,
        "current": str(getattr(limits, setting)),
        "half_pass_at": str(_round_limit(code, half)),
        "most_pass_at": str(_round_limit(code, most)),
    }


def _counted(
    decisions: Sequence[RiskDecision], rule: str, side: SignalSide | None
) -> Iterator[tuple[RiskDecision, CheckResult]]:
    """The results of ``rule`` that count in its row: on decisions of ``side``, where the rule
    applied; of an exit with nothing held only its position check (no order was wanted, so the
    other rules' results there say nothing about what blocks orders)."""
    for decision in decisions:
        if side is not None and decision.side is not side:
            continue
        held = decision.verdict == NOTHING_HELD
        for check in decision.checks:
            if check.rule != rule or (check.passed and check.observed is None):
                continue  # not applicable (exits skip entry rules)
            if not held or check.code == NOTHING_HELD:
                yield decision, check


def _rule_row(
    decisions: Sequence[RiskDecision], rule: str, side: SignalSide | None, limits: RiskLimits
) -> dict[str, Any] | None:
    """How often ``rule`` ran (on decisions of ``side``), failed, reduced the order or found
    nothing held, with its observed values. Decisions come normalized, in time order."""
    ran = failed = held = 0
    reduced: list[RiskDecision] = []
    observed_all: list[Decimal] = []
    failing: dict[str, tuple[list[RiskDecision], list[Decimal]]] = {}
    limit_seen: Counter[str] = Counter()
    for decision, check in _counted(decisions, rule, side):
        ran += 1
        if check.observed is not None:
            observed_all.append(check.observed)
        if check.limit is not None:
            limit_seen[str(check.limit)] += 1
        if check.code == NOTHING_HELD:
            held += 1
        elif not check.passed:
            failed += 1
            rejected, values = failing.setdefault(check.code, ([], []))
            rejected.append(decision)
            if check.observed is not None:
                values.append(check.observed)
        elif decision.verdict == "reduced" and is_reduction(check):
            reduced.append(decision)
    if not ran:
        return None
    return {
        "ran": ran,
        "failed": failed,
        "reduced": len(reduced),
        "nothing_held": held,
        "reduced_example_decision_id": reduced[-1].event_id if reduced else None,
        "limit": limit_seen.most_common(1)[0][0] if limit_seen else None,
        "observed": {
            "p10": _text(percentile(observed_all, 0.1)),
            "median": _text(percentile(observed_all, 0.5)),
            "p90": _text(percentile(observed_all, 0.9)),
        },
        "failed_by_code": {
            code: {
                "count": len(rejected),
                "median_observed": _text(percentile(values, 0.5)),
                "hint": _hint(code, rejected, values, limits),
                "example_decision_id": rejected[-1].event_id,
            }
            for code, (rejected, values) in sorted(failing.items())
        },
    }


def _rule_rows(decisions: Sequence[RiskDecision], limits: RiskLimits) -> dict[str, dict[str, Any]]:
    """One row per rule; an exit's position check (anything to sell?) is its own row."""
    rows: dict[str, dict[str, Any]] = {}
    plan: list[tuple[str, str, SignalSide | None]] = [
        (rule, rule, None) for rule in RULE_ORDER if rule != "position_size"
    ]
    plan += [
        ("position_size", "position_size", SignalSide.BUY),
        ("exit_position", "position_size", SignalSide.EXIT),
    ]
    for name, rule, side in plan:
        row = _rule_row(decisions, rule, side, limits)
        if row is not None:
            rows[name] = row
    return rows


def _text(value: Decimal | None) -> str | None:
    """A statistic for people: 6 decimals at most, no trailing zeros."""
    return None if value is None else f"{value.quantize(Decimal('1e-6')).normalize():f}"


def _failing_codes(decision: RiskDecision) -> list[str]:
    return sorted({check.code for check in decision.checks if not check.passed})


def _why(decision: RiskDecision) -> list[str]:
    """What refused or reduced a (normalized) decision, in words: failing codes, or the rules
    that made the order smaller; ``size_zero`` when every rule passed and the size was 0."""
    if decision.verdict == NOTHING_HELD:
        return [NOTHING_HELD_DETAIL]
    if decision.verdict == "rejected":
        return _failing_codes(decision) or ["size_zero"]
    return [f"{check.rule} {check.detail}" for check in decision.checks if is_reduction(check)]


def _listed(decision: RiskDecision) -> dict[str, Any]:
    return {
        "decision_id": decision.event_id,
        "ts_event": decision.ts_event,
        "symbol": decision.symbol,
        "side": str(decision.side),
        "verdict": decision.verdict,
        "requested_quote": str(decision.requested_quote),
        "final_quote": str(decision.final_quote),
        "why": _why(decision),
    }


def summarize(
    decisions: Sequence[RiskDecision], limits: RiskLimits, *, latest: int = 5
) -> dict[str, Any]:
    """Counts by verdict and reason, the top blocker, per-rule distributions with hints, and the
    ``latest`` rejected or reduced decisions (newest first), each with its id.

    ``by_reason`` counts the failing codes of *rejected* decisions. ``nothing_held`` counts the
    exit signals with nothing held, apart from the rejections (see the module docstring).
    ``limits`` are the current ones: they name the settings in the hints and size the exposure
    hint; the observed values and the limits each decision saw come from the stored traces.
    Decisions come in time order (as the store returns them).
    """
    decisions = [normalize_decision(decision) for decision in decisions]
    verdicts = Counter(decision.verdict for decision in decisions)
    by_reason: Counter[str] = Counter()
    example: dict[str, str] = {}  # the latest decision each code rejected
    for decision in decisions:
        if decision.verdict == "rejected":
            codes = _failing_codes(decision)
            by_reason.update(codes)
            example.update(dict.fromkeys(codes, decision.event_id))
    rejected = verdicts.get("rejected", 0)
    held = [decision for decision in decisions if decision.verdict == NOTHING_HELD]
    top = by_reason.most_common(1)
    blocked = [d for d in decisions if d.verdict in ("rejected", "reduced")]
    return {
        "decisions": {
            "total": len(decisions),
            "approved": verdicts.get("approved", 0),
            "reduced": verdicts.get("reduced", 0),
            "rejected": rejected,
            "nothing_held": len(held),
            "buy": sum(1 for d in decisions if d.side is SignalSide.BUY),
            "exit": sum(1 for d in decisions if d.side is SignalSide.EXIT),
        },
        "by_reason": dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))),
        "top_blocker": (
            {
                "rule": top[0][0],
                "count": top[0][1],
                "share": round(top[0][1] / rejected, 6),
                "example_decision_id": example[top[0][0]],
            }
            if top
            else None
        ),
        "nothing_held": {
            "count": len(held),
            "detail": NOTHING_HELD_DETAIL,
            "example_decision_id": held[-1].event_id if held else None,
        },
        "latest_blocked": [_listed(d) for d in reversed(blocked[-latest:])] if latest else [],
        "rules": _rule_rows(decisions, limits),
        "first": decisions[0].ts_event if decisions else None,
        "last": decisions[-1].ts_event if decisions else None,
    }


def _outcome(decision: RiskDecision, check: CheckResult) -> tuple[str, str | None]:
    """(what a check did to the order, and the size it reduced it to) for one decision."""
    if check.code == NOTHING_HELD:
        return NOTHING_HELD, None
    if not check.passed:
        return "fail", None
    if decision.verdict == "reduced" and is_reduction(check):
        return "reduced", str(decision.final_quote)
    return "pass", None


def trace(decision: RiskDecision) -> dict[str, Any]:
    """One decision in full: every rule with observed, limit and outcome, and what it saw.

    ``outcome`` of a check: ``pass``, ``fail``, ``reduced`` (it made the order smaller;
    ``reduced_to`` is the order's final size) or ``nothing_held`` (an exit with nothing to sell).
    ``stored_verdict`` is there when the store says otherwise (data of an older version).
    """
    stored = decision.verdict
    decision = normalize_decision(decision)
    checks = []
    for check in decision.checks:
        outcome, reduced_to = _outcome(decision, check)
        checks.append(
            {
                "rule": check.rule,
                "code": check.code,
                "passed": check.passed,
                "outcome": outcome,
                "reduced_to": reduced_to,
                "observed": None if check.observed is None else str(check.observed),
                "limit": None if check.limit is None else str(check.limit),
                "detail": check.detail,
            }
        )
    document: dict[str, Any] = {
        "decision_id": decision.event_id,
        "signal_id": decision.signal_id,
        "symbol": decision.symbol,
        "ts_event": decision.ts_event,
        "side": str(decision.side),
        "verdict": decision.verdict,
        "order": decision.verdict in ORDER_VERDICTS,
        "requested_quote": str(decision.requested_quote),
        "final_quote": str(decision.final_quote),
        "checks": checks,
        "state": dict(decision.state),
    }
    if stored != decision.verdict:
        document["stored_verdict"] = stored
    return document


def apply_what_if(limits: RiskLimits, changes: Mapping[str, str]) -> RiskLimits:
    """``limits`` with ``changes`` (field name → value) applied and validated.

    Raises ``ValueError`` (one line) for an unknown name or a value out of range.
    """
    unknown = sorted(set(changes) - set(RiskLimits.model_fields))
    if unknown:
        raise ValueError(
            f"unknown risk limit {unknown[0]!r}; known: {', '.join(RiskLimits.model_fields)}"
        )
    from pydantic import ValidationError

    try:
        return RiskLimits.model_validate({**limits.model_dump(), **changes})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "limits"
        raise ValueError(f"{where}: {first['msg']}") from None


@dataclass(frozen=True)
class WhatIf:
    """Stored verdicts against the verdicts under other limits, on the same stored inputs."""

    changes: dict[str, str]
    before: Counter[str]
    after: Counter[str]
    flips: list[dict[str, Any]]
    unreadable: int

    def as_dict(self, *, flips_shown: int | None = None) -> dict[str, Any]:
        shown = self.flips if flips_shown is None else self.flips[:flips_shown]
        return {
            "changes": self.changes,
            "before": dict(sorted(self.before.items())),
            "after": dict(sorted(self.after.items())),
            "flipped": len(self.flips),
            "unreadable": self.unreadable,
            "flips": shown,
        }


_LOSS_LIMITS: Final = frozenset({"circuit_breaker_pct", "daily_drawdown_pct"})


class _StateReplay:
    """The trading state re-derived, decision by decision, under changed loss limits.

    A stored decision carries the state the run was in; with other loss limits the breaker may
    have tripped earlier, later or never. Decisions are replayed in time order through
    :func:`~cdb_cli.engine.risk.next_state`: a halt sticks, a reduction lasts the UTC day. Only
    the snapshots at decision times are seen, not every price between them.
    """

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.state = TradingState.ACTIVE
        self.day: int | None = None

    def apply(self, decision: RiskDecision, inputs: RiskInputs) -> RiskInputs:
        day = decision.ts_event // NS_PER_DAY
        if day != self.day and self.state is TradingState.REDUCING:
            self.state = TradingState.ACTIVE
        self.day = day
        self.state = next_state(replace(inputs, trading_state=self.state), self.limits)
        return replace(inputs, trading_state=self.state)


def what_if(
    decisions: Iterable[RiskDecision], limits: RiskLimits, changes: Mapping[str, str]
) -> WhatIf:
    """Re-decide every stored decision with ``limits`` + ``changes`` (the engine's own code).

    Decisions must come in time order (as the store returns them). When a loss limit changes,
    the trading state is re-derived (:class:`_StateReplay`); otherwise each decision keeps the
    state it was made in. A decision *flips* when it would place an order and did not, or the
    other way round (an exit with nothing held never does either way).
    """
    changed = apply_what_if(limits, changes)
    engine = RiskEngine(changed)
    states = _StateReplay(changed) if _LOSS_LIMITS & set(changes) else None
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    flips: list[dict[str, Any]] = []
    unreadable = 0
    for stored in decisions:
        decision = normalize_decision(stored)
        try:
            inputs = RiskInputs.from_strings(decision.state)
        except ValueError:
            unreadable += 1
            continue
        if states is not None:
            inputs = states.apply(decision, inputs)
        verdict, _, final, checks = engine.verdict(decision.side, inputs)
        before[decision.verdict] += 1
        after[verdict] += 1
        if (verdict in ORDER_VERDICTS) != (decision.verdict in ORDER_VERDICTS):
            flips.append(
                {
                    "decision_id": decision.event_id,
                    "symbol": decision.symbol,
                    "ts_event": decision.ts_event,
                    "side": str(decision.side),
                    "before": decision.verdict,
                    "after": verdict,
                    "final_quote": str(final),
                    "failing": [c["code"] for c in checks if not c["passed"]],
                }
            )
    return WhatIf(dict(changes), before, after, flips, unreadable)
