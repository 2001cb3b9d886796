"""The MEXC order request for an approved order, rounded to the instrument's filters. Pure.

- The client order id of the record is always sent as ``newClientOrderId``.
- LIMIT-style orders: quantity rounded down to the step (or derived from ``quote_amount`` at the
  rounded price), price rounded to the tick (buy up, sell down: the instrument's rule for a worst
  acceptable price).
- MARKET buys with a ``quote_amount`` go by ``quoteOrderQty`` (rounded down to the tick); other
  MARKET orders by ``quantity`` (rounded down to the step).
- Minimum quantity, minimum and maximum notional (exchangeInfo) are checked before anything is
  sent; a MARKET order by quantity is checked against the current best price, which the caller
  fetches only for such an order (:attr:`OrderRequest.needs_market_price`) and passes to
  :func:`check_at_market`. A violation raises :class:`Refused` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from cdb_cli.engine.events import Side
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.records import OrderRecord

__all__ = ["OrderRequest", "Refused", "check_at_market", "floor_to_step", "order_request"]


class Refused(Exception):
    """The order breaks an exchangeInfo filter; it is not sent."""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What ``POST /api/v3/order`` gets (:meth:`MexcHttpClient.new_order`'s arguments)."""

    symbol: str
    side: Side
    order_type: str
    client_order_id: str  # newClientOrderId
    quantity: Decimal | None = None
    quote_order_qty: Decimal | None = None
    price: Decimal | None = None

    @property
    def needs_market_price(self) -> bool:
        """A MARKET order by quantity: its notional is checked at the best price."""
        return self.order_type == "MARKET" and self.quantity is not None


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step``."""
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def order_request(order: OrderRecord, inst: Instrument) -> OrderRequest:
    """What to send for ``order``, rounded to ``inst``'s filters; Refused when a filter fails."""
    if order.order_type == "MARKET":
        return _market_request(order, inst)
    if order.price is None:  # pragma: no cover - OrderRecord refuses a priced type without
        raise Refused(f"a {order.order_type} order needs a price")
    price = inst.round_price(order.price, up=order.side is Side.BUY)
    if order.quantity is not None:
        quantity = inst.round_quantity(order.quantity)
    else:
        quantity = inst.round_quantity((order.quote_amount or Decimal(0)) / price)
    problem = inst.check_order(quantity, price)
    if problem is not None:
        raise Refused(problem)
    return _request(order, quantity=quantity, price=price)


def _market_request(order: OrderRecord, inst: Instrument) -> OrderRequest:
    if order.side is Side.BUY and order.quote_amount is not None:
        quote = floor_to_step(order.quote_amount, inst.tick_size)
        if quote <= 0 or quote < inst.min_notional:
            raise Refused(f"quote amount {quote} is below the minimum {inst.min_notional}")
        if inst.max_notional is not None and quote > inst.max_notional:
            raise Refused(f"quote amount {quote} is above the maximum {inst.max_notional}")
        return _request(order, quote_order_qty=quote)
    if order.quantity is None:
        raise Refused("a MARKET sell needs a quantity (MEXC sells by base quantity)")
    quantity = inst.round_quantity(order.quantity)
    if quantity <= 0 or quantity < inst.min_quantity:
        raise Refused(f"quantity {quantity} is below the minimum {inst.min_quantity}")
    return _request(order, quantity=quantity)


def check_at_market(request: OrderRequest, inst: Instrument, best: Decimal | None) -> None:
    """Refused when a MARKET order by quantity breaks a notional filter at the ``best`` price.

    ``best`` is the ask for a buy, the bid for a sell; None (unavailable): not checked.
    """
    if best is None or request.quantity is None:
        return
    problem = inst.check_order(request.quantity, best)
    if problem is not None:
        raise Refused(problem)


def _request(
    order: OrderRecord,
    *,
    quantity: Decimal | None = None,
    quote_order_qty: Decimal | None = None,
    price: Decimal | None = None,
) -> OrderRequest:
    return OrderRequest(
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        client_order_id=order.client_order_id,
        quantity=quantity,
        quote_order_qty=quote_order_qty,
        price=price,
    )
