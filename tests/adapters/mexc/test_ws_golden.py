"""Golden WebSocket frames (tests/data/mexc/ws/): MEXC's documented examples as protobuf frames,
read by our decoder, and the simulator's frames of the same shape (see ws_golden_kit.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cdb_cli.adapters.mexc.decoder import FrameDecoder
from cdb_cli.adapters.mexc.orderbook import parse_depth
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper
from cdb_cli.adapters.mexc.sim import SimExchange, SimServer
from cdb_cli.engine.events import Bar, QuoteTick, TradeTick

from .ws_golden_kit import documented_frame, fixtures, golden_config, shape, simulator_frames

GOLDEN = fixtures()


def documented_body(fixture: dict[str, Any]) -> Any:
    body = fixture["documented"][fixture["documented_body"]]
    return body["items"][0] if "items" in body else body


@pytest.mark.parametrize("stem", sorted(GOLDEN))
def test_the_golden_frame_is_the_documented_example_with_the_2026_fields(stem: str) -> None:
    fixture = GOLDEN[stem]
    frame = bytes.fromhex(fixture["frame"])
    assert documented_frame(fixture) == frame
    wrapper = PushDataV3ApiWrapper.FromString(frame)
    assert wrapper.SerializeToString() == frame  # the encoder's round trip
    assert (wrapper.channel, wrapper.WhichOneof("body")) == (fixture["channel"], fixture["body"])
    body = getattr(wrapper, fixture["body"])
    for name, value in fixture["added_2026"].items():
        assert str(getattr(body, name)) == value


@pytest.mark.parametrize("stem", sorted(GOLDEN))
@pytest.mark.parametrize("which", ["frame", "simulator"])
def test_our_decoder_reads_the_golden_and_the_recorded_frames(stem: str, which: str) -> None:
    fixture = GOLDEN[stem]
    decoder = FrameDecoder()
    channel, events = decoder.decode(bytes.fromhex(fixture[which]))
    assert channel == fixture["channel"]
    assert decoder.bad == {}
    if fixture["body"] in ("publicAggreDepths", "publicLimitDepths"):
        assert (events, decoder.ignored) == ([], 1)
    else:
        (event,) = events
        assert event.symbol == "BTCUSDT"
    if which == "simulator":
        return
    documented = documented_body(fixture)
    first = events[0] if events else None
    if isinstance(first, TradeTick):
        assert first.price == Decimal(documented["dealsList"][0]["price"])
    elif isinstance(first, QuoteTick):
        assert first.bid == Decimal(documented.get("bidprice") or documented["bidPrice"])
    elif isinstance(first, Bar):
        assert (first.interval, first.close) == ("15m", Decimal(documented["closingprice"]))
    elif fixture["body"] == "publicAggreDepths":
        update = parse_depth(bytes.fromhex(fixture[which]))
        assert update.from_version == int(documented["fromVersion"])
        assert update.bids == ((Decimal("92877.58"), Decimal(0)),)  # "0": remove the level
        assert update.last_order_create_time == int(fixture["added_2026"]["lastOrderCreateTime"])


@pytest.mark.anyio
async def test_the_simulator_sends_the_golden_shape() -> None:
    async with SimServer(SimExchange(golden_config())) as server:
        live = await simulator_frames(server, [f["channel"] for f in GOLDEN.values()])
    for fixture in GOLDEN.values():
        golden = shape(bytes.fromhex(fixture["frame"]))
        recorded = shape(bytes.fromhex(fixture["simulator"]))
        now = shape(live[fixture["channel"]])
        assert now == recorded
        # the simulator sets every field the documented frame sets; kline frames also symbolId
        assert golden <= recorded, (fixture["channel"], golden - recorded)
