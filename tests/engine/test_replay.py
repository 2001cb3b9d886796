"""Replay drivers on the real data, the report, and a persisted run restored from the store."""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest
from cdb_testkit import CANDLES, TRADES, load_candles, ref_signals, require_data
from market_testkit import fill as kit_fill

from cdb_cli.adapters.marketdata_files import load_market_data
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import Side
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import default_instrument
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.records import AuditRecord, FillRecord
from cdb_cli.engine.replay import BarSeries, TradeSeries, replay_bars, replay_trades
from cdb_cli.engine.report import build_report, iso_utc, round_trips
from cdb_cli.engine.risk import RiskEngine, RiskLimits
from cdb_cli.engine.runs import REPLAY_ACTION, find_run, persist_run, restore_run
from cdb_cli.engine.signals import EmaCrossStrategy, SignalConfig
from cdb_cli.engine.store_memory import InMemoryStore


def pipeline_for(symbol: str, clock: TestClock, recorder: MemoryRecorder) -> TradingPipeline:
    return TradingPipeline(
        strategies={symbol: EmaCrossStrategy()},
        risk=RiskEngine(RiskLimits()),
        execution=SimulatedExecution(
            PaperExecutionConfig(),
            {symbol: default_instrument(symbol)},
            random.Random(0),
            id_prefix="rp",
            mode="replay",
        ),
        portfolio=Portfolio(D(10_000), quote_currency="BTC"),
        clock=clock,
        recorder=recorder,
        run_id="rp",
        record_curve=True,
    )


def test_bar_replay_of_the_real_candles_follows_the_rule() -> None:
    series = load_market_data(require_data(CANDLES), symbol="UNITTESTBTC")
    assert isinstance(series, BarSeries)
    clock, recorder = TestClock(), MemoryRecorder()
    pipeline = pipeline_for("UNITTESTBTC", clock, recorder)
    progress: list[int] = []
    replay_bars(pipeline, series, clock, progress.append)
    stats = pipeline.snapshot_stats()
    rows = load_candles()
    buys, exits = ref_signals([r[4] for r in rows], [r[5] for r in rows], SignalConfig())
    assert (stats.signals["buy"], stats.signals["exit"]) == (len(buys), len(exits))
    assert stats.bars == sum(progress) == len(rows)
    assert clock.timestamp_ns() == series.ts[-1] + series.interval_ns
    assert sum(stats.verdicts.values()) == len(buys) + len(exits)
    assert stats.fills > 0
    assert len(pipeline.equity_curve) == len(rows)


def test_tick_replay_of_real_trades_builds_bars_and_fills_on_trades() -> None:
    series = load_market_data(require_data(TRADES), symbol="XRPETH")
    assert isinstance(series, TradeSeries)
    clock, recorder = TestClock(), MemoryRecorder()
    pipeline = pipeline_for("XRPETH", clock, recorder)
    pipeline.portfolio = Portfolio(D(10_000), quote_currency="ETH")
    bars = replay_trades(pipeline, series, clock, 60 * 10**9)
    minutes = {ts // (60 * 10**9) for ts in series.ts}
    assert bars == len(minutes) == pipeline.snapshot_stats().bars
    assert recorder.fills, "the real trades produce fills"
    trade_times = set(series.ts)
    assert all(fill.ts_event in trade_times for fill in recorder.fills)  # fills happen on trades


def test_replay_trades_refuses_a_zero_interval() -> None:
    with pytest.raises(ValueError, match="interval_ns"):
        replay_trades(
            pipeline_for("XRPETH", TestClock(), MemoryRecorder()),
            TradeSeries("XRPETH"),
            TestClock(),
            0,
        )


def fill(
    n: int, side: Side, quantity: str, price: str, fee: str = "0.1", fee_asset: str = "USDT"
) -> FillRecord:
    return kit_fill(side, quantity, price, fill_id=f"f{n}", client_order_id=f"o{n}", fee=fee,
                    fee_asset=fee_asset, ts=n)  # fmt: skip


def test_round_trips_net_of_fees() -> None:
    fills = [
        fill(1, Side.BUY, "1", "100"),
        fill(2, Side.BUY, "1", "110"),
        fill(3, Side.SELL, "2", "120"),  # +30 - 0.3 fees
        fill(4, Side.BUY, "1", "100"),
        fill(5, Side.SELL, "1", "90"),  # -10 - 0.2
        fill(6, Side.BUY, "1", "100"),  # still open
    ]
    trips, still_open = round_trips(fills)
    assert [(t.ts_open, t.ts_close, t.pnl) for t in trips] == [
        (1, 3, D("29.7")),
        (4, 5, D("-10.2")),
    ]
    assert still_open == 1


def test_round_trips_with_fees_in_the_base_asset_and_in_mx() -> None:
    """MEXC takes a buy's fee in the base asset (the sell sells what was received) and, with MX
    deduction, any fee in MX (neither side of the trade is touched)."""
    fills = [
        fill(1, Side.BUY, "1", "100", fee="0.001", fee_asset="BTC"),  # receives 0.999
        fill(2, Side.SELL, "0.999", "120", fee="0.1", fee_asset="USDT"),
        fill(3, Side.BUY, "1", "100", fee="0.04", fee_asset="MX"),
        fill(4, Side.SELL, "1", "90", fee="0.03", fee_asset="MX"),
    ]
    trips, still_open = round_trips(fills)
    assert still_open == 0
    assert [(t.ts_close, t.pnl, t.fees) for t in trips] == [
        (2, D("19.78"), D("0.2")),  # 119.88 - 100 - 0.1; fees 0.001 BTC at 100 + 0.1
        (4, D("-10"), D("0")),  # the MX is not in the quote figures
    ]


def test_a_round_trip_closes_on_the_dust_a_base_fee_leaves() -> None:
    """A live buy receives 0.001 BTC less its fee; the exit sells what the step size allows
    (0.000999): the 0.0000005 BTC left is the fee's dust, and the trip is closed."""
    fills = [
        fill(1, Side.BUY, "0.001", "50000", fee="0.0000005", fee_asset="BTC"),
        fill(2, Side.SELL, "0.000999", "51000", fee="0.02", fee_asset="USDT"),
        fill(3, Side.BUY, "0.001", "50000", fee="0.0000005", fee_asset="BTC"),  # a new trip
    ]
    trips, still_open = round_trips(fills)
    assert [(t.ts_open, t.ts_close, t.pnl) for t in trips] == [(1, 2, D("0.929"))]
    assert still_open == 1


def test_report_is_a_plain_document() -> None:
    clock, recorder = TestClock(), MemoryRecorder()
    pipeline = pipeline_for("UNITTESTBTC", clock, recorder)
    report = build_report(
        stats=pipeline.snapshot_stats(),
        portfolio=pipeline.portfolio,
        fills=[],
        first_ts=None,
        last_ts=None,
        provenance={"run_id": "x"},
    )
    assert report["trades"] == {
        "closed": 0,
        "open": 0,
        "won": 0,
        "lost": 0,
        "win_rate": None,
        "best": None,
        "worst": None,
    }
    assert report["final_equity"] == "10000"
    assert iso_utc(1_509_836_520 * 10**9) == "2017-11-04T23:02:00Z"


@pytest.fixture
def finished() -> tuple[TradingPipeline, MemoryRecorder, BarSeries]:
    series = load_market_data(require_data(CANDLES), symbol="UNITTESTBTC")
    assert isinstance(series, BarSeries)
    clock, recorder = TestClock(), MemoryRecorder()
    pipeline = pipeline_for("UNITTESTBTC", clock, recorder)
    replay_bars(pipeline, series, clock)
    return pipeline, recorder, series


def test_persisted_run_restores_the_same_portfolio(
    finished: tuple[TradingPipeline, MemoryRecorder, BarSeries],
) -> None:
    pipeline, recorder, _ = finished
    store = InMemoryStore()
    end = pipeline.clock.timestamp_ns()
    persist_run(
        store,
        audit=AuditRecord(
            ts_event=end,
            action=REPLAY_ACTION,
            actor="test",
            run_id="rp",
            detail={"order_prefix": "rp"},
        ),
        portfolio=pipeline.portfolio,
        marks=pipeline.marks(),
        events=[event for _, event in recorder.events],
        orders=list(recorder.orders.values()),
        fills=recorder.fills,
        ts_end=end,
    )
    restored = restore_run(store, "rp")
    original = pipeline.portfolio
    assert restored.cash == original.cash
    assert restored.equity() == original.equity()
    assert restored.realized_pnl() == original.realized_pnl()
    assert restored.fees_paid == original.fees_paid
    assert {s: p.quantity for s, p in restored.positions.items()} == {
        s: p.quantity for s, p in original.positions.items()
    }
    assert find_run(store).run_id == "rp"
    with pytest.raises(StateError, match="No persisted replay 'other'"):
        restore_run(store, "other")
