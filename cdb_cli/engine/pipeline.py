"""The trading pipeline: closed bar → strategy → risk → paper/live execution → portfolio.

One :class:`TradingPipeline` serves replay, paper and live alike; only what the kernel passes in
differs (clock, execution venue, recorder). Per bar it does float work only — the strategy's O(1)
indicator updates, a float mark, the float equity curve and the loss-limit tripwires — and builds
events, ``Decimal`` ledger entries and risk traces only when a signal fires or an order fills
(DESIGN.md "Money": indicators may use floats; the ledger is ``Decimal``).

Everything the pipeline produces goes to a :class:`~cdb_cli.engine.recorders.Recorder`: events
with their topic (the seed's contract), order records and fills. Replay keeps them in memory
(``MemoryRecorder``), the run loop publishes and stores them, a benchmark counts them.

Risk inputs: equity, day-start and peak equity and exposure come from the portfolio (working buys
count as exposure); bid/ask from the latest quote of the symbol, or — when the data has none, as in
a bar replay — from the close widened by ``assumed_spread_pct``; the price age from the last price
event. Between decisions the peak equity is tracked on float marks and handed to the portfolio at
the next decision (rounded to 1e-8 of the quote currency).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Final

from cdb_cli.engine.clock import Clock, TestClock
from cdb_cli.engine.events import (
    OrderApproved,
    Side,
    SignalSide,
    Topic,
    TradingSignal,
)
from cdb_cli.engine.execution import ExecutionResult
from cdb_cli.engine.portfolio import NS_PER_DAY, Portfolio
from cdb_cli.engine.ports.execution import ExecutionVenue
from cdb_cli.engine.recorders import MemoryRecorder, NullRecorder, PipelineStats, Recorder
from cdb_cli.engine.records import EquitySnapshot, OrderRecord
from cdb_cli.engine.risk import (
    CheckFields,
    RiskEngine,
    RiskInputs,
    TradingState,
    Verdict,
    next_state,
)
from cdb_cli.engine.signals import SignalIntent, Strategy
from cdb_cli.engine.traces import Tracer

__all__ = [
    "OPERATOR",
    "MemoryRecorder",  # re-exported from cdb_cli.engine.recorders, where they live
    "NullRecorder",
    "PipelineStats",
    "Recorder",
    "TradingPipeline",
]

_HUNDRED: Final = Decimal(100)
_PEAK_GRID: Final = Decimal("1e-8")
_INF: Final = float("inf")
OPERATOR: Final = "operator"
"""Source of an operator's flatten: its signals, decisions and approvals (not the risk rules')."""


class _SymbolState:
    __slots__ = (
        "ask",
        "bid",
        "last_ts",
        "mark",
        "on_bar",
        "qty",
        "strategy",
        "symbol",
        "working",
    )

    def __init__(self, symbol: str, strategy: Strategy) -> None:
        self.symbol = symbol
        self.strategy = strategy
        self.on_bar = strategy.on_bar
        self.mark = 0.0  # float mark (last close or trade)
        self.qty = 0.0  # float shadow of the portfolio's quantity
        self.last_ts = -1
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None
        self.working = False  # an order of this symbol waits for its fill


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
    ) -> None:
        if assumed_spread_pct <= 0:
            raise ValueError(f"assumed_spread_pct must be above 0, received {assumed_spread_pct}")
        self.risk = risk
        self.execution = execution
        self.portfolio = portfolio
        self.clock = clock
        self.recorder = recorder
        self.tracer = tracer
        """Traces every closed bar the strategy has (``cdb explain``); None keeps no traces."""
        self.stats = PipelineStats()
        self.trading_state = TradingState.ACTIVE
        self._symbols = {s: _SymbolState(s, strategy) for s, strategy in strategies.items()}
        self._half_spread = assumed_spread_pct / 200
        self._run_id = run_id
        self._ids = 0
        self._cash = float(portfolio.cash)
        self._exposure = 0.0
        self._peak = float(portfolio.peak_equity)
        self._observed_peak = self._peak  # the float peak last handed to the portfolio
        self._next_day_ns = -1  # the first price starts the first day
        self._cb_factor = 1.0 - float(risk.limits.circuit_breaker_pct) / 100.0
        self._bars = 0
        self._trades = 0
        self._max_drawdown = 0.0
        self._exposure_sum = 0.0
        self._max_exposure = 0.0
        self._cb_floor = -_INF
        self._dd_floor = -_INF
        for state in self._symbols.values():  # a restored position: valued as the ledger does
            quantity = portfolio.quantity(state.symbol)
            if quantity > 0:
                state.mark = float(portfolio.position_value(state.symbol) / quantity)
        self._sent: set[str] = set()  # live orders counted at PENDING_NEW
        self._curve: list[tuple[int, float]] | None = [] if record_curve else None
        self.snapshots: list[EquitySnapshot] = []
        """The equity snapshot taken at each UTC day roll (for the store and reports)."""
        self._sync_floats()

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
    ) -> None:
        """Feed closed bars of one symbol in time order (a bar replay's loop).

        Each bar fills working orders at its open, then marks at its close
        (``ts_open + interval_ns``, the decision time) and runs the strategy. With a ``clock``
        (replay), it is set to a bar's close before a decision reads it, and to the last close
        at the end.
        """
        state = self._symbols[symbol]
        self._run(
            state,
            ts_open,
            opens,
            closes,
            volumes,
            interval_ns,
            fills=True,
            strategy=True,
            clock=clock,
        )
        if clock is not None and ts_open:
            clock.now_ns = max(clock.now_ns, ts_open[-1] + interval_ns)

    def on_bar(
        self, symbol: str, ts_open: int, ts_close: int, open_: float, close: float, volume: float
    ) -> None:
        """One closed bar (see :meth:`run_bars`); ``ts_close`` is the decision time."""
        state = self._symbols[symbol]
        self._run(
            state,
            (ts_open,),
            (open_,),
            (close,),
            (volume,),
            ts_close - ts_open,
            fills=True,
            strategy=True,
        )

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
        seen = 0
        last: tuple[int, float, float] | None = None
        for ts, close, volume in bars:
            state.on_bar(ts, close, volume)
            if ts >= state.last_ts:
                state.last_ts = ts
                if not state.qty:
                    state.mark = close
            seen += 1
            last = (ts, close, volume)
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
        if ts < self._next_day_ns or self.portfolio.day is None:
            return False
        self._roll_day(ts)
        return True

    def set_trading_state(self, state: TradingState, ts: int, reason: str) -> None:
        """Start from a stored trading state (a restart resumes a halt or a reduction)."""
        self._set_state(state, ts, reason)

    def on_quote(self, symbol: str, ts: int, bid: Decimal, ask: Decimal) -> None:
        """Best bid/ask: used for the spread rule and for fills at the touch."""
        state = self._symbols[symbol]
        state.bid, state.ask = bid, ask
        state.last_ts = max(state.last_ts, ts)

    def _run(  # noqa: C901 - the per-price hot loop is flat on purpose: calls cost (measured)
        self,
        state: _SymbolState,
        times: Sequence[int],
        fill_prices: Sequence[float],
        prices: Sequence[float],
        volumes: Sequence[float],
        offset: int,
        *,
        fills: bool,
        strategy: bool,
        clock: TestClock | None = None,
    ) -> None:
        """The one per-price loop: fill at ``fill_prices[i]`` (time ``times[i]``), then the float
        work at ``prices[i]`` (time ``times[i] + offset``): mark, equity, loss-limit tripwires,
        drawdown, exposure, curve; then the strategy. Everything rare is a method call."""
        on_bar = state.on_bar
        tracer = self.tracer
        curve = self._curve
        cb_factor = self._cb_factor
        # The float state lives in locals while the loop runs (a local is several times cheaper
        # than an attribute); flush() hands it back before a rare path's method runs, and
        # reload() takes it again afterwards, since those methods read and change it.
        exposure, cash, peak = self._exposure, self._cash, self._peak
        cb_floor, dd_floor, next_day = self._cb_floor, self._dd_floor, self._next_day_ns
        max_dd, exposure_sum, max_exposure = (
            self._max_drawdown,
            self._exposure_sum,
            self._max_exposure,
        )
        qty, mark, last_ts = state.qty, state.mark, state.last_ts

        def flush() -> None:
            self._exposure, self._peak, self._cb_floor = exposure, peak, cb_floor
            self._max_drawdown = max_dd
            self._exposure_sum, self._max_exposure = exposure_sum, max_exposure
            state.mark, state.last_ts = mark, last_ts

        def reload() -> None:
            nonlocal exposure, cash, peak, cb_floor, dd_floor, next_day, max_dd, qty, mark
            exposure, cash, peak = self._exposure, self._cash, self._peak
            cb_floor, dd_floor, next_day = self._cb_floor, self._dd_floor, self._next_day_ns
            max_dd, qty, mark = self._max_drawdown, state.qty, state.mark

        for ts, fill_price, price, volume in zip(times, fill_prices, prices, volumes, strict=True):
            now = ts + offset
            if fills and state.working:
                # A bar's open stands for its first moments: an order whose latency ends within
                # the bar fills at the open (offset is the bar's length; 0 for a trade).
                flush()
                self._fill(state, ts, fill_price, volume, ts + offset - 1 if offset else None)
                reload()
            if qty:
                exposure += qty * (price - mark)
            mark = price
            last_ts = now
            if now >= next_day:
                flush()
                self._roll_day(now)
                reload()
            equity = cash + exposure
            if equity > peak:
                peak = equity
                if cb_floor != -_INF:  # halted: no tripwire until a reset
                    cb_floor = equity * cb_factor
            elif equity < cb_floor or equity < dd_floor:
                flush()
                self._check_limits(now)
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
                curve.append((now, equity))
            if strategy:
                if tracer is not None and tracer.deferred:
                    tracer.settle(state.symbol)  # its last bar is explained before it moves on
                intent = on_bar(now, price, volume)
                if intent is not None:
                    if clock is not None:  # only a decision reads the clock: set it just then
                        clock.now_ns = now
                    flush()
                    signal_id = self._on_signal(state, intent, now)
                    reload()
                    if tracer is not None:
                        symbol, side = state.symbol, intent.side
                        tracer.bar(symbol, state.strategy, now, price, volume, signal_id, side)
                elif tracer is not None:
                    tracer.bar(state.symbol, state.strategy, now, price, volume)
        flush()
        if strategy:
            self._bars += len(times)
        else:
            self._trades += len(times)

    # --- signals --------------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._ids += 1
        return f"{self._run_id}-{self._ids:x}"

    def _on_signal(self, state: _SymbolState, intent: SignalIntent, bar_ts: int) -> str:
        """Decide, hand an approved order to the venue, then record signal, decision and order;
        return the signal's id (``bar_ts``: the close of the bar that raised it).

        The events are built after the order is handed over: the decision needs only values,
        so the order does not wait for its own paperwork. They are recorded in their logical
        order (signal, decision, approval, then what the venue answered).
        """
        now = self.clock.timestamp_ns()
        stats = self.stats
        stats.signals[intent.side] += 1
        price = Decimal(repr(state.mark))
        signal_id, decision_id = self._next_id(), self._next_id()
        inputs = self._risk_inputs(state, price, now)
        outcome = self.risk.verdict(intent.side, inputs)
        verdict, _, final, checks = outcome
        order: OrderApproved | None = None
        result = None
        if verdict in ("approved", "reduced"):  # not rejected, not nothing_held
            order = OrderApproved(
                event_id=self._next_id(),
                symbol=state.symbol,
                ts_event=now,
                source="risk",
                decision_id=decision_id,
                side=Side.BUY if intent.side is SignalSide.BUY else Side.SELL,
                quote_amount=final,
                reference_price=price,
            )
            position = self.portfolio.quantity(state.symbol)
            result = self.execution.submit(order, ts_ns=now, position=position)
        name = getattr(state.strategy, "name", "strategy")
        signal = TradingSignal(
            event_id=signal_id,
            symbol=state.symbol,
            ts_event=now,
            source=name,
            side=intent.side,
            strategy=name,
            price=price,
            strength=intent.strength,
            indicators=intent.indicators,
            trace_id=self.tracer.id_for(state.symbol, bar_ts) if self.tracer is not None else "",
        )
        self.recorder.event(Topic.TRADING_SIGNALS, signal)
        decision = self.risk.record(signal, inputs, outcome, ts_event=now, event_id=decision_id)
        self.recorder.event(Topic.RISK_EVENTS, decision)
        stats.verdicts[verdict] += 1
        if verdict == "rejected":  # what refused an order (not what a held-nothing exit saw)
            for check in checks:
                if not check["passed"]:
                    stats.failed_rules[check["code"]] += 1
        if order is not None and result is not None:
            self.recorder.event(Topic.RISK_APPROVED_TRADES, order)
            self._apply(result)
        return signal_id

    def _risk_inputs(self, state: _SymbolState, price: Decimal, now: int) -> RiskInputs:
        self._sync_portfolio(held_only=True)
        bid, ask = state.bid, state.ask
        if bid is None or ask is None:
            bid, ask = price * (1 - self._half_spread), price * (1 + self._half_spread)
        pending = Decimal(0)
        for other in self._symbols.values():
            if other.working:
                pending += self.execution.pending_buy_quote(other.symbol)
        inputs = self.portfolio.risk_inputs(
            state.symbol,
            bid=bid,
            ask=ask,
            last_price_age_ns=max(0, now - state.last_ts),
            trading_state=self.trading_state,
            pending_quote=pending,
        )
        self._set_state(next_state(inputs, self.risk.limits), now)
        if inputs.trading_state is self.trading_state:
            return inputs
        return replace(inputs, trading_state=self.trading_state)

    # --- fills and the ledger -------------------------------------------------------------------

    def _fill(
        self, state: _SymbolState, ts: int, price: float, volume: float, until: int | None = None
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

    # --- loss limits and the day ------------------------------------------------------------------

    def _roll_day(self, ts: int) -> None:
        self._next_day_ns = (ts // NS_PER_DAY + 1) * NS_PER_DAY
        previous = self.portfolio.day
        if previous is not None and ts // NS_PER_DAY <= previous:
            self._arm_floors()  # the first price after a restart, still the stored day
            return
        self._sync_portfolio()
        if previous is not None:  # the day that ends: its closing snapshot
            self.snapshots.append(self.portfolio.snapshot(ts))
        self.portfolio.roll_day(ts)
        if self.trading_state is TradingState.REDUCING:
            self._set_state(TradingState.ACTIVE, ts)
        self._arm_floors()

    def _arm_floors(self) -> None:
        """The float tripwires: the breaker's while not halted, the daily one while active."""
        if self.trading_state is TradingState.HALTED:
            self._cb_floor = self._dd_floor = -_INF
            return
        self._cb_floor = self._peak * self._cb_factor
        if self.trading_state is TradingState.REDUCING:
            self._dd_floor = -_INF
            return
        day_start = float(self.portfolio.day_start_equity)
        limit = float(self.risk.limits.daily_drawdown_pct)
        self._dd_floor = day_start * (1.0 - limit / 100.0)

    def _check_limits(self, now: int) -> None:
        """A float tripwire fired: decide exactly, on ``Decimal``, whether a limit is breached."""
        self._sync_portfolio(held_only=True)
        inputs = self.portfolio.risk_inputs(
            next(iter(self._symbols)),
            bid=Decimal(1),
            ask=Decimal(2),
            last_price_age_ns=0,
            trading_state=self.trading_state,
        )
        self._set_state(next_state(inputs, self.risk.limits), now)
        equity = self._cash + self._exposure
        if self.trading_state is TradingState.ACTIVE:  # float noise at the boundary: re-arm lower
            self._cb_floor = min(self._cb_floor, equity) * (1.0 - 1e-12)
            self._dd_floor = min(self._dd_floor, equity) * (1.0 - 1e-12)
        drawdown = 1.0 - equity / self._peak if self._peak > 0 else 0.0
        self._max_drawdown = max(self._max_drawdown, drawdown)

    def _set_state(self, state: TradingState, ts: int, reason: str | None = None) -> None:
        if state is self.trading_state:
            return
        self.trading_state = state
        if reason is None:
            reason = self._state_reason(state)
        self.stats.state_changes.append((ts, str(state), reason))
        self._arm_floors()

    def _state_reason(self, state: TradingState) -> str:
        limits, portfolio = self.risk.limits, self.portfolio
        if state is TradingState.HALTED:
            return (
                f"loss from peak {portfolio.drawdown_from_peak_pct():.4f} % is above "
                f"{limits.circuit_breaker_pct} % (circuit breaker)"
            )
        if state is TradingState.REDUCING:
            return (
                f"loss since start of day {portfolio.daily_drawdown_pct():.4f} % is above "
                f"{limits.daily_drawdown_pct} % (daily drawdown): only exits today"
            )
        return "new UTC day"

    def reset_breaker(self, ts: int) -> None:
        """An audited ``cdb risk reset``: back to ACTIVE, the peak restarts at today's equity."""
        self._sync_portfolio()
        self.portfolio.reset_peak()
        self._peak = self._observed_peak = float(self.portfolio.peak_equity)
        self._set_state(TradingState.ACTIVE, ts, "reset by the operator")
        self._arm_floors()

    # --- read-outs ------------------------------------------------------------------------------

    def snapshot_stats(self) -> PipelineStats:
        """The counters with the float read-outs filled in (cheap; call at the end or to report)."""
        stats = self.stats
        stats.bars = self._bars
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

    # --- the operator's kill switch ---------------------------------------------------------------

    def halt(self, ts: int, reason: str) -> None:
        """The operator's kill switch: HALTED at once, with ``reason`` as the state change's why.

        No new entry is approved from here on. Under HALTED the circuit-breaker rule rejects
        every signal — a strategy's exits too, as after the breaker tripped — so positions stay
        as they are unless :meth:`flatten` closes them. An audited reset
        (:meth:`reset_breaker`) ends it. Already HALTED: nothing changes.
        """
        self._set_state(TradingState.HALTED, ts, reason)

    def flatten(
        self, ts: int, reason: str, *, skip: Collection[str] = ()
    ) -> dict[str, OrderRecord]:
        """Sell every held position through the normal execution path, whatever the state.

        Each exit is recorded like a strategy's: a signal (strategy ``operator``), a decision
        (source ``operator``, verdict approved) with the inputs it saw and one check, rule
        ``operator``, naming the trading state and ``reason`` — the risk rules do not decide an
        operator's exit (under a halt the circuit breaker would refuse it), so they are not in its
        trace and do not count in rule statistics — then the approval, the order and its fills.
        The exit also cancels the symbol's working buys (the venue does that for any exit).

        Idempotent, so a run loop may call it until everything is flat: a symbol whose exit is
        still working is left alone, and so are the symbols in ``skip`` (e.g. dust an earlier
        exit could not sell). A buy still working in a symbol with nothing held is left to fill
        (the venue port has no cancel); the next call sells what it bought.

        Returns the first order record of each exit it placed, by symbol (status REJECTED when
        the venue refused it at once, e.g. below the minimum quantity).
        """
        selling = {o.symbol for o in self.execution.working_orders() if o.side is Side.SELL}
        placed: dict[str, OrderRecord] = {}
        for state in self._symbols.values():
            symbol = state.symbol
            if symbol in selling or symbol in skip or state.mark <= 0:
                continue
            if self.portfolio.quantity(symbol) <= 0:
                continue
            order = self._operator_exit(state, ts, reason)
            if order is not None:
                placed[symbol] = order
        return placed

    def _operator_exit(self, state: _SymbolState, now: int, reason: str) -> OrderRecord | None:
        price = Decimal(repr(state.mark))
        inputs = self._risk_inputs(state, price, now)
        requested, final = self.risk.sizes(SignalSide.EXIT, inputs)
        if final <= 0:  # worth less than the ledger's grid: nothing to send
            return None
        signal_id, decision_id = self._next_id(), self._next_id()
        order = OrderApproved(
            event_id=self._next_id(),
            symbol=state.symbol,
            ts_event=now,
            source=OPERATOR,
            decision_id=decision_id,
            side=Side.SELL,
            quote_amount=final,
            reference_price=price,
        )
        result = self.execution.submit(
            order, ts_ns=now, position=self.portfolio.quantity(state.symbol)
        )
        signal = TradingSignal(
            event_id=signal_id,
            symbol=state.symbol,
            ts_event=now,
            source=OPERATOR,
            side=SignalSide.EXIT,
            strategy=OPERATOR,
            price=price,
            strength=1.0,
        )
        self.recorder.event(Topic.TRADING_SIGNALS, signal)
        operator: CheckFields = {
            "rule": OPERATOR,
            "code": "operator_flatten",
            "passed": True,
            "observed": None,
            "limit": None,
            "detail": f"flatten by the operator ({self.trading_state}): {reason}",
        }
        outcome: tuple[Verdict, Decimal, Decimal, tuple[CheckFields, ...]] = (
            "approved",
            requested,
            final,
            (operator,),
        )
        decision = self.risk.record(
            signal, inputs, outcome, ts_event=now, source=OPERATOR, event_id=decision_id
        )
        self.recorder.event(Topic.RISK_EVENTS, decision)
        self.stats.verdicts["approved"] += 1
        self.recorder.event(Topic.RISK_APPROVED_TRADES, order)
        self._apply(result)
        mine = [o for o in result.orders if o.side is Side.SELL and o.symbol == state.symbol]
        return mine[0] if mine else None
