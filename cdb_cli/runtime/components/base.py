"""What every component process shares: inboxes fed from the bus (:mod:`.inbox`), batched
writes, the run frame.

:class:`Component` runs one process's loop: ``prepare`` (restore from the store), the inboxes,
``step`` until the stop event is set, a batch writer in the background (the store port is
blocking: worker thread), and a start and a stop audit record naming the component.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.events import Bar, Event, Topic
from cdb_cli.engine.instruments import split_symbol
from cdb_cli.engine.records import Mode
from cdb_cli.kernel import clock_for
from cdb_cli.runtime.components.inbox import Inbox
from cdb_cli.runtime.lifecycle import START_ACTION, STOP_ACTION, freeze_startup_heap, run_record
from cdb_cli.runtime.outbox import BatchWriter
from cdb_cli.runtime.schedule import refresh_health_metrics
from cdb_cli.runtime.spill import spill_folders
from cdb_cli.runtime.waits import Backoff, wait_event
from cdb_cli.runtime.watch import Alert, Dependency, StoreWatch, send_alert
from cdb_cli.services.restore import STARTING_CASH_KEY

if TYPE_CHECKING:
    from cdb_cli.engine.clock import Clock
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.engine.ports.bus import Delivery, MessageBus
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.kernel.system import Metrics
    from cdb_cli.settings import Settings

__all__ = ["COMPONENTS", "Component", "LatencyLog", "bar_close_ns"]

logger = logging.getLogger(__name__)

COMPONENTS = ("marketdata", "signals", "risk", "execution", "portfolio")
SECOND_NS = 1_000_000_000
HEALTH_INTERVAL_S = 5.0
"""How often a component pings the store and the bus for its metrics and ``/ready``."""


def bar_close_ns(bar: Bar, interval_ns: int) -> int:
    """The end of a closed bar's interval (its ``ts_event`` is the open)."""
    return bar.ts_event + interval_ns


class Stopping(Exception):
    """The component was stopped while a market event's handling waited (see ``wait_for``)."""


class LatencyLog:
    """``bar_id time_ns`` lines for the multi-process latency benchmark (off unless asked)."""

    def __init__(self, path: Path | None) -> None:
        self._file: TextIO | None = path.open("a", encoding="utf-8") if path else None

    def write(self, bar_id: str, ts_ns: int) -> None:
        if self._file is not None:
            self._file.write(f"{bar_id} {ts_ns}\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Component:
    """One component process; subclasses implement ``prepare``, ``step`` and their topics."""

    name: ClassVar[str] = ""
    topics: ClassVar[tuple[Topic, ...]] = ()
    paced: ClassVar[dict[Topic, float]] = {}
    """Topics read at most every so many seconds (``Inbox.pace_s``) instead of at once."""
    store_outage_consequence: ClassVar[str] = "it goes on"
    """What a store outage means for the component (its log line and alert)."""
    handled_on_arrival: ClassVar[tuple[Topic, ...]] = ()
    """Topics whose deliveries the inbox's pump hands to ``on_arrival`` itself (``Inbox.handle``)
    instead of waking ``step``."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        bus: MessageBus,
        symbols: Sequence[str],
        instruments: dict[str, Instrument],
        run_id: str,
        latency_log: Path | None = None,
        flush_interval_s: float = 0.25,
        wait_timeout_s: float = 5.0,
        metrics: Metrics | None = None,
        alert: Alert | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock if clock is not None else clock_for(Mode.PAPER)
        """The component's time: event times it stamps and its day (latency stamps stay wall
        measurements)."""
        self.store = store
        self.bus = bus
        self.symbols = list(symbols)
        self.instruments = instruments
        self.run_id = run_id
        self.interval_ns = settings.bar_seconds * SECOND_NS
        self.quote = split_symbol(self.symbols[0])[1]
        self.writer = BatchWriter(
            store, run_id, self.call, name=self.name, spill_to=spill_folders(settings)
        )
        # What the component adds to its next batch (the writer's own, changed in place).
        self.outbox = self.writer.outbox
        self.state_changes = self.writer.state_changes
        self.positions = self.writer.positions
        self.latency = LatencyLog(latency_log)
        self.wake = asyncio.Event()
        self.inboxes: dict[Topic, Inbox] = {}
        self.stop = asyncio.Event()
        self.bus_health = Dependency("redis", f"{self.name}: publishing", metrics)
        """Down from a failed publication or acknowledgement until the bus answers again."""
        self.store_watch = StoreWatch(
            settings.store_outage_limit_seconds,
            who=f"Component {self.name} of run {run_id}",
            alert=alert,
            metrics=metrics,
            consequence=self.store_outage_consequence,
        )
        self.store_down = False
        """True while the store has taken no writes for more than the grace (a component that
        takes risk refuses new entries meanwhile); :class:`StoreWatch` says so once, alerts once,
        and ends the component past ``CDB_STORE_OUTAGE_LIMIT_SECONDS``."""
        self.feed_delay_ns: int | None = None
        self.started = asyncio.Event()
        self.counts: dict[str, int] = {}
        self._flush_interval_s = flush_interval_s
        self.wait_timeout_s = wait_timeout_s
        self.metrics = metrics
        self.alert = alert

    # --- to implement ---------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Restore from the store before the first event."""

    async def step(self) -> None:
        """Handle what arrived (or wait a little for it)."""
        raise NotImplementedError

    async def on_arrival(self) -> None:
        """Handle what the inboxes of ``handled_on_arrival`` hold, in their pumps' task."""
        raise NotImplementedError

    async def finish(self) -> None:
        """Last words before the final write (a snapshot)."""

    def background(self) -> list[Coroutine[Any, Any, None]]:
        """Loops to run beside the steps until the stop event (their failure stops the
        component, as the step's does)."""
        return []

    def readiness(self) -> list[str]:
        """Why ``/ready`` says no (empty: ready); a component adds its own reasons."""
        if not self.started.is_set():
            return ["starting"]
        reasons = []
        if not self.bus_up:
            reasons.append("bus down")
        if not self.writer.store_up:
            reasons.append("database down")
        return reasons

    @property
    def bus_up(self) -> bool:
        """False while a publication, an acknowledgement or a read of an inbox fails."""
        return self.bus_health.up and all(i.bus_health.up for i in self.inboxes.values())

    @property
    def database_up(self) -> bool:
        """False from a failed write (or ping) until a write (or a ping with nothing pending)
        succeeds again."""
        return self.writer.store_up

    @database_up.setter
    def database_up(self, up: bool) -> None:
        self.writer.store_up = up

    # --- helpers --------------------------------------------------------------------------------

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store call in a worker thread (the Store port is synchronous)."""
        return await asyncio.to_thread(function, *args, **kwargs)

    async def starting_cash(self) -> Decimal:
        stored = await self.call(self.store.get_config, STARTING_CASH_KEY)
        if stored is None:
            stored = str(self.settings.starting_cash)
            await self.call(self.store.set_config, STARTING_CASH_KEY, stored)
        return Decimal(stored)

    async def publish(self, items: Sequence[tuple[Topic, Event]]) -> None:
        """Publish at once (the store gets them with the next batch); count them in /metrics.
        A bus that fails (Redis down) is waited out: published again after a growing pause
        (0.5 s up to 5 s, with jitter), until it takes them or the component stops (a copy is
        dropped by event id)."""
        if not items:
            return
        pause = Backoff()
        while True:
            try:
                await self.bus.publish_many(items)
            except CdbError as e:
                if self.stop.is_set():
                    raise
                self.bus_health.failed(e)
                await wait_event(self.stop, pause.next())
                continue
            break
        self.bus_health.answered()
        self.published(items)

    def published(self, items: Sequence[tuple[Topic, Event]]) -> None:
        """Count in /metrics what was published."""
        if self.metrics is not None:
            for topic, event in items:
                if topic is not Topic.MARKET_BARS:  # a bar's second copy: counted once
                    self.metrics.observe_event(topic, event)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    async def idle(self, timeout_s: float = 0.2) -> None:
        """Wait until an inbox gets something (or ``timeout_s``)."""
        self.wake.clear()
        if any(inbox.queue for inbox in self.inboxes.values()):
            return
        await wait_event(self.wake, timeout_s)

    async def wait_for(
        self, ready: Callable[[], bool], what: str, timeout_s: float | None = None
    ) -> bool:
        """Take side deliveries (``drain``) until ``ready()``; give up after ``timeout_s`` (by
        default the wait timeout) with a warning (the component then acts on what it has). The
        time does not run while the bus is down (what is waited for cannot come): the timeout
        counts from when it answers again.

        Stopped while waiting, it raises :class:`Stopping`: the market event being handled is
        left unhandled (pending: a restart handles it again, with what it waited for) rather
        than handled without it."""
        loop = asyncio.get_running_loop()
        timeout = self.wait_timeout_s if timeout_s is None else timeout_s
        deadline = loop.time() + timeout
        while True:
            self.drain()
            if ready():
                return True
            if self.stop.is_set():
                raise Stopping(what)
            if not self.bus_up:
                deadline = max(deadline, loop.time() + timeout)
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.warning("%s: gave up waiting for %s", self.name, what)
                self.count("wait_timeouts")
                return False
            # Only the side topics can make ``ready()`` true: wait for the next arrival.
            self.wake.clear()
            await wait_event(self.wake, min(remaining, 0.2))

    def drain(self) -> None:
        """Move what arrived on the side topics into the component's state."""

    async def handle_market(self, handle: Callable[[Event], Awaitable[None]]) -> bool:
        """Hand up to 200 waiting market events to ``handle`` in order, then ``flush``, mark
        them done and ``settle`` what they took from the side topics (all without an await in
        between, so the writer takes them together); when none waits, idle and return False.
        An event whose handling was stopped in a wait stays unhandled."""
        market = self.inboxes[Topic.MARKET_DATA]
        self.drain()
        if not market.queue:
            await self.idle()
            return False
        handled: list[Delivery] = []
        for _ in range(200):
            if not market.queue or self.stop.is_set():
                break
            delivery = market.queue[0]
            try:
                await handle(delivery.event)
            except Stopping:
                break
            market.pop()
            handled.append(delivery)
        await self.flush()
        for delivery in handled:
            market.done(delivery)
        self.settle()
        return True

    async def flush(self) -> None:
        """Publish what handling a batch of market events left to publish (before any of them
        is marked done, so a crash before this redelivers them)."""

    def settle(self) -> None:
        """Mark handled what the batch's market events took from the side topics (a
        component's :class:`~cdb_cli.runtime.components.inputs.BarInputs`)."""

    # --- the frame ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> dict[str, int]:
        self.stop = stop
        try:
            await self.writer.recover(self.clock.timestamp_ns())
            await self.prepare()
            consumer = f"{self.name}@{socket.gethostname()}"[:64]
            for topic in self.topics:
                subscription = await self.bus.subscribe(topic, self.name, consumer)
                handle = self.on_arrival if topic in self.handled_on_arrival else None
                self.inboxes[topic] = Inbox(
                    subscription, self.wake, self.paced.get(topic, 0.0), handle, self.metrics
                )
        except Exception as e:
            await self._alert_failure(e, "could not start")
            raise
        pumps = [asyncio.create_task(inbox.run(stop)) for inbox in self.inboxes.values()]
        pumps += [asyncio.create_task(loop) for loop in self.background()]
        pumps.append(asyncio.create_task(self._watch_health(stop)))
        writer = asyncio.create_task(self._writer(stop))
        await self._audit(START_ACTION, self._start_detail())
        freeze_startup_heap()  # no 60-200 ms full collection in the middle of a hop
        self.started.set()
        logger.info("Component %s of run %s started", self.name, self.run_id)
        try:
            while not stop.is_set():
                await self.step()
                for task in (*pumps, writer):
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        except Exception as e:
            await self._alert_failure(e, "stopped by an error")
            raise
        finally:
            stop.set()
            for task in pumps:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(task, 2.0)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer
            await self.finish()
            if await self._write_all():
                # What was handled is acknowledged once what came of it is stored; spilled to a
                # file instead, it is left pending: a restart handles it again.
                for inbox in self.inboxes.values():
                    await inbox.close()
            await self._audit(
                STOP_ACTION,
                {"component": self.name, **{k: str(v) for k, v in sorted(self.counts.items())}},
            )
            self.latency.close()
            gc.unfreeze()  # a process that goes on (tests, a restart) collects them again
        return self.counts

    async def _alert_failure(self, error: Exception, what: str) -> None:
        await send_alert(
            self.alert,
            f"cdb component {self.name} {what}",
            f"Component {self.name} of run {self.run_id} {what}: {type(error).__name__}: {error}",
        )

    async def _writer(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait_event(stop, self._flush_interval_s)
            # Taken with the batch (no await before _write takes the outbox): what was handled
            # up to here has its outcome in that batch, and is acknowledged once it is stored.
            handled = [(inbox, inbox.take_done()) for inbox in self.inboxes.values()]
            written = await self._write()
            self.store_down = await self.store_watch.note(self.writer.store_up)
            if written:
                for inbox, done in handled:
                    try:
                        await inbox.ack(done)
                    except CdbError as e:  # Redis down: acknowledged with a later batch
                        self.bus_health.failed(e)
                        inbox.give_back(done)
                    else:
                        if done:
                            self.bus_health.answered()
            else:
                for inbox, done in handled:
                    inbox.give_back(done)

    async def _watch_health(self, stop: asyncio.Event) -> None:
        """Ping the store and the bus every ``HEALTH_INTERVAL_S`` into the metrics: an outage
        shows on ``/ready`` and in ``dependency_up`` even while the component has nothing to
        write or publish, and its end shows too (a ping that answers with nothing pending)."""
        while not stop.is_set():
            store, bus = await refresh_health_metrics(self)
            if store and not self.writer.pending():
                self.writer.store_up = True
            if bus:  # a component that seldom publishes or acknowledges
                self.bus_health.answered()
            await wait_event(stop, HEALTH_INTERVAL_S)

    async def _write(self) -> bool:
        return await self.writer.write() is not None

    async def _write_all(self) -> bool:
        """The last write, retried for 5 s; True when the store took everything."""
        return await self.writer.finish(5.0)

    def _start_detail(self) -> dict[str, str]:
        """The start audit's detail: the component, and what every loop's start records (the
        settings and instruments it runs with, for ``cdb parity``)."""
        from cdb_cli.runtime.lifecycle import RunSummary, start_detail

        summary = RunSummary(self.run_id)
        detail = start_detail(self.settings, Mode.PAPER, self.symbols, self.instruments, summary)
        detail.pop("restored_fills")
        detail.pop("restored_orders")
        return {"component": self.name, **detail, "bar_interval_ns": str(self.interval_ns)}

    async def _audit(self, action: str, detail: dict[str, str]) -> None:
        try:
            record = run_record(
                action, self.run_id, self.clock.timestamp_ns(), {"mode": "paper", **detail}
            )
            await self.call(self.store.add_audit, record)
        except CdbError as e:
            logger.error("Could not write the %s record: %s", action, e)
