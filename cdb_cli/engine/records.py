"""Frozen records the store keeps besides events: orders, fills, positions, equity, audits.

Money is ``Decimal`` and must fit the store's exact column type (at most 38 digits, 18 of them
after the point), so a value that a database would round is refused here instead. Timestamps are
int nanoseconds UTC, like ``Event.ts_event``.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cdb_cli.engine.events import Side

__all__ = [
    "CONFIG_KEY_MAX_LENGTH",
    "OPEN_ORDER_STATUSES",
    "AuditRecord",
    "EquitySnapshot",
    "FillRecord",
    "Mode",
    "Money",
    "OrderRecord",
    "OrderStatus",
    "OrderType",
    "PositionRecord",
    "check_config_key",
]

Money = Annotated[Decimal, Field(max_digits=38, decimal_places=18, allow_inf_nan=False)]
"""An exact amount that fits ``NUMERIC(38, 18)``."""

TimestampNs = Annotated[int, Field(ge=0)]

OrderStatus = Literal[
    "PENDING_NEW",  # saved before the request is sent; reconcile with the venue after a crash
    "NEW",  # acknowledged by the venue, nothing filled yet
    "PARTIALLY_FILLED",
    "FILLED",
    "CANCELED",
    "PARTIALLY_CANCELED",  # canceled after a partial fill
    "REJECTED",
    "EXPIRED",  # never placed: its approval reached execution too late (component mode)
]
OrderType = Literal["MARKET", "LIMIT", "LIMIT_MAKER", "IMMEDIATE_OR_CANCEL", "FILL_OR_KILL"]


class Mode(StrEnum):
    """Where cdb trades, the one spelling of it: it changes only what the kernel picks, never
    the engine. (Where the market data comes from, MEXC or the simulator, is the ``Feed``.)"""

    REPLAY = "replay"  # recorded data, simulated clock, simulated fills
    PAPER = "paper"  # live market data, wall clock, simulated fills
    LIVE = "live"  # live market data, wall clock, real MEXC orders


OPEN_ORDER_STATUSES: Final[frozenset[OrderStatus]] = frozenset(
    {"PENDING_NEW", "NEW", "PARTIALLY_FILLED"}
)
"""Statuses of orders that may still fill: what a restart loads and reconciles."""


CONFIG_KEY_MAX_LENGTH: Final = 128


def check_config_key(key: str) -> str:
    """Return ``key`` if it can name a user config entry, else raise ``ValueError``."""
    if not 1 <= len(key) <= CONFIG_KEY_MAX_LENGTH:
        raise ValueError(
            f"A config key has 1 to {CONFIG_KEY_MAX_LENGTH} characters; received {len(key)}"
        )
    return key


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderRecord(_Record):
    """One order as the bot placed it; saved again (upserted) on every status change."""

    client_order_id: str = Field(min_length=1, max_length=32)
    venue_order_id: str = Field(default="", max_length=64)
    decision_id: str = Field(min_length=1, max_length=64, description="The approving decision.")
    symbol: str = Field(min_length=1, max_length=32)
    side: Side
    order_type: OrderType
    quantity: Money | None = Field(default=None, ge=0, description="Base quantity, if sized so.")
    price: Money | None = Field(default=None, gt=0, description="Limit price; None for market.")
    quote_amount: Money | None = Field(default=None, ge=0, description="Quote size, if sized so.")
    status: OrderStatus
    ts_created: TimestampNs
    ts_updated: TimestampNs
    mode: Mode

    @model_validator(mode="after")
    def _sized_and_priced(self) -> Self:
        if self.quantity is None and self.quote_amount is None:
            raise ValueError("An order needs a quantity or a quote_amount")
        if self.order_type != "MARKET" and self.price is None:
            raise ValueError(f"A {self.order_type} order needs a price")
        return self


class FillRecord(_Record):
    """One execution of (part of) an order; ``fill_id`` is unique, a repeat is ignored."""

    fill_id: str = Field(min_length=1, max_length=64)
    client_order_id: str = Field(min_length=1, max_length=32)
    symbol: str = Field(min_length=1, max_length=32)
    side: Side
    quantity: Money = Field(gt=0)
    price: Money = Field(gt=0)
    fee: Money = Field(default=Decimal(0), ge=0)
    fee_asset: str = Field(default="", max_length=16)
    ts_event: TimestampNs
    liquidity: Literal["maker", "taker"]


class PositionRecord(_Record):
    """The position in one symbol; a closed position keeps quantity 0 and its realized PnL."""

    symbol: str = Field(min_length=1, max_length=32)
    quantity: Money = Field(ge=0, description="Spot long only: never negative.")
    average_price: Money = Field(ge=0)
    realized_pnl: Money
    ts_updated: TimestampNs


class EquitySnapshot(_Record):
    """Cash, position value and equity at one moment, with the marks the risk rules use."""

    ts_event: TimestampNs
    cash: Money
    position_value: Money
    equity: Money
    day_start_equity: Money
    peak_equity: Money
    currency: str = Field(default="USDT", min_length=1, max_length=16)


class AuditRecord(_Record):
    """Who did what and when, e.g. a circuit-breaker reset or a live start."""

    ts_event: TimestampNs
    action: str = Field(min_length=1, max_length=64)
    actor: str = Field(min_length=1, max_length=64)
    detail: dict[str, str] = Field(default_factory=dict)
    run_id: str = Field(default="", max_length=64)
