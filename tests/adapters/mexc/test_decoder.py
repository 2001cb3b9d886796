"""The protobuf decoder on the four reference frames of mexc_api.md §4.5, and on bad input."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cdb_cli.adapters.mexc.decoder import FrameDecoder, channel_kind, trusted_trade
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper
from cdb_cli.engine.events import Bar, QuoteTick, Side, TradeTick, decode_event, encode_event

DEALS = bytes.fromhex(
    "0a2f73706f74407075626c69632e61676772652e6465616c732e76332e6170692e7062403130306d7340425443"
    "555344541a074254435553445430bca9d9d0c432d2134a0a1f0a0839333232302e3030120a302e303434333832"
    "3433180220bba9d9d0c432122773706f74407075626c69632e61676772652e6465616c732e76332e6170692e70"
    "62403130306d73"
)
KLINE = bytes.fromhex(
    "0a2973706f74407075626c69632e6b6c696e652e76332e6170692e70624042544355534454404d696e31351a07"
    "425443555344542220326662393432313534656634346134616232656639386338616662366134613728f3ec92"
    "d1c432a2134e0a054d696e313510848bfebb061a053932393235220839333135382e34372a0839333135382e34"
    "37320539323830303a0b33362e3833383033323234420a333432343831312e3035488892febb06"
)
BOOK_TICKER = bytes.fromhex(
    "0a3473706f74407075626c69632e61676772652e626f6f6b5469636b65722e76332e6170692e70624031303"
    "06d7340425443555344541a07425443555344543091b0e7d1c432da13270a0839333338372e32381207332e3"
    "7333438351a0839333338372e32392208372e363639383735"
)
DEPTH = bytes.fromhex(
    "0a2f73706f74407075626c69632e61676772652e64657074682e76332e6170692e7062403130306d7340425443"
    "555344541a074254435553445430a8e3eef58833ca136c0a0e0a093131373134352e343912013012170a093131"
    "373035332e3431120a312e38363833373237311a2773706f74407075626c69632e61676772652e64657074682e"
    "76332e6170692e7062403130306d73220b34333239363336333233362a0b3433323936333633323535"
)


def test_reference_frames_have_documented_lengths_and_reencode_identically() -> None:
    for frame, length in ((DEALS, 142), (KLINE, 174), (BOOK_TICKER, 112), (DEPTH, 176)):
        assert len(frame) == length
        wrapper = PushDataV3ApiWrapper()
        wrapper.ParseFromString(frame)
        assert wrapper.SerializeToString() == frame


def test_deals_frame_becomes_a_trade_tick() -> None:
    decoder = FrameDecoder()
    channel, events = decoder.decode(DEALS)
    assert channel == "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
    assert channel_kind(channel) == "public.aggre.deals.v3.api.pb"
    (tick,) = events
    assert isinstance(tick, TradeTick)
    assert tick.symbol == "BTCUSDT"
    assert tick.price == Decimal("93220.00")
    assert tick.quantity == Decimal("0.04438243")
    assert tick.aggressor is Side.SELL
    assert tick.ts_event == 1736409765051 * 1_000_000
    # Same deal → same event id, so a duplicate is recognisable downstream.
    assert decoder.decode(DEALS)[1][0].event_id == tick.event_id


def test_kline_frame_becomes_an_open_bar_with_seconds_converted() -> None:
    _, (bar,) = FrameDecoder().decode(KLINE)
    assert isinstance(bar, Bar)
    assert bar.interval == "15m"
    assert bar.ts_event == 1736410500 * 1_000_000_000
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal("92925"),
        Decimal("93158.47"),
        Decimal("92800"),
        Decimal("93158.47"),
    )
    assert bar.volume == Decimal("36.83803224")
    assert bar.closed is False


def test_book_ticker_frame_becomes_a_quote_tick() -> None:
    _, (quote,) = FrameDecoder().decode(BOOK_TICKER)
    assert isinstance(quote, QuoteTick)
    assert (quote.bid, quote.bid_size) == (Decimal("93387.28"), Decimal("3.73485"))
    assert (quote.ask, quote.ask_size) == (Decimal("93387.29"), Decimal("7.669875"))
    assert quote.ts_event == 1736412092433 * 1_000_000


def test_depth_frame_is_decoded_but_not_an_event_yet() -> None:
    decoder = FrameDecoder()
    channel, events = decoder.decode(DEPTH)
    assert channel.startswith("spot@public.aggre.depth")
    assert events == []
    assert decoder.ignored == 1
    assert not decoder.bad


def _deal_frame(price: str, quantity: str = "1", trade_type: int = 1) -> bytes:
    wrapper = PushDataV3ApiWrapper(channel="spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT")
    wrapper.symbol = "BTCUSDT"
    deal = wrapper.publicAggreDeals.deals.add()
    deal.price, deal.quantity, deal.tradeType, deal.time = price, quantity, trade_type, 1
    return wrapper.SerializeToString()


def test_times_outside_1970_to_2100_are_refused() -> None:
    wrapper = PushDataV3ApiWrapper()
    wrapper.ParseFromString(_deal_frame("1"))
    for bad_time in (-5, 0, 2**62):
        wrapper.publicAggreDeals.deals[0].time = bad_time
        decoder = FrameDecoder()
        assert decoder.decode(wrapper.SerializeToString())[1] == []
        assert decoder.bad["bad_value"] == 1


def test_bad_values_are_counted_per_kind_and_never_become_events() -> None:
    decoder = FrameDecoder()
    for price in ("NaN", "-1", "0", "abc", "Infinity", "", "1E+400", " 1", "+1", "1_000", "1."):
        assert decoder.decode(_deal_frame(price)) == (
            "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT",
            [],
        )
    assert decoder.decode(_deal_frame("1", trade_type=7))[1] == []
    assert decoder.bad["bad_value"] == 12
    assert decoder.decode(DEALS[:-20])[1] == []  # truncated
    assert decoder.decode(b"\x0a\x05spot@")[1] == []  # no body
    assert decoder.bad["malformed_protobuf"] + decoder.bad["no_body"] == 2


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_and_every_frame_is_accounted(data: bytes) -> None:
    decoder = FrameDecoder()
    _, events = decoder.decode(data)
    assert decoder.frames == 1
    if not events:
        assert sum(decoder.bad.values()) + decoder.ignored <= 1
    for event in events:
        assert isinstance(event, TradeTick | QuoteTick | Bar)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=len(DEALS)))
def test_mutated_reference_frames_never_yield_a_non_positive_price(noise: bytes, cut: int) -> None:
    decoder = FrameDecoder()
    _, events = decoder.decode(DEALS[:cut] + noise)
    for event in events:
        if isinstance(event, TradeTick):
            assert event.price > 0
            assert event.quantity > 0
            assert "E" not in str(event.price)
            assert 0 < event.ts_event < 4_102_444_800_000_000_000


def test_trusted_trade_equals_a_validated_trade_tick() -> None:
    _, (tick,) = FrameDecoder().decode(DEALS)
    validated = TradeTick.model_validate(tick.model_dump())
    assert tick == validated
    assert tick.model_dump() == validated.model_dump()
    assert TradeTick.model_validate_json(tick.model_dump_json()) == tick
    assert tick.model_fields_set == validated.model_fields_set
    direct = trusted_trade(**validated.model_dump())
    assert direct == validated
    assert decode_event(encode_event(tick)) == tick  # travels on the bus like any event


def test_a_kline_frame_without_symbol_takes_it_from_the_channel_never_the_interval() -> None:
    wrapper = PushDataV3ApiWrapper.FromString(KLINE)
    wrapper.ClearField("symbol")
    decoder = FrameDecoder()
    _, (bar,) = decoder.decode(wrapper.SerializeToString())
    assert isinstance(bar, Bar)
    assert (bar.symbol, bar.interval) == ("BTCUSDT", "15m")
    wrapper.channel = "spot@public.kline.v3.api.pb@Day1"  # no symbol anywhere: refused
    assert decoder.decode(wrapper.SerializeToString()) == (wrapper.channel, [])
    assert decoder.bad == {"no_symbol": 1}


def test_book_ticker_2026_fields_are_read_and_bad_ones_refused() -> None:
    wrapper = PushDataV3ApiWrapper.FromString(BOOK_TICKER)
    wrapper.publicAggreBookTicker.version = "36913565463"
    wrapper.publicAggreBookTicker.lastOrderCreateTime = 1736412092430
    decoder = FrameDecoder()
    _, (quote,) = decoder.decode(wrapper.SerializeToString())
    assert isinstance(quote, QuoteTick)
    assert quote.bid == Decimal("93387.28")
    wrapper.publicAggreBookTicker.version = "1e9"
    assert decoder.decode(wrapper.SerializeToString())[1] == []
    wrapper.publicAggreBookTicker.version = "5"
    wrapper.publicAggreBookTicker.lastOrderCreateTime = -1
    assert decoder.decode(wrapper.SerializeToString())[1] == []
    assert decoder.bad == {"bad_value": 2}
