"""The full-path check: a synthetic trade through strategy → risk → paper execution → portfolio.

The kernel builds the pipeline exactly as a replay would (``Mode.REPLAY``: the configured
strategy, risk limits, simulated venue and starting cash), but with a ``MemoryRecorder``, a
``TestClock`` at a fixed time and its own run id, so nothing reaches the configured store or bus
and the result is the same on every run. The venue is always the simulated one: even with
``CDB_MODE=live`` the check never places a real order.

The market it is fed is built from the settings so that the configured EMA-cross rule must buy:
bars sliding down a cent at a time until every indicator is warm (the fast EMA stays below the
slow one, so no cross and no exit yet), then one strong up bar on heavy volume (cross up, RSI
near 100, volume far above its average) with a tight quote. A trade after the venue's latency
fills the buy; a steep down bar then crosses the EMAs back (exit) and a second trade fills the
sell, so the position returns to flat.

Each step is checked as it happens; the first one that does not hold ends the check and names
itself: ``signal``, ``decision``, ``order``, ``fill``, ``portfolio``, ``exit``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from cdb_cli.engine.errors import CdbError

if TYPE_CHECKING:
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.events import RiskDecision, TradingSignal
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.recorders import MemoryRecorder
    from cdb_cli.engine.records import FillRecord, OrderRecord
    from cdb_cli.settings import Settings

__all__ = ["FullPathResult", "PathBroken", "run_full_path"]

RUN_ID: Final = "systemcheck"
START_NS: Final = 1_704_067_200 * 1_000_000_000  # 2024-01-01T00:00:00Z: fixed, deterministic
MINUTE_NS: Final = 60 * 1_000_000_000
BASE_PRICE: Final = 100.0
DIP_STEP: Final = 0.01  # a slow slide: the fast EMA stays below the slow one, RSI losses tiny
JUMP_PRICE: Final = 110.0  # +10 %: the EMAs cross up, RSI goes near 100
DROP_PRICE: Final = 80.0  # the EMAs cross back down: the exit
BASE_VOLUME: Final = 1.0
TRADE_VOLUME: Final = 1e9  # one trade big enough for any partial-fill share


class PathBroken(CdbError):
    """The synthetic trade did not get through ``step``; the message says what was seen."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class FullPathResult:
    """What the synthetic trade measured."""

    symbol: str
    verdict: str
    rules: int
    quote_amount: Decimal
    quantity: Decimal
    price: Decimal
    fills: int
    elapsed_ms: float

    def summary(self) -> str:
        """One line for the systemcheck row."""
        return (
            f"signal → {self.verdict} ({self.rules} rules) → order → fill → exit → flat "
            f"in {self.elapsed_ms:.1f} ms"
        )


def _warmup_bars(settings: Settings) -> int:
    needed = [settings.ema_slow, settings.rsi_period + 1, settings.volume_period]
    if settings.trend_filter:
        needed.append(settings.trend_period)
    return max(needed) + 2


def _spike_volume(settings: Settings) -> float:
    # The volume SMA includes the spike itself: v > f * (v + (p - 1) * base) / p needs f < p;
    # ask for ten times the bare minimum so float noise never decides.
    period, factor = settings.volume_period, settings.volume_factor
    if factor >= period:
        raise PathBroken(
            "signal",
            f"the strategy can never buy: CDB_VOLUME_FACTOR ({factor}) is not below "
            f"CDB_VOLUME_PERIOD ({period}), and the volume average includes the current bar",
        )
    return max(1000.0, 10.0 * factor * (period - 1) / (period - factor)) * BASE_VOLUME


def _quote(settings: Settings, price: float) -> tuple[Decimal, Decimal]:
    # A spread of a quarter of the allowed one, around the price.
    half = Decimal(repr(price)) * settings.max_spread_pct / 800
    mid = Decimal(repr(price))
    return mid - half, mid + half


class _Driver:
    """Feeds the synthetic market one bar at a time and keeps the clock in step."""

    def __init__(
        self, pipeline: TradingPipeline, clock: TestClock, symbol: str, latency_ms: int
    ) -> None:
        self.pipeline = pipeline
        self.clock = clock
        self.symbol = symbol
        self.now = START_NS
        self.previous = BASE_PRICE
        self.latency_ns = latency_ms * 1_000_000

    def quote(self, bid: Decimal, ask: Decimal) -> None:
        """A quote at the close of the next bar (the decision time)."""
        self.pipeline.on_quote(self.symbol, self.now + MINUTE_NS, bid, ask)

    def bar(self, close: float, volume: float) -> None:
        self.clock.set_time(self.now + MINUTE_NS)  # the decision time is the bar's close
        self.pipeline.on_bar(
            self.symbol, self.now, self.now + MINUTE_NS, self.previous, close, volume
        )
        self.now += MINUTE_NS
        self.previous = close

    def trade_after_latency(self, price: float) -> None:
        self.now += self.latency_ns + 1_000_000
        self.clock.set_time(self.now)
        self.pipeline.on_trade(self.symbol, self.now, price, TRADE_VOLUME)


def run_full_path(settings: Settings) -> FullPathResult:
    """Trade once through the configured pipeline in memory; raise ``PathBroken`` at a failed step.

    Touches no store, bus or network; the configured limits, venue and the seed rule's settings
    decide. The synthetic market is made for the seed's rule (``ema_cross``), so the path always
    runs it: another ``CDB_STRATEGY`` may never buy on it, and is checked by its own start-up
    probe (the settings row, as ``cdb env-validate``).
    """
    from cdb_cli.engine.clock import TestClock
    from cdb_cli.engine.recorders import MemoryRecorder
    from cdb_cli.engine.records import Mode
    from cdb_cli.kernel import build_pipeline

    started = time.perf_counter()
    settings = settings.model_copy(update={"strategy": "ema_cross", "strategy_params": {}})
    symbol = settings.symbols[0]
    clock = TestClock(START_NS)
    recorder = MemoryRecorder()
    pipeline = build_pipeline(
        settings,
        Mode.REPLAY,
        symbols=[symbol],
        clock=clock,
        recorder=recorder,
        run_id=RUN_ID,
    )
    driver = _Driver(pipeline, clock, symbol, settings.paper_latency_ms)
    volume = _spike_volume(settings)
    for i in range(_warmup_bars(settings)):
        driver.bar(BASE_PRICE - i * DIP_STEP, BASE_VOLUME)
    driver.quote(*_quote(settings, JUMP_PRICE))
    driver.bar(JUMP_PRICE, volume)

    decision = _check_entry(recorder, settings)
    order = _check_order(recorder, decision)
    driver.trade_after_latency(JUMP_PRICE)
    buy = _check_fill(recorder, order)
    _check_portfolio(pipeline, recorder, symbol)

    driver.quote(*_quote(settings, DROP_PRICE))
    driver.bar(DROP_PRICE, BASE_VOLUME)
    driver.trade_after_latency(DROP_PRICE)
    _check_exit(pipeline, recorder, symbol)
    _check_portfolio(pipeline, recorder, symbol)
    return FullPathResult(
        symbol=symbol,
        verdict=decision.verdict,
        rules=len(decision.checks),
        quote_amount=decision.final_quote,
        quantity=buy.quantity,
        price=buy.price,
        fills=len(recorder.fills),
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )


def _signals(recorder: MemoryRecorder) -> list[TradingSignal]:
    from cdb_cli.engine.events import TradingSignal

    return [event for _, event in recorder.events if isinstance(event, TradingSignal)]


def _decisions(recorder: MemoryRecorder) -> list[RiskDecision]:
    from cdb_cli.engine.events import RiskDecision

    return [event for _, event in recorder.events if isinstance(event, RiskDecision)]


def _check_entry(recorder: MemoryRecorder, settings: Settings) -> RiskDecision:
    from cdb_cli.engine.events import SignalSide
    from cdb_cli.engine.risk import RULE_ORDER

    signals = _signals(recorder)
    if [signal.side for signal in signals] != [SignalSide.BUY]:
        raise PathBroken(
            "signal",
            f"expected one buy signal from the strategy, got {[str(s.side) for s in signals]}; "
            f"check CDB_RSI_THRESHOLD ({settings.rsi_threshold}) and the other signal settings",
        )
    decisions = _decisions(recorder)
    if len(decisions) != 1 or decisions[0].signal_id != signals[0].event_id:
        raise PathBroken("decision", f"expected one risk decision, got {len(decisions)}")
    decision = decisions[0]
    rules = tuple(check.rule for check in decision.checks)
    if rules != RULE_ORDER:
        raise PathBroken("decision", f"the trace holds {list(rules)}, not {list(RULE_ORDER)}")
    if decision.verdict == "rejected":
        failed = [f"{c.code} ({c.observed} vs {c.limit})" for c in decision.checks if not c.passed]
        raise PathBroken(
            "decision",
            f"risk rejected the synthetic buy: {', '.join(failed)}; these limits block every "
            "entry (`cdb risk explain` shows the rules)",
        )
    return decision


def _check_order(recorder: MemoryRecorder, decision: RiskDecision) -> OrderRecord:
    orders = [o for o in recorder.orders.values() if o.decision_id == decision.event_id]
    if len(orders) != 1:
        raise PathBroken(
            "order", f"expected one order for the approved decision, got {len(orders)}"
        )
    order = orders[0]
    if order.status == "REJECTED":
        from cdb_cli.engine.events import ExecutionReport

        reasons = [
            event.reason
            for _, event in recorder.events
            if isinstance(event, ExecutionReport)
            and event.client_order_id == order.client_order_id
            and event.reason
        ]
        raise PathBroken("order", f"the paper venue rejected the order: {'; '.join(reasons)}")
    return order


def _check_fill(recorder: MemoryRecorder, order: OrderRecord) -> FillRecord:
    fills = [f for f in recorder.fills if f.client_order_id == order.client_order_id]
    status = recorder.orders[order.client_order_id].status
    if not fills or status != "FILLED":
        raise PathBroken(
            "fill", f"the order did not fill after the venue's latency (status {status})"
        )
    return fills[0]


def _check_portfolio(pipeline: TradingPipeline, recorder: MemoryRecorder, symbol: str) -> None:
    from cdb_cli.engine.events import Side

    pipeline.finish()
    portfolio = pipeline.portfolio
    values = sum((portfolio.position_value(s) for s in portfolio.positions), Decimal(0))
    if portfolio.cash + values != portfolio.equity():
        raise PathBroken(
            "portfolio",
            f"cash {portfolio.cash} + positions {values} != equity {portfolio.equity()}",
        )
    net = sum(
        (f.quantity if f.side is Side.BUY else -f.quantity for f in recorder.fills), Decimal(0)
    )
    if net != portfolio.quantity(symbol):
        raise PathBroken(
            "portfolio", f"fills sum to {net} but the position is {portfolio.quantity(symbol)}"
        )
    if portfolio.cash < 0:
        raise PathBroken("portfolio", f"cash went negative: {portfolio.cash}")


def _check_exit(pipeline: TradingPipeline, recorder: MemoryRecorder, symbol: str) -> None:
    from cdb_cli.engine.events import SignalSide

    exits = [s for s in _signals(recorder) if s.side is SignalSide.EXIT]
    decisions = _decisions(recorder)
    if len(exits) != 1 or len(decisions) != 2 or decisions[1].verdict == "rejected":
        verdicts = [d.verdict for d in decisions[1:]]
        raise PathBroken("exit", f"expected one approved exit, got {len(exits)} ({verdicts})")
    if pipeline.portfolio.quantity(symbol) != 0 or len(recorder.fills) < 2:
        raise PathBroken(
            "exit", f"the position is {pipeline.portfolio.quantity(symbol)} after the exit"
        )
