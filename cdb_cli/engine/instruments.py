"""Tradable instruments and their precision rules, pure and shared by live and paper execution.

An :class:`Instrument` carries what an exchange allows for one symbol: the price tick, the quantity
step, the smallest quantity and the smallest notional (price x quantity, in quote currency). Every
number is ``Decimal``. The helpers round *towards safety*: quantities always down (never spend more
than intended), prices down for buys and up for sells (never cross further than asked).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from pydantic import BaseModel, ConfigDict, Field

from cdb_cli.engine.events import Side

__all__ = ["Instrument", "format_decimal"]


def format_decimal(value: Decimal) -> str:
    """A plain decimal string without exponent or trailing zeros: ``1E+1`` → ``10``."""
    text = f"{value.normalize():f}"
    return "0" if text in {"-0", ""} else text


class Instrument(BaseModel):
    """One spot symbol and its filters (tick size, step size, min quantity, min notional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1, max_length=32)
    base_asset: str = Field(min_length=1)
    quote_asset: str = Field(min_length=1)
    tick_size: Decimal = Field(gt=0, description="Smallest price increment.")
    step_size: Decimal = Field(gt=0, description="Smallest quantity increment.")
    min_quantity: Decimal = Field(default=Decimal(0), ge=0)
    min_notional: Decimal = Field(default=Decimal(0), ge=0, description="In quote currency.")
    max_notional: Decimal | None = Field(default=None, gt=0)
    maker_fee: Decimal = Field(default=Decimal(0), ge=0, description="Fraction, 0.001 = 0.1 %.")
    taker_fee: Decimal = Field(default=Decimal(0), ge=0, description="Fraction, 0.001 = 0.1 %.")
    order_types: tuple[str, ...] = ()
    tradable: bool = True

    def round_quantity(self, quantity: Decimal) -> Decimal:
        """Round a quantity down to the step size (never more than asked)."""
        steps = (quantity / self.step_size).to_integral_value(rounding=ROUND_FLOOR)
        return (steps * self.step_size).quantize(self.step_size)

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """Round a price to the tick: down for a buy, up for a sell (never worse than asked)."""
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        ticks = (price / self.tick_size).to_integral_value(rounding=rounding)
        return (ticks * self.tick_size).quantize(self.tick_size)

    def quantity_for_quote(self, quote_amount: Decimal, price: Decimal) -> Decimal:
        """The largest valid quantity whose notional at ``price`` is at most ``quote_amount``."""
        if price <= 0:
            raise ValueError("price must be positive")
        return self.round_quantity(quote_amount / price)

    def check_order(self, price: Decimal, quantity: Decimal) -> str | None:
        """Why an order of ``quantity`` at ``price`` violates the filters, or None when it fits."""
        if quantity <= 0:
            return "quantity must be positive"
        if quantity != self.round_quantity(quantity):
            return f"quantity {quantity} is not a multiple of the step size {self.step_size}"
        if price % self.tick_size != 0:
            return f"price {price} is not a multiple of the tick size {self.tick_size}"
        if quantity < self.min_quantity:
            return f"quantity {quantity} is below the minimum {self.min_quantity}"
        notional = price * quantity
        if notional < self.min_notional:
            return f"notional {notional} is below the minimum {self.min_notional}"
        if self.max_notional is not None and notional > self.max_notional:
            return f"notional {notional} is above the maximum {self.max_notional}"
        return None
