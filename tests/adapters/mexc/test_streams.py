"""StreamBook: duplicates, order, gaps and freshness per topic, without a socket."""

from __future__ import annotations

from decimal import Decimal

from cdb_cli.adapters.mexc.decoder import trusted_trade
from cdb_cli.adapters.mexc.streams import StreamBook
from cdb_cli.engine.events import Bar, QuoteTick, Side, TradeTick

TOPIC = "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def trade(trade_id: int, ms: int) -> TradeTick:
    return trusted_trade(
        event_id=f"id{trade_id}",
        symbol="BTCUSDT",
        ts_event=ms * 1_000_000,
        source="mexc",
        price=Decimal(1),
        quantity=Decimal(1),
        aggressor=Side.BUY,
        trade_id=str(trade_id),
    )


def test_duplicates_and_late_trades_are_dropped_and_counted() -> None:
    book = StreamBook()
    first = book.admit(TOPIC, [trade(1, 10), trade(2, 20)])
    again = book.admit(TOPIC, [trade(2, 20), trade(3, 30), trade(0, 5)])
    assert [t.trade_id for t in first + again] == ["1", "2", "3"]  # type: ignore[attr-defined]
    stats = book.stats(TOPIC)
    assert (stats.duplicates, stats.out_of_order, stats.events) == (1, 1, 3)


def test_jumps_in_numeric_trade_ids_and_reconnects_count_as_gaps() -> None:
    book = StreamBook()
    book.admit(TOPIC, [trade(1, 10), trade(5, 20)])
    book.reconnected([TOPIC])
    assert book.stats(TOPIC).gaps == 2


def test_memory_of_seen_ids_is_bounded() -> None:
    book = StreamBook(remember=3)
    book.admit(TOPIC, [trade(i, i) for i in range(1, 10)])
    assert len(book.stats(TOPIC).seen) == 3


def test_freshness_goes_stale_and_recovers() -> None:
    clock = FakeClock()
    book = StreamBook(clock=clock)
    assert book.age(TOPIC) is None
    assert book.stale([TOPIC], 5) == [TOPIC]
    book.admit(TOPIC, [trade(1, 1)])
    clock.now += 6
    assert book.age(TOPIC) == 6
    assert book.stale([TOPIC], 5) == [TOPIC]
    book.admit(TOPIC, [])  # any data frame refreshes the topic
    assert book.stale([TOPIC], 5) == []


def test_older_quotes_are_dropped() -> None:
    book = StreamBook()

    def quote(ms: int) -> QuoteTick:
        one = Decimal(1)
        return QuoteTick(
            symbol="BTCUSDT", ts_event=ms, source="t", bid=one, ask=one, bid_size=one, ask_size=one
        )

    assert len(book.admit("q", [quote(2), quote(1), quote(3)])) == 2
    assert book.stats("q").out_of_order == 1


def test_a_new_kline_window_closes_the_previous_bar() -> None:
    book = StreamBook()

    def bar(start: int, close: str) -> Bar:
        price = Decimal(close)
        return Bar(
            symbol="BTCUSDT", ts_event=start, source="t", interval="1m",
            open=price, high=price, low=price, close=price, volume=Decimal(0), closed=False,
        )  # fmt: skip

    assert [b.closed for b in book.admit("k", [bar(60, "1"), bar(60, "2")])] == [False, False]
    rolled = book.admit("k", [bar(120, "3")])
    assert [(b.ts_event, b.closed, b.close) for b in rolled] == [  # type: ignore[attr-defined]
        (60, True, Decimal(2)),
        (120, False, Decimal(3)),
    ]
    assert book.admit("k", [bar(60, "9")]) == []
