"""The report's analytics: a window that starts while a position is open prices the trades that
close in it from their true entry, read from the fills before it (of the position's own ledger)."""

from __future__ import annotations

from decimal import Decimal

from market_testkit import fill as kit_fill

from cdb_cli.engine.analytics import (
    WindowFills,
    analytics,
    describe_window,
    nothing_reported,
    window_fills,
)
from cdb_cli.engine.events import Side
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord
from cdb_cli.engine.report import open_trip_fills, round_trips
from cdb_cli.engine.runs import REPLAY_ACTION
from cdb_cli.engine.store_memory import InMemoryStore

T0 = 1_772_359_200_000_000_000  # 2026-03-01T10:00:00Z
HOUR = 3_600_000_000_000


def fill(
    order_id: str,
    side: Side,
    quantity: str,
    price: str,
    fee: str,
    hours: int,
    symbol: str = "BTCUSDT",
) -> FillRecord:
    return kit_fill(side, quantity, price, fill_id=f"{order_id}f", client_order_id=order_id,
                    symbol=symbol, fee=fee, ts=T0 + hours * HOUR)  # fmt: skip


ENTRY = fill("paper_a0000000001", Side.BUY, "0.5", "6000", "1.5", 0)
EXIT = fill("paper_b0000000001", Side.SELL, "0.5", "5966", "1.4915", 23)
LOSS = Decimal("-19.9915")  # 2983 - 3000 - 1.5 - 1.4915


def stored(*fills: FillRecord) -> InMemoryStore:
    store = InMemoryStore()
    for record in fills:
        store.save_order(
            OrderRecord(
                client_order_id=record.client_order_id,
                decision_id=f"d-{record.client_order_id}",
                symbol=record.symbol,
                side=record.side,
                order_type="MARKET",
                quantity=record.quantity,
                status="FILLED",
                ts_created=record.ts_event,
                ts_updated=record.ts_event,
                mode="paper",
            )
        )
        store.add_fill(record)
    return store


def test_the_fills_of_the_trips_still_open_at_the_end() -> None:
    eth = fill("paper_a0000000009", Side.BUY, "1", "200", "0.1", 1, symbol="ETHUSDT")
    later = fill("paper_a0000000003", Side.BUY, "0.1", "5900", "0.295", 25)
    adds = fill("paper_a0000000004", Side.BUY, "0.1", "5800", "0.29", 26)
    assert open_trip_fills([ENTRY, eth, EXIT, later, adds]) == [eth, later, adds]
    assert open_trip_fills([ENTRY, EXIT]) == []


def test_a_trade_opened_before_the_window_counts_from_its_true_entry() -> None:
    report = analytics([EXIT], [], [], entries=[ENTRY])
    summary = report["summary"]
    assert Decimal(summary["pnl"]) == LOSS
    assert (summary["trades"], summary["won"], summary["lost"]) == (1, 0, 1)
    assert (summary["opened_before_window"], summary["entry_fills_before_window"]) == (1, 1)
    assert summary["fills"] == 1
    assert Decimal(summary["fees_all_fills"]) == Decimal("1.4915")  # the window's own fills
    assert Decimal(summary["fees"]) == Decimal("2.9915")  # the trade's, its entry's too
    (trade,) = report["trades"]
    assert trade["opened"] == "2026-03-01T10:00:00Z"
    assert trade["opened_before_window"] is True
    assert Decimal(report["daily"]["2026-03-02"]["pnl"]) == LOSS
    # without its entry the sale looks like a trade that gained it all: what the window fixes
    alone, _ = round_trips([EXIT])
    assert alone[0].pnl == Decimal("2981.5085")


def test_window_fills_read_the_entry_of_a_position_open_at_the_start() -> None:
    store = stored(ENTRY, EXIT)
    since = T0 + 12 * HOUR
    window = window_fills(store, since_ns=since)
    assert window == WindowFills([EXIT], [ENTRY])
    by_run = window_fills(store, run_id="paper-b")  # a cdb run: the store's fills are its ledger
    assert by_run == WindowFills([EXIT], [ENTRY])
    assert window_fills(store) == WindowFills([ENTRY, EXIT], [])
    flat = window_fills(store, since_ns=T0 + 24 * HOUR)
    assert flat == WindowFills([], [])


def test_a_replay_starts_flat_and_reads_only_its_own_fills_before_a_window() -> None:
    own_entry = fill("replay_x0000000001", Side.BUY, "0.5", "6000", "1.5", 2)
    own_exit = fill("replay_x0000000002", Side.SELL, "0.5", "5966", "1.4915", 23)
    store = stored(ENTRY, own_entry, own_exit)  # paper-a's position is not the replay's
    store.add_audit(AuditRecord(ts_event=T0, action=REPLAY_ACTION, actor="test", run_id="replay-x"))
    assert window_fills(store, run_id="replay-x") == WindowFills([own_entry, own_exit], [])
    since = T0 + 12 * HOUR
    assert window_fills(store, run_id="replay-x", since_ns=since) == WindowFills(
        [own_exit], [own_entry]
    )


def test_an_empty_window_says_why() -> None:
    where = describe_window(T0, None, "BTCUSDT", "paper-b")
    assert where == "from 2026-03-01T10:00:00Z, until now, symbol BTCUSDT, run paper-b"
    reason = nothing_reported(WindowFills([], []), [], [], where, account_wide=False)
    assert reason == f"Nothing to report {where}: no fills and no risk decisions"
    assert nothing_reported(WindowFills([EXIT], []), [], [], where) is None
