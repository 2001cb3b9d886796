"""The simulator's public channels: every channel MEXC documents is accepted, and its frames parse
with the classes generated from MEXC's protos, 2026 fields included, and through our decoder.

Documented channels: MEXC spot v3 docs (mexcdevelop/apidocs, branch spot_v3_en, commit c0de8ff),
"Websocket Market Streams"; the batch diff-depth channel is commented out there and is not served.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection, connect

from cdb_cli.adapters.mexc.decoder import FrameDecoder, channel_symbol
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper
from cdb_cli.adapters.mexc.sim import SimServer
from cdb_cli.engine.events import Bar, QuoteTick, TradeTick

pytestmark = pytest.mark.anyio

BTC = "BTCUSDT"
# channel → the wrapper's body field it pushes
DOCUMENTED = {
    f"spot@public.aggre.deals.v3.api.pb@100ms@{BTC}": "publicAggreDeals",
    f"spot@public.aggre.deals.v3.api.pb@10ms@{BTC}": "publicAggreDeals",
    f"spot@public.kline.v3.api.pb@{BTC}@Min1": "publicSpotKline",
    f"spot@public.kline.v3.api.pb@{BTC}@Day1": "publicSpotKline",
    f"spot@public.aggre.depth.v3.api.pb@100ms@{BTC}": "publicAggreDepths",
    f"spot@public.aggre.depth.v3.api.pb@10ms@{BTC}": "publicAggreDepths",
    f"spot@public.limit.depth.v3.api.pb@{BTC}@5": "publicLimitDepths",
    f"spot@public.limit.depth.v3.api.pb@{BTC}@10": "publicLimitDepths",
    f"spot@public.limit.depth.v3.api.pb@{BTC}@20": "publicLimitDepths",
    f"spot@public.aggre.bookTicker.v3.api.pb@100ms@{BTC}": "publicAggreBookTicker",
    f"spot@public.aggre.bookTicker.v3.api.pb@10ms@{BTC}": "publicAggreBookTicker",
    f"spot@public.bookTicker.batch.v3.api.pb@{BTC}": "publicBookTickerBatch",
}
EVENTS = {
    "publicAggreDeals": TradeTick,
    "publicSpotKline": Bar,
    "publicAggreBookTicker": QuoteTick,
    "publicBookTickerBatch": QuoteTick,
}


async def subscribe(ws: ClientConnection, topics: list[str]) -> dict[str, object]:
    await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": topics, "id": 3}))
    async with asyncio.timeout(5):
        answer: dict[str, object] = json.loads(await ws.recv())
    return answer


async def test_every_documented_channel_is_accepted_and_its_frames_parse(sim: SimServer) -> None:
    async with connect(sim.ws_url) as ws:
        assert await subscribe(ws, list(DOCUMENTED)) == {
            "id": 3,
            "code": 0,
            "msg": ",".join(DOCUMENTED),
        }
        await sim.step(prices={BTC: sim.exchange.markets[BTC].price * 2})
        frames: dict[str, PushDataV3ApiWrapper] = {}
        raw: dict[str, bytes] = {}
        async with asyncio.timeout(5):
            while len(frames) < len(DOCUMENTED):
                data = await ws.recv()
                assert isinstance(data, bytes)
                wrapper = PushDataV3ApiWrapper.FromString(data)
                frames[wrapper.channel], raw[wrapper.channel] = wrapper, data
    assert set(frames) == set(DOCUMENTED)
    version = int(
        frames[f"spot@public.aggre.depth.v3.api.pb@10ms@{BTC}"].publicAggreDepths.toVersion
    )
    decoder = FrameDecoder()
    for channel, body in DOCUMENTED.items():
        wrapper = frames[channel]
        assert (wrapper.WhichOneof("body"), wrapper.symbol) == (body, BTC)
        content = getattr(wrapper, body)
        if body in ("publicAggreDepths", "publicLimitDepths"):
            assert content.asks[0].price > "0"
            assert content.bids[0].price > "0"
        if body == "publicLimitDepths":
            levels = min(int(channel.rsplit("@", 1)[1]), sim.exchange.config.levels)
            assert len(content.asks) == len(content.bids) == levels
            assert content.eventType == "spot@public.limit.depth.v3.api.pb"
        if body in ("publicAggreBookTicker", "publicBookTickerBatch", "publicLimitDepths"):
            assert int(content.version) == version  # one version for the whole book
        if body != "publicSpotKline" and body != "publicAggreDeals":
            assert content.lastOrderCreateTime > 0  # 2026 field
        channel_, events = decoder.decode(raw[channel])
        assert channel_ == channel
        if body in EVENTS:
            (event,) = events
            assert isinstance(event, EVENTS[body])
            assert event.symbol == BTC
        else:
            assert events == []
    assert decoder.bad == {}
    assert decoder.ignored == 5  # the depth channels: read by orderbook.py, not the event stream


@pytest.mark.parametrize(
    "topic",
    [
        f"spot@public.limit.depth.v3.api.pb@{BTC}@15",  # levels are 5, 10 or 20
        f"spot@public.bookTicker.batch.v3.api.pb@100ms@{BTC}",  # the batch has no rate
        f"spot@public.aggre.depth.v3.api.pb@50ms@{BTC}",
        f"spot@public.increase.depth.batch.v3.api.pb@{BTC}",  # commented out in the docs
        "spot@public.bookTicker.batch.v3.api.pb@NOPEUSDT",
    ],
)
async def test_undocumented_channels_are_blocked(sim: SimServer, topic: str) -> None:
    async with connect(sim.ws_url) as ws:
        answer = await subscribe(ws, [topic])
    assert answer["msg"] == f"Not Subscribed successfully! [{topic}].  Reason\uff1a Blocked! "


@pytest.mark.parametrize(
    ("channel", "symbol"),
    [
        (f"spot@public.kline.v3.api.pb@{BTC}@Day1", BTC),
        (f"spot@public.limit.depth.v3.api.pb@{BTC}@20", BTC),
        (f"spot@public.bookTicker.batch.v3.api.pb@{BTC}", BTC),
        (f"spot@public.aggre.deals.v3.api.pb@100ms@{BTC}", BTC),
        ("spot@public.kline.v3.api.pb@Day1", ""),
        ("spot@public.aggre.deals.v3.api.pb@BTCUSDT", ""),
        ("spot@private.orders.v3.api.pb", ""),
        ("Day1", ""),
    ],
)
def test_the_symbol_of_a_channel_is_where_mexc_puts_it(channel: str, symbol: str) -> None:
    assert channel_symbol(channel) == symbol
