"""The trading pipeline: closed bar → strategy → risk → paper/live execution → portfolio.

One :class:`TradingPipeline` serves replay, paper and live alike; only what the kernel passes in
differs (clock, execution venue, recorder). Per bar it does float work only — the strategy's O(1)
indicator updates, a float mark, the float equity curve and the loss-limit tripwires — and builds
events, ``Decimal`` ledger entries and risk traces only when a signal fires or an order fills
(DESIGN.md "Money": indicators may use floats; the ledger is ``Decimal``).

Everything the pipeline produces goes to a :class:`~cdb_cli.engine.recorders.Recorder`: events
with their topic (the seed's contract), order records and fills. Replay keeps them in memory
(``MemoryRecorder``), the run loop publishes and stores them, a benchmark counts them.

This module is the hot loop and its float shadow of the ledger (cash, quantities, marks, peak
equity), handed to the ``Decimal`` portfolio before it is read (the peak on a 1e-8 grid) and read
back after a fill. The loop hands the rare moments to its neighbours: the decision path in
:mod:`~cdb_cli.engine.decisions`; the trading state, its tripwires and the UTC day in
:mod:`~cdb_cli.engine.trading_state`; halt and flatten in :mod:`~cdb_cli.engine.operator`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import islice
from typing import Final

from cdb_cli.engine.clock import Clock, TestClock
from cdb_cli.engine.decisions import Decisions
from cdb_cli.engine.events import Topic
from cdb_cli.engine.execution import ExecutionResult
from cdb_cli.engine.indicators import SeriesCache
from cdb_cli.engine.operator import Operator
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.ports.execution import ExecutionVenue
from cdb_cli.engine.recorders import PipelineStats, Recorder
from cdb_cli.engine.records import EquitySnapshot, OrderRecord
from cdb_cli.engine.risk import RiskEngine, TradingState
from cdb_cli.engine.signals import Strategy
from cdb_cli.engine.strategies import check_intent
from cdb_cli.engine.strategies.guard import StrategyErrors
from cdb_cli.engine.symbols import Intents, SymbolState, batch_intents, warm_up
from cdb_cli.engine.traces import Tracer
from cdb_cli.engine.trading_state import TradingStateMachine

__all__ = ["SymbolState", "TradingPipeline"]

_PEAK_GRID: Final = Decimal("1e-8")
_INF: Final = float("inf")


class TradingPipeline:
    """Strategy → risk → execution → portfolio for a set of symbols; see the module docstring."""

    def __init__(
        self,
        *,
        strategies: Mapping[str, Strategy],
        risk: RiskEngine,
        execution: ExecutionVenue,
        portfolio: Portfolio,
        clock: Clock,
        recorder: Recorder,
        assumed_spread_pct: Decimal = Decimal("0.05"),
        run_id: str = "run",
        record_curve: bool = False,
        tracer: Tracer | None = None,
        max_strategy_errors: int = 10,
    ) -> None:
        self.risk = risk
        self.execution = execution
        self.portfolio = portfolio
        self.clock = clock
        self.recorder = recorder
        self.tracer = tracer
        """Traces every closed bar the strategy has (``cdb explain``); None keeps no traces."""
        self.store_down = False
        """Set by the loop while its store takes no writes: risk refuses entries (``store``)."""
        self._symbols = {s: SymbolState(s, strategy) for s, strategy in strategies.items()}
        self.decisions = Decisions(
            self,
            symbols=self._symbols,
            sync=self._sync_portfolio,
            assumed_spread_pct=assumed_spread_pct,
            run_id=run_id,
        )
        """A strategy's intent → risk → order → paperwork (:mod:`cdb_cli.engine.decisions`)."""
        self.state_machine = TradingStateMachine(
            risk.limits, portfolio, peak=self._float_peak, sync=self._sync_portfolio
        )
        """The trading state and its loss-limit tripwires (owned on the risk side)."""
        self.operator = Operator(self)
        """The operator's kill switch and flatten (:meth:`halt`, :meth:`flatten`)."""
        self.stats = PipelineStats(state_changes=self.state_machine.changes)
        self.strategy_errors = StrategyErrors(max_strategy_errors)
        self._cash = float(portfolio.cash)
        self._exposure = 0.0
        self._peak = float(portfolio.peak_equity)
        self._observed_peak = self._peak  # the float peak last handed to the portfolio
        self._bars = 0
        self._trades = 0
        self._max_drawdown = 0.0
        self._exposure_sum = 0.0
        self._max_exposure = 0.0
        for state in self._symbols.values():  # a restored position: valued as the ledger does
            quantity = portfolio.quantity(state.symbol)
            if quantity > 0:
                state.mark = float(portfolio.position_value(state.symbol) / quantity)
        self._sent: set[str] = set()  # live orders counted at PENDING_NEW
        self._curve: list[tuple[int, float]] | None = [] if record_curve else None
        self._sync_floats()

    @property
    def trading_state(self) -> TradingState:
        """ACTIVE, REDUCING or HALTED: the state machine's (:attr:`state_machine`)."""
        return self.state_machine.state

    @property
    def snapshots(self) -> list[EquitySnapshot]:
        """The equity snapshot taken at each UTC day roll (for the store and reports)."""
        return self.state_machine.snapshots

    # --- market data ----------------------------------------------------------------------------

    def run_bars(
        self,
        symbol: str,
        ts_open: Sequence[int],
        opens: Sequence[float],
        closes: Sequence[float],
        volumes: Sequence[float],
        *,
        interval_ns: int,
        clock: TestClock | None = None,
        intents: Intents | None = None,
    ) -> None:
        """Feed closed bars of one symbol in time order (a bar replay's loop).

        Each bar fills working orders at its open, then marks at its close
        (``ts_open + interval_ns``, the decision time) and runs the strategy, or takes its
        ``intents`` (:meth:`batch_intents` of these bars). With a ``clock`` (replay), it is set
        to a bar's close before a decision reads it, and to the last close at the end.
        """
        state = self._symbols[symbol]
        self._run(
            state, ts_open, opens, closes, volumes, interval_ns, fills=True, strategy=True,
            clock=clock, intents=intents,
        )  # fmt: skip
        if clock is not None and ts_open:
            clock.now_ns = max(clock.now_ns, ts_open[-1] + interval_ns)

    def batch_intents(
        self,
        symbol: str,
        ts_open: Sequence[int],
        closes: Sequence[float],
        volumes: Sequence[float],
        interval_ns: int,
        cache: SeriesCache | None = None,
    ) -> Intents | None:
        """All the intents of these bars at once from a batch strategy (``cache``: indicators
        shared by runs over the same columns), or None: the strategy takes bars one by one, or
        traces are kept (built bar by bar, as live). See :mod:`cdb_cli.engine.symbols`."""
        if self.tracer is not None:
            return None
        state, errors = self._symbols[symbol], self.strategy_errors
        return batch_intents(state, errors, ts_open, closes, volumes, interval_ns, cache)

    def on_bar(
        self, symbol: str, ts_open: int, ts_close: int, open_: float, close: float, volume: float
    ) -> None:
        """One closed bar (see :meth:`run_bars`); ``ts_close`` is the decision time."""
        bar = ((ts_open,), (open_,), (close,), (volume,))
        self._run(self._symbols[symbol], *bar, ts_close - ts_open, fills=True, strategy=True)

    def on_bar_close(self, symbol: str, ts_close: int, close: float, volume: float) -> None:
        """A bar closed while trades drive the fills (tick replay, paper, live): run the strategy.

        The trades already moved the mark and filled orders; the bar only feeds the strategy.
        """
        state = self._symbols[symbol]
        self._run(state, (ts_close,), (close,), (close,), (volume,), 0, fills=False, strategy=True)

    def on_trade(self, symbol: str, ts: int, price: float, quantity: float) -> None:
        """A public trade: fills working orders, moves the mark (tick replay, paper, live)."""
        state = self._symbols[symbol]
        self._run(state, (ts,), (price,), (price,), (quantity,), 0, fills=True, strategy=False)

    def warm_up(self, symbol: str, bars: Iterable[tuple[int, float, float]]) -> int:
        """Prime the strategy with history ((ts_close, close, volume) of closed bars, oldest
        first) without acting on it: no signal, no order. Returns how many bars it saw."""
        state = self._symbols[symbol]
        seen, last = warm_up(state, self.strategy_errors, bars)
        if last is not None and self.tracer is not None:  # what it waits for, before a live bar
            self.tracer.preview(symbol, state.strategy, *last)
        return seen

    def restore_working(self) -> None:
        """Re-read which symbols have working orders (after ``execution.restore``)."""
        for state in self._symbols.values():
            state.working = self.execution.has_working(state.symbol)

    def roll_day_if_due(self, ts: int) -> bool:
        """Start the new UTC day at ``ts`` even when no price came yet (a quiet market): the
        day-start equity of the drawdown rule, a day's reduction lifted. True when it rolled."""
        return self.state_machine.roll_day_if_due(ts)

    def set_trading_state(self, state: TradingState, ts: int, reason: str) -> None:
        """Start from a stored trading state (a restart resumes a halt or a reduction)."""
        self.state_machine.set(state, ts, reason)

    def on_quote(self, symbol: str, ts: int, bid: Decimal, ask: Decimal) -> None:
        """Best bid/ask: used for the spread rule and for fills at the touch."""
        state = self._symbols[symbol]
        state.bid, state.ask = bid, ask
        state.last_ts = max(state.last_ts, ts)

    def _run(  # noqa: C901 - the per-price hot loop is flat on purpose: calls cost (measured)
        self,
        state: SymbolState,
        times: Sequence[int],
        fill_prices: Sequence[float],
        prices: Sequence[float],
        volumes: Sequence[float],
        offset: int,
        *,
        fills: bool,
        strategy: bool,
        clock: TestClock | None = None,
        intents: Intents | None = None,
    ) -> None:
        """The one per-price loop: fill at ``fill_prices[i]`` (time ``times[i]``), then the float
        work at ``prices[i]`` (time ``times[i] + offset``): mark, equity, loss-limit tripwires,
        drawdown, exposure, curve; then the strategy. Everything rare is a method call.

        Prices go in stretches, their float work in one tight inner loop: a fill only before a
        stretch's first price, the strategy only after its last. A stretch is one price, but
        with ``intents`` (a batch strategy's, by index in these prices) it runs to the next
        intent while something is held and no order works; while nothing is held or working,
        the loop goes straight to the next intent or day roll (the prices between change only
        the mark, which the last of them sets)."""
        on_bar = state.on_bar
        n = len(times)
        if not len(fill_prices) == len(prices) == len(volumes) == n:
            raise ValueError("times, fill prices, prices and volumes differ in length")
        pending = intents if intents is not None else []
        batch, curve = intents is not None and self._curve is None, self._curve
        k = i = last_done = 0
        next_at = pending[0][0] if pending else n
        tracer, tripwires, decide = self.tracer, self.state_machine, self.decisions.on_signal
        cb_factor = tripwires.cb_factor
        # The float state lives in locals (several times cheaper than attributes): flush() hands
        # it back before a rare path's method runs, reload() takes it again afterwards.
        exposure, cash, peak = self._exposure, self._cash, self._peak
        cb_floor, dd_floor = tripwires.cb_floor, tripwires.dd_floor
        roll_at = tripwires.next_day_ns - offset  # the first open time of the next day
        max_dd, exposure_sum = self._max_drawdown, self._exposure_sum
        max_exposure = self._max_exposure
        qty, mark, last_ts = state.qty, state.mark, state.last_ts

        def flush() -> None:
            self._exposure, self._peak, tripwires.cb_floor = exposure, peak, cb_floor
            self._max_drawdown = max_dd
            self._exposure_sum, self._max_exposure = exposure_sum, max_exposure
            state.mark, state.last_ts = mark, last_ts

        def reload() -> None:
            nonlocal exposure, cash, peak, cb_floor, dd_floor, roll_at, max_dd, qty, mark
            exposure, cash, peak = self._exposure, self._cash, self._peak
            cb_floor, dd_floor = tripwires.cb_floor, tripwires.dd_floor
            roll_at = tripwires.next_day_ns - offset
            max_dd, qty, mark = self._max_drawdown, state.qty, state.mark

        rows = zip(times, prices, strict=True)
        while i < n:
            if fills and state.working:
                # A bar's open stands for its first moments: an order whose latency ends within
                # the bar fills at the open (offset is the bar's length; 0 for a trade).
                flush()
                ts, until = times[i], times[i] + offset - 1 if offset else None
                self._fill(state, ts, fill_prices[i], volumes[i], until)
                reload()
            held = batch and (qty or exposure) and not state.working
            end = min(next_at + 1, n) if held else i + 1
            for ts, price in islice(rows, end - i):
                if qty:
                    exposure += qty * (price - mark)
                mark = price
                if ts >= roll_at:
                    last_ts = ts + offset
                    flush()
                    tripwires.roll_day(last_ts)
                    reload()
                equity = cash + exposure
                if equity > peak:
                    peak = equity
                    if cb_floor != -_INF:  # halted: no tripwire until a reset
                        cb_floor = equity * cb_factor
                elif equity < cb_floor or equity < dd_floor:
                    last_ts = ts + offset
                    flush()
                    self._check_limits(last_ts)
                    reload()
                elif equity < peak:
                    drawdown = 1.0 - equity / peak
                    if drawdown > max_dd:
                        max_dd = drawdown
                if exposure:
                    share = exposure / equity if equity > 0 else 1.0
                    exposure_sum += share
                    if share > max_exposure:
                        max_exposure = share
                if curve is not None:
                    curve.append((ts + offset, equity))
            now = last_ts = times[end - 1] + offset
            last_done, i = end - 1, end
            if strategy:
                if tracer is not None and tracer.deferred:
                    tracer.settle(state.symbol)  # its last bar is explained before it moves on
                volume = volumes[last_done]
                try:
                    if intents is None:
                        intent = on_bar(now, mark, volume)
                    elif last_done == next_at:
                        intent = pending[k][1]
                        k += 1
                        next_at = pending[k][0] if k < len(pending) else n
                    else:
                        intent = None
                    if intent is not None:
                        check_intent(intent)
                except Exception as error:  # a strategy's bug never stops the loop
                    self.strategy_errors.on_error(state, now, error)
                    on_bar, intent = state.on_bar, None
                    if state.symbol in self.strategy_errors.disabled:
                        next_at = n  # its intents were given before it was disabled
                if intent is not None:
                    if clock is not None:  # only a decision reads the clock: set it just then
                        clock.now_ns = now
                    flush()
                    signal_id = decide(state, intent, now)
                    reload()
                    if tracer is not None:
                        symbol, side = state.symbol, intent.side
                        tracer.bar(symbol, state.strategy, now, mark, volume, signal_id, side)
                elif tracer is not None:
                    tracer.bar(state.symbol, state.strategy, now, mark, volume)
            flat = batch and not (qty or exposure or state.working)  # equity is the cash
            if flat and cb_floor <= cash and dd_floor <= cash and cash <= peak:
                until = min(next_at, bisect_left(times, roll_at, i))
                if until > i:  # pass over the prices before it, in C
                    next(islice(rows, until - i, until - i), None)
                    i = until
        if last_done < n - 1:  # the last prices were passed over: the last one marks
            mark, last_ts = prices[n - 1], times[n - 1] + offset
        flush()
        if strategy:
            self._bars += n
        else:
            self._trades += n

    # --- fills and the ledger -------------------------------------------------------------------

    def _fill(
        self, state: SymbolState, ts: int, price: float, volume: float, until: int | None = None
    ) -> None:
        symbol = state.symbol
        # Mark at the fill's price event first: the ledger values positions (and its peak) at it.
        if state.qty:
            self._exposure += state.qty * (price - state.mark)
        state.mark = price
        self._sync_portfolio()
        result = self.execution.on_price(
            symbol,
            ts,
            Decimal(repr(price)),
            volume=Decimal(repr(volume)),
            bid=state.bid,
            ask=state.ask,
            cash=self.portfolio.cash,
            position=self.portfolio.quantity(symbol),
            until_ns=until,
        )
        self._apply(result)

    def apply_execution(self, result: ExecutionResult) -> None:
        """Book what a venue reported after the call that placed the order returned (a live
        venue's fills and order updates, a remote execution component's reports)."""
        self._apply(result)

    def _apply(self, result: ExecutionResult) -> None:
        stats = self.stats
        for order in result.orders:
            # An order counts once, at its first record: NEW from a simulated venue, PENDING_NEW
            # (saved before sending) from a live one, whose later NEW is the venue's answer.
            if order.status == "PENDING_NEW" or (
                order.status == "NEW" and order.client_order_id not in self._sent
            ):
                stats.orders += 1
            if order.status == "PENDING_NEW":
                self._sent.add(order.client_order_id)
            elif order.status == "REJECTED":
                stats.orders_rejected += 1
            self.recorder.order(order)
        for fill in result.fills:
            self.portfolio.apply_fill(fill)
            self.recorder.fill(fill)
            stats.fills += 1
        for report in result.reports:
            self.recorder.event(Topic.EXECUTION_EVENTS, report)
        for state in self._symbols.values():
            state.working = self.execution.has_working(state.symbol)
        if result.fills:
            self._sync_floats()

    def _sync_floats(self) -> None:
        """Refresh the float shadows of cash and quantities after the ledger changed."""
        self._cash = float(self.portfolio.cash)
        exposure = 0.0
        for state in self._symbols.values():
            state.qty = float(self.portfolio.quantity(state.symbol))
            exposure += state.qty * state.mark
        self._exposure = exposure

    def _sync_portfolio(self, *, held_only: bool = False) -> None:
        """Hand the float marks and the float peak to the ``Decimal`` portfolio.

        Before a fill every symbol is marked (its next fill must not see a stale mark); for a
        decision the held ones are enough (a flat symbol is worth nothing either way).
        """
        portfolio = self.portfolio
        portfolio.mark_all(
            {
                state.symbol: Decimal(repr(state.mark))
                for state in self._symbols.values()
                if state.mark > 0 and (state.qty or not held_only)
            },
            update_peak=False,  # the float peak below already covers every mark seen
        )
        if self._peak > self._observed_peak:  # convert only a new float peak
            self._observed_peak = self._peak
            portfolio.observe_equity(Decimal(repr(self._peak)).quantize(_PEAK_GRID))

    # --- the loss limits (the state machine's) -------------------------------------------------

    def _check_limits(self, now: int) -> None:
        """A float tripwire fired: the state machine decides exactly; the drawdown seen counts."""
        equity = self._cash + self._exposure
        self.state_machine.check_limits(now, equity)
        drawdown = 1.0 - equity / self._peak if self._peak > 0 else 0.0
        self._max_drawdown = max(self._max_drawdown, drawdown)

    def reset_breaker(self, ts: int) -> None:
        """An audited ``cdb risk reset``: back to ACTIVE, the peak restarts at today's equity."""
        self.state_machine.reset(ts, restart_peak=self._restart_peak)

    def _float_peak(self) -> float:
        return self._peak

    def _restart_peak(self, peak: float) -> None:
        self._peak = self._observed_peak = peak

    # --- read-outs ------------------------------------------------------------------------------

    def snapshot_stats(self) -> PipelineStats:
        """The counters with the float read-outs filled in (cheap; call at the end or to report)."""
        stats = self.stats
        stats.bars = self._bars
        stats.strategy_errors = self.strategy_errors.total
        stats.max_drawdown = self._max_drawdown
        stats.max_exposure = self._max_exposure
        prices = self._bars + self._trades
        stats.mean_exposure = self._exposure_sum / prices if prices else 0.0
        return stats

    @property
    def equity_curve(self) -> list[tuple[int, float]]:
        """(ts, equity) at every price, when the pipeline was built with ``record_curve``."""
        return self._curve if self._curve is not None else []

    def marks(self) -> dict[str, Decimal]:
        """The latest price of each symbol seen so far, as ``Decimal``."""
        return {s: Decimal(repr(st.mark)) for s, st in self._symbols.items() if st.mark > 0}

    def finish(self) -> None:
        """Bring the ``Decimal`` portfolio up to the last marks (end of a replay, shutdown)."""
        self._sync_portfolio()

    # --- the operator's actions (cdb_cli.engine.operator) ---------------------------------------

    def halt(self, ts: int, reason: str) -> None:
        """The operator's kill switch: HALTED at once (see :meth:`Operator.halt`)."""
        self.operator.halt(ts, reason)

    def flatten(
        self, ts: int, reason: str, *, skip: Collection[str] = ()
    ) -> dict[str, OrderRecord]:
        """Sell every held position through the normal execution path, whatever the state; the
        first order record of each exit placed, by symbol (see :meth:`Operator.flatten`)."""
        return self.operator.flatten(ts, reason, skip=skip)
