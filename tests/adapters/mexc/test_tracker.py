"""``OrderTracker`` with hand-built MEXC answers and pushes: no simulator, no network, no clock."""

from __future__ import annotations

import itertools
from collections import Counter
from decimal import Decimal

import pytest

from cdb_cli.adapters.mexc.models import Fill, Order
from cdb_cli.adapters.mexc.private import BalanceUpdate, FillUpdate, OrderUpdate
from cdb_cli.adapters.mexc.tracker import (
    NEVER_REACHED,
    OrderTracker,
    Tracked,
    order_status,
    venue_fill,
)
from cdb_cli.engine.events import Side
from cdb_cli.engine.ports.execution import VenueFill, VenueOrderState, VenueUpdate
from cdb_cli.engine.records import OrderStatus

BTC = "BTCUSDT"
PRICE = Decimal(50_000)


class Harness:
    """A tracker whose updates land in a list and whose clock counts 1, 2, 3 …"""

    def __init__(self, **limits: int) -> None:
        self.published: list[VenueUpdate] = []
        self.counters: Counter[str] = Counter()
        ticks = itertools.count(1)
        self.orders = OrderTracker(
            self.published.append, self.counters, lambda: next(ticks), **limits
        )

    def take(self) -> list[VenueUpdate]:
        out, self.published[:] = list(self.published), []
        return out

    def states(self) -> list[tuple[str, OrderStatus, Decimal]]:
        return [
            (u.client_order_id, u.status, u.filled_quantity)
            for u in self.take()
            if isinstance(u, VenueOrderState)
        ]

    def report(self, tracked: Tracked, status: OrderStatus, filled: str = "0") -> VenueOrderState:
        return self.orders.publish_state(self.orders.state(tracked, status, Decimal(filled)))


def fill(trade_id: str, quantity: str, client_id: str = "c-1", venue_id: str = "v-1") -> VenueFill:
    return VenueFill(
        fill_id=trade_id, client_order_id=client_id, venue_order_id=venue_id, symbol=BTC,
        side=Side.BUY, quantity=Decimal(quantity), price=PRICE, fee=Decimal(0), fee_asset="BTC",
        ts_ns=1, liquidity="taker",
    )  # fmt: skip


def pushed_fill(trade_id: str, quantity: str, *, client_id: str, venue_id: str) -> FillUpdate:
    return FillUpdate(
        symbol=BTC, trade_id=trade_id, order_id=venue_id, client_order_id=client_id, side="BUY",
        price=PRICE, quantity=Decimal(quantity), amount=PRICE * Decimal(quantity), fee=Decimal(0),
        fee_asset="BTC", is_maker=True, time_ms=7,
    )  # fmt: skip


def pushed_order(status: str, filled: str, *, client_id: str, venue_id: str) -> OrderUpdate:
    return OrderUpdate(
        symbol=BTC, order_id=venue_id, client_order_id=client_id, side="BUY", type="LIMIT",
        status=status, price=PRICE, quantity=Decimal(1), cumulative_quantity=Decimal(filled),
        cumulative_amount=PRICE * Decimal(filled), avg_price=PRICE,
        last_deal_quantity=Decimal(filled), time_ms=7,
    )  # fmt: skip


def answer(status: str | None, executed: str, venue_id: str = "v-1") -> Order:
    return Order(
        symbol=BTC, order_id=venue_id, client_order_id="c-1", side="BUY", type="LIMIT",
        status=status, price=PRICE, orig_qty=Decimal(1), executed_qty=Decimal(executed),
        cumulative_quote_qty=PRICE * Decimal(executed), time_ms=1,
    )  # fmt: skip


ONE, ZERO = Decimal(1), Decimal(0)


@pytest.mark.parametrize(
    ("mexc", "executed", "engine"),
    [
        (None, ZERO, "NEW"),  # the answer to POST /order has no status
        ("NEW", ZERO, "NEW"),
        ("new", ZERO, "NEW"),
        ("NEW", ONE, "PARTIALLY_FILLED"),
        ("PENDING", ZERO, "NEW"),
        ("PENDING_CANCEL", ONE, "PARTIALLY_FILLED"),
        ("PARTIALLY_FILLED", ONE, "PARTIALLY_FILLED"),
        ("PARTIALLY_FILLED", ZERO, "NEW"),
        ("FILLED", ONE, "FILLED"),
        ("CANCELED", ZERO, "CANCELED"),
        ("CANCELED", ONE, "PARTIALLY_CANCELED"),
        ("PARTIALLY_CANCELED", ONE, "PARTIALLY_CANCELED"),
        ("PARTIALLY_CANCELED", ZERO, "CANCELED"),
        ("EXPIRED", ZERO, "CANCELED"),
        ("EXPIRED", ONE, "PARTIALLY_CANCELED"),
        ("REJECTED", ZERO, "REJECTED"),
        ("SOMETHING_NEW", ZERO, None),
    ],
)
def test_mexc_statuses_map_to_the_engines(
    mexc: str | None, executed: Decimal, engine: OrderStatus | None
) -> None:
    assert order_status(mexc, executed) == engine


def test_a_limit_order_story_publishes_each_step_once_and_never_backwards() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY, "v-1")
    h.report(tracked, "NEW")
    h.report(tracked, "NEW")  # a poll repeating it
    h.report(tracked, "PARTIALLY_FILLED", "0.4")
    h.report(tracked, "NEW")  # a late report from before the fill
    h.report(tracked, "PARTIALLY_FILLED", "0.3")  # less filled: stale
    h.report(tracked, "PARTIALLY_FILLED", "0.4")  # the stream and a poll agreeing
    h.report(tracked, "PARTIALLY_FILLED", "0.6")
    h.report(tracked, "PARTIALLY_FILLED", "0.6")  # MEXC's cancel answer: the status before it
    h.report(tracked, "PARTIALLY_CANCELED", "0.6")
    h.report(tracked, "PARTIALLY_CANCELED", "0.6")  # the confirming query
    h.report(tracked, "CANCELED", "0.6")  # another terminal at the same quantity: not news
    assert h.states() == [
        ("c-1", "NEW", Decimal(0)),
        ("c-1", "PARTIALLY_FILLED", Decimal("0.4")),
        ("c-1", "PARTIALLY_FILLED", Decimal("0.6")),
        ("c-1", "PARTIALLY_CANCELED", Decimal("0.6")),
    ]
    assert (h.counters["states"], h.counters["states_dropped"]) == (4, 7)


def test_a_dropped_state_returns_the_best_known_and_a_venue_id_is_kept() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY, "v-1")
    first = h.report(tracked, "PARTIALLY_FILLED", "0.5")
    assert h.report(tracked, "NEW") is first
    anonymous = Tracked("c-1", BTC, Side.BUY)  # a refusal built without the venue id
    later = h.orders.publish_state(h.orders.state(anonymous, "FILLED", ONE))
    assert (later.status, later.venue_order_id) == ("FILLED", "v-1")


def test_more_filled_after_a_terminal_state_is_still_news() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY, "v-1")
    h.report(tracked, "CANCELED")  # the cancel's query answered before the last fill counted
    h.report(tracked, "PARTIALLY_CANCELED", "0.2")
    assert [s[1:] for s in h.states()] == [
        ("CANCELED", Decimal(0)),
        ("PARTIALLY_CANCELED", Decimal("0.2")),
    ]


def test_fills_are_published_once_per_trade_id() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY, "v-1")
    assert h.orders.publish_fill(fill("t-1", "0.25"), tracked, "stream")
    assert not h.orders.publish_fill(fill("t-1", "0.25"), tracked, "poll")  # the poll's copy
    assert h.orders.publish_fill(fill("t-2", "0.5"), tracked, "poll")
    assert [u.fill_id for u in h.take() if isinstance(u, VenueFill)] == ["t-1", "t-2"]
    assert tracked.filled_seen == Decimal("0.75")
    assert h.counters == Counter(fills_from_stream=1, fills_from_poll=1, fills_dropped=1)


def test_an_order_is_done_once_terminal_and_its_fills_cover_the_quantity() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY, "v-1")
    h.report(tracked, "FILLED", "1")  # the state came before the fills
    assert h.orders.ids() == ["c-1"]
    h.orders.publish_fill(fill("t-1", "0.4"), tracked, "stream")
    assert h.orders.ids() == ["c-1"]
    h.orders.publish_fill(fill("t-2", "0.6"), tracked, "stream")  # a late fill completes it
    assert h.orders.ids() == []
    assert h.orders.knows("c-1")  # still known: never sent again
    assert h.orders.current(tracked).status == "FILLED"


def test_an_order_being_placed_is_not_forgotten_even_when_done() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY, "v-1")
    tracked.in_flight = True
    h.report(tracked, "REJECTED")
    assert h.orders.ids() == ["c-1"]
    tracked.in_flight = False
    h.report(tracked, "REJECTED")  # dropped as news, but it completes the order
    assert h.orders.ids() == []


def test_absorb_publishes_the_missing_fills_before_the_state_that_counts_them() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY, "v-1")
    trades = [fill("t-1", "0.5", client_id=""), fill("t-2", "0.5", client_id="")]
    order = answer("FILLED", "1")
    status = h.orders.status_of(order)
    assert status == "FILLED"
    state = h.orders.absorb(tracked, order, status, trades, "poll")
    got = h.take()
    assert [type(u).__name__ for u in got] == ["VenueFill", "VenueFill", "VenueOrderState"]
    assert {u.client_order_id for u in got} == {"c-1"}  # myTrades' null client ids attributed
    assert (state.status, state.filled_quantity, state.filled_quote) == ("FILLED", ONE, PRICE)
    assert h.counters["states_from_poll"] == 1
    assert h.orders.ids() == []


def test_an_unknown_status_is_counted_and_changes_nothing() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY, "v-1")
    assert h.orders.status_of(answer("SOMETHING_NEW", "0")) is None
    assert h.counters["unknown_status"] == 1
    assert h.orders.current(tracked).status == "PENDING_NEW"
    h.orders.on_private(pushed_order("SOMETHING_NEW", "0", client_id="c-1", venue_id="v-1"))
    assert h.take() == []


def test_pushes_are_attributed_by_client_id_then_by_venue_id() -> None:
    h = Harness()
    h.orders.track("c-1", BTC, Side.BUY)
    h.orders.on_private(pushed_order("NEW", "0", client_id="c-1", venue_id="v-1"))
    h.orders.on_private(pushed_fill("t-1", "0.5", client_id="", venue_id="v-1"))
    h.orders.on_private(pushed_fill("t-1", "0.5", client_id="", venue_id="v-1"))  # a duplicate
    h.orders.on_private(pushed_order("PARTIALLY_FILLED", "0.5", client_id="", venue_id="v-1"))
    got = h.take()
    assert len(got) == 3
    first, deal, partial = got
    assert isinstance(first, VenueOrderState)
    assert (first.status, first.venue_order_id) == ("NEW", "v-1")  # learnt from the push
    assert deal == VenueFill(
        fill_id="t-1", client_order_id="c-1", venue_order_id="v-1", symbol=BTC, side=Side.BUY,
        quantity=Decimal("0.5"), price=PRICE, fee=Decimal(0), fee_asset="BTC",
        ts_ns=7_000_000, liquidity="maker",
    )  # fmt: skip
    assert isinstance(partial, VenueOrderState)
    assert (partial.status, partial.filled_quantity) == ("PARTIALLY_FILLED", Decimal("0.5"))
    assert h.counters["fills_from_stream"] == 1
    assert h.counters["states_from_stream"] == 2


def test_a_push_before_the_venue_id_is_known_is_held_until_it_is() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY)  # placed; the REST answer not back yet
    h.orders.on_private(pushed_fill("t-1", "1", client_id="", venue_id="v-9"))
    h.orders.on_private(pushed_order("FILLED", "1", client_id="", venue_id="v-9"))
    assert h.take() == []
    assert h.counters["stream_held"] == 2
    h.orders.learn_venue_id(tracked, "v-9")
    got = h.take()
    assert [(type(u).__name__, u.client_order_id) for u in got] == [
        ("VenueFill", "c-1"),
        ("VenueOrderState", "c-1"),
    ]
    assert h.orders.ids() == []  # FILLED and its fill seen: done


def test_pushes_of_orders_not_ours_are_not_published() -> None:
    h = Harness()
    h.orders.on_private(pushed_order("NEW", "0", client_id="web-7", venue_id="v-7"))
    h.orders.on_private(pushed_fill("t-7", "1", client_id="web-7", venue_id="v-7"))
    balance = BalanceUpdate(
        asset="USDT", free=ONE, locked=ZERO, free_change=ONE, locked_change=ZERO,
        change_type="DEPOSIT", time_ms=1,
    )  # fmt: skip
    h.orders.on_private(balance)
    assert h.take() == []
    assert h.counters["stream_held"] == 0  # a client id that is not ours: nothing to wait for


def test_held_pushes_are_bounded() -> None:
    h = Harness(held=2)
    tracked = h.orders.track("c-1", BTC, Side.BUY)
    for n in range(3):
        h.orders.on_private(pushed_fill(f"t-{n}", "0.1", client_id="", venue_id=f"v-{n}"))
    h.orders.learn_venue_id(tracked, "v-0")  # the oldest: forgotten
    assert h.take() == []
    h.orders.learn_venue_id(tracked, "v-2")
    assert [u.fill_id for u in h.take() if isinstance(u, VenueFill)] == ["t-2"]


def test_never_reached_is_rejected_and_forgotten_but_still_known() -> None:
    h = Harness()
    tracked = h.orders.track("c-1", BTC, Side.BUY)
    tracked.in_flight = True
    state = h.orders.never_reached(tracked)
    assert (state.status, state.reason) == ("REJECTED", NEVER_REACHED)
    assert h.states() == [("c-1", "REJECTED", Decimal(0))]
    assert h.orders.ids() == []
    assert h.orders.knows("c-1")
    assert h.orders.current(tracked) == state
    assert h.counters["never_reached"] == 1


def test_polls_answered_unknown_order_give_up_after_the_attempts() -> None:
    h = Harness()
    sent = h.orders.track("c-1", BTC, Side.BUY)  # no venue id: never acknowledged
    acked = h.orders.track("c-2", BTC, Side.BUY, "v-2")
    for _ in range(2):
        h.orders.poll_missed(sent, 3)
        h.orders.poll_missed(acked, 3)
    assert h.orders.ids() == ["c-1", "c-2"]
    h.orders.poll_missed(sent, 3)
    assert h.orders.ids() == ["c-2"]
    assert h.states() == [("c-1", "REJECTED", Decimal(0))]
    for _ in range(27):
        h.orders.poll_missed(acked, 3)
    assert acked.misses == 29
    assert h.orders.ids() == ["c-2"]
    h.orders.poll_missed(acked, 3)  # the 30th: MEXC lost it; no longer polled, nothing invented
    assert h.orders.ids() == []
    assert h.take() == []


def test_remembered_ids_are_trimmed_oldest_first_but_never_a_tracked_orders_state() -> None:
    h = Harness(remembered=2)
    kept = h.orders.track("keep", BTC, Side.BUY, "v-k")
    h.report(kept, "NEW")
    for n in range(3):
        done = Tracked(f"d-{n}", BTC, Side.BUY)
        h.orders.publish_state(h.orders.state(done, "REJECTED"))
    assert h.orders.current(kept).status == "NEW"  # tracked: kept although the oldest
    assert [h.orders.knows(f"d-{n}") for n in range(3)] == [False, False, True]
    for n in range(3):
        h.orders.publish_fill(fill(f"t-{n}", "0.1", client_id="keep"), kept, "stream")
    h.take()
    assert h.orders.publish_fill(fill("t-0", "0.1", client_id="keep"), kept, "stream")
    assert not h.orders.publish_fill(fill("t-2", "0.1", client_id="keep"), kept, "stream")
    for n in range(3):
        h.orders.learn_venue_id(Tracked(f"x-{n}", BTC, Side.BUY), f"v-{n}")
    assert [h.orders.client_id_of(f"v-{n}") for n in range(3)] == ["", "x-1", "x-2"]
    assert h.orders.client_id_of("v-k") == ""


def test_track_keeps_one_record_per_client_id() -> None:
    h = Harness()
    first = h.orders.track("c-1", BTC, Side.BUY)
    again = h.orders.track("c-1", BTC, Side.BUY, "v-1")
    assert again is first
    assert first.venue_order_id == "v-1"
    assert h.orders.client_id_of("v-1") == "c-1"
    assert [t.client_order_id for t in h.orders.tracked()] == ["c-1"]
    h.orders.forget("c-1")
    assert h.orders.get("c-1") is None
    assert not h.orders.knows("c-1")  # nothing was published of it


def test_a_trade_row_becomes_the_engines_fill() -> None:
    row = Fill(
        symbol=BTC, trade_id="t-1", order_id="v-1", price=PRICE, qty=Decimal("0.2"),
        quote_qty=PRICE / 5, commission=Decimal("5"), commission_asset="USDT", time_ms=1_700,
        is_buyer=False, is_maker=False,
    )  # fmt: skip
    got = venue_fill(row, "c-1")
    assert (got.side, got.liquidity, got.ts_ns) == (Side.SELL, "taker", 1_700_000_000)
    assert (got.fee, got.fee_asset, got.client_order_id) == (Decimal(5), "USDT", "c-1")


def test_pushes_without_client_id_are_attributed_by_venue_order_id() -> None:
    h = Harness()
    h.orders.track("nc-1", BTC, Side.BUY, "C02__111")  # placed: the REST answer gave its id
    deal = pushed_fill("t-1", "0.001", client_id="", venue_id="C02__111")
    h.orders.on_private(deal)
    h.orders.on_private(deal)  # a duplicate push
    early = pushed_order("FILLED", "1", client_id="", venue_id="C02__999")
    h.orders.on_private(early)  # its venue id is not known yet: held, not dropped
    (got,) = h.take()
    assert isinstance(got, VenueFill)
    assert (got.client_order_id, got.fill_id, got.liquidity) == ("nc-1", "t-1", "maker")
    h.orders.track("nc-2", BTC, Side.BUY, "C02__999")  # taken back after a restart
    (late,) = h.take()
    assert isinstance(late, VenueOrderState)
    assert (late.client_order_id, late.status) == ("nc-2", "FILLED")
