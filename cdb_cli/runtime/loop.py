"""The trading loop, one for paper and live: market feed → pipeline → store and bus, resumable.

:class:`TradingLoop` owns one :class:`~cdb_cli.engine.pipeline.TradingPipeline` (built by the
kernel for its venue's mode) and feeds it from a :class:`MarketFeed`: trades fill working
orders and are aggregated into closed bars for the strategy (:class:`BarBuilder`), quotes give the
spread. Everything it sees and does — market data, signals, risk decisions with their traces,
approvals, execution reports, orders, fills, positions — is written to the store in batches
(in a worker thread, :class:`~cdb_cli.runtime.outbox.BatchWriter`) and then published on the bus.

What differs between paper and live is a collaborator, the :class:`Venue`: how the account opens
(:class:`~cdb_cli.runtime.paper.PaperVenue` rebuilds it from the stored fills;
:class:`~cdb_cli.runtime.live.LiveVenue` reconciles with MEXC first) and how orders leave (the
simulated venue fills them in the pipeline; the live venue's sender saves, then sends them).

Restart: the portfolio is rebuilt from the stored fills (the source of truth), orders that were
still working are taken back, a halt or today's reduction is resumed
(:class:`~cdb_cli.runtime.control.OperatorControl`), and the indicators are warmed from history
before the first live bar. Every start and stop is an audit record.

Shutdown: :meth:`TradingLoop.run` returns when its ``stop`` event is set: intake stops, the venue
stops, the last batch and an equity snapshot are written, and the feed is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cdb_cli.engine.bars import ClosedBar
from cdb_cli.engine.errors import CdbError, ConfigurationError
from cdb_cli.engine.events import Event, QuoteTick, Topic, TradeTick
from cdb_cli.engine.funnel import hhmm, waits_for
from cdb_cli.engine.records import Mode, OrderRecord
from cdb_cli.engine.ticks import TickDriver
from cdb_cli.runtime.control import OperatorControl, read_operator_audits
from cdb_cli.runtime.lifecycle import (
    START_ACTION,
    STOP_ACTION,
    RunSummary,
    freeze_startup_heap,
    new_run_id,
    run_record,
    start_detail,
    warm_up_record,
)
from cdb_cli.runtime.outbox import BatchWriter, Outbox
from cdb_cli.runtime.schedule import start_jobs
from cdb_cli.runtime.spill import spill_folders
from cdb_cli.runtime.view import LastDecisions
from cdb_cli.runtime.watch import (
    Alert,
    Dependency,
    FeedWatch,
    StoreWatch,
    fill_alerts,
    send_alert,
)

if TYPE_CHECKING:
    from cdb_cli.engine.clock import Clock
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.ports.bus import MessageBus
    from cdb_cli.engine.ports.market import MarketFeed, WarmUp
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.recorders import Recorder
    from cdb_cli.kernel.system import Metrics
    from cdb_cli.runtime.venue import Venue
    from cdb_cli.settings import Settings

__all__ = ["TradingLoop"]

logger = logging.getLogger(__name__)

_MINUTE_NS = 60 * 1_000_000_000


class TradingLoop:
    """One trading run, paper or live by its ``venue``; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        venue: Venue,
        store: Store,
        bus: MessageBus,
        feed: MarketFeed,
        clock: Clock,
        symbols: Sequence[str],
        warm_up: WarmUp | None = None,
        instruments: Mapping[str, Instrument] | None = None,
        alert: Alert | None = None,
        metrics: Metrics | None = None,
        run_id: str | None = None,
        feed_stale_after_s: float | None = None,
        bar_interval_ns: int = _MINUTE_NS,
        flush_interval_s: float = 0.5,
        snapshot_interval_s: float = 60.0,
        bar_grace_ns: int = 2_000_000_000,
        finish_timeout_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.venue = venue
        self.store = store
        self.bus = bus
        self.feed = feed
        self.clock = clock
        self.symbols = list(symbols)
        self.run_id = run_id or new_run_id(venue.mode)
        self.summary = RunSummary(self.run_id)
        self.instruments = dict(instruments) if instruments else None
        self._warm_up = warm_up
        self._alert = alert
        stale_after_s = feed_stale_after_s or 2 * settings.stale_data_seconds
        self._watch = FeedWatch(self.symbols, int(stale_after_s * 1_000_000_000))
        self._bar_interval_ns = bar_interval_ns
        self._ticks: TickDriver | None = None
        self._flush_interval_s = flush_interval_s
        self._snapshot_interval_s = snapshot_interval_s
        self._bar_grace_ns = bar_grace_ns
        self._finish_timeout_s = finish_timeout_s
        self._writer = BatchWriter(
            store, self.run_id, asyncio.to_thread, spill_to=spill_folders(settings)
        )
        self.metrics = metrics
        self.recorder: Recorder = self._writer.outbox
        if metrics is not None:
            self.recorder = metrics.recorder(self._writer.outbox)
        self._feed_delay_ns: int | None = None
        self._snapshots_written = 0
        self._bus_health = Dependency("redis", "Publishing (the store has the events)", metrics)
        self._store_watch = StoreWatch(
            settings.store_outage_limit_seconds,
            who=f"Run {self.run_id}",
            alert=alert,
            metrics=metrics,
        )
        self.last_decisions = LastDecisions()
        self.last_beat = 0.0
        """The event loop's time of the loop's last full pass (its batch written): the
        service manager's watchdog is fed while it is recent (``runtime.service``)."""
        """The latest risk decisions, for the operator's screen."""
        self.control = OperatorControl(
            self.symbols, who=f"Run {self.run_id}", run_id=self.run_id, alert=alert
        )
        self.pipeline: TradingPipeline | None = None
        self.started = asyncio.Event()

    # --- start ----------------------------------------------------------------------------------

    async def _prepare(self) -> TradingPipeline:
        from cdb_cli.kernel import build_pipeline

        venue = self.venue
        await self._writer.recover(self.clock.timestamp_ns())
        orders = await self._own_orders(venue.mode)
        portfolio = await venue.open(self, orders)
        pipeline = build_pipeline(
            self.settings,
            venue.mode,
            symbols=self.symbols,
            clock=self.clock,
            recorder=self.recorder,
            run_id=self.run_id,
            portfolio=portfolio,
            instruments=self.instruments,
            trace_interval_ns=self._bar_interval_ns,
        )
        audit = await venue.resume(self, pipeline, orders)
        if self.metrics is not None:
            self.metrics.set_risk_limits(pipeline.risk.limits)
        await self.control.resume(pipeline, self.store, self.clock.timestamp_ns())
        await self._audit_start(venue.mode, **audit)
        return pipeline

    async def _own_orders(self, mode: Mode) -> list[OrderRecord]:
        """The stored orders, refusing a database that holds another mode's orders: paper and
        live accounts never share one."""
        orders: list[OrderRecord] = await asyncio.to_thread(self.store.orders)
        foreign = sorted({o.mode for o in orders if o.mode != mode})
        if foreign:
            raise ConfigurationError(
                f"This database holds {', '.join(foreign)} orders; a {mode} account needs its "
                "own CDB_DATABASE_URL"
            )
        return orders

    async def _audit_start(self, mode: Mode, **extra: str) -> None:
        """The start's audit record (:func:`start_detail`: no secrets)."""
        detail = start_detail(self.settings, mode, self.symbols, self.instruments, self.summary)
        detail.update(extra, bar_interval_ns=str(self._bar_interval_ns))
        record = run_record(START_ACTION, self.run_id, self.clock.timestamp_ns(), detail)
        await asyncio.to_thread(self.store.add_audit, record)

    async def _warm(self, pipeline: TradingPipeline) -> None:
        if self._warm_up is None:
            return
        for symbol in self.symbols:
            try:
                history = await self._warm_up(symbol)
            except Exception as e:  # a warm-up that fails must not stop trading later
                logger.warning("Warm-up of %s failed: %s", symbol, e)
                continue
            await self._audit_warm_up(symbol, history)
            logger.info("Warmed %s with %d bars", symbol, pipeline.warm_up(symbol, history))

    async def _audit_warm_up(
        self, symbol: str, history: Sequence[tuple[int, float, float]]
    ) -> None:
        record = warm_up_record(self.run_id, self.clock.timestamp_ns(), symbol, history)
        try:
            await asyncio.to_thread(self.store.add_audit, record)
        except CdbError as e:  # no trade waits for paperwork
            logger.warning("Could not record the warm-up of %s: %s", symbol, e)

    # --- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> RunSummary:
        """Prepare, trade until ``stop`` is set, then flush and close; return the summary (or
        raise what stopped the venue)."""
        pipeline = await self._prepare()
        self.pipeline = pipeline
        ticks = self._ticks = TickDriver(pipeline, self._bar_interval_ns, on_close=self._closed)
        await self._warm(pipeline)
        scheduler = start_jobs(self, snapshot_interval_s=self._snapshot_interval_s)
        await self.feed.start()
        self._watch.start(self.clock.timestamp_ns())
        await self.venue.start(pipeline, stop)
        freeze_startup_heap()
        self.started.set()
        loop = asyncio.get_running_loop()
        next_flush = self.last_beat = loop.time() + self._flush_interval_s
        nudge = self.venue.nudge
        try:
            while not stop.is_set():
                event = await self._next_event(0.2)
                if event is not None:
                    self._on_event(ticks, event)
                    nudge(pipeline)
                    self._trace_bars(pipeline)
                if loop.time() >= next_flush:
                    now = self.clock.timestamp_ns()
                    ticks.close_due(now - self._bar_grace_ns, closed_at=now)
                    nudge(pipeline)
                    self._trace_bars(pipeline)
                    await self._flush(pipeline)
                    self.venue.flushed(pipeline, self.clock.timestamp_ns())
                    await self._pick_up_operator(pipeline)
                    await self._check_feed()
                    self.last_beat = loop.time()
                    next_flush = self.last_beat + self._flush_interval_s
        except Exception as e:
            await self.send_alert(
                "cdb run stopped by an error", f"Run {self.run_id} failed: {type(e).__name__}: {e}"
            )
            raise
        finally:
            scheduler.shutdown(wait=False)
            with contextlib.suppress(Exception):
                await self.feed.stop()
            await self.venue.stop(pipeline)
            await self._finish(pipeline)
            gc.unfreeze()  # a process that goes on (tests, a restart) collects them again
        if self.venue.failure is not None:
            raise self.venue.failure
        return self.summary

    async def _next_event(self, timeout_s: float) -> Event | None:
        # wait_for, not runtime.waits: measured on 2026-12-07, the loop taking its events
        # without a task per wait ran the benchmark's RSS 15-20 MB higher in the first hour
        # (anonymous memory, not Python objects: a high-water mark of the faster loop's
        # batches) and let it grow 2-10 MB in the third, against 0-3 MB (benchmarks/latency.py).
        try:
            return await asyncio.wait_for(self.feed.events.get(), timeout_s)
        except TimeoutError:
            return None

    def _on_event(self, ticks: TickDriver, event: Event) -> None:
        # No garbage collection while an event may be on its way to an order: a young-generation
        # pass here costs 100-300 us (the loop's own garbage), as much as the whole decision.
        # Deferred, it runs at the loop's next allocation, after the order was handed over; the
        # collector does the same work, only not on the order's path.
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            self.summary.market_events += 1
            self.recorder.event(Topic.MARKET_DATA, event)
            if event.symbol not in self.symbols:
                return
            now = self.clock.timestamp_ns()
            self._watch.seen(event.symbol, now)
            self._feed_delay_ns = now - event.ts_event  # exchange time to our hands (feed lag)
            if isinstance(event, TradeTick):
                ticks.trade(event.symbol, event.ts_event, float(event.price), float(event.quantity))
            elif isinstance(event, QuoteTick):
                ticks.quote(event.symbol, event.ts_event, event.bid, event.ask)
            # open klines (Bar) are only stored: the strategy's closed bars come from the trades
        finally:
            if collecting:
                gc.enable()

    def _closed(self, bar: ClosedBar, closed_at: int) -> None:
        """A bar the strategy has seen: counted and stored, with the time it closed at (the
        closing trade's, or the clock's), which ``cdb parity`` closes it at again."""
        self.summary.bars += 1
        self.recorder.event(Topic.MARKET_DATA, bar.to_event(self.run_id, closed_at=closed_at))

    def _trace_bars(self, pipeline: TradingPipeline) -> None:
        """The strategy traces of the bars just closed, built once their orders are out (a
        bar of another symbol closing in the same round is on an order's path), each logged."""
        tracer = pipeline.tracer
        if tracer is None or not tracer.pending:
            return
        for trace in tracer.flush():
            logger.info(
                "%s bar %s: %s%s",
                trace.symbol,
                hhmm(trace.ts_event),
                f"{trace.signal} signal; " if trace.signal else "waits for ",
                waits_for(trace),
            )

    # --- writing ----------------------------------------------------------------------------------

    def feed_ages(self) -> dict[str, float | None]:
        """Seconds since each symbol's last market event (None: nothing yet): for /ready."""
        return self._watch.ages(self.clock.timestamp_ns())

    def readiness(self) -> list[str]:
        """Why this run cannot trade now (empty: ready), for ``/ready`` and the screen."""
        from cdb_cli.engine.health import readiness_reasons

        if self.pipeline is None:
            return ["starting: connecting to the market"]
        reasons = readiness_reasons(
            feed_ages=self.feed_ages(),
            max_feed_age_s=self.settings.stale_data_seconds,
            database_up=self.database_up,
            bus_up=self.bus_up,
            trading_state=self.pipeline.trading_state,
        )
        return reasons + self.venue.readiness()

    async def _check_feed(self) -> None:
        for subject, body in self._watch.check(self.clock.timestamp_ns(), self.run_id):
            await self.send_alert(subject, body)

    async def send_alert(self, subject: str, body: str) -> None:
        """Mail an alert through the run's notifier; a failure is a warning, never an error."""
        await send_alert(self._alert, subject, body)

    @property
    def feed_delay_ns(self) -> int | None:
        """Exchange time to our hands of the latest market event (feed lag)."""
        return self._feed_delay_ns

    @property
    def bus_up(self) -> bool:
        """False from a failed publication until one succeeds again."""
        return self._bus_health.up

    @property
    def database_up(self) -> bool:
        """False from a failed store write (or ping) until a write succeeds again."""
        return self._writer.store_up

    @database_up.setter
    def database_up(self, up: bool) -> None:
        self._writer.store_up = up

    async def _flush(self, pipeline: TradingPipeline) -> None:
        """Write the batch (the :class:`BatchWriter`: a store that fails keeps it for the next
        flush, so a database outage loses nothing), then publish it (a bus that fails only
        loses the publication: the store has it)."""
        writer = self._writer
        writer.state_changes.extend(self.control.new_state_changes(pipeline))
        await self.control.alert_new_halts(pipeline)
        self._publish_portfolio(pipeline)
        if not writer.pending() and len(pipeline.snapshots) == self._snapshots_written:
            return
        if writer.outbox.fills:  # the positions as the fills left them
            writer.positions[:] = pipeline.portfolio.positions_records(self.clock.timestamp_ns())
        batch = await writer.write()
        pipeline.store_down = await self._store_watch.note(self.database_up)
        if batch is None:
            return
        if self.settings.notify_fills:
            for subject, body in fill_alerts(batch.fills, f"Run {self.run_id}"):
                await self.send_alert(subject, body)
        self.last_decisions.note(batch.events)
        for snapshot in pipeline.snapshots[self._snapshots_written :]:  # each day's close
            try:
                await asyncio.to_thread(self.store.add_equity_snapshot, snapshot)
            except CdbError:  # the next flush tries it again
                self.database_up = False
                return
            self._snapshots_written += 1
        stats = self.summary
        stats.signals = sum(pipeline.stats.signals.values())
        stats.orders = pipeline.stats.orders
        stats.fills = pipeline.stats.fills
        if batch.events:
            await self._publish(batch)

    async def _publish(self, batch: Outbox) -> None:
        """Publish a stored batch; a bus that fails only loses the publication (the store has
        it): one line when it goes and when it is back, ``/ready`` says ``bus down``."""
        try:
            await self.bus.publish_many(batch.events)
        except CdbError as e:
            self._bus_health.failed(e)
        else:
            self._bus_health.answered()

    def _publish_portfolio(self, pipeline: TradingPipeline) -> None:
        if self.metrics is None:
            return
        pipeline.finish()
        portfolio = pipeline.portfolio
        equity = portfolio.equity()
        self.metrics.set_portfolio(
            equity=equity,
            daily_drawdown_pct=portfolio.daily_drawdown_pct(),
            exposure_pct=portfolio.exposure() / equity * 100 if equity > 0 else 0,
            trading_state=pipeline.trading_state,
            drawdown_from_peak_pct=portfolio.drawdown_from_peak_pct(),
        )
        self.metrics.set_strategy_errors(pipeline.strategy_errors)

    # --- the operator ---------------------------------------------------------------------------

    async def _pick_up_operator(self, pipeline: TradingPipeline) -> None:
        """An audited ``cdb risk halt`` in the store halts new entries without a restart (with
        ``--flatten`` it also sells every position), an audited ``cdb risk reset`` resumes
        trading; a flatten under way goes on at each flush."""
        try:
            halts, resets = await read_operator_audits(self.store)
        except CdbError:  # the store is down: the next flush reads them again
            self.database_up = False
        else:
            self.control.pick_up(pipeline, halts, resets, self.clock.timestamp_ns())
        self.control.flatten.step(pipeline, self.clock.timestamp_ns())

    def halt(self, reason: str, *, flatten: bool = False, actor: str = "") -> None:
        """The kill switch, in process (:meth:`OperatorControl.halt`); no audit record."""
        if self.pipeline is not None:
            self.control.halt(
                self.pipeline, self.clock.timestamp_ns(), reason, actor=actor, flatten=flatten
            )

    def halt_now(self, reason: str, *, via: str) -> None:
        """Halt at once (SIGUSR1), audited in the background (:meth:`OperatorControl.halt_now`)."""
        self.control.halt_now(self.pipeline, self.store, self.clock.timestamp_ns(), reason, via=via)

    # --- jobs (runtime/schedule.py starts them) -------------------------------------------------

    async def roll_day(self) -> None:
        """The UTC day roll-over (a job at 00:00:01 UTC): new day-start equity for the daily
        drawdown rule, a reduction lifted, the closing snapshot written, in a quiet market too."""
        if self.pipeline is not None:
            self.pipeline.roll_day_if_due(self.clock.timestamp_ns())  # the flush writes it

    async def snapshot(self) -> None:
        """An equity snapshot at the latest marks (a job, and at the stop)."""
        if self.pipeline is None:
            return
        self.pipeline.finish()  # the ledger at the latest marks
        snapshot = self.pipeline.portfolio.snapshot(self.clock.timestamp_ns())
        await asyncio.to_thread(self.store.add_equity_snapshot, snapshot)

    async def _finish(self, pipeline: TradingPipeline) -> None:
        """The last writes: the batch (retried for a while if the store is down; what still
        cannot be written goes to a local spill file, never nowhere), a snapshot, the stop audit.
        """
        deadline = asyncio.get_running_loop().time() + self._finish_timeout_s
        self._trace_bars(pipeline)
        await self._flush(pipeline)
        while self._writer.pending() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            await self._flush(pipeline)
        await self._writer.finish(0.0)  # what the store still would not take: spilled
        summary = self.summary
        if pipeline.tracer is not None:
            summary.strategy = [pipeline.tracer.funnel_line(symbol) for symbol in self.symbols]
        try:
            await self.snapshot()
            counts = ("market_events", "bars", "signals", "orders", "fills")
            detail = {name: str(getattr(summary, name)) for name in counts}
            record = run_record(STOP_ACTION, self.run_id, self.clock.timestamp_ns(), detail)
            await asyncio.to_thread(self.store.add_audit, record)
        except CdbError as e:
            logger.error("Could not write the final snapshot and stop record: %s", e)
