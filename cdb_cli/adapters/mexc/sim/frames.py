"""Protobuf push frames of the simulator, and the topic grammar it accepts (mexc_api.md §4.3)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cdb_cli.adapters.mexc.intervals import interval as lookup_interval
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper
from cdb_cli.adapters.mexc.sim.depth import DepthDiff
from cdb_cli.adapters.mexc.sim.market import PublicTrade
from cdb_cli.adapters.mexc.sim.orders import Book, SimOrder, s

__all__ = [
    "PRIVATE_TOPICS",
    "MarketView",
    "Topic",
    "encode_frame",
    "parse_topic",
    "private_account_frame",
    "private_deal_frame",
    "private_order_frame",
]

_AGGRE = re.compile(
    r"^spot@public\.aggre\.(deals|bookTicker|depth)\.v3\.api\.pb@(100ms|10ms)@([A-Z0-9]+)$"
)
_KLINE = re.compile(r"^spot@public\.kline\.v3\.api\.pb@([A-Z0-9]+)@([A-Za-z0-9]+)$")
_LIMIT_DEPTH = re.compile(r"^spot@public\.limit\.depth\.v3\.api\.pb@([A-Z0-9]+)@(5|10|20)$")
_BOOK_TICKER_BATCH = re.compile(r"^spot@public\.bookTicker\.batch\.v3\.api\.pb@([A-Z0-9]+)$")


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed subscription: what to push, for which symbol (kline: interval; limit depth:
    levels)."""

    text: str
    kind: str  # deals | bookTicker | depth | kline | limitDepth | bookTickerBatch | private
    symbol: str
    interval: str = ""
    levels: int = 0


@dataclass(frozen=True, slots=True)
class MarketView:
    """What one market step gives every topic of a symbol: its trade, its book, the depth push
    of the step (None: the book did not change) and the book's version after it."""

    trade: PublicTrade
    book: Book
    diff: DepthDiff | None
    version: int
    now_ms: int

    @property
    def last_order_ms(self) -> int:
        """``lastOrderCreateTime`` (2026): the time of the latest trade that moved the book."""
        recent = self.book.market.recent
        return recent[-1].time_ms if recent else self.trade.time_ms


def parse_topic(text: str) -> Topic | None:
    """The topic, or None when MEXC would refuse it (not a documented ``.pb`` channel)."""
    if text in PRIVATE_TOPICS:
        return Topic(text, "private", "")
    if match := _AGGRE.match(text):
        return Topic(text, match.group(1), match.group(3))
    if match := _LIMIT_DEPTH.match(text):
        return Topic(text, "limitDepth", match.group(1), levels=int(match.group(2)))
    if match := _BOOK_TICKER_BATCH.match(text):
        return Topic(text, "bookTickerBatch", match.group(1))
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
    """``eventType`` as MEXC's docs show it: the channel without the symbol (aggre: with the rate),
    without symbol and levels for limit depth."""
    if topic.kind in ("deals", "bookTicker", "depth"):
        return topic.text.rsplit("@", 1)[0]
    return "@".join(topic.text.split("@")[:2])


def _levels(target: Any, levels: Iterable[tuple[Decimal, Decimal]]) -> None:
    for price, qty in levels:
        item = target.add()
        item.price, item.quantity = s(price), s(qty)


def encode_frame(topic: Topic, view: MarketView) -> bytes | None:
    """One binary ``PushDataV3ApiWrapper`` for ``topic`` after a market step (None: a depth topic
    in a step that changed no level)."""
    wrapper = PushDataV3ApiWrapper(channel=topic.text, symbol=topic.symbol)
    if topic.kind != "kline":  # kline frames carry createTime instead
        wrapper.sendTime = view.now_ms
    book, trade = view.book, view.trade
    if topic.kind == "deals":
        body = wrapper.publicAggreDeals
        deal = body.deals.add()
        deal.price, deal.quantity = s(trade.price), s(trade.quantity)
        deal.tradeType = 1 if trade.side == "BUY" else 2
        deal.time, deal.tradeId = trade.time_ms, str(trade.trade_id)
        body.eventType = _event_type(topic)
    elif topic.kind in ("bookTicker", "bookTickerBatch"):
        (bid, bid_qty), (ask, ask_qty) = book.side_levels("bids")[0], book.side_levels("asks")[0]
        if topic.kind == "bookTicker":
            ticker: Any = wrapper.publicAggreBookTicker
            ticker.version, ticker.lastOrderCreateTime = str(view.version), view.last_order_ms
        else:
            batch = wrapper.publicBookTickerBatch
            batch.version, batch.lastOrderCreateTime = str(view.version), view.last_order_ms
            ticker = batch.items.add()
        ticker.bidPrice, ticker.bidQuantity = s(bid), s(bid_qty)
        ticker.askPrice, ticker.askQuantity = s(ask), s(ask_qty)
    elif topic.kind == "depth":
        if view.diff is None:
            return None
        depth = wrapper.publicAggreDepths
        _levels(depth.asks, view.diff.asks)
        _levels(depth.bids, view.diff.bids)
        depth.eventType = _event_type(topic)
        depth.fromVersion, depth.toVersion = str(view.diff.from_version), str(view.diff.to_version)
        depth.lastOrderCreateTime = view.last_order_ms
    elif topic.kind == "limitDepth":
        limit = wrapper.publicLimitDepths
        _levels(limit.asks, book.side_levels("asks")[: topic.levels])
        _levels(limit.bids, book.side_levels("bids")[: topic.levels])
        limit.eventType = _event_type(topic)
        limit.version, limit.lastOrderCreateTime = str(view.version), view.last_order_ms
    else:
        _kline(wrapper, topic, book, view.now_ms)
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


PRIVATE_ORDERS = "spot@private.orders.v3.api.pb"
PRIVATE_DEALS = "spot@private.deals.v3.api.pb"
PRIVATE_ACCOUNT = "spot@private.account.v3.api.pb"
PRIVATE_TOPICS = frozenset({PRIVATE_ORDERS, PRIVATE_DEALS, PRIVATE_ACCOUNT})
_STATUS = {"NEW": 1, "FILLED": 2, "PARTIALLY_FILLED": 3, "CANCELED": 4, "PARTIALLY_CANCELED": 5}
_TYPE = {"LIMIT": 1, "LIMIT_MAKER": 2, "IMMEDIATE_OR_CANCEL": 3, "FILL_OR_KILL": 4, "MARKET": 5}


def private_order_frame(
    order: SimOrder, last_qty: Decimal, now_ms: int, *, hide_client_id: bool = False
) -> bytes:
    """``privateOrders`` push for an order after a change (``hide_client_id``: clientId "")."""
    wrapper = PushDataV3ApiWrapper(channel=PRIVATE_ORDERS, symbol=order.symbol, sendTime=now_ms)
    o = wrapper.privateOrders
    o.id, o.clientId = order.order_id, "" if hide_client_id else order.client_order_id or ""
    o.price, o.quantity = s(order.price or Decimal(0)), s(order.orig_qty)
    o.amount = s(order.orig_quote_qty)
    avg = order.cum_quote / order.executed_qty if order.executed_qty else Decimal(0)
    o.avgPrice = s(avg.quantize(Decimal("1E-12")) if avg else avg)
    o.orderType, o.tradeType = _TYPE[order.type], 1 if order.side == "BUY" else 2
    o.remainQuantity = s(order.remaining if order.is_open else Decimal(0))
    o.remainAmount = "0"
    o.lastDealQuantity = s(last_qty)
    o.cumulativeQuantity, o.cumulativeAmount = s(order.executed_qty), s(order.cum_quote)
    o.status, o.createTime = _STATUS[order.status], order.time_ms
    return wrapper.SerializeToString()


def private_deal_frame(trade: dict[str, object], now_ms: int) -> bytes:
    """``privateDeals`` push for one fill (a ``myTrades`` row)."""
    wrapper = PushDataV3ApiWrapper(
        channel=PRIVATE_DEALS, symbol=str(trade["symbol"]), sendTime=now_ms
    )
    d = wrapper.privateDeals
    d.price, d.quantity, d.amount = str(trade["price"]), str(trade["qty"]), str(trade["quoteQty"])
    d.tradeType = 1 if trade["isBuyer"] else 2
    d.isMaker, d.isSelfTrade = bool(trade["isMaker"]), False
    d.tradeId, d.orderId = str(trade["id"]), str(trade["orderId"])
    d.clientOrderId = str(trade["clientOrderId"] or "")
    d.feeAmount, d.feeCurrency = str(trade["commission"]), str(trade["commissionAsset"])
    d.time = int(str(trade["time"]))
    return wrapper.SerializeToString()


def private_account_frame(
    asset: str, now: tuple[Decimal, Decimal], before: tuple[Decimal, Decimal], kind: str, ms: int
) -> bytes:
    """``privateAccount`` push: free and locked after a change, and the changes."""
    wrapper = PushDataV3ApiWrapper(channel=PRIVATE_ACCOUNT, createTime=ms, sendTime=ms)
    a = wrapper.privateAccount
    a.vcoinName, a.coinId, a.type, a.time = asset, asset.lower(), kind, ms
    a.balanceAmount, a.frozenAmount = s(now[0]), s(now[1])
    a.balanceAmountChange, a.frozenAmountChange = s(now[0] - before[0]), s(now[1] - before[1])
    return wrapper.SerializeToString()
