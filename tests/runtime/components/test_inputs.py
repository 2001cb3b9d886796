"""``BarInputs``: what a component waits for at a bar is held, delivery and all, until what came
of the bar is in the outbox; a late arrival is left to the component, the inputs of a bar that
never came are given up."""

from __future__ import annotations

import asyncio

import pytest
from market_testkit import trade

from cdb_cli.engine.bus import InMemoryBus
from cdb_cli.engine.events import Topic
from cdb_cli.engine.ports.bus import Delivery
from cdb_cli.runtime.components import inputs
from cdb_cli.runtime.components.inbox import Inbox
from cdb_cli.runtime.components.inputs import BarInputs


def deliveries(count: int) -> tuple[Inbox, list[Delivery]]:
    """``count`` real deliveries of one in-process subscription, and an inbox for them."""

    async def fetch() -> tuple[Inbox, list[Delivery]]:
        bus = InMemoryBus()
        subscription = await bus.subscribe(Topic.MARKET_DATA, "risk", "r")
        for n in range(count):
            await bus.publish(Topic.MARKET_DATA, trade(n + 1, "100"))
        return Inbox(subscription, asyncio.Event()), await subscription.fetch(count, 1.0)

    return asyncio.run(fetch())


def test_a_bars_inputs_are_marked_handled_only_when_settled() -> None:
    inbox, (first, second, progress) = deliveries(3)
    held: BarInputs[str, str] = BarInputs("signal")
    held.add("bar-1", "buy", 10, inbox, first)
    assert not held.ready("bar-1", "bar-1")  # the producer has not said how many
    held.count("bar-1", 2, inbox, progress)
    assert not held.ready("bar-1", "bar-1")
    held.add("bar-1", "sell", 20, inbox, second)
    assert held.ready("bar-1", "bar-1")
    assert held.take("bar-1", "bar-1") == [("buy", 10), ("sell", 20)]
    assert inbox.take_done() == []  # what came of the bar is not in the outbox yet
    held.settle()
    assert inbox.take_done() == [first, progress, second]


def test_an_input_after_its_bar_is_left_to_the_components_rule() -> None:
    """A late arrival is not held (its bar will not take it): ``add`` says so, and the
    component applies its rule (execution: place an exit, expire an entry) and marks it done."""
    inbox, (progress, late) = deliveries(2)
    held: BarInputs[tuple[str, int], str] = BarInputs("risk approval")
    held.count("bar-1", 0, inbox, progress)
    assert held.take(("BTCUSDT", 5), "bar-1") == []
    held.settle()
    assert inbox.take_done() == [progress]
    assert held.add(("BTCUSDT", 5), "buy", 30, inbox, late) is False
    assert inbox.take_done() == []  # the component's to mark, once its rule is applied
    assert not held.ready(("BTCUSDT", 5), "bar-1")
    assert held.take(("BTCUSDT", 5), "bar-1") == []


def test_inputs_of_a_bar_that_never_comes_are_given_up_beyond_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inputs, "KEEP_LATE", 2)
    inbox, (*orphans, progress) = deliveries(4)
    held: BarInputs[str, str] = BarInputs("signal")
    for n, delivery in enumerate(orphans):  # three bars that are never handled
        held.add(f"gone-{n}", "buy", n, inbox, delivery)
    held.count("bar-1", 0, inbox, progress)
    held.take("bar-1", "bar-1")
    assert inbox.take_done() == [orphans[0]]  # the oldest beyond two
    held.settle()
    assert inbox.take_done() == [progress]
    assert held.ready("gone-2", "gone-2") is False
