"""What a component waits for at a closed bar: the events another component sent about the bar
(``signals``' signals for ``risk``, ``risk``'s approvals for ``execution``) and that component's
progress report, which says how many there are.

:class:`BarInputs` holds them until the bar is handled, and holds their deliveries with them: a
delivery is marked handled only once what came of its bar is in the component's outbox and the
bar's own market delivery is marked done (:meth:`BarInputs.settle`, from the component's
``settle`` at the end of a batch), or by the component's rule for an event that came after its
bar had been handled without it (:meth:`BarInputs.add` says so), or when it is given up: more
than ``KEEP_LATE`` bars (or counts) wait at once, when the oldest are taken
for bars that never come (a component that far behind the producer loses those inputs). So a
crash between the arrival and the bar leaves it pending in the consumer group, and the restart
gets it back before the bar comes again: a signal or an approval is not lost with the process.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from cdb_cli.engine.ports.bus import Delivery
    from cdb_cli.runtime.components.inbox import Inbox

__all__ = ["KEEP_LATE", "BarInputs"]

KEEP_LATE = 10_000
"""Bars waited for at most (older entries are given up); twice as many are remembered as
handled, to recognise a late arrival. Only a component catching up reads that far ahead of its
market stream (a progress report a bar per symbol: 10 symbols of 1-minute bars for 16 hours); a
few MB at most."""

K = TypeVar("K", bound=Hashable)
E = TypeVar("E")


class BarInputs(Generic[K, E]):
    """Events keyed by their bar (``K``: the bar's id, or its symbol and close time) and the
    producer's count per bar id; see the module docstring.

    ``what`` names the events (the component's warnings).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._events: dict[K, list[tuple[E, int]]] = {}
        self._counts: dict[str, int] = {}
        self._held: dict[K | str, list[tuple[Inbox, Delivery]]] = {}
        self._handled: dict[K | str, None] = {}  # an ordered set, the last KEEP_LATE
        self._taken: list[tuple[Inbox, Delivery]] = []  # by bars handled, not yet settled

    def add(self, key: K, event: E, arrived_ns: int, inbox: Inbox, delivery: Delivery) -> bool:
        """An event about the bar ``key``; its delivery is held until the bar takes it. False
        when the bar was handled without it already: the caller applies its rule for a late
        event and marks the delivery done."""
        if key in self._handled:
            return False
        self._events.setdefault(key, []).append((event, arrived_ns))
        self._hold(key, inbox, delivery)
        return True

    def count(self, bar_id: str, count: int, inbox: Inbox, delivery: Delivery) -> None:
        """The producer's progress report: ``count`` events about the bar ``bar_id``."""
        if bar_id in self._handled:
            inbox.done(delivery)
            return
        self._counts[bar_id] = count
        self._hold(bar_id, inbox, delivery)

    def ready(self, key: K, bar_id: str) -> bool:
        """The producer said how many events the bar has, and all of them came."""
        count = self._counts.get(bar_id)
        return count is not None and len(self._events.get(key, ())) >= count

    def take(self, key: K, bar_id: str) -> list[tuple[E, int]]:
        """The bar's events (with their arrival times), in arrival order; the bar is handled.
        Their deliveries are marked handled by the next :meth:`settle`."""
        self._counts.pop(bar_id, None)
        events = self._events.pop(key, [])
        for handled in (key, bar_id):
            self._taken += self._held.pop(handled, ())
            self._handled[handled] = None
        while len(self._handled) > 2 * KEEP_LATE:
            del self._handled[next(iter(self._handled))]
        while len(self._events) > KEEP_LATE:  # a bar that never came: give its inputs up
            oldest = next(iter(self._events))
            del self._events[oldest]
            self._release(oldest)
        while len(self._counts) > KEEP_LATE:
            oldest_id = next(iter(self._counts))
            del self._counts[oldest_id]
            self._release(oldest_id)
        return events

    def settle(self) -> None:
        """Mark the deliveries of the bars taken so far handled: call it once what came of
        those bars is in the outbox (the writer acknowledges them when that is stored)."""
        taken, self._taken = self._taken, []
        for inbox, delivery in taken:
            inbox.done(delivery)

    def _hold(self, key: K | str, inbox: Inbox, delivery: Delivery) -> None:
        self._held.setdefault(key, []).append((inbox, delivery))

    def _release(self, key: K | str) -> None:
        for inbox, delivery in self._held.pop(key, ()):
            inbox.done(delivery)
