"""The operator's actions on a running pipeline: the kill switch (:meth:`Operator.halt`) and the
flatten that sells every position (:meth:`Operator.flatten`).

An operator's exit goes through the pipeline's normal path — its risk inputs, its ids, the venue,
the recorder, the ledger — but the risk rules do not decide it: its decision carries one check,
rule ``operator``, naming the trading state and the operator's reason.
:class:`~cdb_cli.engine.pipeline.TradingPipeline` holds one :class:`Operator` and its ``halt`` and
``flatten`` are this module's.

Pure: ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from cdb_cli.engine.events import OrderApproved, Side, SignalSide, Topic, TradingSignal
from cdb_cli.engine.records import OrderRecord
from cdb_cli.engine.risk import CheckFields, TradingState, Verdict

if TYPE_CHECKING:
    from cdb_cli.engine.pipeline import TradingPipeline

__all__ = ["OPERATOR", "Operator"]

OPERATOR: Final = "operator"
"""Source of an operator's flatten: its signals, decisions and approvals (not the risk rules')."""


class Operator:
    """The operator's kill switch and flatten on one pipeline."""

    def __init__(self, pipeline: TradingPipeline) -> None:
        self._pipeline = pipeline

    def halt(self, ts: int, reason: str) -> None:
        """The operator's kill switch: HALTED at once, with ``reason`` as the state change's why.

        No new entry is approved from here on. Under HALTED the circuit-breaker rule rejects
        every signal — a strategy's exits too, as after the breaker tripped — so positions stay
        as they are unless :meth:`flatten` closes them. An audited reset
        (``TradingPipeline.reset_breaker``) ends it. Already HALTED: nothing changes.
        """
        self._pipeline.set_trading_state(TradingState.HALTED, ts, reason)

    def flatten(
        self, ts: int, reason: str, *, skip: Collection[str] = ()
    ) -> dict[str, OrderRecord]:
        """Sell every held position through the normal execution path, whatever the state.

        Each exit is recorded like a strategy's: a signal (strategy ``operator``), a decision
        (source ``operator``, verdict approved) with the inputs it saw and one check, rule
        ``operator``, naming the trading state and ``reason`` — the risk rules do not decide an
        operator's exit (under a halt the circuit breaker would refuse it), so they are not in its
        trace and do not count in rule statistics — then the approval, the order and its fills.
        The exit also cancels the symbol's working buys (the venue does that for any exit).

        Idempotent, so a run loop may call it until everything is flat: a symbol whose exit is
        still working is left alone, and so are the symbols in ``skip`` (e.g. dust an earlier
        exit could not sell). A buy still working in a symbol with nothing held is left to fill
        (the venue port has no cancel); the next call sells what it bought.

        Returns the first order record of each exit it placed, by symbol (status REJECTED when
        the venue refused it at once, e.g. below the minimum quantity).
        """
        pipeline = self._pipeline
        selling = {o.symbol for o in pipeline.execution.working_orders() if o.side is Side.SELL}
        placed: dict[str, OrderRecord] = {}
        for symbol, price in pipeline.marks().items():  # the symbols priced so far
            if symbol in selling or symbol in skip:
                continue
            if pipeline.portfolio.quantity(symbol) <= 0:
                continue
            order = self._exit(symbol, price, ts, reason)
            if order is not None:
                placed[symbol] = order
        return placed

    def _exit(self, symbol: str, price: Decimal, now: int, reason: str) -> OrderRecord | None:
        pipeline = self._pipeline
        risk, recorder, decisions = pipeline.risk, pipeline.recorder, pipeline.decisions
        inputs = decisions.symbol_inputs(symbol, price, now)
        requested, final = risk.sizes(SignalSide.EXIT, inputs)
        if final <= 0:  # worth less than the ledger's grid: nothing to send
            return None
        signal_id, decision_id = decisions.next_id(), decisions.next_id()
        order = OrderApproved(
            event_id=decisions.next_id(),
            symbol=symbol,
            ts_event=now,
            source=OPERATOR,
            decision_id=decision_id,
            side=Side.SELL,
            quote_amount=final,
            reference_price=price,
        )
        result = pipeline.execution.submit(
            order, ts_ns=now, position=pipeline.portfolio.quantity(symbol)
        )
        signal = TradingSignal(
            event_id=signal_id,
            symbol=symbol,
            ts_event=now,
            source=OPERATOR,
            side=SignalSide.EXIT,
            strategy=OPERATOR,
            price=price,
            strength=1.0,
        )
        recorder.event(Topic.TRADING_SIGNALS, signal)
        operator: CheckFields = {
            "rule": OPERATOR,
            "code": "operator_flatten",
            "passed": True,
            "observed": None,
            "limit": None,
            "detail": f"flatten by the operator ({pipeline.trading_state}): {reason}",
        }
        outcome: tuple[Verdict, Decimal, Decimal, tuple[CheckFields, ...]] = (
            "approved",
            requested,
            final,
            (operator,),
        )
        decision = risk.record(
            signal, inputs, outcome, ts_event=now, source=OPERATOR, event_id=decision_id
        )
        recorder.event(Topic.RISK_EVENTS, decision)
        pipeline.stats.verdicts["approved"] += 1
        recorder.event(Topic.RISK_APPROVED_TRADES, order)
        pipeline.apply_execution(result)
        mine = [o for o in result.orders if o.side is Side.SELL and o.symbol == symbol]
        return mine[0] if mine else None
