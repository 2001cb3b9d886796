"""Fill reports acknowledged only once ``execution`` has stored their fill.

A component that books a fill from a report (``portfolio``, ``risk``) and rebuilds its ledger
from the stored fills at start must not acknowledge the report before the store has the fill: a
restart in between would rebuild without the fill and, the report being acknowledged, never be
given it again. :class:`StoredFills` holds such deliveries and marks them done once the store
has their fill (checked at most every ``interval_s``). One not stored after ``timeout_s`` of the
store answering (an outage of the store does not count) is
marked done with a warning (the bus stops delivering it) and, unless told to forget it, still
looked for, so the component can tell whether every fill it booked is stored (``all_stored``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.events import Topic
from cdb_cli.runtime.waits import wait_event

if TYPE_CHECKING:
    from cdb_cli.engine.ports.bus import Delivery
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.records import FillRecord
    from cdb_cli.runtime.components.inbox import Inbox

__all__ = ["StoredFills"]

logger = logging.getLogger(__name__)

Call = Callable[..., Awaitable[Any]]


@dataclass(slots=True)
class _Unstored:
    """A fill report booked, not yet acknowledged: the fill is not stored yet."""

    delivery: Delivery
    fill: FillRecord
    since: float  # time.monotonic() when it was held
    given_up: bool = False  # acknowledged after the timeout; still looked for in the store


class StoredFills:
    """See the module docstring. ``inboxes``: the component's (the reports' inbox is looked up
    when needed: a component subscribes after it prepared); ``call`` runs a blocking store call
    off the loop; ``keep_given_up``: go on looking for a fill after the timeout (for
    ``all_stored``), or forget it."""

    def __init__(
        self,
        who: str,
        inboxes: Mapping[Topic, Inbox],
        store: Store,
        call: Call,
        *,
        interval_s: float = 0.5,
        timeout_s: float = 60.0,
        consequence: str = "a restart goes by the store",
        keep_given_up: bool = True,
    ) -> None:
        self.who = who
        self._inboxes = inboxes  # the component's, filled once it subscribed
        self.store = store
        self.call = call
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.consequence = consequence
        self.keep_given_up = keep_given_up
        self._unstored: list[_Unstored] = []
        self._next = 0.0

    def hold(self, delivery: Delivery, fill: FillRecord) -> None:
        """Keep ``delivery`` unacknowledged until the store has ``fill``."""
        self._unstored.append(_Unstored(delivery, fill, time.monotonic()))

    @property
    def all_stored(self) -> bool:
        """Whether the store has every fill held so far (given-up ones included)."""
        return not self._unstored

    async def confirm_due(self) -> None:
        """Check the store, unless it was checked less than ``interval_s`` ago."""
        loop = asyncio.get_running_loop()
        if self._unstored and loop.time() >= self._next:
            self._next = loop.time() + self.interval_s
            await self.confirm()

    async def run(self, stop: asyncio.Event) -> None:
        """Check every ``interval_s`` until ``stop``, and once more then (a component's
        background loop: it ends before the inboxes' last acknowledgement)."""
        while not stop.is_set():
            await self.confirm()
            await wait_event(stop, self.interval_s)
        await self.confirm()

    @property
    def inbox(self) -> Inbox:
        """Where the execution reports come from."""
        return self._inboxes[Topic.EXECUTION_EVENTS]

    async def confirm(self) -> None:
        """Mark done the deliveries whose fills are stored (a store error: next time); one store
        read for all of them (the fills in the window of their times). Safe beside ``hold`` (a
        background loop): what is held meanwhile waits for the next check, and what is being
        checked still counts in ``all_stored``."""
        items = list(self._unstored)
        if not items:
            return
        times = [item.fill.ts_event for item in items]
        try:
            stored = await self.call(self.store.fills, since_ns=min(times), until_ns=max(times) + 1)
        except CdbError:
            # The store is down: its outage does not count towards the timeout (execution
            # cannot store the fills meanwhile either); it runs again from when it answers.
            now = time.monotonic()
            for item in items:
                item.since = now
            return
        ids = {fill.fill_id for fill in stored}
        settled: list[_Unstored] = []
        for item in items:
            if item.fill.fill_id in ids:
                if not item.given_up:
                    self.inbox.done(item.delivery)
                settled.append(item)
            elif not item.given_up and time.monotonic() - item.since > self.timeout_s:
                item.given_up = True
                self.inbox.done(item.delivery)
                logger.warning(
                    "%s: execution has not stored fill %s after %.0f s; acknowledged (%s)",
                    self.who,
                    item.fill.fill_id,
                    self.timeout_s,
                    self.consequence,
                )
                if not self.keep_given_up:
                    settled.append(item)
        if settled:
            gone = {id(item) for item in settled}
            self._unstored = [item for item in self._unstored if id(item) not in gone]
