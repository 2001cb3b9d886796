"""The simulator's order and trade history, commissions, coin list and batch placement, as MEXC
documents them (sim/history.py), on a hand-moved clock."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange
from cdb_cli.adapters.mexc.sim.auth import ApiError
from cdb_cli.adapters.mexc.sim.history import (
    DAY_MS,
    all_orders,
    batch_orders,
    coin_config,
    my_trades,
    trade_fee,
)
from cdb_cli.adapters.mexc.sim.orders import Account

from .conftest import API_KEY

START = 1_800_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def exchange(sim_config: SimConfig, clock: Clock) -> SimExchange:
    return SimExchange(sim_config, clock_ms=clock)


@pytest.fixture
def account(exchange: SimExchange) -> Account:
    return exchange.accounts[API_KEY]


def rest(exchange: SimExchange, account: Account, clock: Clock, count: int) -> list[str]:
    """``count`` resting BTCUSDT buys, one per second; their order ids."""
    ids = []
    for i in range(count):
        placed = exchange.place_order(
            account,
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.01",
                "price": str(20000 + i),
            },
        )
        ids.append(str(placed["orderId"]))
        clock.now += 1000
    return ids


def ids(rows: list[dict[str, object]]) -> list[str]:
    return [str(r["orderId"]) for r in rows]


def test_all_orders_pages_oldest_first_from_start_else_the_latest(
    exchange: SimExchange, account: Account, clock: Clock
) -> None:
    placed = rest(exchange, account, clock, 3)
    exchange.cancel_order(account, {"symbol": "BTCUSDT", "orderId": placed[0]})
    rows = all_orders(exchange, account, {"symbol": "BTCUSDT"})
    assert ids(rows) == placed
    assert [r["status"] for r in rows] == ["CANCELED", "NEW", "NEW"]
    assert ids(all_orders(exchange, account, {"symbol": "BTCUSDT", "limit": "2"})) == placed[1:]
    from_start = {"symbol": "BTCUSDT", "limit": "2", "startTime": str(START)}
    assert ids(all_orders(exchange, account, from_start)) == placed[:2]
    until = {"symbol": "BTCUSDT", "startTime": str(START), "endTime": str(START + 1000)}
    assert ids(all_orders(exchange, account, until)) == placed[:2]  # inclusive bounds


def test_all_orders_default_to_a_day_and_reach_back_seven(
    exchange: SimExchange, account: Account, clock: Clock
) -> None:
    placed = rest(exchange, account, clock, 1)
    clock.now = START + 2 * DAY_MS
    assert all_orders(exchange, account, {"symbol": "BTCUSDT"}) == []
    since = {"symbol": "BTCUSDT", "startTime": str(START)}
    assert ids(all_orders(exchange, account, since)) == placed
    clock.now = START + 8 * DAY_MS
    assert all_orders(exchange, account, since) == []


def test_my_trades_filter_by_order_and_page_at_most_100(
    exchange: SimExchange, account: Account, clock: Clock
) -> None:
    orders = []
    for _ in range(3):
        placed = exchange.place_order(
            account, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
        )
        orders.append(placed["orderId"])
        clock.now += 1000
    trades = my_trades(exchange, account, {"symbol": "BTCUSDT"})
    assert [t["orderId"] for t in trades] == orders
    one = my_trades(exchange, account, {"symbol": "BTCUSDT", "orderId": str(orders[1])})
    assert [t["orderId"] for t in one] == [orders[1]]
    latest = my_trades(exchange, account, {"symbol": "BTCUSDT", "limit": "1"})
    assert [t["orderId"] for t in latest] == [orders[2]]
    first = my_trades(exchange, account, {"symbol": "BTCUSDT", "limit": "1", "startTime": "0"})
    assert [t["orderId"] for t in first] == [orders[0]]
    with pytest.raises(ApiError) as caught:
        my_trades(exchange, account, {"symbol": "BTCUSDT", "limit": "x"})
    assert caught.value.code == 33333


def test_trade_fee_is_the_symbols_rates_in_mexcs_envelope(exchange: SimExchange) -> None:
    answer = trade_fee(exchange, {"symbol": "BTCUSDT"})
    inst = exchange.markets["BTCUSDT"].instrument
    assert answer["data"] == {
        "makerCommission": float(inst.maker_fee),
        "takerCommission": float(inst.taker_fee),
    }
    assert (answer["code"], answer["msg"], answer["timestamp"]) == (0, "success", START)


def test_coin_list_names_every_asset_with_its_networks(exchange: SimExchange) -> None:
    coins = {c["coin"]: c for c in coin_config(exchange)}
    assert set(coins) == {"BTC", "ETH", "USDT"}
    for coin, entry in coins.items():
        networks = entry["networkList"]
        assert isinstance(networks, list)
        assert networks
        assert all(n["coin"] == coin and n["network"] == n["netWork"] for n in networks)
        assert all(Decimal(n["withdrawMin"]) <= Decimal(n["withdrawMax"]) for n in networks)


def test_batch_answers_each_order_in_place(exchange: SimExchange, account: Account) -> None:
    orders = [
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.01",
            "price": "20000",
            "newClientOrderId": "b-1",
        },
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.00001",
            "price": "20000",
            "newClientOrderId": "b-2",
        },
    ]
    ok, failed = batch_orders(exchange, account, {"batchOrders": json.dumps(orders)})
    assert (ok["symbol"], ok["newClientOrderId"], ok["orderListId"]) == ("BTCUSDT", "b-1", -1)
    assert account.orders[str(ok["orderId"])].client_order_id == "b-1"
    assert (failed["newClientOrderId"], failed["code"]) == ("b-2", 30002)
    assert "orderId" not in failed


@pytest.mark.parametrize(
    ("orders", "code"),
    [
        ("not json", 33333),
        ("[]", 44444),
        (json.dumps([{"symbol": "BTCUSDT"}] * 21), 33333),
        (json.dumps([{"symbol": "BTCUSDT"}, {"symbol": "ETHUSDT"}]), 33333),
    ],
)
def test_batch_refuses_what_mexc_does_not_take(
    exchange: SimExchange, account: Account, orders: str, code: int
) -> None:
    with pytest.raises(ApiError) as caught:
        batch_orders(exchange, account, {"batchOrders": orders})
    assert caught.value.code == code
    assert account.orders == {}


def test_cancel_all_takes_up_to_five_symbols(
    exchange: SimExchange, account: Account, clock: Clock
) -> None:
    rest(exchange, account, clock, 1)
    exchange.place_order(
        account,
        {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.1", "price": "1000"},
    )
    canceled = exchange.cancel_open_orders(account, {"symbol": "BTCUSDT,ETHUSDT"})
    assert sorted(str(o["symbol"]) for o in canceled) == ["BTCUSDT", "ETHUSDT"]
    assert not any(o.is_open for o in account.orders.values())
    with pytest.raises(ApiError) as caught:
        exchange.cancel_open_orders(account, {"symbol": ",".join(["BTCUSDT"] * 6)})
    assert caught.value.code == 33333
