"""Where the trading pipeline's output goes: events by topic, order records, fills.

The pipeline calls a :class:`Recorder` on its path; what the recorder does with the output is the
caller's choice: replay keeps it in memory (:class:`MemoryRecorder`), the run loop batches it for
the store and the bus (``runtime.outbox.Outbox``), a benchmark drops it (:class:`NullRecorder`).

Pure: ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cdb_cli.engine.events import Event, Topic
from cdb_cli.engine.records import FillRecord, OrderRecord

__all__ = ["MemoryRecorder", "NullRecorder", "Recorder"]


class Recorder(Protocol):
    """Where the pipeline's output goes: events by topic, order records, fills."""

    def event(self, topic: Topic, event: Event) -> None: ...

    def order(self, order: OrderRecord) -> None: ...

    def fill(self, fill: FillRecord) -> None: ...


class NullRecorder:
    """Drops everything (benchmarks); the pipeline's own counters still count."""

    def event(self, topic: Topic, event: Event) -> None:
        pass

    def order(self, order: OrderRecord) -> None:
        pass

    def fill(self, fill: FillRecord) -> None:
        pass


@dataclass
class MemoryRecorder:
    """Keeps everything in memory, in order (replay, tests)."""

    events: list[tuple[Topic, Event]] = field(default_factory=list)
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    fills: list[FillRecord] = field(default_factory=list)

    def event(self, topic: Topic, event: Event) -> None:
        self.events.append((topic, event))

    def order(self, order: OrderRecord) -> None:
        self.orders[order.client_order_id] = order

    def fill(self, fill: FillRecord) -> None:
        self.fills.append(fill)
