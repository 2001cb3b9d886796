"""The live loop's recorder: the pipeline's output batched until the next write.

The pipeline calls :class:`Outbox` synchronously on its hot path; the loop takes the batch every
flush and :func:`write_batch` writes it in a worker thread, in one transaction (``save_batch``) —
events, then orders before their fills, then positions and the audit records of trading-state
changes — before it is published.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cdb_cli.engine.events import Event, Topic, encode_event
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord, PositionRecord
from cdb_cli.engine.runs import STATE_ACTION

__all__ = ["Outbox", "spill_batch", "write_batch"]


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
