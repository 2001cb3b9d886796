"""What the simulator lets the API trade, and how, over real HTTP: symbols not tradable over the
API (``--api-untradable``: out of ``defaultSymbols``, orders answered 10007), symbols without
MARKET orders (``--no-market``: ``orderTypes`` without MARKET, MARKET orders answered 30051), and
``tradeSideType`` (a side not allowed answered 30001)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import httpx
import pytest

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.engine.errors import ConfigurationError, VenueRejected
from cdb_cli.kernel.simulator import simulator_config

from .conftest import API_KEY, SECRET

pytestmark = pytest.mark.anyio


async def test_api_untradable_symbol_is_left_out_and_its_orders_get_10007(
    sim_config: SimConfig,
) -> None:
    config = replace(sim_config, api_untradable=frozenset({"ETHUSDT"}))
    async with (
        SimServer(SimExchange(config)) as server,
        MexcHttpClient(server.rest_url, Credentials(API_KEY, SECRET)) as client,
    ):
        assert await client.api_symbols() == {"BTCUSDT"}
        assert set(await client.exchange_info()) == {"BTCUSDT", "ETHUSDT"}  # still listed
        with pytest.raises(VenueRejected) as refused:
            await client.new_order(
                "ETHUSDT", "BUY", "LIMIT", quantity=Decimal(1), price=Decimal(1000)
            )
        assert refused.value.code == 10007
        assert "symbol not support api" in refused.value.message
        assert server.exchange.accounts[API_KEY].orders == {}
        placed = await client.new_order("BTCUSDT", "BUY", "MARKET", quote_order_qty=Decimal(20))
        assert placed is not None
        assert placed.symbol == "BTCUSDT"


async def test_no_market_symbol_lists_no_market_type_and_refuses_market_with_30051(
    sim_config: SimConfig,
) -> None:
    config = replace(sim_config, no_market=frozenset({"BTCUSDT"}))
    async with (
        SimServer(SimExchange(config)) as server,
        MexcHttpClient(server.rest_url, Credentials(API_KEY, SECRET)) as client,
    ):
        symbols = await client.symbols()
        assert "MARKET" not in symbols["BTCUSDT"].order_types
        assert "LIMIT" in symbols["BTCUSDT"].order_types
        assert symbols["BTCUSDT"].instrument.market_orders is False
        assert symbols["ETHUSDT"].instrument.market_orders is True
        with pytest.raises(VenueRejected) as refused:
            await client.new_order("BTCUSDT", "BUY", "MARKET", quote_order_qty=Decimal(20))
        assert (refused.value.code, "api market order is disabled" in refused.value.message) == (
            30051,
            True,
        )
        ask = (await client.book_ticker("BTCUSDT")).ask
        placed = await client.new_order(
            "BTCUSDT", "BUY", "LIMIT", quantity=Decimal("0.001"), price=ask
        )
        assert placed is not None
        (order,) = server.exchange.accounts[API_KEY].orders.values()
        assert (order.type, order.status) == ("LIMIT", "FILLED")


async def test_side_not_allowed_by_trade_side_type_gets_30001(sim_config: SimConfig) -> None:
    config = replace(sim_config, trade_sides={"BTCUSDT": "2"})  # buy orders only
    async with (
        SimServer(SimExchange(config)) as server,
        MexcHttpClient(server.rest_url, Credentials(API_KEY, SECRET)) as client,
    ):
        assert (await client.symbols(["BTCUSDT"]))["BTCUSDT"].trade_side == "2"
        with pytest.raises(VenueRejected) as refused:
            await client.new_order("BTCUSDT", "SELL", "MARKET", quantity=Decimal("0.01"))
        assert refused.value.code == 30001
        assert server.exchange.accounts[API_KEY].orders == {}


def test_the_switches_must_name_simulated_symbols() -> None:
    config = simulator_config(
        symbols=("BTCUSDT", "ETHUSDT"),
        balances={},
        api_untradable=("ETHUSDT",),
        no_market=("BTCUSDT",),
    )
    assert (config.api_untradable, config.no_market) == ({"ETHUSDT"}, {"BTCUSDT"})
    with pytest.raises(ConfigurationError, match="--no-market SOLUSDT"):
        simulator_config(symbols=("BTCUSDT",), balances={}, no_market=("SOLUSDT",))


async def test_tradability_is_changed_over_http_while_running(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as raw:
        assert (await raw.get("/_sim/symbols")).json() == {
            "api_untradable": [],
            "no_market": [],
            "trade_sides": {},
        }
        changed = await raw.post(
            "/_sim/symbols",
            json={"api_untradable": ["ethusdt"], "trade_sides": {"BTCUSDT": "3"}},
        )
        assert changed.json() == {
            "api_untradable": ["ETHUSDT"],
            "no_market": [],
            "trade_sides": {"BTCUSDT": "3"},
        }
        defaults = (await raw.get("/api/v3/defaultSymbols")).json()
        assert defaults["data"] == ["BTCUSDT"]
        for bad in ({"no_market": ["SOLUSDT"]}, {"trade_sides": {"BTCUSDT": "9"}}, {"x": 1}):
            refused = await raw.post("/_sim/symbols", json=bad)
            assert refused.status_code == 400, bad
        assert (await raw.get("/_sim/symbols")).json()["no_market"] == []  # nothing changed
