"""Fuzzing the MEXC WebSocket decoders (issue 22): seeded byte-level mutations of valid protobuf
frames (public deals, book tickers, klines, depth; private orders, deals, account) through
:class:`FrameDecoder` and :class:`PrivateDecoder`, which never raise: a bad frame is counted and
dropped. Also mutated JSON control frames through the WebSocket client's reader.

Sizes: ``tests/fuzz_testkit.py`` (CI default; 100 000 frames with ``CDB_FUZZ=full``).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from fuzz_testkit import cases, mutate

from cdb_cli.adapters.mexc.decoder import BadValue, FrameDecoder
from cdb_cli.adapters.mexc.orderbook import parse_depth
from cdb_cli.adapters.mexc.private import PrivateDecoder
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper
from cdb_cli.adapters.mexc.ws import _json as read_control_frame

pytestmark = pytest.mark.fuzz

FRAMES = cases(ci=12_000, full=100_000)
CONTROL_FRAMES = cases(ci=2_000, full=20_000)


def public_frames() -> list[bytes]:
    frames = []
    deals = PushDataV3ApiWrapper(
        channel="spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT",
        symbol="BTCUSDT",
        sendTime=1736409765052,
    )
    deals.publicAggreDeals.eventType = "spot@public.aggre.deals.v3.api.pb@100ms"
    for i in range(3):
        deal = deals.publicAggreDeals.deals.add()
        deal.price, deal.quantity = f"9322{i}.5", "0.00123"
        deal.tradeType, deal.time, deal.tradeId = 1 + i % 2, 1736409765051 + i, str(100 + i)
    frames.append(deals.SerializeToString())
    ticker = PushDataV3ApiWrapper(
        channel="spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT",
        symbol="BTCUSDT",
        sendTime=1736412092433,
    )
    book = ticker.publicAggreBookTicker
    book.bidPrice, book.askPrice = "93387.28", "93387.29"
    book.bidQuantity, book.askQuantity = "3.73485", "7.669875"
    frames.append(ticker.SerializeToString())
    kline = PushDataV3ApiWrapper(
        channel="spot@public.kline.v3.api.pb@BTCUSDT@Min1",
        symbol="BTCUSDT",
        createTime=1736410707571,
    )
    k = kline.publicSpotKline
    k.interval, k.windowStart, k.windowEnd = "Min1", 1736410500, 1736410560
    k.openingPrice, k.closingPrice, k.highestPrice, k.lowestPrice = (
        "92925",
        "93000.47",
        "93158.47",
        "92800",
    )
    k.volume, k.amount = "36.83803224", "3424811.05"
    frames.append(kline.SerializeToString())
    depth = PushDataV3ApiWrapper(
        channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT", symbol="BTCUSDT"
    )
    level = depth.publicAggreDepths.asks.add()
    level.price, level.quantity = "93180.18", "0.21976424"
    depth.publicAggreDepths.fromVersion, depth.publicAggreDepths.toVersion = "100", "104"
    depth.publicAggreDepths.lastOrderCreateTime = 1736411507001  # 2026 field
    frames.append(depth.SerializeToString())
    book.version, book.lastOrderCreateTime = "36913565470", 1736412092430  # 2026 fields
    frames.append(ticker.SerializeToString())
    batch = PushDataV3ApiWrapper(
        channel="spot@public.bookTicker.batch.v3.api.pb@BTCUSDT", sendTime=1739503249114
    )
    item = batch.publicBookTickerBatch.items.add()
    item.bidPrice, item.askPrice = book.bidPrice, book.askPrice
    item.bidQuantity, item.askQuantity = book.bidQuantity, book.askQuantity
    batch.publicBookTickerBatch.version = "39003145512"
    batch.publicBookTickerBatch.lastOrderCreateTime = 1739503249110
    frames.append(batch.SerializeToString())  # no symbol field: it comes from the channel
    kline.ClearField("symbol")  # the symbol comes from the channel, never the interval
    frames.append(kline.SerializeToString())
    return frames


def private_frames() -> list[bytes]:
    order = PushDataV3ApiWrapper(channel="spot@private.orders.v3.api.pb", symbol="BTCUSDT")
    o = order.privateOrders
    o.id, o.clientId, o.price, o.quantity, o.amount = "C02__1", "bot-1", "93000", "0.01", "930"
    o.avgPrice, o.orderType, o.tradeType, o.remainQuantity = "93000", 1, 1, "0"
    o.lastDealQuantity, o.cumulativeQuantity, o.cumulativeAmount = "0.01", "0.01", "930"
    o.status, o.createTime = 2, 1736417034280
    deal = PushDataV3ApiWrapper(channel="spot@private.deals.v3.api.pb", symbol="BTCUSDT")
    d = deal.privateDeals
    d.price, d.quantity, d.amount, d.tradeType, d.isMaker = "93000", "0.01", "930", 1, False
    d.tradeId, d.orderId, d.clientOrderId = "505979017439002624", "C02__1", "bot-1"
    d.feeAmount, d.feeCurrency, d.time = "0.93", "USDT", 1736417034280
    account = PushDataV3ApiWrapper(channel="spot@private.account.v3.api.pb")
    a = account.privateAccount
    a.vcoinName, a.coinId, a.type, a.time = "USDT", "usdt", "ENTRUST", 1736417034281
    a.balanceAmount, a.frozenAmount = "9070", "0"
    a.balanceAmountChange, a.frozenAmountChange = "-930", "0"
    return [order.SerializeToString(), deal.SerializeToString(), account.SerializeToString()]


def test_valid_frames_decode() -> None:
    public, private = FrameDecoder(), PrivateDecoder()
    decoded = [public.decode(frame)[1] for frame in public_frames()]
    assert [len(events) for events in decoded] == [3, 1, 1, 0, 1, 1, 1]
    assert decoded[-1][0].symbol == "BTCUSDT"
    assert all(private.decode(frame)[1] is not None for frame in private_frames())
    assert not public.bad
    assert not private.bad


def test_mutated_frames_never_raise() -> None:
    seeds = [(FrameDecoder(), f) for f in public_frames()]
    seeds += [(PrivateDecoder(), f) for f in private_frames()]  # type: ignore[misc]
    unexpected: list[str] = []
    events = 0
    for case in range(FRAMES):
        rng = random.Random(case)
        decoder, seed = rng.choice(seeds)
        frame = mutate(seed, rng)
        try:
            _, out = decoder.decode(frame)
        except Exception as e:
            unexpected.append(f"case {case}: {type(e).__name__}: {e!s:.100}")
            continue
        events += len(out) if isinstance(out, list) else out is not None
    dropped: Counter[str] = Counter()
    for decoder, _ in seeds:
        dropped.update(decoder.bad)
    print(f"\n{FRAMES} mutated frames: {events} events, dropped {dict(dropped)}")
    assert not unexpected, "\n".join(unexpected[:20])


def test_mutated_depth_frames_raise_only_bad_value() -> None:
    """The local order book's reader refuses a bad depth frame with BadValue, nothing else."""
    seed = public_frames()[3]
    assert parse_depth(seed).to_version == 104
    unexpected: list[str] = []
    for case in range(FRAMES // 4):
        rng = random.Random(f"depth:{case}")
        try:
            parse_depth(mutate(seed, rng))
        except BadValue:
            continue
        except Exception as e:
            unexpected.append(f"case {case}: {type(e).__name__}: {e!s:.100}")
    assert not unexpected, "\n".join(unexpected[:20])


def test_mutated_control_frames_never_raise() -> None:
    seeds = [
        b'{"id":0,"code":0,"msg":"spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"}',
        b'{"id":0,"code":0,"msg":"PONG"}',
    ]
    unexpected: list[str] = []
    for case in range(CONTROL_FRAMES):
        rng = random.Random(f"control:{case}")
        text = mutate(rng.choice(seeds), rng).decode("utf-8", "replace")
        if rng.random() < 0.02:
            text = "[" * 100_000 + text
        try:
            read_control_frame(text)
        except Exception as e:
            unexpected.append(f"case {case}: {type(e).__name__}")
    assert not unexpected, "\n".join(unexpected[:20])
