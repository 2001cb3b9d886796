"""Shared by the risk engine's tests: a healthy account, a signal, and one decision the way the
pipeline makes it (``RiskEngine.verdict``, then ``RiskEngine.record``)."""

from __future__ import annotations

from decimal import Decimal

from cdb_cli.engine.events import CheckResult, RiskDecision, SignalSide, TradingSignal
from cdb_cli.engine.risk import RiskEngine, RiskInputs, RiskLimits, TradingState

D = Decimal
NS = 1_000_000_000
DEFAULTS = RiskLimits()
ROOMY = RiskLimits(max_exposure_pct=D(50))
"""Defaults except 50 % exposure, so the default 4000 entry on 10000 equity fits uncut."""


def healthy_inputs() -> RiskInputs:
    """A healthy account: 10000 equity, flat, tight book (0.02 %), fresh price (1 s)."""
    return RiskInputs(
        equity=D(10000),
        day_start_equity=D(10000),
        peak_equity=D(10000),
        exposure_quote=D(0),
        position_quote_for_symbol=D(0),
        bid=D("99.99"),
        ask=D("100.01"),
        last_price_age_ns=1 * NS,
        trading_state=TradingState.ACTIVE,
    )


def signal(side: SignalSide = SignalSide.BUY) -> TradingSignal:
    return TradingSignal(
        symbol="BTCUSDT",
        ts_event=1_700_000_000 * NS,
        source="signals",
        side=side,
        strategy="ema_cross",
        price=D(100),
        strength=0.5,
    )


def decide(
    inputs: RiskInputs,
    limits: RiskLimits = ROOMY,
    side: SignalSide = SignalSide.BUY,
    *,
    ts_event: int = 1_700_000_001 * NS,
    source: str = "risk",
) -> RiskDecision:
    """The recorded decision on ``inputs``: the pipeline's verdict, then its record."""
    engine = RiskEngine(limits)
    sig = signal(side)
    outcome = engine.verdict(side, inputs)
    return engine.record(sig, inputs, outcome, ts_event=ts_event, source=source)


def by_rule(decision: RiskDecision) -> dict[str, CheckResult]:
    return {check.rule: check for check in decision.checks}


def failed_codes(decision: RiskDecision) -> list[str]:
    return [check.code for check in decision.checks if not check.passed]
