"""Where the trading pipeline's output goes: events by topic, order records, fills; and the
counters it keeps of them (:class:`PipelineStats`).

The pipeline calls a :class:`Recorder` on its path; what the recorder does with the output is the
caller's choice: replay keeps it in memory (:class:`MemoryRecorder`), the run loop batches it for
the store and the bus (``runtime.outbox.Outbox``), a benchmark drops it (:class:`NullRecorder`).
Whatever the recorder, the pipeline counts what it produced in its :class:`PipelineStats` (the
report and the metrics read them).

Pure: ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from cdb_cli.engine.events import Event, Topic
from cdb_cli.engine.records import FillRecord, OrderRecord

__all__ = ["MemoryRecorder", "NullRecorder", "PipelineStats", "Recorder"]


class Recorder(Protocol):
    """Where the pipeline's output goes: events by topic, order records, fills."""

    @property
    def keeps_events(self) -> bool:
        """False when :meth:`event` would drop what it is given: the pipeline then builds no
        signal, decision or approval events (it still decides, acts and counts)."""
        ...

    def event(self, topic: Topic, event: Event) -> None: ...

    def order(self, order: OrderRecord) -> None: ...

    def fill(self, fill: FillRecord) -> None: ...


class NullRecorder:
    """Drops everything (benchmarks); the pipeline's own counters still count."""

    keeps_events = False

    def event(self, topic: Topic, event: Event) -> None:
        pass

    def order(self, order: OrderRecord) -> None:
        pass

    def fill(self, fill: FillRecord) -> None:
        pass


@dataclass
class MemoryRecorder:
    """Keeps everything in memory, in order (replay, tests); with ``keeps_events`` False only
    the orders and fills (a replay whose events nobody reads: ``cdb replay`` without
    ``--persist``)."""

    events: list[tuple[Topic, Event]] = field(default_factory=list)
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    fills: list[FillRecord] = field(default_factory=list)
    keeps_events: bool = True

    def event(self, topic: Topic, event: Event) -> None:
        if self.keeps_events:
            self.events.append((topic, event))

    def order(self, order: OrderRecord) -> None:
        self.orders[order.client_order_id] = order

    def fill(self, fill: FillRecord) -> None:
        self.fills.append(fill)


@dataclass
class PipelineStats:
    """Counters of one run, for the report and the metrics."""

    bars: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    failed_rules: Counter[str] = field(default_factory=Counter)
    """Failing reason codes of the rejected decisions (a decision can fail several rules)."""
    orders: int = 0
    orders_rejected: int = 0
    fills: int = 0
    strategy_errors: int = 0
    """Exceptions raised by the strategies' ``on_bar`` (caught; see ``strategies.guard``)."""
    state_changes: list[tuple[int, str, str]] = field(default_factory=list)
    """(ts, new trading state, why) in order (the trading-state machine's record)."""
    max_drawdown: float = 0.0
    """Largest fall of equity from its running peak, as a fraction (float marks, every price)."""
    mean_exposure: float = 0.0
    """Mean of exposure / equity over the prices seen (0..1)."""
    max_exposure: float = 0.0
