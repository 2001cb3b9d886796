"""Protobuf push frames of the simulator, and the topic grammar it accepts (mexc_api.md §4.3)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal

from cdb_cli.adapters.mexc.intervals import interval as lookup_interval
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper
from cdb_cli.adapters.mexc.sim.market import PublicTrade
from cdb_cli.adapters.mexc.sim.orders import Book, s

__all__ = ["Topic", "encode_frame", "parse_topic"]

_AGGRE = re.compile(
    r"^spot@public\.aggre\.(deals|bookTicker|depth)\.v3\.api\.pb@(100ms|10ms)@([A-Z0-9]+)$"
)
_KLINE = re.compile(r"^spot@public\.kline\.v3\.api\.pb@([A-Z0-9]+)@([A-Za-z0-9]+)$")


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed subscription: what to push, for which symbol (kline: which interval)."""

    text: str
    kind: str  # deals | bookTicker | depth | kline
    symbol: str
    interval: str = ""


def parse_topic(text: str) -> Topic | None:
    """The topic, or None when MEXC would refuse it (not a known ``.pb`` channel)."""
    if match := _AGGRE.match(text):
        return Topic(text, match.group(1), match.group(3))
    if match := _KLINE.match(text):
        try:
            lookup_interval(match.group(2))
        except ValueError:
            return None
        if not match.group(2)[0].isupper():
            return None
        return Topic(text, "kline", match.group(1), match.group(2))
    return None


def _event_type(topic: Topic) -> str:
    return topic.text.rsplit("@", 1)[0]


def encode_frame(topic: Topic, trade: PublicTrade, book: Book, now_ms: int) -> bytes:
    """One binary ``PushDataV3ApiWrapper`` for ``topic`` after ``trade``."""
    wrapper = PushDataV3ApiWrapper(channel=topic.text, symbol=topic.symbol)
    if topic.kind == "deals":
        wrapper.sendTime = now_ms
        body = wrapper.publicAggreDeals
        deal = body.deals.add()
        deal.price, deal.quantity = s(trade.price), s(trade.quantity)
        deal.tradeType = 1 if trade.side == "BUY" else 2
        deal.time, deal.tradeId = trade.time_ms, str(trade.trade_id)
        body.eventType = _event_type(topic)
    elif topic.kind == "bookTicker":
        wrapper.sendTime = now_ms
        (bid, bid_qty), (ask, ask_qty) = book.side_levels("bids")[0], book.side_levels("asks")[0]
        ticker = wrapper.publicAggreBookTicker
        ticker.bidPrice, ticker.bidQuantity = s(bid), s(bid_qty)
        ticker.askPrice, ticker.askQuantity = s(ask), s(ask_qty)
    elif topic.kind == "depth":
        wrapper.sendTime = now_ms
        depth = wrapper.publicAggreDepths
        for side, levels in (("asks", depth.asks), ("bids", depth.bids)):
            for price, qty in book.side_levels(side)[:5]:
                item = levels.add()
                item.price, item.quantity = s(price), s(qty)
        depth.eventType = _event_type(topic)
        depth.fromVersion = depth.toVersion = str(trade.trade_id)
    else:
        _kline(wrapper, topic, book, now_ms)
    return wrapper.SerializeToString()


def _kline(wrapper: PushDataV3ApiWrapper, topic: Topic, book: Book, now_ms: int) -> None:
    length = lookup_interval(topic.interval).ms
    start = now_ms - now_ms % length
    (row,) = book.market.klines(length, start, None, 1) or [[start, *(["0"] * 7)]]
    wrapper.symbolId = hashlib.blake2b(topic.symbol.encode(), digest_size=16).hexdigest()
    wrapper.createTime = now_ms
    kline = wrapper.publicSpotKline
    kline.interval = topic.interval
    kline.windowStart, kline.windowEnd = start // 1000, (start + length) // 1000
    kline.openingPrice, kline.highestPrice = str(row[1]), str(row[2])
    kline.lowestPrice, kline.closingPrice = str(row[3]), str(row[4])
    kline.volume, kline.amount = str(row[5]), str(row[7])
    if Decimal(kline.closingPrice) <= 0:  # no candle yet in this window: use the last price
        price = s(book.market.price)
        kline.openingPrice = kline.highestPrice = kline.lowestPrice = kline.closingPrice = price
