"""Instruments: a venue symbol with its precision filters and fees, and the rounding they imply.

MEXC spot has no Binance-style filters (``filters`` is always ``[]``); its exchangeInfo gives
precisions instead (../shared/mexc_api.md §2.1): the quantity step is ``10**-baseAssetPrecision``,
the price tick ``10**-quotePrecision``, ``baseSizePrecision`` is the minimum quantity and
``quoteAmountPrecision`` the minimum notional. An :class:`Instrument` holds them as ``Decimal`` so
the ledger and the venue agree to the last unit.

Rounding rules (the venue must accept what we send, and we never spend more than approved):
quantities round **down** to the step; a buy price rounds **up** to the tick and a sell price
**down** when it is a worst acceptable price, and to the nearest tick when it is a fill price.

Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Final

__all__ = ["Instrument", "default_instrument", "split_symbol"]

_QUOTES: Final = ("USDT", "USDC", "USDE", "BTC", "ETH", "EUR", "MX")


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) of a MEXC spot symbol such as ``BTCUSDT`` → ``("BTC", "USDT")``.

    Raises ``ValueError`` when no known quote currency ends the symbol.
    """
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"Cannot tell the quote currency of {symbol!r}; expected one of {_QUOTES}")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol: precision filters, limits and fee rates (fractions, 0.0005 = 0.05 %)."""

    symbol: str
    base_asset: str
    quote_asset: str
    step_size: Decimal
    """Quantity increment (``10**-baseAssetPrecision``)."""
    tick_size: Decimal
    """Price increment (``10**-quotePrecision``)."""
    min_quantity: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    max_notional: Decimal | None = None
    maker_fee: Decimal = Decimal(0)
    taker_fee: Decimal = Decimal("0.0005")
    market_orders: bool = True
    """The venue takes MARKET orders on this symbol (MEXC: MARKET in its ``orderTypes``); when
    False, live entries and exits go as LIMIT orders (:mod:`cdb_cli.engine.live_execution`)."""

    def __post_init__(self) -> None:
        for name in ("step_size", "tick_size"):
            value = getattr(self, name)
            if not value.is_finite() or value <= 0:
                raise ValueError(f"{self.symbol}: {name} must be above 0, received {value}")
        for name in ("min_quantity", "min_notional", "maker_fee", "taker_fee"):
            value = getattr(self, name)
            if not value.is_finite() or value < 0:
                raise ValueError(f"{self.symbol}: {name} must be >= 0, received {value}")

    @classmethod
    def from_precisions(
        cls,
        symbol: str,
        *,
        base_asset_precision: int,
        quote_precision: int,
        min_quantity: Decimal = Decimal(0),
        min_notional: Decimal = Decimal(0),
        max_notional: Decimal | None = None,
        maker_fee: Decimal = Decimal(0),
        taker_fee: Decimal = Decimal("0.0005"),
        base_asset: str | None = None,
        quote_asset: str | None = None,
        market_orders: bool = True,
    ) -> Instrument:
        """Build from MEXC's exchangeInfo precisions (number of decimals)."""
        if base_asset is None or quote_asset is None:
            base_asset, quote_asset = split_symbol(symbol)
        return cls(
            symbol=symbol,
            base_asset=base_asset,
            quote_asset=quote_asset,
            step_size=Decimal(1).scaleb(-base_asset_precision),
            tick_size=Decimal(1).scaleb(-quote_precision),
            min_quantity=min_quantity,
            min_notional=min_notional,
            max_notional=max_notional,
            maker_fee=maker_fee,
            taker_fee=taker_fee,
            market_orders=market_orders,
        )

    def round_quantity(self, quantity: Decimal) -> Decimal:
        """Round down to the step (never more than asked for); never below 0."""
        if quantity <= 0:
            return Decimal(0)
        return (quantity / self.step_size).to_integral_value(ROUND_FLOOR) * self.step_size

    def round_price(self, price: Decimal, *, up: bool | None = None) -> Decimal:
        """Round to the tick: ``up=True`` ceiling, ``up=False`` floor, ``None`` nearest."""
        rounding = ROUND_HALF_EVEN if up is None else ROUND_CEILING if up else ROUND_FLOOR
        rounded = (price / self.tick_size).to_integral_value(rounding) * self.tick_size
        return rounded if rounded > 0 else self.tick_size

    def check_order(self, quantity: Decimal, price: Decimal) -> str | None:
        """The reason the venue would refuse this order, or None when it passes the filters."""
        if quantity <= 0:
            return f"quantity rounds to 0 at step {self.step_size}"
        if quantity < self.min_quantity:
            return f"quantity {quantity} is below the minimum {self.min_quantity}"
        notional = quantity * price
        if notional < self.min_notional:
            return f"notional {notional} is below the minimum {self.min_notional}"
        if self.max_notional is not None and notional > self.max_notional:
            return f"notional {notional} is above the maximum {self.max_notional}"
        return None


def instrument_detail(instrument: Instrument) -> dict[str, str | bool | None]:
    """The instrument as JSON-able values (money as strings): what a run's start audit records,
    so ``cdb parity`` re-runs it with the venue's filters and fees of that day."""
    return {
        name: str(value) if isinstance(value, Decimal) else value
        for name, value in asdict(instrument).items()
    }


def instrument_from_detail(detail: Mapping[str, object]) -> Instrument:
    """The :class:`Instrument` :func:`instrument_detail` wrote (``ValueError`` when it is not
    one)."""

    def money(name: str) -> Decimal:
        raw = detail.get(name)
        try:
            return Decimal(str(raw))
        except ArithmeticError:
            raise ValueError(f"{name} is not a number: {raw!r}") from None

    return Instrument(
        symbol=str(detail.get("symbol")),
        base_asset=str(detail.get("base_asset")),
        quote_asset=str(detail.get("quote_asset")),
        step_size=money("step_size"),
        tick_size=money("tick_size"),
        min_quantity=money("min_quantity"),
        min_notional=money("min_notional"),
        max_notional=None if detail.get("max_notional") is None else money("max_notional"),
        maker_fee=money("maker_fee"),
        taker_fee=money("taker_fee"),
        market_orders=detail.get("market_orders") is not False,
    )


def default_instrument(symbol: str, *, taker_fee: Decimal = Decimal("0.0005")) -> Instrument:
    """A conservative stand-in when the venue's exchangeInfo is not at hand (replay from files).

    8 decimals of quantity and price, MEXC's usual 5 USDT-equivalent minimum notional (1 unit of
    the quote currency for other quotes), no maximum.
    """
    base, quote = split_symbol(symbol)
    min_notional = Decimal(5) if quote in {"USDT", "USDC", "USDE"} else Decimal(0)
    return Instrument.from_precisions(
        symbol,
        base_asset_precision=8,
        quote_precision=8,
        min_notional=min_notional,
        taker_fee=taker_fee,
        base_asset=base,
        quote_asset=quote,
    )
