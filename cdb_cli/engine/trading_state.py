"""The trading-state machine and its loss-limit tripwires: ACTIVE → REDUCING → HALTED.

The risk side owns the trading state, as nautilus_trader's RiskEngine does: the pipeline holds one
:class:`TradingStateMachine` and hands it the rare moments of its hot loop — a new UTC day, a float
tripwire crossed, a decision's exact inputs, an operator's halt or reset.

What decides is exact: :func:`~cdb_cli.engine.risk.next_state` on the portfolio's ``Decimal`` risk
inputs. What the hot loop compares on every price is two float floors of equity, armed here:

- the circuit breaker's, ``peak * (1 - circuit_breaker_pct / 100)``, while not HALTED (the hot loop
  raises it with each new peak);
- the daily drawdown's, ``day_start * (1 - daily_drawdown_pct / 100)``, while ACTIVE.

A disarmed floor is ``-inf``. When equity falls below a floor, :meth:`check_limits` decides on
``Decimal``; float noise at the boundary re-arms the floors just below the equity seen.

The pipeline's float shadow of the ledger runs ahead of the ``Decimal`` portfolio between
decisions, so the machine takes two hooks into it: ``peak``, the float peak equity the floors are
armed on, and ``sync``, which hands the float marks to the portfolio before the machine reads it.
Without them (a portfolio that is always current) the portfolio's own peak is used.

A REDUCING state lasts for the UTC day; HALTED lasts until an audited reset (:meth:`reset`). Every
change is recorded as ``(ts, state, why)`` in :attr:`TradingStateMachine.changes`, and each ended
day's closing equity snapshot in :attr:`TradingStateMachine.snapshots`.

Pure: ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Final, Protocol

from cdb_cli.engine.config import RiskLimits
from cdb_cli.engine.portfolio import NS_PER_DAY, Portfolio
from cdb_cli.engine.records import EquitySnapshot
from cdb_cli.engine.risk import RiskInputs, TradingState, next_state

__all__ = ["DISARMED", "Sync", "TradingStateMachine"]

DISARMED: Final = float("-inf")
"""A floor no equity falls below: that tripwire is off."""
_NOISE: Final = 1.0 - 1e-12
_ONE: Final = Decimal(1)  # a valid quote for the inputs of a limit check, which reads none
_TWO: Final = Decimal(2)


class Sync(Protocol):
    """Brings the portfolio up to the caller's float marks (all, or the held symbols only)."""

    def __call__(self, *, held_only: bool = False) -> None: ...


class TradingStateMachine:
    """The trading state of one account, its loss-limit tripwires and its UTC day; see the module
    docstring."""

    def __init__(
        self,
        limits: RiskLimits,
        portfolio: Portfolio,
        *,
        peak: Callable[[], float] | None = None,
        sync: Sync | None = None,
    ) -> None:
        self.limits = limits
        self.portfolio = portfolio
        self._peak = peak if peak is not None else lambda: float(portfolio.peak_equity)
        self._sync = sync
        self.state = TradingState.ACTIVE
        self.changes: list[tuple[int, str, str]] = []
        """(ts, new trading state, why) in order."""
        self.snapshots: list[EquitySnapshot] = []
        """The equity snapshot taken at each UTC day roll (for the store and reports)."""
        self.cb_factor = 1.0 - float(limits.circuit_breaker_pct) / 100.0
        """The circuit breaker's floor as a fraction of the peak."""
        self.cb_floor = DISARMED
        self.dd_floor = DISARMED
        self.next_day_ns = -1
        """When the next UTC day starts; -1 before the first price (which starts the first)."""

    # --- the state ------------------------------------------------------------------------------

    def set(self, state: TradingState, ts: int, reason: str | None = None) -> None:
        """Change to ``state`` at ``ts``, recorded with ``reason`` (the limit's own words when
        None), and re-arm the floors. The same state again: nothing happens."""
        if state is self.state:
            return
        self.state = state
        if reason is None:
            reason = self._reason(state)
        self.changes.append((ts, str(state), reason))
        self.arm_floors()

    def update(self, inputs: RiskInputs, ts: int) -> None:
        """Move to the state a decision's exact inputs call for (HALTED and a day's REDUCING
        stick)."""
        self.set(next_state(inputs, self.limits), ts)

    def reset(self, ts: int, restart_peak: Callable[[float], None] | None = None) -> None:
        """An audited ``cdb risk reset``: back to ACTIVE, the peak restarts at today's equity
        (``restart_peak`` hands it to the caller's float shadow before the floors are armed)."""
        self._sync_portfolio()
        self.portfolio.reset_peak()
        if restart_peak is not None:
            restart_peak(float(self.portfolio.peak_equity))
        self.set(TradingState.ACTIVE, ts, "reset by the operator")
        self.arm_floors()

    def _reason(self, state: TradingState) -> str:
        limits, portfolio = self.limits, self.portfolio
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

    # --- the tripwires --------------------------------------------------------------------------

    def arm_floors(self) -> None:
        """The float tripwires: the breaker's while not halted, the daily one while active."""
        if self.state is TradingState.HALTED:
            self.cb_floor = self.dd_floor = DISARMED
            return
        self.cb_floor = self._peak() * self.cb_factor
        if self.state is TradingState.REDUCING:
            self.dd_floor = DISARMED
            return
        day_start = float(self.portfolio.day_start_equity)
        limit = float(self.limits.daily_drawdown_pct)
        self.dd_floor = day_start * (1.0 - limit / 100.0)

    def check_limits(self, now: int, equity: float) -> None:
        """A float tripwire fired at ``equity``: decide exactly, on ``Decimal``, whether a limit
        is breached; still ACTIVE (float noise at the boundary), re-arm just below ``equity``."""
        self._sync_portfolio(held_only=True)
        # Only the account's equity, day start and peak decide: no symbol's quote is read.
        inputs = self.portfolio.risk_inputs(
            "", bid=_ONE, ask=_TWO, last_price_age_ns=0, trading_state=self.state
        )
        self.update(inputs, now)
        if self.state is TradingState.ACTIVE:
            self.cb_floor = min(self.cb_floor, equity) * _NOISE
            self.dd_floor = min(self.dd_floor, equity) * _NOISE

    # --- the day --------------------------------------------------------------------------------

    def roll_day(self, ts: int) -> None:
        """The first price at or after :attr:`next_day_ns`: start the UTC day of ``ts`` — the
        ended day's closing snapshot, the new day-start equity, a day's reduction lifted — or,
        on the ledger's own day (the first price after a restart), only arm the floors."""
        self.next_day_ns = (ts // NS_PER_DAY + 1) * NS_PER_DAY
        previous = self.portfolio.day
        if previous is not None and ts // NS_PER_DAY <= previous:
            self.arm_floors()  # the first price after a restart, still the stored day
            return
        self._sync_portfolio()
        if previous is not None:  # the day that ends: its closing snapshot
            self.snapshots.append(self.portfolio.snapshot(ts))
        self.portfolio.roll_day(ts)
        if self.state is TradingState.REDUCING:
            self.set(TradingState.ACTIVE, ts)
        self.arm_floors()

    def roll_day_if_due(self, ts: int) -> bool:
        """Start the new UTC day at ``ts`` even when no price came yet (a quiet market). True when
        it rolled; never before the first price started a day."""
        if ts < self.next_day_ns or self.portfolio.day is None:
            return False
        self.roll_day(ts)
        return True

    def _sync_portfolio(self, *, held_only: bool = False) -> None:
        if self._sync is not None:
            self._sync(held_only=held_only)
