"""Which asset a fill's fee was paid in, and what that means for the ledger.

MEXC charges a spot commission in one of three ways, and says which in ``commissionAsset``:

* in the **quote** asset (a sell, and every paper fill): cash pays it;
* in the **base** asset (a buy): the account receives ``quantity - fee``;
* in a **third** asset: with MX deduction on, the fee comes out of the account's MX balance
  (at a discount) and neither side of the trade is touched.

The ledger books the first two (:class:`~cdb_cli.engine.portfolio.Portfolio`). A fee in a third
asset is kept apart, by asset, and is not in the fees, PnL or drawdown in the quote currency: its
price in the quote is not known at the fill, and the balance it comes from is not one the bot
trades.

Pure: stdlib, pydantic records and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from cdb_cli.engine.instruments import split_symbol
from cdb_cli.engine.records import FillRecord

__all__ = ["FeeParts", "describe_other", "fee_parts", "fees_in_quote", "other_fees"]

_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class FeeParts:
    """A fill's fee by where it is booked; at most one part is non-zero."""

    quote: Decimal = _ZERO
    """Paid in the quote asset (cash)."""
    base: Decimal = _ZERO
    """Paid in the base asset (quantity)."""
    other: Decimal = _ZERO
    """Paid in ``other_asset`` (e.g. MX with MEXC's MX deduction): booked apart."""
    other_asset: str = ""

    def in_quote(self, price: Decimal) -> Decimal:
        """The quote and base parts in the quote currency (the base part at ``price``)."""
        return self.quote + self.base * price


def fee_parts(fill: FillRecord, quote_currency: str | None = None) -> FeeParts:
    """Split ``fill``'s fee by asset; ``quote_currency`` defaults to the symbol's quote.

    A fill that names no fee asset (a hand-made or an old record) paid in the quote, as every
    paper fill does.
    """
    if fill.fee == 0:
        return FeeParts()
    quote = quote_currency or _quote_of(fill.symbol)
    if not fill.fee_asset or fill.fee_asset == quote:
        return FeeParts(quote=fill.fee)
    base = fill.symbol[: -len(quote)].rstrip("/-_") if quote else ""
    if base and fill.symbol.endswith(quote) and fill.fee_asset == base:
        return FeeParts(base=fill.fee)
    return FeeParts(other=fill.fee, other_asset=fill.fee_asset)


def _quote_of(symbol: str) -> str:
    try:
        return split_symbol(symbol)[1]
    except ValueError:
        return ""


def fees_in_quote(fills: Iterable[FillRecord]) -> Decimal:
    """Σ of the fees paid in the quote or the base asset, in the quote (base at the fill price)."""
    return sum((fee_parts(fill).in_quote(fill.price) for fill in fills), _ZERO)


def other_fees(fills: Iterable[FillRecord]) -> dict[str, str]:
    """Σ of the fees paid in third assets, by asset (``{"MX": "0.0123"}``), sorted by asset."""
    totals: dict[str, Decimal] = {}
    for fill in fills:
        parts = fee_parts(fill)
        if parts.other:
            totals[parts.other_asset] = totals.get(parts.other_asset, _ZERO) + parts.other
    return {asset: str(total) for asset, total in sorted(totals.items())}


def describe_other(totals: Mapping[str, object]) -> str:
    """`` (+ 0.06 MX apart)`` after a quote fee figure, or nothing when no third asset paid."""
    if not totals:
        return ""
    return " (+ " + ", ".join(f"{total} {asset}" for asset, total in totals.items()) + " apart)"
