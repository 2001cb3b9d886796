"""The paper trading loop: live market data → pipeline → store and bus, resumable after a stop.

:class:`PaperRuntime` owns one :class:`~cdb_cli.engine.pipeline.TradingPipeline` (built by the
kernel for ``Mode.PAPER``) and feeds it from a :class:`MarketFeed`: trades fill working
orders and are aggregated into closed bars for the strategy (:class:`BarBuilder`), quotes give the
spread. Everything it sees and does — market data, signals, risk decisions with their traces,
approvals, execution reports, orders, fills, positions — is written to the store in batches
(in a worker thread) and then published on the bus.

Restart: the portfolio is rebuilt from the stored fills (the source of truth), orders that were
still working are taken back, a halt or today's reduction is resumed, and the indicators are
warmed from history before the first live bar. Every start and stop is an audit record.

Shutdown: :meth:`run` returns when its ``stop`` event is set: intake stops, the last batch and an
equity snapshot are written, and the feed is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import getpass
import logging
import socket
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from cdb_cli import __version__
from cdb_cli.engine.bars import BarBuilder, ClosedBar
from cdb_cli.engine.errors import CdbError, ConfigurationError
from cdb_cli.engine.events import Event, QuoteTick, Topic, TradeTick
from cdb_cli.engine.funnel import hhmm, waits_for
from cdb_cli.engine.halts import describe_reset
from cdb_cli.engine.instruments import split_symbol
from cdb_cli.engine.portfolio import NS_PER_DAY
from cdb_cli.engine.records import AuditRecord, OrderRecord
from cdb_cli.engine.risk import TradingState
from cdb_cli.engine.runs import (
    HALT_ACTION,
    RESET_ACTION,
    OperatorActions,
    halt_reason,
    trading_status,
)
from cdb_cli.runtime.flatten import Flatten
from cdb_cli.runtime.outbox import BatchWriter, Outbox
from cdb_cli.runtime.watch import Alert, FeedWatch, halt_alerts, send_alert
from cdb_cli.services.jobs import BACKUP, DAILY_CHECK, run_cdb, schedule_times
from cdb_cli.services.restore import restore_orders, restore_portfolio

if TYPE_CHECKING:
    from cdb_cli.engine.clock import Clock
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.ports.bus import MessageBus
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.recorders import Recorder
    from cdb_cli.kernel.system import Metrics
    from cdb_cli.settings import Settings

__all__ = ["MarketFeed", "PaperRuntime", "RunSummary", "WarmUp", "new_run_id"]

logger = logging.getLogger(__name__)

START_ACTION = "run_start"
STOP_ACTION = "run_stop"
STARTING_CASH_KEY = "paper.starting_cash"
_MINUTE_NS = 60 * 1_000_000_000

WarmUp = Callable[[str], Awaitable[Sequence[tuple[int, float, float]]]]
"""History of a symbol for the indicators: (ts_close ns, close, volume) of closed bars."""


class MarketFeed(Protocol):
    """Live market data as engine events (``MexcDataClient`` is one)."""

    events: asyncio.Queue[Event]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class RunSummary:
    """What one run did (returned by :meth:`PaperRuntime.run`, also the stop audit)."""

    run_id: str
    market_events: int = 0
    bars: int = 0
    signals: int = 0
    orders: int = 0
    fills: int = 0
    restored_fills: int = 0
    restored_orders: int = 0
    strategy: list[str] = field(default_factory=list)
    """Per symbol, the strategy's part of the funnel (bars, evaluated, each condition's passes,
    signals), for the stop line."""


def _actor() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"[:64]
    except (KeyError, OSError):  # no passwd entry in a container
        return f"cdb@{socket.gethostname()}"[:64]


def new_run_id() -> str:
    """A fresh paper run id, ``p`` + 11 hex digits; event and client order ids start with it."""
    return "p" + uuid.uuid4().hex[:11]


def freeze_startup_heap() -> None:
    """Take what start-up built (modules, schemas, settings, the restored ledger, the warmed
    indicators, the connections) out of the collector's sight (``gc.freeze``): a full collection
    then walks only what the run allocated since. Measured on the 2-vCPU host: a full pass over
    the 137,000 objects the imports alone leave takes 33-46 ms (60-200 ms in a component process
    at its stop), 0 ms once frozen. Frozen objects are still freed by reference counting; the
    caller unfreezes them (``gc.unfreeze``) when its run ends."""
    gc.collect()
    gc.freeze()


class PaperRuntime:
    """One paper trading run; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
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
        self.store = store
        self.bus = bus
        self.feed = feed
        self.clock = clock
        self.symbols = list(symbols)
        self.run_id = run_id or new_run_id()
        self.summary = RunSummary(self.run_id)
        self._warm_up = warm_up
        self._instruments = dict(instruments) if instruments else None
        self._alert = alert
        stale_after_s = feed_stale_after_s or 2 * settings.stale_data_seconds
        self._watch = FeedWatch(self.symbols, int(stale_after_s * 1_000_000_000))
        self._bars = BarBuilder(bar_interval_ns)
        self._flush_interval_s = flush_interval_s
        self._snapshot_interval_s = snapshot_interval_s
        self._bar_grace_ns = bar_grace_ns
        self._finish_timeout_s = finish_timeout_s
        self._writer = BatchWriter(store, self.run_id, self._call)
        self._outbox = self._writer.outbox
        self.metrics = metrics
        self._recorder: Recorder = self._outbox
        if metrics is not None:
            self._recorder = metrics.recorder(self._outbox)
        self._feed_delay_ns: int | None = None
        self._snapshots_written = 0
        self._states_alerted = 0
        self.last_decisions: deque[tuple[str, str, str, str, str, str]] = deque(maxlen=50)
        """(time, symbol, side, verdict, failing reasons, decision id) of the latest decisions
        (live view; ``cdb explain ID`` shows one in full)."""
        self._states_written = 0
        self._operator = OperatorActions(set(), set())
        self._flatten = Flatten(self.symbols)
        self._audit_writes: set[asyncio.Task[None]] = set()
        self.pipeline: TradingPipeline | None = None
        self.started = asyncio.Event()

    # --- start ----------------------------------------------------------------------------------

    async def _call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store call in a worker thread (the Store port is synchronous)."""
        return await asyncio.to_thread(function, *args, **kwargs)

    async def _prepare(self) -> TradingPipeline:
        from cdb_cli.engine.records import Mode
        from cdb_cli.kernel import build_pipeline

        store = self.store
        orders = await self._own_orders("paper")
        stored_cash = await self._call(store.get_config, STARTING_CASH_KEY)
        if stored_cash is None:
            stored_cash = str(self.settings.starting_cash)
            await self._call(store.set_config, STARTING_CASH_KEY, stored_cash)
        fills = await self._call(store.fills)
        self.summary.restored_fills = len(fills)
        quote = split_symbol(self.symbols[0])[1]
        portfolio = await self._call(restore_portfolio, store, Decimal(stored_cash), fills, quote)
        pipeline = build_pipeline(
            self.settings,
            Mode.PAPER,
            symbols=self.symbols,
            clock=self.clock,
            recorder=self._recorder,
            run_id=self.run_id,
            portfolio=portfolio,
            instruments=self._instruments,
            trace_interval_ns=self._bars.interval_ns,
        )
        self.summary.restored_orders = await self._call(
            restore_orders, store, pipeline, orders, self.symbols
        )
        if self.metrics is not None:
            self.metrics.set_risk_limits(pipeline.risk.limits)
        await self._restore_state(pipeline)
        if fills or orders:  # a restart: say what it resumed (the run_start audit has it too)
            held = sum(1 for p in portfolio.positions.values() if p.quantity > 0)
            logger.info(
                "Resumed the paper account: %d fills, %d working orders; cash %s %s, %d "
                "positions open",
                len(fills),
                self.summary.restored_orders,
                f"{portfolio.cash.normalize():f}",
                quote,
                held,
            )
        await self._audit_start("paper")
        return pipeline

    async def _own_orders(self, mode: str) -> list[OrderRecord]:
        """The stored orders, refusing a database that holds another mode's orders: paper and
        live accounts never share one."""
        orders: list[OrderRecord] = await self._call(self.store.orders)
        foreign = sorted({o.mode for o in orders if o.mode != mode})
        if foreign:
            raise ConfigurationError(
                f"This database holds {', '.join(foreign)} orders; a {mode} account needs its "
                "own CDB_DATABASE_URL"
            )
        return orders

    async def _audit_start(self, mode: str, **extra: str) -> None:
        """The start's audit record: run id, mode, cdb version, settings hash (no secrets)."""
        from cdb_cli.settings_io import settings_hash

        await self._call(
            self.store.add_audit,
            AuditRecord(
                ts_event=self.clock.timestamp_ns(),
                action=START_ACTION,
                actor=_actor(),
                run_id=self.run_id,
                detail={
                    "mode": mode,
                    "cdb_version": __version__,
                    "settings_sha256": settings_hash(self.settings),
                    "symbols": ",".join(self.symbols),
                    "restored_fills": str(self.summary.restored_fills),
                    "restored_orders": str(self.summary.restored_orders),
                    **extra,
                },
            ),
        )

    async def _restore_state(self, pipeline: TradingPipeline) -> None:
        status = await self._call(trading_status, self.store)
        now = self.clock.timestamp_ns()
        same_day = (
            status.since_ns is not None and status.since_ns // NS_PER_DAY == now // NS_PER_DAY
        )
        if status.state is TradingState.HALTED or (
            status.state is TradingState.REDUCING and same_day
        ):
            pipeline.set_trading_state(status.state, now, f"resumed: {status.reason}")
            # already in the store, and already mailed when it happened
            self._states_written = self._states_alerted = len(pipeline.stats.state_changes)
        resets = await self._call(self.store.audits, action=RESET_ACTION)
        halts = await self._call(self.store.audits, action=HALT_ACTION)
        self._operator = OperatorActions.seen(halts, resets)  # a halt resumed above

    async def _warm(self, pipeline: TradingPipeline) -> None:
        if self._warm_up is None:
            return
        for symbol in self.symbols:
            try:
                history = await self._warm_up(symbol)
            except Exception as e:  # a warm-up that fails must not stop trading later
                logger.warning("Warm-up of %s failed: %s", symbol, e)
                continue
            logger.info("Warmed %s with %d bars", symbol, pipeline.warm_up(symbol, history))

    # --- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> RunSummary:
        """Prepare, trade until ``stop`` is set, then flush and close; return the summary."""
        pipeline = await self._prepare()
        self.pipeline = pipeline
        await self._warm(pipeline)
        scheduler = self._scheduler()
        await self.feed.start()
        self._watch.start(self.clock.timestamp_ns())
        await self._begin(pipeline)
        freeze_startup_heap()
        self.started.set()
        loop = asyncio.get_running_loop()
        next_flush = loop.time() + self._flush_interval_s
        try:
            while not stop.is_set():
                event = await self._next_event(0.2)
                if event is not None:
                    self._on_event(pipeline, event)
                    self._trace_bars(pipeline)
                if loop.time() >= next_flush:
                    self._close_due_bars(pipeline)
                    self._trace_bars(pipeline)
                    await self._flush(pipeline)
                    await self._pick_up_halts(pipeline)
                    await self._pick_up_resets(pipeline)
                    await self._check_feed()
                    next_flush = loop.time() + self._flush_interval_s
        except Exception as e:
            await self._send_alert(
                "cdb run stopped by an error", f"Run {self.run_id} failed: {type(e).__name__}: {e}"
            )
            raise
        finally:
            scheduler.shutdown(wait=False)
            with contextlib.suppress(Exception):
                await self.feed.stop()
            await self._end(pipeline)
            await self._finish(pipeline)
            gc.unfreeze()  # a process that goes on (tests, a restart) collects them again
        return self.summary

    async def _begin(self, pipeline: TradingPipeline) -> None:
        """Called once the feed runs, before the first event (the live venue starts here)."""

    async def _end(self, pipeline: TradingPipeline) -> None:
        """Called when intake has stopped, before the last writes (the live venue stops here)."""

    async def _next_event(self, timeout_s: float) -> Event | None:
        # wait_for, not runtime.waits: measured on 2026-12-07, the loop taking its events
        # without a task per wait ran the benchmark's RSS 15-20 MB higher in the first hour
        # (anonymous memory, not Python objects: a high-water mark of the faster loop's
        # batches) and let it grow 2-10 MB in the third, against 0-3 MB (benchmarks/latency.py).
        try:
            return await asyncio.wait_for(self.feed.events.get(), timeout_s)
        except TimeoutError:
            return None

    def _on_event(self, pipeline: TradingPipeline, event: Event) -> None:
        # No garbage collection while an event may be on its way to an order: a young-generation
        # pass here costs 100-300 us (the loop's own garbage), as much as the whole decision.
        # Deferred, it runs at the loop's next allocation, after the order was handed over; the
        # collector does the same work, only not on the order's path.
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            self.summary.market_events += 1
            self._recorder.event(Topic.MARKET_DATA, event)
            if event.symbol not in self.symbols:
                return
            now = self.clock.timestamp_ns()
            self._watch.seen(event.symbol, now)
            self._feed_delay_ns = now - event.ts_event  # exchange time to our hands (feed lag)
            if isinstance(event, TradeTick):
                price, quantity = float(event.price), float(event.quantity)
                closed = self._bars.on_trade(event.symbol, event.ts_event, price, quantity)
                if closed is not None:
                    self._close_bar(pipeline, closed)
                pipeline.on_trade(event.symbol, event.ts_event, price, quantity)
            elif isinstance(event, QuoteTick):
                pipeline.on_quote(event.symbol, event.ts_event, event.bid, event.ask)
            # open klines (Bar) are only stored: the strategy's closed bars come from the trades
        finally:
            if collecting:
                gc.enable()

    def _close_due_bars(self, pipeline: TradingPipeline) -> None:
        for bar in self._bars.close_due(self.clock.timestamp_ns() - self._bar_grace_ns):
            self._close_bar(pipeline, bar)

    def _close_bar(self, pipeline: TradingPipeline, bar: ClosedBar) -> None:
        self.summary.bars += 1
        # The strategy first: the stored Bar event is paperwork, off the order's path.
        pipeline.on_bar_close(bar.symbol, bar.ts_close, bar.close, bar.volume)
        self._recorder.event(Topic.MARKET_DATA, bar.to_event(self.run_id))

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

    async def _check_feed(self) -> None:
        for subject, body in self._watch.check(self.clock.timestamp_ns(), self.run_id):
            await self._send_alert(subject, body)

    async def _send_alert(self, subject: str, body: str) -> None:
        await send_alert(self._alert, subject, body)

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
        changes = pipeline.stats.state_changes
        writer.state_changes.extend(changes[self._states_written :])
        self._states_written = len(changes)
        await self._alert_new_halts(pipeline)
        self._publish_portfolio(pipeline)
        if not writer.pending() and len(pipeline.snapshots) == self._snapshots_written:
            return
        if writer.outbox.fills:  # the positions as the fills left them
            writer.positions[:] = pipeline.portfolio.positions_records(self.clock.timestamp_ns())
        batch = await writer.write()
        if batch is None:
            return
        self._note_decisions(batch)
        for snapshot in pipeline.snapshots[self._snapshots_written :]:  # each day's close
            await self._call(self.store.add_equity_snapshot, snapshot)
            self._snapshots_written += 1
        stats = self.summary
        stats.signals = sum(pipeline.stats.signals.values())
        stats.orders = pipeline.stats.orders
        stats.fills = pipeline.stats.fills
        if batch.events:
            try:
                await self.bus.publish_many(batch.events)
            except CdbError as e:
                logger.warning("Bus publish failed (the store has the events): %s", e)

    def _note_decisions(self, batch: Outbox) -> None:
        from cdb_cli.engine.events import RiskDecision
        from cdb_cli.engine.report import iso_utc

        for _, event in batch.events:
            if isinstance(event, RiskDecision):
                failing = ", ".join(c.code for c in event.checks if not c.passed) or "-"
                if event.verdict == "nothing_held":
                    failing = "exit signal, nothing held"
                self.last_decisions.append(
                    (
                        iso_utc(event.ts_event),
                        event.symbol,
                        str(event.side),
                        event.verdict,
                        failing,
                        event.event_id,
                    )
                )

    async def _alert_new_halts(self, pipeline: TradingPipeline) -> None:
        changes = pipeline.stats.state_changes
        for subject, body in halt_alerts(changes[self._states_alerted :], f"Run {self.run_id}"):
            await self._send_alert(subject, body)
        self._states_alerted = len(changes)

    async def refresh_health_metrics(self) -> None:
        """Database and Redis round trips and the pool's checked-out connections (a job)."""
        if self.metrics is None:
            return
        ping = getattr(self.store, "ping_ms", None)
        database_ms = None
        if callable(ping):
            try:
                database_ms = await self._call(ping)
            except CdbError:
                self.database_up = False
        redis_ms = None
        redis_ping = getattr(self.bus, "ping_latency_ms", None)
        if callable(redis_ping):
            with contextlib.suppress(CdbError):
                redis_ms = await redis_ping()
        websocket_ms = self._feed_delay_ns / 1e6 if self._feed_delay_ns is not None else None
        self.metrics.set_latency(
            websocket_ms=websocket_ms, database_ms=database_ms, redis_ms=redis_ms
        )
        active = getattr(self.store, "connections_active", None)
        if callable(active):
            self.metrics.set_database_connections(active())

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

    async def _pick_up_resets(self, pipeline: TradingPipeline) -> None:
        """An audited ``cdb risk reset`` in the store resumes trading without a restart. One that
        comes while trading is not halted (a halt and its reset between two checks) is moot: it
        is marked seen, so it cannot end a later halt."""
        resets = await self._call(self.store.audits, action=RESET_ACTION)
        record = self._operator.apply_resets(pipeline, resets, self.clock.timestamp_ns())
        if record is not None:
            logger.warning("Trading resumes: %s", describe_reset(record))

    async def _pick_up_halts(self, pipeline: TradingPipeline) -> None:
        """An audited ``cdb risk halt`` in the store halts new entries without a restart; with
        ``--flatten`` it also sells every position. A flatten under way goes on at each flush."""
        halts = await self._call(self.store.audits, action=HALT_ACTION)
        if self._operator.new_halts(halts):
            resets = await self._call(self.store.audits, action=RESET_ACTION)
            now = self.clock.timestamp_ns()
            for record in self._operator.apply_halts(pipeline, halts, resets, now):
                reason, flatten = record.detail.get("reason", ""), record.detail.get("flatten")
                self._halted(reason, actor=record.actor, flatten=flatten == "yes")
        self._continue_flatten(pipeline)

    def halt(self, reason: str, *, flatten: bool = False, actor: str = "") -> None:
        """The kill switch, in process: no new entry from now on; with ``flatten`` every
        position is sold (now and at each flush until flat). Writes no audit record: the caller
        did (``cdb risk halt``) or :meth:`halt_now` does."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        pipeline.halt(self.clock.timestamp_ns(), halt_reason(reason, actor))
        self._halted(reason, actor=actor, flatten=flatten)

    def _halted(self, reason: str, *, actor: str, flatten: bool) -> None:
        """Say so, and start selling every position with ``flatten``."""
        logger.warning(
            "Run %s %s%s",
            self.run_id,
            halt_reason(reason, actor),
            "; flattening every position" if flatten else "",
        )
        if flatten and self.pipeline is not None:
            self._flatten.start(reason)
            self._continue_flatten(self.pipeline)

    def halt_now(self, reason: str, *, via: str) -> None:
        """Halt at once (a signal handler's call: SIGUSR1), without a flatten, and write the
        audit record (action ``risk_halt``) in the background."""
        record = AuditRecord(
            ts_event=self.clock.timestamp_ns(),
            action=HALT_ACTION,
            actor=_actor(),
            run_id=self.run_id,
            detail={"reason": reason, "flatten": "no", "via": via},
        )
        if self.pipeline is not None:  # before the start, the pick-up or the restore takes it
            self._operator.halts_seen.add(record.ts_event)
            self.halt(reason, actor=record.actor)
        task = asyncio.get_running_loop().create_task(self._write_audit(record))
        self._audit_writes.add(task)
        task.add_done_callback(self._audit_writes.discard)

    async def _write_audit(self, record: AuditRecord) -> None:
        try:
            await self._call(self.store.add_audit, record)
        except CdbError as e:
            logger.error("Could not write the %s audit record: %s", record.action, e)

    def _continue_flatten(self, pipeline: TradingPipeline) -> None:
        self._flatten.step(pipeline, self.clock.timestamp_ns())

    def _scheduler(self) -> Any:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(
            self._snapshot, "interval", seconds=self._snapshot_interval_s, id="equity_snapshot"
        )
        scheduler.add_job(self.refresh_health_metrics, "interval", seconds=10, id="health_metrics")
        scheduler.add_job(self.roll_day, "cron", hour=0, minute=0, second=1, id="utc_day_roll")
        jobs = {"backup": self.scheduled_backup, "daily_check": self.scheduled_daily_check}
        for name, (hour, minute) in schedule_times(self.settings).items():
            scheduler.add_job(jobs[name], "cron", hour=hour, minute=minute, id=name)
        scheduler.start()
        return scheduler

    async def scheduled_backup(self) -> int:
        """The daily backup (``CDB_RUN_BACKUP_AT``): ``cdb backup create --verify --prune`` in a
        child process; a failure is logged and mailed. Returns its exit code."""
        code, last = await run_cdb(self.settings, *BACKUP)
        if code == 0:
            logger.info("Scheduled backup done")
        else:
            logger.error("Scheduled backup failed (exit %d): %s", code, last)
            await self._send_alert(
                "cdb backup failed",
                f"Run {self.run_id}: the scheduled backup exited {code}: {last}",
            )
        return code

    async def scheduled_daily_check(self) -> int:
        """The daily check (``CDB_RUN_DAILY_CHECK_AT``): ``cdb systemcheck --daily``, which mails
        its report itself when SMTP is configured. Exit 4 (a check failed) is in that report;
        anything else is logged and mailed. Returns its exit code."""
        code, last = await run_cdb(self.settings, *DAILY_CHECK)
        if code == 0:
            logger.info("Scheduled daily check: every check passed")
        elif code == 4:
            logger.warning("Scheduled daily check: a check failed (see its report): %s", last)
        else:
            logger.error("Scheduled daily check could not run (exit %d): %s", code, last)
            await self._send_alert(
                "cdb daily check failed",
                f"Run {self.run_id}: cdb systemcheck --daily exited {code}: {last}",
            )
        return code

    async def roll_day(self) -> None:
        """The UTC day roll-over (a job at 00:00:01 UTC): new day-start equity for the daily
        drawdown rule, a reduction lifted, the closing snapshot written, in a quiet market too."""
        if self.pipeline is not None:
            self.pipeline.roll_day_if_due(self.clock.timestamp_ns())  # the flush writes it

    async def _snapshot(self) -> None:
        if self.pipeline is None:
            return
        self.pipeline.finish()  # the ledger at the latest marks
        snapshot = self.pipeline.portfolio.snapshot(self.clock.timestamp_ns())
        await self._call(self.store.add_equity_snapshot, snapshot)

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
            await self._snapshot()
            await self._call(
                self.store.add_audit,
                AuditRecord(
                    ts_event=self.clock.timestamp_ns(),
                    action=STOP_ACTION,
                    actor=_actor(),
                    run_id=self.run_id,
                    detail={
                        "market_events": str(summary.market_events),
                        "bars": str(summary.bars),
                        "signals": str(summary.signals),
                        "orders": str(summary.orders),
                        "fills": str(summary.fills),
                    },
                ),
            )
        except CdbError as e:
            logger.error("Could not write the final snapshot and stop record: %s", e)
