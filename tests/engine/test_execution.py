"""Paper execution: next-price fills after the latency, adverse seeded slippage, fees, precision
filters, partial fills, and exits that cancel working buys."""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from cdb_cli.engine.events import OrderApproved, Side
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import Instrument

SYMBOL = "BTCUSDT"
MS = 1_000_000
INSTRUMENT = Instrument.from_precisions(
    SYMBOL,
    base_asset_precision=5,
    quote_precision=2,
    min_notional=D("5"),
    taker_fee=D("0.0005"),
)


def venue(seed: int = 1, **config: object) -> SimulatedExecution:
    return SimulatedExecution(
        PaperExecutionConfig.model_validate(config),
        {SYMBOL: INSTRUMENT},
        random.Random(seed),
        id_prefix="t",
    )


def approved(side: Side, quote: str = "1000") -> OrderApproved:
    return OrderApproved(
        symbol=SYMBOL,
        ts_event=0,
        source="test",
        decision_id="d1",
        side=side,
        quote_amount=D(quote),
        reference_price=D("100"),
    )


def test_order_waits_for_the_latency_then_fills_at_the_next_price() -> None:
    ex = venue(latency_ms=100)
    accepted = ex.submit(approved(Side.BUY), ts_ns=0, position=D(0))
    assert [o.status for o in accepted.orders] == ["NEW"]
    assert accepted.orders[0].client_order_id == "t0000000001"
    early = ex.on_price(SYMBOL, 99 * MS, D("100"), cash=D(10_000), position=D(0))
    assert early.fills == []
    assert ex.has_working(SYMBOL)
    result = ex.on_price(SYMBOL, 100 * MS, D("101"), cash=D(10_000), position=D(0))
    (fill,) = result.fills
    assert fill.ts_event == 100 * MS
    assert D("101") * D("1.001") <= fill.price <= D("101") * D("1.005") + D("0.01")
    assert result.orders[-1].status == "FILLED"
    assert not ex.has_working(SYMBOL)


def test_buy_spends_at_most_its_quote_amount_including_the_fee() -> None:
    ex = venue(latency_ms=0)
    ex.submit(approved(Side.BUY, "1000"), ts_ns=0, position=D(0))
    (fill,) = ex.on_price(SYMBOL, 1, D("123.45"), cash=D(10_000), position=D(0)).fills
    spent = fill.quantity * fill.price + fill.fee
    assert spent <= D("1000")
    assert D("1000") - spent < INSTRUMENT.step_size * fill.price * 2  # nothing sensible left
    assert fill.quantity == INSTRUMENT.round_quantity(fill.quantity)  # on the step
    assert fill.price == INSTRUMENT.round_price(fill.price)  # on the tick
    assert fill.fee == (fill.quantity * fill.price * D("0.0005")).quantize(D("1e-18"))
    assert fill.fee_asset == "USDT"
    assert fill.liquidity == "taker"


def test_buy_never_spends_more_than_the_cash() -> None:
    ex = venue(latency_ms=0)
    ex.submit(approved(Side.BUY, "1000"), ts_ns=0, position=D(0))
    (fill,) = ex.on_price(SYMBOL, 1, D("100"), cash=D("300"), position=D(0)).fills
    assert fill.quantity * fill.price + fill.fee <= D("300")


def test_slippage_is_adverse_within_the_range_and_reproducible() -> None:
    def prices(seed: int) -> list[tuple[D, D]]:
        ex = venue(seed, latency_ms=0, slippage_min_pct="0.1", slippage_max_pct="0.5")
        out = []
        for i in range(20):
            ex.submit(approved(Side.BUY, "100"), ts_ns=i * 10, position=D(0))
            (buy,) = ex.on_price(SYMBOL, i * 10 + 1, D("1000"), cash=D(10**6), position=D(0)).fills
            ex.submit(approved(Side.SELL), ts_ns=i * 10 + 2, position=buy.quantity)
            (sell,) = ex.on_price(
                SYMBOL, i * 10 + 3, D("1000"), cash=D(10**6), position=buy.quantity
            ).fills
            out.append((buy.price, sell.price))
        return out

    first = prices(7)
    assert first == prices(7)
    assert first != prices(8)
    for buy, sell in first:
        assert D("1001") <= buy <= D("1005")
        assert D("995") <= sell <= D("999")


def test_with_a_quote_fills_at_the_touch() -> None:
    ex = venue(latency_ms=0)
    ex.submit(approved(Side.BUY), ts_ns=0, position=D(0))
    (fill,) = ex.on_price(
        SYMBOL, 1, D("100"), bid=D("99.9"), ask=D("100.1"), cash=D(10_000), position=D(0)
    ).fills
    assert fill.price == D("100.1")


def test_below_min_notional_is_rejected_with_the_reason() -> None:
    ex = venue(latency_ms=0)
    ex.submit(approved(Side.BUY, "4"), ts_ns=0, position=D(0))
    result = ex.on_price(SYMBOL, 1, D("100"), cash=D(10_000), position=D(0))
    assert result.fills == []
    assert result.orders[-1].status == "REJECTED"
    assert "below the minimum 5" in result.reports[-1].reason
    assert not ex.has_working(SYMBOL)


def test_exit_with_nothing_to_sell_is_rejected_at_once() -> None:
    ex = venue()
    result = ex.submit(approved(Side.SELL), ts_ns=0, position=D("0.000001"))
    assert [o.status for o in result.orders] == ["REJECTED"]
    assert "nothing to sell" in result.reports[0].reason


def test_partial_fills_follow_the_volume_cap() -> None:
    ex = venue(latency_ms=0, partial_fill_pct="10")
    ex.submit(approved(Side.BUY, "1000"), ts_ns=0, position=D(0))
    first = ex.on_price(SYMBOL, 1, D("100"), volume=D("4"), cash=D(10_000), position=D(0))
    assert first.fills[0].quantity == D("0.4")
    assert first.orders[-1].status == "PARTIALLY_FILLED"
    assert first.reports[-1].status == "PARTIALLY_FILLED"
    total = first.fills[0].quantity
    for step in range(2, 100):
        result = ex.on_price(SYMBOL, step, D("100"), volume=D("4"), cash=D(10_000), position=D(0))
        total += sum((f.quantity for f in result.fills), D(0))
        if not ex.has_working(SYMBOL):
            assert result.orders[-1].status == "FILLED"
            break
    else:
        pytest.fail("the order never finished")
    assert D("9.9") < total <= D("10")


def test_exit_cancels_working_buys_and_sells_the_whole_position() -> None:
    ex = venue(latency_ms=0, partial_fill_pct="10")
    ex.submit(approved(Side.BUY, "1000"), ts_ns=0, position=D(0))
    ex.on_price(SYMBOL, 1, D("100"), volume=D("4"), cash=D(10_000), position=D(0))
    result = ex.submit(approved(Side.SELL), ts_ns=2, position=D("0.4"))
    statuses = [o.status for o in result.orders]
    assert statuses == ["PARTIALLY_CANCELED", "NEW"]
    assert result.reports[0].reason == "canceled by an exit"
    sold = ex.on_price(SYMBOL, 3, D("100"), volume=D("40"), cash=D(0), position=D("0.4"))
    assert sold.fills[0].side is Side.SELL
    assert sold.fills[0].quantity == D("0.4")
    assert sold.orders[-1].status == "FILLED"


def test_ids_stay_within_mexc_limits() -> None:
    ex = SimulatedExecution(
        PaperExecutionConfig(), {SYMBOL: INSTRUMENT}, random.Random(1), id_prefix="r" * 22
    )
    order = ex.submit(approved(Side.BUY), ts_ns=0, position=D(0)).orders[0]
    assert len(order.client_order_id) == 32
    with pytest.raises(ValueError, match="id_prefix"):
        SimulatedExecution(PaperExecutionConfig(), {}, random.Random(1), id_prefix="bad-prefix")


def test_config_refuses_inverted_slippage() -> None:
    with pytest.raises(ValidationError, match="slippage_min_pct"):
        PaperExecutionConfig(slippage_min_pct=D("0.5"), slippage_max_pct=D("0.1"))


def test_a_restored_order_never_reuses_a_fill_id() -> None:
    first = venue(latency_ms=0, partial_fill_pct="10")
    first.submit(approved(Side.SELL), ts_ns=0, position=D("0.8"))
    (before,) = first.on_price(
        SYMBOL, 1, D("100"), volume=D("4"), cash=D(0), position=D("0.8")
    ).fills
    (order,) = first.working_orders()
    for prefix in ("t", "u"):  # the same run id again, and the usual case: a new run id
        again = SimulatedExecution(
            PaperExecutionConfig(latency_ms=0, partial_fill_pct=D(10)),
            {SYMBOL: INSTRUMENT},
            random.Random(2),
            id_prefix=prefix,
        )
        again.restore(order, [before])
        (after,) = again.on_price(
            SYMBOL, 2, D("100"), volume=D("4"), cash=D(0), position=D("0.4")
        ).fills
        assert after.fill_id != before.fill_id


def test_a_trade_too_small_for_the_filters_does_not_end_a_working_order() -> None:
    ex = venue(latency_ms=0, partial_fill_pct="50")
    ex.submit(approved(Side.BUY, "1000"), ts_ns=0, position=D(0))
    small = ex.on_price(SYMBOL, 1, D("100"), volume=D("0.01"), cash=D(10_000), position=D(0))
    assert small.fills == []
    assert ex.has_working(SYMBOL)  # waits for a bigger trade
    big = ex.on_price(SYMBOL, 2, D("100"), volume=D("100"), cash=D(10_000), position=D(0))
    assert big.fills
    assert big.orders[-1].status == "FILLED"
