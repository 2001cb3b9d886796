"""The trading-state machine on a real portfolio: the float tripwires it arms, the exact decision
when one fires, the UTC day, a restart, the operator's reset, and the hooks into a float shadow."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cdb_cli.engine.events import Side
from cdb_cli.engine.portfolio import NS_PER_DAY, Portfolio
from cdb_cli.engine.records import FillRecord
from cdb_cli.engine.risk import RiskLimits, TradingState
from cdb_cli.engine.trading_state import DISARMED, TradingStateMachine

BTC = "BTCUSDT"
DAY = 20_000 * NS_PER_DAY
HOUR = 3600 * 1_000_000_000
LIMITS = RiskLimits(daily_drawdown_pct=D(2), circuit_breaker_pct=D(10))


def account() -> Portfolio:
    """10 000 USDT, 8 000 of them in 80 BTC at 100: equity moves 80 per 1 of price."""
    portfolio = Portfolio(D(10_000))
    portfolio.apply_fill(
        FillRecord(
            fill_id="f1",
            client_order_id="o1",
            symbol=BTC,
            side=Side.BUY,
            quantity=D(80),
            price=D(100),
            ts_event=DAY,
            liquidity="taker",
        )
    )
    portfolio.mark(BTC, D(100))
    return portfolio


def started(limits: RiskLimits = LIMITS) -> tuple[TradingStateMachine, Portfolio]:
    portfolio = account()
    machine = TradingStateMachine(limits, portfolio)
    machine.roll_day(DAY + HOUR)  # the first price starts the first day
    return machine, portfolio


def test_the_first_price_starts_the_day_and_arms_both_floors() -> None:
    portfolio = account()
    machine = TradingStateMachine(LIMITS, portfolio)
    assert machine.roll_day_if_due(DAY) is False  # no day before the first price
    machine.roll_day(DAY + HOUR)
    assert machine.state is TradingState.ACTIVE
    assert portfolio.day == DAY // NS_PER_DAY
    assert machine.next_day_ns == DAY + NS_PER_DAY
    assert machine.cb_floor == pytest.approx(9_000.0)  # 10 % below the peak
    assert machine.dd_floor == pytest.approx(9_800.0)  # 2 % below the day's start
    assert machine.changes == []
    assert machine.snapshots == []  # no day ended
    assert machine.roll_day_if_due(DAY + 2 * HOUR) is False  # still the same day


def test_equity_at_the_limit_is_no_breach_and_rearms_just_below_it() -> None:
    machine, portfolio = started()
    portfolio.mark(BTC, D("97.5"))  # equity 9 800: exactly 2 % down, equal is not beyond
    machine.check_limits(DAY + 2 * HOUR, 9_800.0)
    assert machine.state is TradingState.ACTIVE
    assert machine.changes == []
    assert 9_799.99 < machine.dd_floor < 9_800.0  # float noise at the boundary: just below
    assert 8_999.99 < machine.cb_floor < 9_000.0


def test_a_daily_loss_beyond_the_limit_reduces_until_the_next_utc_day() -> None:
    machine, portfolio = started()
    portfolio.mark(BTC, D(97))  # equity 9 760: 2.4 % down today
    machine.check_limits(DAY + 2 * HOUR, 9_760.0)
    assert machine.state is TradingState.REDUCING
    assert machine.changes == [
        (
            DAY + 2 * HOUR,
            "reducing",
            "loss since start of day 2.4000 % is above 2 % (daily drawdown): only exits today",
        )
    ]
    assert machine.dd_floor == DISARMED  # only exits today: no daily tripwire
    assert machine.cb_floor == pytest.approx(9_000.0)  # the breaker still watches

    assert machine.roll_day_if_due(DAY + NS_PER_DAY - 1) is False
    assert machine.roll_day_if_due(DAY + NS_PER_DAY) is True  # a quiet market: no price needed
    assert machine.state is TradingState.ACTIVE
    assert machine.changes[-1] == (DAY + NS_PER_DAY, "active", "new UTC day")
    (closing,) = machine.snapshots  # the ended day's close
    assert (closing.ts_event, closing.equity) == (DAY + NS_PER_DAY, D(9_760))
    assert portfolio.day_start_equity == D(9_760)
    assert machine.dd_floor == pytest.approx(9_760 * 0.98)
    assert machine.next_day_ns == DAY + 2 * NS_PER_DAY


def test_the_breaker_trips_while_reducing_and_only_a_reset_ends_the_halt() -> None:
    machine, portfolio = started()
    portfolio.mark(BTC, D(97))
    machine.check_limits(DAY + 2 * HOUR, 9_760.0)
    portfolio.mark(BTC, D(87))  # equity 8 960: 10.4 % below the peak
    machine.check_limits(DAY + 3 * HOUR, 8_960.0)
    assert [state for _, state, _ in machine.changes] == ["reducing", "halted"]
    assert machine.changes[-1][2] == "loss from peak 10.4000 % is above 10 % (circuit breaker)"
    assert machine.cb_floor == machine.dd_floor == DISARMED

    portfolio.mark(BTC, D(100))  # a recovery does not un-halt
    machine.check_limits(DAY + 4 * HOUR, 10_000.0)
    machine.roll_day(DAY + NS_PER_DAY)  # nor does a new day
    assert machine.state is TradingState.HALTED
    assert len(machine.changes) == 2

    portfolio.mark(BTC, D(90))
    machine.reset(DAY + NS_PER_DAY + HOUR)
    assert machine.state is TradingState.ACTIVE
    assert machine.changes[-1] == (DAY + NS_PER_DAY + HOUR, "active", "reset by the operator")
    assert portfolio.peak_equity == portfolio.equity() == D(9_200)  # the peak restarts here
    assert machine.cb_floor == pytest.approx(9_200 * 0.9)


def test_a_reduction_resumed_on_restart_holds_for_the_rest_of_the_day() -> None:
    portfolio = account()
    portfolio.roll_day(DAY + 1)  # a restored ledger whose day is today
    machine = TradingStateMachine(LIMITS, portfolio)
    now = DAY + 10 * HOUR
    machine.set(TradingState.REDUCING, now, "resumed: daily drawdown")
    machine.roll_day(now + 1)  # the first price after the restart
    assert machine.state is TradingState.REDUCING
    assert machine.snapshots == []  # no closing snapshot for a day that has not ended
    assert machine.changes == [(now, "reducing", "resumed: daily drawdown")]
    assert machine.dd_floor == DISARMED
    assert machine.cb_floor == pytest.approx(9_000.0)
    assert machine.next_day_ns == DAY + NS_PER_DAY


def test_the_same_state_again_is_no_change() -> None:
    machine, _ = started()
    machine.set(TradingState.HALTED, DAY + 2 * HOUR, "kill switch")
    machine.set(TradingState.HALTED, DAY + 3 * HOUR, "again")
    assert machine.changes == [(DAY + 2 * HOUR, "halted", "kill switch")]
    assert machine.cb_floor == machine.dd_floor == DISARMED


def test_floors_follow_the_callers_float_peak_and_the_portfolio_is_synced_before_it_is_read() -> (
    None
):
    portfolio = account()
    float_peak = 10_500.0  # the caller's float marks saw a higher equity than the ledger did
    float_marks = {BTC: D(100)}
    synced: list[bool] = []

    def sync(*, held_only: bool = False) -> None:
        synced.append(held_only)
        portfolio.mark_all(float_marks, update_peak=False)

    machine = TradingStateMachine(LIMITS, portfolio, peak=lambda: float_peak, sync=sync)
    machine.roll_day(DAY + HOUR)
    assert synced == [False]  # every mark, before the new day's start equity is taken
    assert machine.cb_floor == pytest.approx(10_500 * 0.9)

    float_marks[BTC] = D(97)  # only the caller knows this price yet
    machine.check_limits(DAY + 2 * HOUR, 9_760.0)
    assert synced == [False, True]  # the held symbols, before the exact check
    assert machine.state is TradingState.REDUCING  # decided on the synced mark
