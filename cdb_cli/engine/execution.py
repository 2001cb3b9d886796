"""Paper execution: a simulated venue that fills approved orders the way a market order would.

``SimulatedExecution`` takes :class:`~cdb_cli.engine.events.OrderApproved` orders and fills them at
the **next price** it sees for the symbol after the order's latency has passed — the next bar's
open in a bar replay, the next trade in a tick replay, the live price in paper mode:

* **Slippage** is adverse: with a quote (bid/ask) the fill is at the touch (a buy pays the ask, a
  sell gets the bid); without one, the price moves against the order by a uniform draw from
  ``[slippage_min_pct, slippage_max_pct]`` (the seed's 0.1 to 0.5 %), from the seeded random
  source the kernel passes in, so a run is reproducible.
* **Fees** are the instrument's taker rate on the notional, in the quote currency.
* **Precision filters**: the quantity rounds down to the instrument's step, the price to its tick;
  an order below the minimum quantity or notional is rejected with the reason.
* **Partial fills** (optional): with ``partial_fill_pct`` > 0 one price event fills at most that
  share of its volume; the rest waits for the next one (status ``PARTIALLY_FILLED``).

A buy spends its approved quote amount (never more than the cash it is given); an exit sells the
whole position held when it fills. Every order gets a deterministic client order id
(``<prefix><counter>``, at most 32 characters of ``[A-Za-z0-9_-]``); fill and report ids also
carry this venue's prefix, so an order taken back after a restart (a new prefix) never reuses an
id it had before.

Pure: stdlib, pydantic records and ``cdb_cli.engine`` only; time comes in as ns, randomness as a
``random.Random`` the caller seeds.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from cdb_cli.engine.config import PaperExecutionConfig
from cdb_cli.engine.events import ExecutionReport, OrderApproved, Side
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.records import (
    OPEN_ORDER_STATUSES,
    FillRecord,
    Mode,
    OrderRecord,
    OrderStatus,
)

__all__ = ["ExecutionResult", "PaperExecutionConfig", "SimulatedExecution", "approval_order"]

_ZERO: Final = Decimal(0)
_HUNDRED: Final = Decimal(100)
_GRID: Final = Decimal("1e-18")
_NS_PER_MS: Final = 1_000_000


@dataclass(slots=True)
class _Working:
    order: OrderRecord
    active_ns: int
    quote_left: Decimal  # buys: quote still to spend
    filled: Decimal = _ZERO  # base quantity filled so far


@dataclass(slots=True)
class ExecutionResult:
    """What one call changed: order records to save, reports to publish, fills to book."""

    orders: list[OrderRecord] = field(default_factory=list)
    reports: list[ExecutionReport] = field(default_factory=list)
    fills: list[FillRecord] = field(default_factory=list)

    def extend(self, other: ExecutionResult) -> None:
        self.orders.extend(other.orders)
        self.reports.extend(other.reports)
        self.fills.extend(other.fills)


def approval_order(
    order: OrderApproved, client_order_id: str, ts_ns: int, position: Decimal, mode: Mode
) -> OrderRecord:
    """The NEW market order an approval asks for: a buy spends its quote amount, an exit sells
    ``position``."""
    return OrderRecord(
        client_order_id=client_order_id,
        decision_id=order.decision_id,
        symbol=order.symbol,
        side=order.side,
        order_type="MARKET",
        quantity=position if order.side is Side.SELL else None,
        quote_amount=order.quote_amount if order.side is Side.BUY else None,
        status="NEW",
        ts_created=ts_ns,
        ts_updated=ts_ns,
        mode=mode,
    )


class SimulatedExecution:
    """Fills approved orders at the next price; see the module docstring for the model."""

    def __init__(
        self,
        config: PaperExecutionConfig,
        instruments: Mapping[str, Instrument],
        rng: random.Random,
        *,
        id_prefix: str = "cdb",
        mode: Mode = Mode.PAPER,
        source: str = "paper",
    ) -> None:
        if not id_prefix or len(id_prefix) > 22 or not id_prefix.replace("_", "").isalnum():
            raise ValueError(f"id_prefix must be 1..22 of [A-Za-z0-9_], received {id_prefix!r}")
        self.config = config
        self.instruments = dict(instruments)
        self._rng = rng
        self._prefix = id_prefix
        self._mode: Mode = mode
        self._source = source
        self._counter = 0
        self._fills = 0
        self._reports = 0
        self._working: dict[str, list[_Working]] = {}

    @property
    def id_prefix(self) -> str:
        """What every client order id of this venue starts with."""
        return self._prefix

    # --- orders ---------------------------------------------------------------------------------

    def has_working(self, symbol: str) -> bool:
        """True while an order of ``symbol`` waits for (more of) its fill."""
        return bool(self._working.get(symbol))

    def working_orders(self) -> list[OrderRecord]:
        return [w.order for orders in self._working.values() for w in orders]

    def pending_buy_quote(self, symbol: str) -> Decimal:
        """Quote amount that working buys of ``symbol`` may still spend (counts as exposure)."""
        return sum(
            (w.quote_left for w in self._working.get(symbol, ()) if w.order.side is Side.BUY),
            _ZERO,
        )

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}{self._counter:010d}"

    def submit(self, order: OrderApproved, *, ts_ns: int, position: Decimal) -> ExecutionResult:
        """Accept ``order`` (status NEW) or reject it at once; ``position`` is the held quantity.

        An exit first cancels working buys of the symbol (they would re-open what it closes).
        """
        instrument = self.instruments.get(order.symbol)
        result = ExecutionResult()
        if order.side is Side.SELL:
            result.extend(self._cancel_buys(order.symbol, ts_ns))
        record = self._record(order, ts_ns, position)
        reason = None
        if instrument is None:
            reason = f"no instrument known for {order.symbol}"
        elif order.side is Side.SELL and instrument.round_quantity(position) <= 0:
            reason = f"nothing to sell: position {position} rounds to 0"
        if reason is not None:
            self._finish(result, record, "REJECTED", ts_ns, reason)
            return result
        self._working.setdefault(order.symbol, []).append(
            _Working(
                record,
                ts_ns + self.config.latency_ms * _NS_PER_MS,
                order.quote_amount if order.side is Side.BUY else _ZERO,
            )
        )
        result.orders.append(record)
        result.reports.append(self._report(record, ts_ns))
        return result

    def expire(self, order: OrderApproved, *, ts_ns: int, reason: str) -> ExecutionResult:
        """Record ``order`` as never placed, status EXPIRED with ``reason`` (an approval that
        reached the venue too late to be placed; see the component-mode rule)."""
        result = ExecutionResult()
        self._finish(result, self._record(order, ts_ns, _ZERO), "EXPIRED", ts_ns, reason)
        return result

    def _record(self, order: OrderApproved, ts_ns: int, position: Decimal) -> OrderRecord:
        return approval_order(order, self._next_id(), ts_ns, position, self._mode)

    def restore(self, order: OrderRecord, fills: Sequence[FillRecord]) -> None:
        """Take back an order that was still working when the process stopped (a restart).

        ``fills`` are the order's fills so far; a buy may still spend what they did not, an exit
        still sells the whole position. Ids continue after the highest restored counter.
        """
        if order.status not in OPEN_ORDER_STATUSES:
            raise ValueError(f"order {order.client_order_id} is {order.status}, not open")
        if order.symbol not in self.instruments:
            raise ValueError(f"no instrument known for {order.symbol}")
        spent = sum((f.quantity * f.price + f.fee for f in fills), _ZERO)
        filled = sum((f.quantity for f in fills), _ZERO)
        working = _Working(
            order,
            order.ts_created + self.config.latency_ms * _NS_PER_MS,
            (order.quote_amount or _ZERO) - spent if order.side is Side.BUY else _ZERO,
            filled,
        )
        self._working.setdefault(order.symbol, []).append(working)
        suffix = order.client_order_id.removeprefix(self._prefix)
        if order.client_order_id.startswith(self._prefix) and suffix.isdigit():
            self._counter = max(self._counter, int(suffix))
        mine = f"{order.client_order_id}-{self._prefix}f"
        for fill in fills:  # the same prefix again: number the next fills after these
            number = fill.fill_id.removeprefix(mine)
            if fill.fill_id.startswith(mine) and number.isdigit():
                self._fills = max(self._fills, int(number))

    def _cancel_buys(self, symbol: str, ts_ns: int) -> ExecutionResult:
        result = ExecutionResult()
        keep: list[_Working] = []
        for working in self._working.get(symbol, []):
            if working.order.side is not Side.BUY:
                keep.append(working)
                continue
            status: OrderStatus = "PARTIALLY_CANCELED" if working.filled > 0 else "CANCELED"
            self._finish(result, working.order, status, ts_ns, "canceled by an exit")
        self._working[symbol] = keep
        return result

    # --- prices ---------------------------------------------------------------------------------

    def on_price(
        self,
        symbol: str,
        ts_ns: int,
        price: Decimal,
        *,
        volume: Decimal | None = None,
        bid: Decimal | None = None,
        ask: Decimal | None = None,
        cash: Decimal,
        position: Decimal,
        until_ns: int | None = None,
    ) -> ExecutionResult:
        """Fill working orders of ``symbol`` that are active at ``ts_ns`` against this price.

        ``cash`` and ``position`` are the portfolio's, so a buy never spends more than the cash
        and an exit never sells more than is held. ``until_ns`` makes the price stand for a span
        (a bar's open stands for its first moments): an order that becomes active before
        ``until_ns`` fills at this price, at the time it becomes active.
        """
        result = ExecutionResult()
        working = self._working.get(symbol)
        if not working:
            return result
        instrument = self.instruments[symbol]
        cap = None
        if self.config.partial_fill_pct > 0 and volume is not None:
            cap = instrument.round_quantity(volume * self.config.partial_fill_pct / _HUNDRED)
        still: list[_Working] = []
        horizon = ts_ns if until_ns is None else max(ts_ns, until_ns)
        for item in working:
            if item.active_ns > horizon:
                still.append(item)
                continue
            fill_ns = max(ts_ns, item.active_ns)
            fill_price = self._fill_price(instrument, item.order.side, price, bid, ask)
            quantity = self._quantity(item, instrument, fill_price, cash, position, cap)
            if quantity is None:
                still.append(item)  # this trade is too small for a fill: wait for more
                continue
            fill = self._fill(result, item, instrument, quantity, fill_price, fill_ns)
            if fill is None:
                continue
            if fill.side is Side.BUY:
                cash -= fill.quantity * fill.price + fill.fee
            else:
                position -= fill.quantity
            if item.order.status == "PARTIALLY_FILLED":
                still.append(item)
        self._working[symbol] = still
        return result

    @staticmethod
    def _quantity(
        item: _Working,
        instrument: Instrument,
        price: Decimal,
        cash: Decimal,
        position: Decimal,
        cap: Decimal | None,
    ) -> Decimal | None:
        """What this price event fills of ``item``; None when only the partial-fill cap is too
        small to trade (the order waits for the next event instead of ending)."""
        if item.order.side is Side.BUY:
            # The quote amount pays the notional and its fee; so does the cash.
            budget = min(item.quote_left, cash) / (1 + instrument.taker_fee)
            quantity = instrument.round_quantity(budget / price)
        else:
            quantity = instrument.round_quantity(position)
        if cap is None or cap >= quantity:
            return quantity
        return None if instrument.check_order(cap, price) is not None else cap

    def _fill_price(
        self,
        instrument: Instrument,
        side: Side,
        price: Decimal,
        bid: Decimal | None,
        ask: Decimal | None,
    ) -> Decimal:
        buy = side is Side.BUY
        if bid is not None and ask is not None and 0 < bid < ask:
            return ask if buy else bid
        low, high = self.config.slippage_min_pct, self.config.slippage_max_pct
        # A uniform draw on a 1e-6 % grid keeps the price exact and the run reproducible.
        steps = int((high - low) * 1_000_000)
        pct = low + Decimal(self._rng.randint(0, steps)) / 1_000_000 if steps > 0 else low
        factor = 1 + pct / _HUNDRED if buy else 1 - pct / _HUNDRED
        return instrument.round_price(price * factor)

    def _fill(
        self,
        result: ExecutionResult,
        item: _Working,
        instrument: Instrument,
        quantity: Decimal,
        price: Decimal,
        ts_ns: int,
    ) -> FillRecord | None:
        """Book one fill of ``item`` (None when the filters refuse it and the order ends)."""
        order = item.order
        reason = instrument.check_order(quantity, price)
        if reason is not None:
            if item.filled > 0:  # the rest is too small to trade: the order ends here
                self._finish(result, order, "FILLED", ts_ns, f"rest dropped: {reason}")
            else:
                self._finish(result, order, "REJECTED", ts_ns, reason)
            return None
        notional = quantity * price
        fee = (notional * instrument.taker_fee).quantize(_GRID, rounding=ROUND_HALF_EVEN)
        self._fills += 1
        fill = FillRecord(
            fill_id=f"{order.client_order_id}-{self._prefix}f{self._fills}",
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            fee=fee,
            fee_asset=instrument.quote_asset,
            ts_event=ts_ns,
            liquidity="taker",
        )
        result.fills.append(fill)
        item.filled += quantity
        if order.side is Side.BUY:
            item.quote_left -= notional + fee
            # Done when what is left cannot buy another step at this price.
            step_cost = instrument.step_size * price * (1 + instrument.taker_fee)
            finished = item.quote_left < step_cost
        else:
            finished = item.filled >= instrument.round_quantity(order.quantity or _ZERO)
        status: OrderStatus = "FILLED" if finished else "PARTIALLY_FILLED"
        updated = order.model_copy(update={"status": status, "ts_updated": ts_ns})
        item.order = updated
        result.orders.append(updated)
        result.reports.append(
            self._report(
                updated,
                ts_ns,
                quantity=quantity,
                price=price,
                fee=fee,
                asset=fill.fee_asset,
                event_id=fill.fill_id,  # a report's fill is the stored fill, on every side
            )
        )
        return fill

    def _finish(
        self,
        result: ExecutionResult,
        order: OrderRecord,
        status: OrderStatus,
        ts_ns: int,
        reason: str,
    ) -> None:
        updated = order.model_copy(update={"status": status, "ts_updated": ts_ns})
        result.orders.append(updated)
        result.reports.append(self._report(updated, ts_ns, reason=reason))
        working = self._working.get(order.symbol, [])
        self._working[order.symbol] = [
            w for w in working if w.order.client_order_id != order.client_order_id
        ]

    def _report(
        self,
        order: OrderRecord,
        ts_ns: int,
        *,
        quantity: Decimal = _ZERO,
        price: Decimal = _ZERO,
        fee: Decimal = _ZERO,
        asset: str = "",
        reason: str = "",
        event_id: str = "",
    ) -> ExecutionReport:
        self._reports += 1
        return ExecutionReport(
            event_id=event_id or f"{order.client_order_id}-{self._prefix}r{self._reports}",
            symbol=order.symbol,
            ts_event=ts_ns,
            source=self._source,
            client_order_id=order.client_order_id,
            venue_order_id=f"paper-{order.client_order_id}",
            side=order.side,
            status=order.status if order.status != "PENDING_NEW" else "NEW",
            last_quantity=quantity,
            last_price=price,
            fee=fee,
            fee_asset=asset,
            reason=reason,
        )
