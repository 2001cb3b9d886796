"""The pipeline's decision path: a strategy's intent → risk inputs → verdict → order → paperwork.

The hot loop (:mod:`cdb_cli.engine.pipeline`) does float work on every price; when a strategy
raises an intent it hands over to :meth:`Decisions.on_signal`, which builds what a decision needs
in ``Decimal``: the risk inputs (:meth:`Decisions.inputs`), the risk engine's verdict with its full
trace, the approved order for the venue, and the events that record all of it. The operator's
exits (:mod:`cdb_cli.engine.operator`) take their inputs and ids from here too.

Risk inputs: equity, day-start and peak equity and exposure come from the portfolio (working buys
count as exposure); bid/ask from the latest quote of the symbol, or — when the data has none, as in
a bar replay — from the close widened by ``assumed_spread_pct``; the price age from the last price
event. Before the portfolio is read, the pipeline's float marks are handed to it (``sync``).

Pure: ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from cdb_cli.engine.events import (
    OrderApproved,
    Side,
    SignalSide,
    Topic,
    TradingSignal,
    Verdict,
)
from cdb_cli.engine.risk import CheckFields, RiskInputs
from cdb_cli.engine.trading_state import Sync

if TYPE_CHECKING:
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.signals import SignalIntent
    from cdb_cli.engine.symbols import SymbolState

__all__ = ["Decisions"]


class Decisions:
    """Decides a strategy's intents for one pipeline and records them; see the module docstring.

    ``symbols`` is the pipeline's own per-symbol state (read here, never replaced); ``sync``
    hands its float marks to the portfolio.
    """

    def __init__(
        self,
        pipeline: TradingPipeline,
        *,
        symbols: Mapping[str, SymbolState],
        sync: Sync,
        assumed_spread_pct: Decimal,
        run_id: str,
    ) -> None:
        if assumed_spread_pct <= 0:
            raise ValueError(f"assumed_spread_pct must be above 0, received {assumed_spread_pct}")
        self._pipeline = pipeline
        self._symbols = symbols
        self._sync = sync
        half_spread = assumed_spread_pct / 200
        self._bid_factor, self._ask_factor = 1 - half_spread, 1 + half_spread
        self._run_id = run_id
        self._ids = 0

    def next_id(self) -> str:
        """The next event id of this run (signals, decisions and approvals share the count)."""
        self._ids += 1
        return f"{self._run_id}-{self._ids:x}"

    def on_signal(self, state: SymbolState, intent: SignalIntent, bar_ts: int) -> str:
        """Decide, hand an approved order to the venue, then record signal, decision and order;
        return the signal's id (``bar_ts``: the close of the bar that raised it).

        The events are built after the order is handed over: the decision needs only values,
        so the order does not wait for its own paperwork. They are recorded in their logical
        order (signal, decision, approval, then what the venue answered).
        """
        pipeline = self._pipeline
        risk, recorder = pipeline.risk, pipeline.recorder
        now = pipeline.clock.timestamp_ns()
        stats = pipeline.stats
        stats.signals[intent.side] += 1
        price = Decimal(repr(state.mark))
        count, run_id = self._ids, self._run_id  # next_id() twice, inlined (every signal)
        self._ids = count + 2
        signal_id, decision_id = f"{run_id}-{count + 1:x}", f"{run_id}-{count + 2:x}"
        inputs = self.inputs(state, price, now)
        outcome = risk.verdict(intent.side, inputs)
        verdict, _, final, checks = outcome
        order: OrderApproved | None = None
        result = None
        if verdict in ("approved", "reduced"):  # not rejected, not nothing_held
            order = OrderApproved(
                event_id=self.next_id(),
                symbol=state.symbol,
                ts_event=now,
                source="risk",
                decision_id=decision_id,
                side=Side.BUY if intent.side is SignalSide.BUY else Side.SELL,
                quote_amount=final,
                reference_price=price,
            )
            position = pipeline.portfolio.quantity(state.symbol)
            result = pipeline.execution.submit(order, ts_ns=now, position=position)
        stats.verdicts[verdict] += 1
        if verdict == "rejected":  # what refused an order (not what a held-nothing exit saw)
            for check in checks:
                if not check["passed"]:
                    stats.failed_rules[check["code"]] += 1
        if recorder.keeps_events:
            ids = (signal_id, decision_id)
            self._record(state, intent, order, outcome, inputs, price, ids, bar_ts, now)
        if order is not None and result is not None:
            pipeline.apply_execution(result)
        return signal_id

    def _record(
        self,
        state: SymbolState,
        intent: SignalIntent,
        order: OrderApproved | None,
        outcome: tuple[Verdict, Decimal, Decimal, tuple[CheckFields, ...]],
        inputs: RiskInputs,
        price: Decimal,
        ids: tuple[str, str],
        bar_ts: int,
        now: int,
    ) -> None:
        """The signal, decision and approval events of :meth:`on_signal`, in that order."""
        pipeline = self._pipeline
        risk, recorder, tracer = pipeline.risk, pipeline.recorder, pipeline.tracer
        signal_id, decision_id = ids
        name = getattr(state.strategy, "name", "strategy")
        signal = TradingSignal(
            event_id=signal_id,
            symbol=state.symbol,
            ts_event=now,
            source=name,
            side=intent.side,
            strategy=name,
            price=price,
            strength=intent.strength,
            indicators=intent.indicators,
            trace_id=tracer.id_for(state.symbol, bar_ts) if tracer is not None else "",
        )
        recorder.event(Topic.TRADING_SIGNALS, signal)
        decision = risk.record(signal, inputs, outcome, ts_event=now, event_id=decision_id)
        recorder.event(Topic.RISK_EVENTS, decision)
        if order is not None:
            recorder.event(Topic.RISK_APPROVED_TRADES, order)

    def inputs(self, state: SymbolState, price: Decimal, now: int) -> RiskInputs:
        """The risk inputs of a decision in ``state``'s symbol at ``price``; the trading state is
        brought up to them first (a decision can be what trips a limit)."""
        self._sync(held_only=True)
        bid, ask = state.bid, state.ask
        if bid is None or ask is None:
            bid, ask = price * self._bid_factor, price * self._ask_factor
        execution = self._pipeline.execution
        pending = Decimal(0)
        for other in self._symbols.values():
            if other.working:
                pending += execution.pending_buy_quote(other.symbol)
        machine = self._pipeline.state_machine
        inputs = self._pipeline.portfolio.risk_inputs(
            state.symbol,
            bid=bid,
            ask=ask,
            last_price_age_ns=max(0, now - state.last_ts),
            trading_state=machine.state,
            pending_quote=pending,
        )
        machine.update(inputs, now)
        if inputs.trading_state is machine.state and not self._pipeline.store_down:
            return inputs
        return replace(inputs, trading_state=machine.state, store_down=self._pipeline.store_down)

    def symbol_inputs(self, symbol: str, price: Decimal, now: int) -> RiskInputs:
        """:meth:`inputs` by the symbol's name (an operator's exit)."""
        return self.inputs(self._symbols[symbol], price, now)
