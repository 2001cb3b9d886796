"""What only the SQL store promises: data survive a restart, in-memory databases stay private."""

from __future__ import annotations

from decimal import Decimal

from market_testkit import trade

from cdb_cli.adapters.sql import SqlStore, upgrade
from cdb_cli.engine.events import Side, TradeTick
from cdb_cli.engine.records import OPEN_ORDER_STATUSES, OrderRecord

T0 = 1_700_000_000_000_000_000


def _trade(ts: int) -> TradeTick:
    return trade(ts, "0.000000012345678901", quantity="2", aggressor=Side.SELL)


def test_restart_resumes_from_the_database(database_url: str) -> None:
    upgrade(database_url)
    pending = OrderRecord(
        client_order_id="cdb-7",
        decision_id="decision-7",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type="LIMIT",
        quantity=Decimal("0.5"),
        price=Decimal("43000.1"),
        status="PENDING_NEW",
        ts_created=T0,
        ts_updated=T0,
        mode="live",
    )
    trades = [_trade(T0 + i) for i in range(3)]
    first = SqlStore(database_url)
    first.append_events(trades)
    first.save_order(pending)
    first.set_config("risk.halted", "true")
    first.close()

    second = SqlStore(database_url)
    try:
        assert second.events(TradeTick) == trades
        assert second.orders(status=OPEN_ORDER_STATUSES) == [pending]
        assert second.get_config("risk.halted") == "true"
        assert second.append_events(trades) == 0  # a replayed batch after the restart
    finally:
        second.close()


def test_in_memory_databases_are_private_to_their_store() -> None:
    one, other = SqlStore("sqlite://"), SqlStore("sqlite:///:memory:")
    try:
        assert one.append_events([_trade(T0)]) == 1
        assert other.events(TradeTick) == []
    finally:
        one.close()
        other.close()


def test_repr_names_the_database_without_password() -> None:
    store = SqlStore("sqlite://")
    store.close()
    assert repr(store) == "SqlStore(SQLite in memory)"
