"""The risk engine: the seed's risk rules as pure functions, and the verdict they produce.

Each rule is one pure function ``_rule_*(…) -> CheckFields`` with a stable reason code, the
observed value and the limit (percentages in %, money in quote currency, all ``Decimal``); there is
no other copy of it. :meth:`RiskEngine.verdict` runs every rule on every signal, in
:data:`RULE_ORDER`, even after one has failed, so a :class:`~cdb_cli.engine.events.RiskDecision`
always carries the complete trace (that is what ``cdb risk explain`` reads). A what-if
(``cdb_cli.engine.explain``) is another ``RiskEngine(other_limits).verdict`` on the same stored
:class:`RiskInputs`: the same code, different limits. The limits are
:class:`~cdb_cli.engine.config.RiskLimits`, the inputs live in ``cdb_cli.engine.risk_inputs``;
both are re-exported here.

Boundary semantics: a value *equal* to its limit passes; only a value strictly beyond it fails.

Reason codes: a passing check has code ``ok``; failing codes are ``circuit_breaker``,
``daily_drawdown``, ``stale_data``, ``spread``, ``position_size_min``, ``exposure``, plus
``no_equity`` (equity, start-of-day or peak equity ≤ 0) and ``bad_quote`` (bid ≤ 0 or bid ≥ ask).

Verdicts: ``approved``; ``reduced`` (a smaller order than requested: the exposure check passes
with detail ``reduced to X``, or the position size check with ``capped``); ``rejected`` (a rule
failed, or the size came out as 0); ``nothing_held`` — a strategy's exit with no position to sell.
That is not a rejection: no rule refused an order, there was none to place. Its position check
passes with code ``nothing_held`` and detail ``exit signal, nothing held``, the other checks are
recorded as usual, and the verdict takes precedence over them (an exit while flat during a halt
is still nothing held). Decisions stored before that verdict existed say ``rejected`` with a
failing check of code ``no_position``; :func:`normalize_decision` is the one place that reads them
as nothing held, for every view.

Exits reduce risk: the daily drawdown, position size and exposure rules do not block them (their
checks pass with detail ``not applicable to exits``), but the circuit breaker, stale data and spread
rules do.

Pure: stdlib, pydantic and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Final, TypedDict

from cdb_cli.engine.config import RiskLimits
from cdb_cli.engine.events import (
    CheckResult,
    RiskDecision,
    SignalSide,
    TradingSignal,
    Verdict,
    new_event_id,
)
from cdb_cli.engine.risk_inputs import RiskInputs, TradingState

__all__ = [
    "LEGACY_NO_POSITION",
    "NOTHING_HELD",
    "NOTHING_HELD_DETAIL",
    "NOT_APPLICABLE_TO_EXITS",
    "ORDER_VERDICTS",
    "RULE_ORDER",
    "SIZE_GRID",
    "RiskEngine",
    "RiskInputs",
    "RiskLimits",
    "TradingState",
    "Verdict",
    "allowed_exposure_quote",
    "is_reduction",
    "next_state",
    "normalize_decision",
    "raw_position_quote",
]

OK: Final = "ok"
NOT_APPLICABLE_TO_EXITS: Final = "not applicable to exits"
RULE_ORDER: Final = (
    "circuit_breaker",
    "daily_drawdown",
    "stale_data",
    "spread",
    "position_size",
    "exposure",
)
"""The rules in the order every decision records them."""

STORE_DOWN: Final = "the store that records an entry is down: no new entry, exits go on"
NOTHING_HELD: Final = "nothing_held"
"""The verdict of an exit with no position to sell, and the code of its position check."""
NOTHING_HELD_DETAIL: Final = "exit signal, nothing held"
LEGACY_NO_POSITION: Final = "no_position"
"""The failing code such an exit had before it got a verdict of its own (stored data only)."""
ORDER_VERDICTS: Final[frozenset[Verdict]] = frozenset({"approved", "reduced"})
"""The verdicts that place an order."""
REDUCED_PREFIX: Final = "reduced to "
CAPPED: Final = "capped"

_ZERO: Final = Decimal(0)
SIZE_GRID: Final = Decimal("1e-8")
"""Requested and final sizes are rounded down to this grid (they are stored as money)."""
_HUNDRED: Final = Decimal(100)
_NS_PER_SECOND: Final = Decimal(1_000_000_000)


# --- pure helpers -------------------------------------------------------------------------------


def _floor(amount: Decimal) -> Decimal:
    """An order size on the 1e-8 grid of the quote currency, rounded down (never above a limit)."""
    floored = amount.quantize(SIZE_GRID, rounding=ROUND_FLOOR)
    return floored if floored else _ZERO  # 0, not 0E-8


def _loss_pct(reference: Decimal, equity: Decimal) -> Decimal:
    """Loss of ``equity`` against a positive ``reference``, in % (negative when above it)."""
    return (reference - equity) / reference * _HUNDRED


class CheckFields(TypedDict):
    """A rule's outcome as plain fields: the rules build these, and a decision validates all of
    them at once (pydantic builds the ``CheckResult`` models in one pass, about twice as fast as
    validating six models one by one on the signal path)."""

    rule: str
    code: str
    passed: bool
    observed: Decimal | None
    limit: Decimal | None
    detail: str


def _fields(
    *,
    rule: str,
    code: str,
    passed: bool,
    observed: Decimal | None = None,
    limit: Decimal | None = None,
    detail: str = "",
) -> CheckFields:
    return {
        "rule": rule,
        "code": code,
        "passed": passed,
        "observed": observed,
        "limit": limit,
        "detail": detail,
    }


def _passed(
    rule: str, observed: Decimal | None, limit: Decimal | None, detail: str = ""
) -> CheckFields:
    # A literal, not _fields(): most checks pass, and this is on the signal path.
    return {
        "rule": rule,
        "code": OK,
        "passed": True,
        "observed": observed,
        "limit": limit,
        "detail": detail,
    }


def _not_applicable(rule: str) -> CheckFields:
    return {
        "rule": rule,
        "code": OK,
        "passed": True,
        "observed": None,
        "limit": None,
        "detail": NOT_APPLICABLE_TO_EXITS,
    }


def _no_equity(rule: str, observed: Decimal) -> CheckFields:
    return _fields(
        rule=rule,
        code="no_equity",
        passed=False,
        observed=observed,
        limit=_ZERO,
        detail=f"equity must be above 0, received {observed}",
    )


def raw_position_quote(equity: Decimal, limits: RiskLimits) -> Decimal:
    """Position size before the bounds: equity * risk-per-trade % / position-risk %."""
    return equity * limits.risk_per_trade_pct / limits.position_risk_pct


def allowed_exposure_quote(inputs: RiskInputs, limits: RiskLimits) -> Decimal:
    """Room left under the exposure limit: max_exposure % * equity - exposure (may be < 0)."""
    return limits.max_exposure_pct * inputs.equity / _HUNDRED - inputs.exposure_quote


# --- the rules ----------------------------------------------------------------------------------


def _rule_circuit_breaker(inputs: RiskInputs, limits: RiskLimits) -> CheckFields:
    rule = "circuit_breaker"
    if inputs.equity <= 0:
        return _no_equity(rule, inputs.equity)
    if inputs.peak_equity <= 0:
        return _no_equity(rule, inputs.peak_equity)
    loss = _loss_pct(inputs.peak_equity, inputs.equity)
    limit = limits.circuit_breaker_pct
    if inputs.trading_state is TradingState.HALTED:
        detail = "trading halted until an audited reset"
        return _fields(
            rule=rule, code=rule, passed=False, observed=loss, limit=limit, detail=detail
        )
    if loss > limit:
        detail = f"loss from peak {loss} % is above {limit} %"
        return _fields(
            rule=rule, code=rule, passed=False, observed=loss, limit=limit, detail=detail
        )
    return _passed(rule, loss, limit)


def _rule_daily_drawdown(inputs: RiskInputs, limits: RiskLimits) -> CheckFields:
    rule = "daily_drawdown"
    if inputs.equity <= 0:
        return _no_equity(rule, inputs.equity)
    if inputs.day_start_equity <= 0:
        return _no_equity(rule, inputs.day_start_equity)
    loss = _loss_pct(inputs.day_start_equity, inputs.equity)
    limit = limits.daily_drawdown_pct
    if inputs.trading_state is TradingState.REDUCING:
        detail = "daily drawdown hit earlier today: only exits until the day ends"
        return _fields(
            rule=rule, code=rule, passed=False, observed=loss, limit=limit, detail=detail
        )
    if loss > limit:
        detail = f"loss since start of day {loss} % is above {limit} %"
        return _fields(
            rule=rule, code=rule, passed=False, observed=loss, limit=limit, detail=detail
        )
    return _passed(rule, loss, limit)


def _rule_stale_data(inputs: RiskInputs, limits: RiskLimits) -> CheckFields:
    rule = "stale_data"
    age = Decimal(inputs.last_price_age_ns) / _NS_PER_SECOND
    limit = Decimal(limits.stale_data_seconds)
    if age > limit:
        detail = f"last price is {age} s old, limit {limit} s"
        return _fields(rule=rule, code=rule, passed=False, observed=age, limit=limit, detail=detail)
    return _passed(rule, age, limit)


def _rule_spread(inputs: RiskInputs, limits: RiskLimits) -> CheckFields:
    rule = "spread"
    limit = limits.max_spread_pct
    if inputs.bid <= 0 or inputs.bid >= inputs.ask:
        return _fields(
            rule=rule,
            code="bad_quote",
            passed=False,
            limit=limit,
            detail=f"need 0 < bid < ask, received bid {inputs.bid} ask {inputs.ask}",
        )
    mid = (inputs.bid + inputs.ask) / 2
    spread = (inputs.ask - inputs.bid) / mid * _HUNDRED
    if spread > limit:
        detail = f"spread {spread} % is above {limit} %"
        return _fields(
            rule=rule, code=rule, passed=False, observed=spread, limit=limit, detail=detail
        )
    return _passed(rule, spread, limit)


def _rule_position_size(
    inputs: RiskInputs, limits: RiskLimits, raw: Decimal | None = None
) -> CheckFields:
    """``raw``: :func:`raw_position_quote` of the inputs, when the caller has it already."""
    rule = "position_size"
    if inputs.equity <= 0:
        return _no_equity(rule, inputs.equity)
    size = raw_position_quote(inputs.equity, limits) if raw is None else raw
    if size < limits.min_position_quote:
        return _fields(
            rule=rule,
            code="position_size_min",
            passed=False,
            observed=size,
            limit=limits.min_position_quote,
            detail=f"size {size} is below the minimum {limits.min_position_quote}",
        )
    if size > limits.max_position_quote:
        return _passed(rule, size, limits.max_position_quote, "capped")
    return _passed(rule, size, limits.max_position_quote)


def _rule_exposure(
    requested: Decimal, inputs: RiskInputs, limits: RiskLimits, allowed: Decimal | None = None
) -> CheckFields:
    """``allowed``: :func:`allowed_exposure_quote` of the inputs, when the caller has it already."""
    rule = "exposure"
    if inputs.equity <= 0:
        return _no_equity(rule, inputs.equity)
    limit = limits.max_exposure_pct
    observed = (inputs.exposure_quote + requested) / inputs.equity * _HUNDRED
    if allowed is None:
        allowed = allowed_exposure_quote(inputs, limits)
    if requested <= allowed:
        return _passed(rule, observed, limit)
    if allowed < limits.min_position_quote:
        detail = (
            f"room under the exposure limit is {allowed}, below the minimum order "
            f"{limits.min_position_quote}"
        )
        return _fields(
            rule=rule, code=rule, passed=False, observed=observed, limit=limit, detail=detail
        )
    return _passed(rule, observed, limit, f"{REDUCED_PREFIX}{allowed}")


def _nothing_held(observed: Decimal | None) -> CheckFields:
    return _fields(
        rule="position_size",
        code=NOTHING_HELD,
        passed=True,
        observed=observed,
        limit=_ZERO,
        detail=NOTHING_HELD_DETAIL,
    )


def _rule_exit_position(inputs: RiskInputs, position: Decimal) -> CheckFields:
    """Not applicable to an exit, unless there is nothing to sell (``position``, the value held
    on the size grid, is not even one unit of it): then it passes with code ``nothing_held`` —
    an exit while flat is not a failure of a rule, and the verdict says ``nothing_held``."""
    if position <= 0:
        return _nothing_held(inputs.position_quote_for_symbol)
    return _not_applicable("position_size")


def is_reduction(check: CheckResult) -> bool:
    """Whether this passed check made the order smaller: the exposure rule's ``reduced to X``
    or the position size rule's ``capped`` (the verdict is then ``reduced``)."""
    return check.passed and (check.detail.startswith(REDUCED_PREFIX) or check.detail == CAPPED)


def normalize_decision(decision: RiskDecision) -> RiskDecision:
    """The decision as the engine records it today: the one place where views read stored data
    of older versions.

    A decision stored before the ``nothing_held`` verdict existed says ``rejected`` with a
    failing position check of code ``no_position`` (an exit with nothing to sell). It is read as
    ``nothing_held``, with that check passed as ``nothing_held`` — the verdict the engine gives
    those stored inputs now (it takes precedence over the other failing checks, which stay in
    the trace as they were). Any other decision is returned as it is.
    """
    if decision.verdict != "rejected" or not any(
        check.code == LEGACY_NO_POSITION and not check.passed for check in decision.checks
    ):
        return decision
    checks = tuple(
        CheckResult(**_nothing_held(check.observed))
        if check.code == LEGACY_NO_POSITION and not check.passed
        else check
        for check in decision.checks
    )
    return decision.model_copy(
        update={"verdict": NOTHING_HELD, "final_quote": _ZERO, "checks": checks}
    )


def next_state(inputs: RiskInputs, limits: RiskLimits) -> TradingState:
    """The trading state after this snapshot.

    HALTED sticks until an audited reset; REDUCING sticks for the day (the caller passes ACTIVE
    with the new ``day_start_equity`` when the day rolls over); otherwise the loss limits decide,
    with the same boundary as the checks (equal to the limit is not a breach).
    """
    if inputs.trading_state is TradingState.HALTED:
        return TradingState.HALTED
    if inputs.peak_equity > 0 and (
        _loss_pct(inputs.peak_equity, inputs.equity) > limits.circuit_breaker_pct
    ):
        return TradingState.HALTED
    if inputs.trading_state is TradingState.REDUCING:
        return TradingState.REDUCING
    if inputs.day_start_equity > 0 and (
        _loss_pct(inputs.day_start_equity, inputs.equity) > limits.daily_drawdown_pct
    ):
        return TradingState.REDUCING
    return TradingState.ACTIVE


# --- the engine ---------------------------------------------------------------------------------


class RiskEngine:
    """Runs every rule on a signal and returns the decision with the full trace."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits

    def _decide(
        self, side: SignalSide, inputs: RiskInputs
    ) -> tuple[tuple[CheckFields, ...], Decimal, Decimal]:
        """(every rule's fields, requested, final if every check passes): the rules and
        :meth:`sizes` in one pass, each size computed once (the signal path)."""
        limits = self.limits
        circuit = _rule_circuit_breaker(inputs, limits)
        stale = _rule_stale_data(inputs, limits)
        spread = _rule_spread(inputs, limits)
        if side is SignalSide.EXIT:
            position = _floor(max(_ZERO, inputs.position_quote_for_symbol))
            checks: tuple[CheckFields, ...] = (
                circuit,
                _not_applicable("daily_drawdown"),
                stale,
                spread,
                _rule_exit_position(inputs, position),
                _not_applicable("exposure"),
            )
            return checks, position, position
        raw = raw_position_quote(inputs.equity, limits)
        capped = max(_ZERO, min(raw, limits.max_position_quote))  # capped_position_quote
        allowed = allowed_exposure_quote(inputs, limits)
        checks = (
            circuit,
            _rule_daily_drawdown(inputs, limits),
            stale,
            spread,
            _rule_position_size(inputs, limits, raw),
            _rule_exposure(capped, inputs, limits, allowed),
        )
        if inputs.store_down:  # a check of its own only in an outage (RULE_ORDER otherwise)
            checks += (_fields(rule="store", code="store_down", passed=False, detail=STORE_DOWN),)
        final = min(capped, max(_ZERO, allowed))
        return checks, _floor(max(_ZERO, raw)), _floor(final)

    def sizes(self, side: SignalSide, inputs: RiskInputs) -> tuple[Decimal, Decimal]:
        """(requested, final if every check passes) in quote currency: :meth:`verdict`'s sizes
        before the checks (an operator's exit is sized with them)."""
        _, requested, final = self._decide(side, inputs)
        return requested, final

    def verdict(
        self, side: SignalSide, inputs: RiskInputs
    ) -> tuple[Verdict, Decimal, Decimal, tuple[CheckFields, ...]]:
        """(verdict, requested, final size, every rule's fields); :meth:`record` makes the event.

        An exit with nothing to sell is ``nothing_held`` (final 0), whatever else failed; only
        ``approved`` and ``reduced`` (:data:`ORDER_VERDICTS`) place an order.
        What-if re-evaluation (``cdb risk explain --what-if``) calls this on stored inputs, so an
        explanation runs exactly the code that decided.
        """
        checks, requested, final = self._decide(side, inputs)
        verdict: Verdict
        if side is SignalSide.EXIT and requested <= 0:  # the position check said nothing_held
            verdict, final = NOTHING_HELD, _ZERO
        elif final <= 0 or not all(check["passed"] for check in checks):
            verdict, final = "rejected", _ZERO
        elif final < requested:
            verdict = "reduced"
        else:
            verdict = "approved"
        return verdict, requested, final, checks

    def record(
        self,
        signal: TradingSignal,
        inputs: RiskInputs,
        outcome: tuple[Verdict, Decimal, Decimal, tuple[CheckFields, ...]],
        *,
        ts_event: int,
        source: str = "risk",
        event_id: str | None = None,
    ) -> RiskDecision:
        """The :class:`RiskDecision` event of an ``outcome`` of :meth:`verdict` (the pipeline
        acts on the verdict first and builds the record after, off the order's path)."""
        verdict, requested, final, checks = outcome
        return RiskDecision.model_validate(
            {
                "event_id": event_id or new_event_id(),
                "symbol": signal.symbol,
                "ts_event": ts_event,
                "source": source,
                "signal_id": signal.event_id,
                "verdict": verdict,
                "side": signal.side,
                "requested_quote": requested,
                "final_quote": final,
                "checks": checks,
                "state": inputs.as_strings(),
            }
        )
