"""Numbers for people: a ``Decimal`` rounded to the precision that means something, for display.

The store and the ledger keep 18 decimals (``10.087117140928446599``), which is right for the
books and unreadable in a terminal. Every human-readable view (``cdb report``, ``cdb replay``'s
table, ``cdb risk status``) renders its numbers through here; ``--json`` and ``--csv`` keep every
digit.

* Money in a quote currency: 2 places for a fiat-like quote (USDT, USDC, USDE, EUR), 8 for a
  crypto quote (BTC, ETH, MX), rounded half-even (:func:`money`).
* A price: to the instrument's tick (:func:`price`); a quantity: to its step (:func:`quantity`).
  Both drop trailing zeros a stand-in instrument's 8-decimal tick or step would add, keeping 2
  places of a price.
* A percentage to 2 places (:func:`percent`), a ratio of 0..1 as a percentage (:func:`ratio`).
* Nothing to show (``None``): :data:`DASH`, an en dash.

Values may be given as ``Decimal``, ``int``, ``float`` or the ``Decimal`` strings of a JSON
document. Pure: stdlib and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Final

from cdb_cli.engine.instruments import Instrument, default_instrument, split_symbol

__all__ = [
    "DASH",
    "Number",
    "instrument_of",
    "money",
    "percent",
    "price",
    "quantity",
    "quote_of",
    "quote_places",
    "ratio",
    "text",
]

Number = Decimal | int | float | str
DASH: Final = "\u2013"
"""What a view shows where there is no number (a win rate without trades)."""

_FIAT_LIKE: Final = frozenset({"USDT", "USDC", "USDE", "EUR"})
_CTX: Final = Context(prec=80, rounding=ROUND_HALF_EVEN)
_PRICE_MIN_PLACES: Final = 2


def _decimal(value: Number) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None


def _fixed(value: Decimal, exponent: Decimal) -> str:
    rounded = value.quantize(exponent, context=_CTX)
    if rounded.is_zero():
        rounded = abs(rounded)  # no "-0.00"
    return f"{rounded:f}"


def _trim(digits: str, min_places: int) -> str:
    """``7400.12000000`` → ``7400.12`` (never fewer than ``min_places`` decimals)."""
    if "." not in digits:
        return digits
    whole, fraction = digits.split(".")
    fraction = fraction.rstrip("0").ljust(min_places, "0")
    return f"{whole}.{fraction}" if fraction else whole


def quote_places(quote_asset: str) -> int:
    """Decimals shown of an amount in ``quote_asset``: 2 for USDT-like, 8 for crypto."""
    return 2 if quote_asset.upper() in _FIAT_LIKE else 8


def quote_of(symbols: str | list[str] | tuple[str, ...] | set[str]) -> str:
    """The quote currency of a symbol, or of several when they share it; ``""`` when unknown."""
    names = [symbols] if isinstance(symbols, str) else sorted(symbols)
    quotes = set()
    for name in names:
        try:
            quotes.add(split_symbol(name)[1])
        except ValueError:
            return ""
    return quotes.pop() if len(quotes) == 1 else ""


def instrument_of(symbol: str) -> Instrument | None:
    """The stand-in instrument of ``symbol`` (8-decimal tick and step), None when its quote
    currency is unknown. Pass the venue's :class:`Instrument` where you have it instead."""
    try:
        return default_instrument(symbol)
    except ValueError:
        return None


def text(value: object) -> str:
    """Any value as a table cell: :data:`DASH` for None."""
    return DASH if value is None else str(value)


def money(value: Number | None, quote: str = "USDT") -> str:
    """An amount in ``quote`` (``""``: unknown, 8 places) rounded half-even for display."""
    if value is None:
        return DASH
    places = quote_places(quote) if quote else 8
    return _fixed(_decimal(value), Decimal(1).scaleb(-places))


def price(value: Number | None, instrument: Instrument | None) -> str:
    """A price to the instrument's tick (8 places without one), at least 2 decimals shown."""
    if value is None:
        return DASH
    tick = instrument.tick_size if instrument is not None else Decimal("1e-8")
    digits = _fixed(_decimal(value), tick)
    places = max(-int(tick.normalize().as_tuple().exponent), 0)
    return _trim(digits, min(places, _PRICE_MIN_PLACES))


def quantity(value: Number | None, instrument: Instrument | None) -> str:
    """A quantity to the instrument's step (8 places without one), trailing zeros dropped."""
    if value is None:
        return DASH
    step = instrument.step_size if instrument is not None else Decimal("1e-8")
    return _trim(_fixed(_decimal(value), step), 0)


def percent(value: Number | None, places: int = 2) -> str:
    """A percentage (already times 100) to ``places`` decimals, without the sign."""
    if value is None:
        return DASH
    return _fixed(_decimal(value), Decimal(1).scaleb(-places))


def ratio(value: Number | None, places: int = 1) -> str:
    """A ratio of 0..1 (a win rate) as ``55.6 %``; :data:`DASH` when there is none."""
    if value is None:
        return DASH
    return f"{percent(_decimal(value) * 100, places)} %"
