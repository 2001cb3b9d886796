"""The live loop's recorder: the pipeline's output batched until the next write.

The pipeline calls :class:`Outbox` synchronously on its hot path; the loop takes the batch every
flush and :func:`write_batch` writes it in a worker thread, in one transaction (``save_batch``) —
events, then orders before their fills, then positions and the audit records of trading-state
changes — before it is published. Once stored, each decision (verdict and the rules that failed),
order state and fill of the batch is logged at INFO: off a terminal, where ``cdb run`` logs at
INFO, that is the operator's record of what the loop did and why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cdb_cli.engine.events import Event, RiskDecision, Topic, encode_event
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord, PositionRecord
from cdb_cli.engine.runs import STATE_ACTION

__all__ = ["Outbox", "log_batch", "spill_batch", "write_batch"]

logger = logging.getLogger(__name__)


@dataclass
class Outbox:
    """The pipeline's recorder in the live loop: collects a batch until the next flush."""

    events: list[tuple[Topic, Event]] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    fills: list[FillRecord] = field(default_factory=list)

    def event(self, topic: Topic, event: Event) -> None:
        self.events.append((topic, event))

    def order(self, order: OrderRecord) -> None:
        self.orders.append(order)

    def fill(self, fill: FillRecord) -> None:
        self.fills.append(fill)

    def requeue(self, batch: Outbox) -> None:
        """Put back a batch whose write failed, ahead of what came since (nothing is lost)."""
        self.events[:0] = batch.events
        self.orders[:0] = batch.orders
        self.fills[:0] = batch.fills

    def take(self) -> Outbox:
        batch = Outbox(self.events, self.orders, self.fills)
        self.events, self.orders, self.fills = [], [], []
        return batch

    def __bool__(self) -> bool:
        return bool(self.events or self.orders or self.fills)


def write_batch(
    store: Store,
    batch: Outbox,
    changes: Sequence[tuple[int, str, str]],
    positions: Sequence[PositionRecord],
    run_id: str,
) -> None:
    """Write one batch in one transaction (blocking: call it in a worker thread)."""
    store.save_batch(
        events=[event for _, event in batch.events],
        orders=batch.orders,
        fills=batch.fills,
        positions=positions,
        audits=[
            AuditRecord(
                ts_event=ts,
                action=STATE_ACTION,
                actor="cdb run",
                run_id=run_id,
                detail={"state": state, "reason": reason},
            )
            for ts, state, reason in changes
        ],
    )
    if logger.isEnabledFor(logging.INFO):
        try:
            log_batch(batch)
        except Exception as e:  # the batch is stored: a log line must not stop the writer
            logger.warning("Could not log a stored batch: %s", type(e).__name__)


def log_batch(batch: Outbox) -> None:
    """One INFO line per decision, order state and fill of a stored batch.

    A decision's line starts with its id, so ``cdb risk explain ID`` is one copy-paste away."""
    for _, event in batch.events:
        if isinstance(event, RiskDecision):
            logger.info("Decision %s: %s", event.event_id, describe_decision(event))
    for order in batch.orders:
        size = (
            f"{order.quantity} base"
            if order.quantity is not None
            else f"{order.quote_amount} quote"
        )
        logger.info(
            "Order %s %s %s %s %s: %s",
            order.client_order_id,
            order.symbol,
            order.side,
            order.order_type,
            size,
            order.status,
        )
    for fill in batch.fills:
        logger.info(
            "Fill %s %s %s at %s (fee %s %s, %s) of %s",
            fill.symbol,
            fill.side,
            fill.quantity,
            fill.price,
            format(fill.fee.normalize(), "f"),
            fill.fee_asset,
            fill.liquidity,
            fill.client_order_id,
        )


def describe_decision(decision: RiskDecision) -> str:
    """``BTCUSDT buy rejected, 0 of 500 quote: daily_drawdown (observed 5.2, limit 5)``: the
    symbol, side, verdict and size, and the rules that refused or reduced it with what they saw
    (rounded; the decision's trace in the store has the exact figures and ``cdb risk explain``
    the whole story)."""
    why = []
    for check in decision.checks:
        if check.passed:
            if not check.detail.startswith("reduced"):
                continue
            words = "reduced"
        else:  # a detail in words only says what the figures do not ("nothing to exit")
            words = "" if any(c.isdigit() for c in check.detail) else check.detail
        seen = [
            f"{name} {value:.6g}"
            for name, value in (("observed", check.observed), ("limit", check.limit))
            if value is not None
        ]
        said = "; ".join(part for part in (", ".join(seen), words) if part)
        name = check.rule if check.passed else check.code
        why.append(f"{name} ({said})" if said else name)
    size = f"{decision.final_quote:.8g} of {decision.requested_quote:.8g} quote"
    reasons = f": {', '.join(why)}" if why else ""
    return f"{decision.symbol} {decision.side} {decision.verdict}, {size}{reasons}"


def spill_batch(batch: Outbox, run_id: str) -> Path:
    """Append a batch the store would not take to ``cdb-unsaved-RUN.jsonl`` in the working
    directory (one JSON object a line: events as their wire envelope, orders, fills); return it.
    """
    path = Path(f"cdb-unsaved-{run_id}.jsonl").resolve()
    with path.open("a", encoding="utf-8") as handle:
        for topic, event in batch.events:
            line = {"topic": str(topic), "event": encode_event(event).decode()}
            handle.write(json.dumps(line) + "\n")
        for order in batch.orders:
            handle.write(json.dumps({"order": order.model_dump(mode="json")}) + "\n")
        for fill in batch.fills:
            handle.write(json.dumps({"fill": fill.model_dump(mode="json")}) + "\n")
    return path
