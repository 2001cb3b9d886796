"""``DepthJournal``: the simulator's depth versions, shared by pushes and the REST snapshot."""

from __future__ import annotations

from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange
from cdb_cli.adapters.mexc.sim.depth import DepthJournal

BTC = "BTCUSDT"


def exchange() -> SimExchange:
    return SimExchange(SimConfig(symbols=(BTC,), seed=3, history_minutes=30, tick_interval=None))


def test_pushes_are_continuous_and_carry_removals_as_zero() -> None:
    ex = exchange()
    book, journal = ex.books[BTC], DepthJournal()
    first = journal.take(book)
    assert first is not None
    assert len(first.asks) == len(first.bids) == ex.config.levels  # the whole book, once
    tick = ex.markets[BTC].instrument.tick_size
    ex.step(prices={BTC: ex.markets[BTC].price + tick * 2})
    second = journal.take(book)
    assert second is not None
    assert second.from_version == first.to_version + 1
    removed = {price for price, qty in second.bids if qty == 0}
    assert removed  # the two lowest bids left the book as it moved up two ticks
    assert removed.isdisjoint(price for price, _ in book.side_levels("bids"))
    assert journal.take(book) is None  # nothing changed: nothing to push


def test_a_snapshot_takes_a_version_the_next_push_starts_at() -> None:
    ex = exchange()
    book, journal = ex.books[BTC], DepthJournal()
    journal.take(book)
    version, levels = journal.snapshot(book, 3)
    assert [p for p, _ in levels["asks"]] == [p for p, _ in book.side_levels("asks")[:3]]
    push = journal.take(book)  # the book did not change, yet the version moved
    assert push is not None
    assert (push.from_version, push.to_version, push.asks, push.bids) == (version, version, (), ())
    assert ex.depth(BTC, 5)["lastUpdateId"] == ex.depth_journals[BTC].version
