"""The live loop's recorder: the pipeline's output batched until the next write.

The pipeline calls :class:`Outbox` synchronously on its hot path; the loop takes the batch every
flush and :func:`write_batch` writes it in a worker thread, in one transaction (``save_batch``) —
events, then orders before their fills, then positions and the audit records of trading-state
changes — before it is published. Once stored, each decision (verdict and the rules that failed),
order state and fill of the batch is logged at INFO: off a terminal, where ``cdb run`` logs at
INFO, that is the operator's record of what the loop did and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.events import Event, RiskDecision, Topic
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord, PositionRecord
from cdb_cli.engine.runs import STATE_ACTION
from cdb_cli.runtime.lifecycle import actor
from cdb_cli.runtime.spill import Spill, load_spills, spill

__all__ = ["BatchWriter", "Outbox", "log_batch", "write_batch"]

logger = logging.getLogger(__name__)


@dataclass
class Outbox:
    """The pipeline's recorder in the live loop: collects a batch until the next flush."""

    keeps_events: ClassVar[bool] = True

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
        audits=_audits(changes, run_id),
    )
    if logger.isEnabledFor(logging.INFO):
        try:
            log_batch(batch)
        except Exception as e:  # the batch is stored: a log line must not stop the writer
            logger.warning("Could not log a stored batch: %s", type(e).__name__)


def _audits(changes: Sequence[tuple[int, str, str]], run_id: str) -> list[AuditRecord]:
    """The audit records of trading-state changes ``(ts, state, reason)``."""
    return [
        AuditRecord(
            ts_event=ts,
            action=STATE_ACTION,
            actor="cdb run",
            run_id=run_id,
            detail={"state": state, "reason": reason},
        )
        for ts, state, reason in changes
    ]


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


class BatchWriter:
    """The loops' one writer (the paper/live loop and every component): what is pending — the
    outbox, the trading-state changes, the positions — goes to the store in one transaction
    (:func:`write_batch`); a store that fails keeps all of it for the next write, ahead of what
    came since (writes are idempotent, so nothing is lost or doubled); the last write is
    retried for a while, then what the store still would not take is spilled to a local file
    (:mod:`cdb_cli.runtime.spill`), which the next start loads back.

    ``state_changes`` and ``positions`` are only ever changed in place: a loop may keep them
    under names of its own.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        call: Callable[..., Awaitable[Any]],
        *,
        name: str = "cdb run",
        spill_to: Sequence[Path] = (),
    ) -> None:
        self.outbox = Outbox()
        self.state_changes: list[tuple[int, str, str]] = []
        self.positions: list[PositionRecord] = []
        self.store_up = True
        """False from a failed write until a write succeeds again."""
        self._store = store
        self._run_id = run_id
        self._call = call
        self._name = name
        self._spill_to = list(spill_to) or [Path.cwd()]

    async def recover(self, now_ns: int) -> int:
        """Before the first write: load what earlier runs spilled into the store
        (:func:`~cdb_cli.runtime.spill.load_spills`); how many spill files were loaded."""
        loaded: int = await self._call(
            load_spills,
            self._store,
            self._spill_to,
            actor=actor(),
            run_id=self._run_id,
            now_ns=now_ns,
        )
        return loaded

    def pending(self) -> bool:
        return bool(self.outbox or self.state_changes or self.positions)

    async def write(self) -> Outbox | None:
        """Write what is pending; return the batch written (empty when nothing was pending),
        or None when the store refused it (then all of it is kept for the next write)."""
        batch = self.outbox.take()
        changes, positions = list(self.state_changes), list(self.positions)
        self.state_changes.clear()
        self.positions.clear()
        if not batch and not changes and not positions:
            return batch
        try:
            await self._call(write_batch, self._store, batch, changes, positions, self._run_id)
        except CdbError as e:
            self.outbox.requeue(batch)
            self.state_changes[:0] = changes
            self.positions[:0] = positions
            if self.store_up:
                logger.warning(
                    "%s: the store did not take a batch (%s); kept for the next try",
                    self._name,
                    e,
                )
            self.store_up = False
            return None
        if not self.store_up:
            logger.warning("%s: store writes work again", self._name)
        self.store_up = True
        return batch

    async def finish(self, timeout_s: float) -> bool:
        """The last write, retried every 0.5 s for ``timeout_s``; what the store still would not
        take is spilled (:func:`spill_batch`). True when the store took everything."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await self.write() is None or self.pending():
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.5)
        else:
            return True
        batch = self.outbox.take()
        left = Spill(
            batch.events, batch.orders, batch.fills, _audits(self.state_changes, self._run_id)
        )
        self.state_changes.clear()
        self.positions.clear()  # derived from the fills: the next start recomputes them
        if left:
            path = spill(left, self._run_id, self._spill_to)
            if path is not None:
                logger.error(
                    "The store is down: what it did not take was written to %s (the next start "
                    "loads it): %s",
                    path,
                    left.describe(),
                )
        return False
