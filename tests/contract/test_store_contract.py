"""One contract for every ``Store``: in memory, SQLite file, real PostgreSQL (throw-away database).

Each test runs against all three, so the in-memory store used by tests and replay cannot drift
from what the SQL store does in paper and live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from market_testkit import fill as kit_fill
from market_testkit import trade as kit_trade

from cdb_cli.adapters.sql import SqlStore, upgrade
from cdb_cli.adapters.sql.pg_copy import COPY_MIN_ROWS
from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import (
    EVENT_TYPES,
    Bar,
    CheckResult,
    Condition,
    Event,
    ExecutionReport,
    HealthReport,
    OrderApproved,
    QuoteTick,
    RiskDecision,
    Side,
    SignalSide,
    StrategyTrace,
    TradeTick,
    TradingSignal,
)
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import (
    OPEN_ORDER_STATUSES,
    AuditRecord,
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    PositionRecord,
)
from cdb_cli.engine.store_memory import InMemoryStore

EventT = TypeVar("EventT", bound=Event)

TINY = Decimal("0.000000012345678901")  # 18 places: a float would not keep it
HUGE = Decimal("12345678901234567890.123456789012345678")  # all 38 digits
T0 = 1_700_000_000_000_000_000


@pytest.fixture(
    params=[
        "memory",
        "sqlite-memory",
        "sqlite-file",
        pytest.param("postgresql", marks=pytest.mark.infra),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        opened: Store = InMemoryStore()
    elif request.param == "sqlite-memory":
        opened = SqlStore("sqlite://")  # migrated on creation: it lives only in its engine
    else:
        if request.param == "sqlite-file":
            url = f"sqlite:///{tmp_path / 'cdb.db'}"
        else:
            url = request.getfixturevalue("postgres_database")
        upgrade(url)
        opened = SqlStore(url)
    yield opened
    opened.close()


def event(kind: type[EventT], **fields: Any) -> EventT:
    """An event of ``kind`` on BTCUSDT at T0 unless ``fields`` say otherwise."""
    return kind.model_validate({"symbol": "BTCUSDT", "ts_event": T0, "source": "test", **fields})


def trade(ts: int, *, symbol: str = "BTCUSDT", event_id: str | None = None) -> TradeTick:
    return kit_trade(ts, "43000.5", quantity="0.001", symbol=symbol, trade_id=str(ts),
                     event_id=event_id)  # fmt: skip


def bar(event_id: str, *, close: str, closed: bool, ts: int = T0) -> Bar:
    prices = {"open": Decimal(100), "high": Decimal(110), "low": Decimal(90)}
    return event(Bar, event_id=event_id, ts_event=ts, interval="1m", **prices,
                 close=Decimal(close), volume=Decimal("12.5"), closed=closed)  # fmt: skip


CHECKS = (
    CheckResult(rule="spread", code="SPREAD_OK", passed=True, observed=TINY, limit=Decimal("1E-3")),
    CheckResult(rule="exposure", code="EXPOSURE_REDUCED", passed=False, observed=Decimal("0.35"),
                limit=Decimal("0.30"), detail="cut to fit"),
    CheckResult(rule="stale_data", code="FRESH", passed=True),
)  # fmt: skip

SAMPLES: dict[type[Event], Callable[[], Event]] = {
    TradeTick: lambda: trade(T0),
    QuoteTick: lambda: event(QuoteTick, symbol="ETHUSDT", bid=TINY, ask=HUGE,
                             bid_size=Decimal(0), ask_size=Decimal("3.5")),
    Bar: lambda: bar("bar-1", close="105.25", closed=True),
    TradingSignal: lambda: event(TradingSignal, side=SignalSide.BUY, strategy="momentum",
                                 price=Decimal("43000.5"), strength=0.75,
                                 indicators={"rsi": 61.5, "ema_fast": 43010.25}),
    RiskDecision: lambda: event(RiskDecision, signal_id="signal-1", verdict="reduced",
                                side=SignalSide.BUY, requested_quote=Decimal(500),
                                final_quote=Decimal("300.5"), checks=CHECKS,
                                state={"equity": "1000.00", "exposure": "0.35"}),
    OrderApproved: lambda: event(OrderApproved, decision_id="decision-1", side=Side.BUY,
                                 quote_amount=Decimal("300.5"), reference_price=Decimal("43000.5")),
    ExecutionReport: lambda: event(ExecutionReport, client_order_id="cdb-1", venue_order_id="v-1",
                                   side=Side.BUY, status="PARTIALLY_FILLED", last_quantity=TINY,
                                   last_price=Decimal("43000.5"), fee=Decimal("1E-7"),
                                   fee_asset="BTC"),
    HealthReport: lambda: event(HealthReport, symbol="*", component="store", status="degraded",
                                detail="slow commit"),
    StrategyTrace: lambda: event(StrategyTrace, strategy="ema_cross", status="evaluated",
                                 close=43000.5, volume=1.25, gap_bars=3, signal="exit",
                                 signal_id="signal-1",
                                 conditions=(Condition(name="cross_down", side="exit",
                                                       value=-0.012, threshold=0.0, passed=True,
                                                       text="cross down: gap -0.012 %"),
                                             Condition(name="trend", passed=None)),
                                 values={"rsi": 48.25, "gap_pct": -0.012}),
}  # fmt: skip


def order(
    client_order_id: str = "cdb-1", *, status: str = "NEW", ts: int = T0, symbol: str = "BTCUSDT"
) -> OrderRecord:
    return OrderRecord.model_validate(
        {"client_order_id": client_order_id, "decision_id": "decision-1", "symbol": symbol,
         "side": "BUY", "order_type": "MARKET", "quote_amount": Decimal("300.5"),
         "status": status, "ts_created": ts, "ts_updated": ts, "mode": "paper"}
    )  # fmt: skip


def fill(fill_id: str, *, ts: int = T0, client_order_id: str = "cdb-1") -> FillRecord:
    return kit_fill(Side.BUY, TINY, HUGE, fill_id=fill_id, client_order_id=client_order_id,
                    fee="1E-7", fee_asset="BTC", ts=ts)  # fmt: skip


def snapshot(ts: int, equity: str) -> EquitySnapshot:
    value = Decimal(equity)
    return EquitySnapshot(ts_event=ts, cash=value, position_value=Decimal(0), equity=value,
                          day_start_equity=Decimal(1000), peak_equity=Decimal(1100))  # fmt: skip


def test_store_sample_covers_every_event_type() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES.values())


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.__name__)
def test_event_round_trips_unchanged(store: Store, kind: type[Event]) -> None:
    event = SAMPLES[kind]()
    assert store.append_events([event]) == 1
    assert store.events(kind) == [event]


def test_events_of_mixed_batch_go_to_their_own_types(store: Store) -> None:
    events = [factory() for factory in SAMPLES.values()]
    assert store.append_events(events) == len(events)
    for event in events:
        assert store.events(type(event)) == [event]


def test_duplicate_event_ids_are_written_once(store: Store) -> None:
    first, second = trade(T0, event_id="a"), trade(T0 + 1, event_id="b")
    assert store.append_events([first, second, first]) == 2
    assert store.append_events([second, trade(T0 + 2, event_id="c")]) == 1
    assert [e.event_id for e in store.events(TradeTick)] == ["a", "b", "c"]


def test_large_batch_skips_stored_and_repeated_ids_in_order(store: Store) -> None:
    # Large enough for PostgreSQL's COPY path; half of it is already stored.
    stored = [trade(T0 + i, event_id=f"t{i}") for i in range(COPY_MIN_ROWS)]
    assert store.append_events(stored) == COPY_MIN_ROWS
    fresh = [trade(T0 + i, event_id=f"t{i}") for i in range(COPY_MIN_ROWS, 2 * COPY_MIN_ROWS)]
    assert store.append_events([*reversed(stored), *fresh, *fresh[:10]]) == COPY_MIN_ROWS
    assert [e.event_id for e in store.events(TradeTick)] == [
        f"t{i}" for i in range(2 * COPY_MIN_ROWS)
    ]


def test_events_window_is_half_open_filtered_and_ordered(store: Store) -> None:
    store.append_events(
        [
            trade(T0 + 30, event_id="late"),
            trade(T0 + 10, event_id="early"),
            trade(T0 + 20, event_id="tie-1"),
            trade(T0 + 20, event_id="tie-2"),
            trade(T0 + 20, event_id="other", symbol="ETHUSDT"),
        ]
    )

    def ids(**window: Any) -> list[str]:
        return [e.event_id for e in store.events(TradeTick, symbol="BTCUSDT", **window)]

    assert ids() == ["early", "tie-1", "tie-2", "late"]
    assert ids(since_ns=T0 + 20, until_ns=T0 + 30) == ["tie-1", "tie-2"]
    assert ids(limit=2) == ["early", "tie-1"]
    assert ids(descending=True) == ["late", "tie-2", "tie-1", "early"]
    assert ids(limit=1, descending=True) == ["late"]
    assert [e.event_id for e in store.events(TradeTick, symbol="ETHUSDT")] == ["other"]
    assert store.events(QuoteTick) == []


def test_count_events_counts_the_window_without_reading_it(store: Store) -> None:
    store.append_events(
        [trade(T0 + 10 * i, event_id=f"t{i}") for i in range(5)]
        + [trade(T0 + 20, event_id="eth", symbol="ETHUSDT")]
    )

    assert store.count_events(TradeTick) == 6
    assert store.count_events(TradeTick, symbol="BTCUSDT") == 5
    assert store.count_events(TradeTick, symbol="BTCUSDT", since_ns=T0 + 10, until_ns=T0 + 40) == 3
    assert store.count_events(QuoteTick) == 0


def test_find_event_reads_one_event_by_id(store: Store) -> None:
    sample = SAMPLES[StrategyTrace]()
    store.append_events([sample, trade(T0, event_id="t-1")])

    assert store.find_event(StrategyTrace, sample.event_id) == sample
    assert store.find_event(TradeTick, "t-1") == trade(T0, event_id="t-1")
    assert store.find_event(StrategyTrace, "t-1") is None
    assert store.find_event(TradeTick, "nope") is None


def test_open_bar_is_replaced_and_closed_bar_is_final(store: Store) -> None:
    assert store.append_events([bar("v1", close="101", closed=False)]) == 1
    assert store.append_events([bar("v1", close="101", closed=False)]) == 0  # redelivery
    # Several versions of one candle in one batch apply in order.
    assert (
        store.append_events(
            [
                bar("v2", close="102", closed=False),
                bar("v3", close="103", closed=True),
                bar("v4", close="999", closed=True),
                bar("next", close="104", closed=False, ts=T0 + 60_000_000_000),
            ]
        )
        == 3
    )
    assert [(b.event_id, b.close, b.closed) for b in store.events(Bar)] == [
        ("v3", Decimal(103), True),
        ("next", Decimal(104), False),
    ]


def test_event_id_reused_for_another_bar_is_refused(store: Store) -> None:
    store.append_events([bar("same", close="101", closed=True)])
    with pytest.raises(StateError):
        store.append_events([bar("same", close="101", closed=True, ts=T0 + 60_000_000_000)])
    assert len(store.events(Bar)) == 1


def test_events_of_unstored_type_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="Event"):
        store.events(Event)


def test_save_order_upserts_by_client_order_id(store: Store) -> None:
    store.save_order(order("cdb-1", status="PENDING_NEW", ts=T0 + 1))
    store.save_order(order("cdb-2", status="NEW", ts=T0, symbol="ETHUSDT"))
    filled = order("cdb-1", status="FILLED", ts=T0 + 1).model_copy(
        update={"venue_order_id": "v-9", "ts_updated": T0 + 5}
    )
    store.save_order(filled)

    assert store.orders() == [order("cdb-2", status="NEW", ts=T0, symbol="ETHUSDT"), filled]
    assert [o.client_order_id for o in store.orders(status=OPEN_ORDER_STATUSES)] == ["cdb-2"]
    assert store.orders(symbol="BTCUSDT") == [filled]
    assert [o.client_order_id for o in store.orders(limit=1, descending=True)] == ["cdb-1"]


def test_add_fill_is_idempotent_by_fill_id(store: Store) -> None:
    store.save_order(order())
    assert store.add_fill(fill("f-1")) is True
    assert store.add_fill(fill("f-1")) is False
    assert store.fills() == [fill("f-1")]


def test_fill_without_saved_order_is_refused(store: Store) -> None:
    with pytest.raises(StateError, match="never saved"):
        store.add_fill(fill("f-1", client_order_id="unknown"))
    assert store.fills() == []


def position(quantity: str = "0.5") -> PositionRecord:
    return PositionRecord(symbol="BTCUSDT", quantity=Decimal(quantity), average_price=HUGE,
                          realized_pnl=Decimal(0), ts_updated=T0)  # fmt: skip


def audit(state: str) -> AuditRecord:
    return AuditRecord(ts_event=T0, action="trading_state", actor="cdb run", run_id="run-1",
                       detail={"state": state})  # fmt: skip


def test_a_batch_is_written_whole_with_fills_of_its_own_orders(store: Store) -> None:
    store.save_batch(
        events=[trade(T0, event_id="t-1"), bar("bar-1", close="105.25", closed=True)],
        orders=[order("cdb-1"), order("cdb-2")],
        fills=[fill("f-1"), fill("f-2", client_order_id="cdb-2")],
        positions=[position()],
        audits=[audit("HALTED")],
    )
    assert [e.ts_event for e in store.events(TradeTick)] == [T0]
    assert [b.event_id for b in store.events(Bar)] == ["bar-1"]
    assert [o.client_order_id for o in store.orders()] == ["cdb-1", "cdb-2"]
    assert [f.fill_id for f in store.fills()] == ["f-1", "f-2"]
    assert store.positions() == [position()]
    assert [a.detail for a in store.audits()] == [{"state": "HALTED"}]
    # Written again (a retry after a lost answer): idempotent where the single writes are.
    store.save_batch(
        events=[trade(T0, event_id="t-1")], orders=[order("cdb-1")], fills=[fill("f-1")]
    )
    assert len(store.events(TradeTick)) == 1
    assert [f.fill_id for f in store.fills()] == ["f-1", "f-2"]


def test_a_batch_with_a_refused_part_writes_nothing(store: Store) -> None:
    """All or nothing: a fill of an order nobody saved refuses the whole batch, so the events,
    the order, the fill and the position before it are not stored either."""
    with pytest.raises(StateError, match="never saved"):
        store.save_batch(
            events=[trade(T0)],
            orders=[order("cdb-1")],
            fills=[fill("f-1"), fill("f-2", client_order_id="unknown")],
            positions=[position()],
            audits=[audit("HALTED")],
        )
    assert store.events(TradeTick) == []
    assert store.orders() == []
    assert store.fills() == []
    assert store.positions() == []
    assert store.audits() == []
    store.save_batch(events=[bar("bar-1", close="100", closed=True)])
    with pytest.raises(StateError):  # an id stored for another bar
        store.save_batch(
            events=[trade(T0), bar("bar-1", close="100", closed=True, ts=T0 + 60_000_000_000)]
        )
    assert store.events(TradeTick) == []


def test_fills_filter_by_order_and_window(store: Store) -> None:
    store.save_order(order("cdb-1"))
    store.save_order(order("cdb-2"))
    store.add_fill(fill("late", ts=T0 + 2))
    store.add_fill(fill("early", ts=T0))
    store.add_fill(fill("other", ts=T0 + 1, client_order_id="cdb-2"))
    assert [f.fill_id for f in store.fills()] == ["early", "other", "late"]
    assert [f.fill_id for f in store.fills(client_order_id="cdb-1")] == ["early", "late"]
    assert [f.fill_id for f in store.fills(since_ns=T0 + 1)] == ["other", "late"]


def test_positions_upsert_by_symbol(store: Store) -> None:
    eth = PositionRecord(
        symbol="ETHUSDT",
        quantity=Decimal(2),
        average_price=Decimal(2000),
        realized_pnl=Decimal(0),
        ts_updated=T0,
    )
    btc_open = PositionRecord(
        symbol="BTCUSDT",
        quantity=TINY,
        average_price=HUGE,
        realized_pnl=Decimal("-1.25"),
        ts_updated=T0,
    )
    btc_closed = btc_open.model_copy(
        update={"quantity": Decimal(0), "realized_pnl": Decimal("3.5"), "ts_updated": T0 + 1}
    )
    store.save_position(eth)
    store.save_position(btc_open)
    store.save_position(btc_closed)
    assert store.positions() == [btc_closed, eth]


def test_equity_snapshots_are_time_ordered_and_latest_is_one_call(store: Store) -> None:
    for ts, equity in ((T0 + 2, "1002"), (T0, "1000"), (T0 + 1, "1001.5"), (T0 + 2, "1003")):
        store.add_equity_snapshot(snapshot(ts, equity))
    assert [s.equity for s in store.equity_snapshots()] == [
        Decimal("1000"),
        Decimal("1001.5"),
        Decimal("1002"),
        Decimal("1003"),
    ]
    assert store.equity_snapshots(limit=1, descending=True) == [snapshot(T0 + 2, "1003")]
    assert len(store.equity_snapshots(since_ns=T0 + 1, until_ns=T0 + 2)) == 1


def test_audits_keep_order_detail_and_filter_by_action(store: Store) -> None:
    reset = AuditRecord(
        ts_event=T0 + 1,
        action="risk.reset",
        actor="operator",
        detail={"rule": "circuit_breaker", "reason": "reviewed"},
        run_id="r1",
    )
    start = AuditRecord(ts_event=T0, action="run.start", actor="cdb", detail={}, run_id="r1")
    store.add_audit(reset)
    store.add_audit(start)
    assert store.audits() == [start, reset]
    assert store.audits(action="risk.reset") == [reset]
    assert store.audits(limit=1, descending=True) == [reset]


def test_config_get_set_replaces_value(store: Store) -> None:
    assert store.get_config("risk.max_exposure") is None
    store.set_config("risk.max_exposure", "0.30")
    store.set_config("risk.max_exposure", "0.25")
    store.set_config("ui.theme", "")
    assert store.get_config("risk.max_exposure") == "0.25"
    assert store.get_config("ui.theme") == ""
    with pytest.raises(ValueError, match="config key"):
        store.set_config("k" * 129, "x")


@pytest.mark.parametrize("amount", [TINY, HUGE, Decimal("-0.000000000000000001"), Decimal(0)])
def test_decimal_money_round_trips_exactly(store: Store, amount: Decimal) -> None:
    store.save_order(order().model_copy(update={"quote_amount": abs(amount)}))
    store.save_position(
        PositionRecord(
            symbol="BTCUSDT",
            quantity=abs(amount),
            average_price=abs(amount),
            realized_pnl=amount,
            ts_updated=T0,
        )
    )
    store.append_events([SAMPLES[QuoteTick]().model_copy(update={"bid_size": abs(amount)})])

    (saved,) = store.orders()
    (position,) = store.positions()
    (quote,) = store.events(QuoteTick)
    for value in (saved.quote_amount, position.quantity, position.average_price, quote.bid_size):
        assert isinstance(value, Decimal)
        assert value == abs(amount)
    assert position.realized_pnl == amount
    assert (quote.bid, quote.ask) == (TINY, HUGE)


def test_concurrent_writers_from_threads_all_land(store: Store) -> None:
    # The runtime calls the store through asyncio.to_thread: several threads at once.
    def write(worker: int) -> int:
        store.save_order(order(f"cdb-{worker}", ts=T0 + worker))
        store.add_fill(fill(f"f-{worker}", client_order_id=f"cdb-{worker}"))
        batch = [trade(T0 + i, event_id=f"w{worker}-{i}") for i in range(50)]
        return sum(store.append_events(batch[i : i + 10]) for i in range(0, 50, 10))

    with ThreadPoolExecutor(max_workers=4) as pool:
        written = list(pool.map(write, range(8)))
    assert written == [50] * 8
    assert len(store.events(TradeTick)) == 400
    assert len(store.orders()) == len(store.fills()) == 8


def test_closed_store_refuses_calls(store: Store) -> None:
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.append_events([trade(T0)])
    with pytest.raises(StateError, match="closed"):
        store.positions()
    store.close()  # twice is harmless
