"""Per-topic bookkeeping of the WebSocket client: duplicates, order, gaps and freshness.

Pure and synchronous, so it is tested without a socket. A trade is a duplicate when its event id
(derived from symbol + trade id) was already delivered; it is out of order when older than the last
delivered trade of its topic; both are dropped and counted, never delivered. Numeric trade ids that
jump count as gaps, and so does every reconnect of a subscribed topic (data may be missing).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cdb_cli.engine.events import Bar, Event, QuoteTick, TradeTick, new_event_id

__all__ = ["StreamBook", "StreamStats"]

logger = logging.getLogger(__name__)


@dataclass
class StreamStats:
    """Counters and the last data time of one topic."""

    events: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    gaps: int = 0
    last_data: float | None = None  # monotonic seconds of the last data frame
    last_ts_event: int = 0
    last_trade_id: int | None = None
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    open_bar: Bar | None = None


class StreamBook:
    """Filters events per topic and knows how fresh each topic is."""

    def __init__(
        self, *, remember: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.remember = remember
        self.clock = clock
        self.topics: dict[str, StreamStats] = {}
        self._logged: set[str] = set()

    def _once(self, kind: str, topic: str) -> None:
        if kind not in self._logged:
            self._logged.add(kind)
            logger.warning("Dropped a %s event on %s; further ones are only counted", kind, topic)

    def stats(self, topic: str) -> StreamStats:
        return self.topics.setdefault(topic, StreamStats())

    def admit(self, topic: str, events: list[Event]) -> list[Event]:
        """The events of one frame that may reach the engine, in order."""
        stats = self.stats(topic)
        stats.last_data = self.clock()
        out: list[Event] = []
        for event in events:
            if isinstance(event, TradeTick):
                verdict = self._admit_trade(stats, event)
                if verdict is None:
                    out.append(event)
                else:
                    self._once(verdict, topic)
            elif isinstance(event, QuoteTick):
                if event.ts_event < stats.last_ts_event:
                    stats.out_of_order += 1
                    self._once("out-of-order", topic)
                    continue
                stats.last_ts_event = event.ts_event
                out.append(event)
            elif isinstance(event, Bar):
                out.extend(self._admit_bar(stats, event))
            else:  # pragma: no cover - the decoder yields only the three market types
                out.append(event)
        stats.events += len(out)
        return out

    def _admit_trade(self, stats: StreamStats, trade: TradeTick) -> str | None:
        """None when the trade may pass, else why not ("duplicate", "out-of-order")."""
        if trade.event_id in stats.seen:
            stats.duplicates += 1
            return "duplicate"
        if trade.ts_event < stats.last_ts_event:
            stats.out_of_order += 1
            return "out-of-order"
        stats.seen[trade.event_id] = None
        if len(stats.seen) > self.remember:
            stats.seen.popitem(last=False)
        stats.last_ts_event = trade.ts_event
        if trade.trade_id.isdigit():
            number = int(trade.trade_id)
            if stats.last_trade_id is not None and number > stats.last_trade_id + 1:
                stats.gaps += 1
            stats.last_trade_id = number
        return None

    @staticmethod
    def _admit_bar(stats: StreamStats, bar: Bar) -> list[Event]:
        """Open bars pass through; when a new window starts, the previous one is emitted closed."""
        previous = stats.open_bar
        if previous is not None and bar.ts_event < previous.ts_event:
            stats.out_of_order += 1
            return []
        stats.open_bar = bar
        if previous is not None and bar.ts_event > previous.ts_event:
            closed = previous.model_copy(update={"closed": True, "event_id": new_event_id()})
            return [closed, bar]
        return [bar]

    def reconnected(self, topics: list[str]) -> None:
        """A connection carrying ``topics`` was lost: each may have missed data."""
        for topic in topics:
            self.stats(topic).gaps += 1

    def age(self, topic: str) -> float | None:
        """Seconds since the last data frame of ``topic`` (None: never received)."""
        last = self.stats(topic).last_data
        return None if last is None else self.clock() - last

    def stale(self, topics: list[str], max_age: float) -> list[str]:
        """The topics with no data for more than ``max_age`` seconds (or never)."""
        return [t for t in topics if (age := self.age(t)) is None or age > max_age]
