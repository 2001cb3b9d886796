"""Re-running one segment of a stored run the way the run went through it, and gathering both
sides for :func:`~cdb_cli.engine.parity.compare` (see :mod:`cdb_cli.services.parity`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import (
    Bar,
    QuoteTick,
    RiskDecision,
    Topic,
    TradeTick,
    TradingSignal,
)
from cdb_cli.engine.parity import (
    BarDifference,
    DecisionRow,
    Market,
    OrderFills,
    ParityInput,
    Side,
    Window,
)
from cdb_cli.engine.records import OPEN_ORDER_STATUSES, AuditRecord, FillRecord, Mode, OrderRecord
from cdb_cli.engine.risk_inputs import TradingState
from cdb_cli.engine.runs import (
    HALT_ACTION,
    RESET_ACTION,
    STATE_ACTION,
    WARM_UP_ACTION,
    halt_reason,
    resumed_state,
    trading_status,
)
from cdb_cli.services.parity_segments import (
    Segment,
    bar_detail,
    decision_rows,
    recorded_instruments,
    recorded_settings,
    segment_interval,
    venue_faults,
    venue_notes,
)

if TYPE_CHECKING:
    from cdb_cli.engine.bars import ClosedBar
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.portfolio import Portfolio
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.recorders import MemoryRecorder
    from cdb_cli.engine.ticks import TickDriver
    from cdb_cli.settings import Settings

__all__ = ["Collector"]

_NS: Final = 1_000_000_000
_ZERO: Final = Decimal(0)


class Collector:
    """Re-runs segment after segment and gathers both sides for :func:`compare`."""

    def __init__(self, store: Store, symbols: Sequence[str], settings: Settings) -> None:
        self.store = store
        self.symbols = list(symbols)
        self.current = settings
        self.run = Side()
        self.replay = Side()
        self.windows: list[Window] = []
        self.segments: list[tuple[int, int]] = []
        self.run_positions: dict[int, dict[str, Decimal]] = {}
        self.replay_positions: dict[int, dict[str, Decimal]] = {}
        self.bar_differences: list[BarDifference] = []
        self.market = Market(stale_ns=0)
        self.slippage_band = (_ZERO, _ZERO)

    # --- one segment ---------------------------------------------------------------------------

    def replay_segment(
        self,
        segment: Segment,
        fills: Sequence[FillRecord],
        orders: Sequence[OrderRecord],
        calibration: Mapping[str, Decimal],
        since: int,
        until: int,
    ) -> str:
        from cdb_cli.engine.recorders import MemoryRecorder
        from cdb_cli.engine.ticks import TickDriver
        from cdb_cli.kernel import build_pipeline

        settings, note = recorded_settings(segment, self.current)
        if calibration:
            settings = settings.model_copy(
                update={"paper_latency_ms": int(calibration.get("latency_ms", _ZERO))}
            )
        self.market.stale_ns = settings.stale_data_seconds * _NS
        self.slippage_band = (settings.paper_slippage_min_pct, settings.paper_slippage_max_pct)
        symbols = self.symbols
        interval = segment_interval(segment)
        instruments = recorded_instruments(segment, settings, symbols)
        recorder = MemoryRecorder(keeps_events=True)
        clock = TestClock(segment.started_ns)
        before = [f for f in fills if f.ts_event < segment.started_ns]
        pipeline = build_pipeline(
            settings,
            Mode.PAPER,
            symbols=symbols,
            clock=clock,
            recorder=recorder,
            run_id=_rerun_id(segment),
            instruments=instruments,
            portfolio=self._opening(segment, settings, before),
            trace_interval_ns=interval,
        )
        opening = {x: pipeline.portfolio.quantity(x) for x in symbols}
        run_decisions = self._run_side(segment, orders, fills)
        self._resume(segment, pipeline, orders, before)
        self._warm(segment, pipeline)
        decision_times = {(r.symbol, r.bar_ns): r.ts_ns for r in run_decisions}

        def decision_time(bar: ClosedBar, closed_at: int) -> int:
            return decision_times.get((bar.symbol, bar.ts_close), closed_at)

        built: dict[tuple[str, int], ClosedBar] = {}

        def closed(bar: ClosedBar, _closed_at: int) -> None:
            built[(bar.symbol, bar.ts_open)] = bar
            if pipeline.tracer is not None:
                pipeline.tracer.flush()

        ticks = TickDriver(
            pipeline, interval, on_close=closed, clock=clock, decision_time=decision_time
        )
        stored_bars = self._stored_bars(segment, interval)
        self._drive(segment, ticks, stored_bars, pipeline)
        pipeline.finish()
        self._replay_side(segment, pipeline, recorder)
        self._compare_bars(stored_bars, built)
        self._clip(segment, since, until, opening)
        return note

    def _opening(
        self, segment: Segment, settings: Settings, before: Sequence[FillRecord]
    ) -> Portfolio:
        """The account the run started the segment with: its fills before, the snapshot and
        the last trade prices before it (as the run's own restore read them then)."""
        from cdb_cli.engine.instruments import split_symbol
        from cdb_cli.engine.portfolio import Portfolio
        from cdb_cli.services.restore import LIVE_STARTING_CASH_KEY, STARTING_CASH_KEY

        store = self.store
        key = LIVE_STARTING_CASH_KEY if segment.mode == "live" else STARTING_CASH_KEY
        cash = store.get_config(key)
        starting = Decimal(cash) if cash is not None else settings.starting_cash
        snapshots = store.equity_snapshots(until_ns=segment.started_ns, limit=1, descending=True)
        marks: dict[str, Decimal] = {}
        for symbol in {f.symbol for f in before}:
            last = store.events(
                TradeTick, symbol=symbol, until_ns=segment.started_ns, limit=1, descending=True
            )
            if last:
                marks[symbol] = last[0].price
        return Portfolio.restore(
            starting,
            (),
            snapshots[0] if snapshots else None,
            before,
            marks=marks,
            quote_currency=split_symbol(self.symbols[0])[1],
        )

    def _resume(
        self,
        segment: Segment,
        pipeline: TradingPipeline,
        orders: Sequence[OrderRecord],
        before: Sequence[FillRecord],
    ) -> None:
        """The orders still working when the segment began, and a halt it resumed. An order
        the re-run of the segment before also had working (the same decision) goes on as the
        re-run's own, so its fills are matched with the run's; else the run's is taken."""
        start = segment.started_ns
        run_keys = {row.decision_id: _key(row) for row in self.run.decisions}
        replay_keys = {row.decision_id: _key(row) for row in self.replay.decisions}
        ours = {
            replay_keys[o.order.decision_id]: o
            for o in self.replay.orders.values()
            if o.order.status in OPEN_ORDER_STATUSES and o.order.decision_id in replay_keys
        }
        for order in orders:
            if order.symbol not in self.symbols or order.ts_created >= start:
                continue
            if order.status not in OPEN_ORDER_STATUSES and order.ts_updated < start:
                continue
            own = ours.get(run_keys.get(order.decision_id, ("", 0, "")))
            if own is not None:
                pipeline.execution.restore(own.order, own.fills)
                continue
            mine = [f for f in before if f.client_order_id == order.client_order_id]
            status = "PARTIALLY_FILLED" if mine else "NEW"
            pipeline.execution.restore(order.model_copy(update={"status": status}), mine)
        pipeline.restore_working()
        self._resume_state(start, pipeline)

    def _resume_state(self, start: int, pipeline: TradingPipeline) -> None:
        """A halt (or today's reduction) in force when the segment began, as the run resumed
        it."""
        status = trading_status(self.store, until_ns=start)
        state = resumed_state(status, start)
        if state is not None:
            pipeline.set_trading_state(state, start, f"resumed: {status.reason}")

    def _warm(self, segment: Segment, pipeline: TradingPipeline) -> None:
        for record in self.store.audits(action=WARM_UP_ACTION, since_ns=segment.started_ns):
            symbol = record.detail.get("symbol", "")
            if record.run_id not in segment.run_ids or symbol not in self.symbols:
                continue
            bars = [(int(t), float(c), float(v)) for t, c, v in json.loads(record.detail["bars"])]
            pipeline.warm_up(symbol, bars)

    def _stored_bars(self, segment: Segment, interval: int) -> dict[tuple[str, int], Bar]:
        """The closed bars the segment stored (a bar is stored by its open time: the first may
        have opened an interval before the segment's data begins)."""
        bars: dict[tuple[str, int], Bar] = {}
        since = segment.begin_ns - interval
        for symbol in self.symbols:
            for bar in self.store.events(
                Bar, symbol=symbol, since_ns=since, until_ns=segment.end_ns
            ):
                if bar.source in segment.run_ids and bar.closed:
                    bars[(symbol, bar.ts_event)] = bar
        return bars

    def _market(self, segment: Segment) -> list[TradeTick | QuoteTick]:
        events: list[TradeTick | QuoteTick] = []
        for symbol in self.symbols:
            for kind in (TradeTick, QuoteTick):
                events.extend(
                    self.store.events(
                        kind, symbol=symbol, since_ns=segment.begin_ns, until_ns=segment.end_ns + 1
                    )
                )
        events.sort(key=lambda e: e.ts_event)  # stable: each type in its stored order
        return events

    def _operator(self, segment: Segment) -> list[tuple[int, AuditRecord]]:
        """(when the run picked it up, the audited halt or reset), in time order, with its
        window named."""
        changes = [
            a
            for a in self.store.audits(
                action=STATE_ACTION, since_ns=segment.started_ns, until_ns=segment.end_ns + 1
            )
            if a.run_id in segment.run_ids
        ]
        acts: list[tuple[int, AuditRecord]] = []
        picks = ((HALT_ACTION, TradingState.HALTED), (RESET_ACTION, TradingState.ACTIVE))
        for action, state in picks:
            for record in self.store.audits(
                action=action, since_ns=segment.started_ns, until_ns=segment.end_ns + 1
            ):
                picked = next(
                    (
                        c.ts_event
                        for c in changes
                        if c.ts_event >= record.ts_event and c.detail.get("state") == state
                    ),
                    None,
                )
                if picked is not None:
                    acts.append((picked, record))
        acts.sort(key=lambda item: item[0])
        halted_at: int | None = None
        for picked, record in acts:
            if record.action == HALT_ACTION:
                halted_at = record.ts_event
            else:
                start = halted_at if halted_at is not None else record.ts_event
                self.windows.append(
                    Window(
                        "operator",
                        start,
                        picked + segment_interval(segment),
                        f"halted by the operator ({record.actor}), then reset: "
                        f"{record.detail.get('reason', '')}",
                    )
                )
                halted_at = None
        if halted_at is not None:
            self.windows.append(
                Window("operator", halted_at, segment.end_ns, "halted by the operator")
            )
        return acts

    def _drive(
        self,
        segment: Segment,
        ticks: TickDriver,
        stored_bars: Mapping[tuple[str, int], Bar],
        pipeline: TradingPipeline,
    ) -> None:
        """The stored market through the driver, bars the run's clock closed closed at its
        time, the operator's acts applied where the run applied them."""
        clock_closes = sorted(
            (bar.closed_at, bar.ts_event, symbol)
            for (symbol, _), bar in stored_bars.items()
            if bar.closed_at > 0
        )
        interval = ticks.interval_ns
        acts = self._operator(segment)
        events = self._market(segment)
        self.market.begin_segment(events[0].ts_event if events else segment.begin_ns)
        k = a = 0
        last_seen: dict[str, int] = {}
        stale = self.market.stale_ns
        for event in events:
            ts = event.ts_event
            while k < len(clock_closes) and clock_closes[k][0] <= ts:
                closed_at, ts_open, _ = clock_closes[k]
                ticks.close_due(ts_open + interval, closed_at=closed_at)
                k += 1
            while a < len(acts) and acts[a][0] <= ts:
                self._act(pipeline, *acts[a])
                a += 1
            symbol = event.symbol
            previous = last_seen.get(symbol)
            if previous is not None and ts - previous > stale:
                silent = f"no market data for {(ts - previous) / _NS:.1f} s"
                self.windows.append(Window("feed_gap", previous, ts, silent, symbol))
            last_seen[symbol] = ts
            if isinstance(event, TradeTick):
                self.market.add_trade(symbol, ts, event.price)
                ticks.trade(symbol, ts, float(event.price), float(event.quantity))
            else:
                self.market.add_quote(symbol, ts, event.bid, event.ask)
                ticks.quote(symbol, ts, event.bid, event.ask)
        for closed_at, ts_open, _ in clock_closes[k:]:
            if closed_at <= segment.end_ns:
                ticks.close_due(ts_open + interval, closed_at=closed_at)
        for act in acts[a:]:
            self._act(pipeline, *act)

    @staticmethod
    def _act(pipeline: TradingPipeline, picked: int, record: AuditRecord) -> None:
        if record.action == HALT_ACTION:
            pipeline.halt(picked, halt_reason(record.detail.get("reason", ""), record.actor))
            if record.detail.get("flatten") == "yes":
                pipeline.flatten(picked, record.detail.get("reason", ""))
        elif pipeline.trading_state is TradingState.HALTED:
            pipeline.reset_breaker(picked)

    # --- both sides' records -------------------------------------------------------------------

    def _run_side(
        self, segment: Segment, orders: Sequence[OrderRecord], fills: Sequence[FillRecord]
    ) -> list[DecisionRow]:
        since, until = segment.started_ns, segment.end_ns + 1
        # a component-mode run's signals are named by their bar, not by the run: every signal
        # of the stretch, looked up by the decisions' signal ids
        signals = {
            s.event_id: s for s in self.store.events(TradingSignal, since_ns=since, until_ns=until)
        }
        decisions = [
            d
            for d in self.store.events(RiskDecision, since_ns=since, until_ns=until)
            if segment.owns(d.event_id) and d.symbol in self.symbols
        ]
        rows = decision_rows(decisions, signals)
        self.run.decisions.extend(rows)
        mine = [o for o in orders if segment.owns(o.client_order_id)]
        notes = venue_notes(self.store, mine, since, until)
        faults = venue_faults(self.store, since, until)
        by_order: dict[str, list[FillRecord]] = {}
        for fill in fills:
            by_order.setdefault(fill.client_order_id, []).append(fill)
        for order in mine:
            own = sorted(by_order.get(order.client_order_id, []), key=lambda f: f.ts_event)
            fault = faults.get(order.client_order_id, "")
            self.run.orders[order.decision_id] = OrderFills(
                order, tuple(own), notes.get(order.client_order_id, ""), fault
            )
            if fault:
                answered = own[0].ts_event if own else order.ts_updated
                what = f"order {order.client_order_id}: {fault}"
                self.windows.append(
                    Window("venue_fault", order.ts_created, answered, what, order.symbol)
                )
        return rows

    def _replay_side(
        self, segment: Segment, pipeline: TradingPipeline, recorder: MemoryRecorder
    ) -> None:
        signals = {e.event_id: e for t, e in recorder.events if isinstance(e, TradingSignal)}
        decisions = [
            e for t, e in recorder.events if t is Topic.RISK_EVENTS and isinstance(e, RiskDecision)
        ]
        self.replay.decisions.extend(decision_rows(decisions, signals))
        by_order: dict[str, list[FillRecord]] = {}
        for fill in recorder.fills:
            by_order.setdefault(fill.client_order_id, []).append(fill)
        for order in recorder.orders.values():
            before = self.replay.orders.get(order.decision_id)  # taken on from the segment before
            earlier = before.fills if before is not None else ()
            own = sorted([*earlier, *by_order.get(order.client_order_id, [])],
                         key=lambda f: f.ts_event)  # fmt: skip
            self.replay.orders[order.decision_id] = OrderFills(order, tuple(own))

    def _compare_bars(
        self, stored: Mapping[tuple[str, int], Bar], built: Mapping[tuple[str, int], ClosedBar]
    ) -> None:
        for key in sorted(stored.keys() | built.keys()):
            symbol, ts_open = key
            detail = bar_detail(stored.get(key), built.get(key))
            if detail is None:
                continue
            self.bar_differences.append(BarDifference(symbol, ts_open, detail))

    def _clip(
        self, segment: Segment, since: int, until: int, opening: Mapping[str, Decimal]
    ) -> None:
        """The compared stretch of this segment, and what each side held when it began (both
        began the segment with the run's account; a window that begins later finds each side
        with what its own fills made of it)."""
        start = max(segment.started_ns, since)
        end = min(segment.end_ns, until)
        self.segments.append((start, end))
        for side, positions in ((self.run, self.run_positions),
                                (self.replay, self.replay_positions)):  # fmt: skip
            held = {symbol: quantity for symbol, quantity in opening.items() if quantity}
            for order in side.orders.values():
                for fill in order.fills:
                    if segment.started_ns <= fill.ts_event < start:
                        sign = 1 if fill.side == "BUY" else -1
                        held[fill.symbol] = held.get(fill.symbol, _ZERO) + sign * fill.quantity
            positions[start] = held

    def parity_input(
        self, paper: bool, since: int, until: int, compared: Sequence[str]
    ) -> ParityInput:
        """Both sides for :func:`compare`, of the ``compared`` symbols only (the re-run traded
        every symbol of the run: an account's limits weigh them all)."""
        wanted = set(compared)

        def inside(row: DecisionRow) -> bool:
            return row.symbol in wanted and any(s <= row.bar_ns <= e for s, e in self.segments)

        def side(records: Side) -> Side:
            orders = {k: o for k, o in records.orders.items() if o.order.symbol in wanted}
            return Side([r for r in records.decisions if inside(r)], orders)

        def held(positions: dict[int, dict[str, Decimal]]) -> dict[int, dict[str, Decimal]]:
            return {t: {s: q for s, q in p.items() if s in wanted} for t, p in positions.items()}

        return ParityInput(
            run=side(self.run),
            replay=side(self.replay),
            market=self.market,
            windows=[w for w in self.windows if not w.symbol or w.symbol in wanted],
            segments=self.segments,
            run_positions=held(self.run_positions),
            replay_positions=held(self.replay_positions),
            bar_differences=[
                b
                for b in self.bar_differences
                if b.symbol in wanted and since <= b.ts_open <= until
            ],
            paper_venue=paper,
            slippage_band_pct=self.slippage_band,
        )


def _key(row: DecisionRow) -> tuple[str, int, str]:
    """A decision's place: its symbol, the bar that raised it, its side."""
    return (row.symbol, row.bar_ns, row.side)


def _rerun_id(segment: Segment) -> str:
    """The re-run's id: ``r`` and the segment's (first) run id."""
    return f"r{segment.run_ids[0]}"
