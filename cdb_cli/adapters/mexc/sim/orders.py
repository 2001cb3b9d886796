"""Accounts, orders and matching of the simulator (pure: no I/O, the caller passes the time).

Taker orders walk a synthetic book of ``levels`` price levels each side of the last price, each
holding ``level_quote`` worth of base; what a taker takes stays taken until the next market step.
Resting orders fill as makers when a later step moves the book through their price, at most one
level's quantity per step, so large orders go through PARTIALLY_FILLED. Fees are charged in the
asset received (buy: base, sell: quote). Balances are locked while an order rests.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from cdb_cli.adapters.mexc.models import format_decimal
from cdb_cli.adapters.mexc.sim.auth import ApiError
from cdb_cli.adapters.mexc.sim.market import SymbolMarket

__all__ = [
    "ORDER_TYPES",
    "TAKER_TYPES",
    "ZERO",
    "Account",
    "Book",
    "SimOrder",
    "parse_decimal",
    "validated",
]

ZERO = Decimal(0)
TAKER_TYPES = frozenset({"MARKET", "IMMEDIATE_OR_CANCEL", "FILL_OR_KILL"})
ORDER_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER", "IMMEDIATE_OR_CANCEL", "FILL_OR_KILL")
_ids = itertools.count(505979017439002624115)


def s(value: Decimal) -> str:
    """MEXC money string."""
    return format_decimal(value)


@dataclass
class SimOrder:
    """One order and its fills."""

    order_id: str
    client_order_id: str | None  # None when the order was placed without newClientOrderId
    symbol: str
    side: str
    type: str
    price: Decimal | None
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time_ms: int
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_ms: int = 0
    locked: Decimal = ZERO  # what this order still holds locked (quote for buys, base for sells)

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in {"NEW", "PARTIALLY_FILLED"}

    def as_json(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": s(self.price or ZERO),
            "origQty": s(self.orig_qty),
            "executedQty": s(self.executed_qty),
            "cummulativeQuoteQty": s(self.cum_quote),
            "status": self.status,
            "timeInForce": None,
            "type": self.type,
            "side": self.side,
            "stopPrice": None,
            "icebergQty": None,
            "time": self.time_ms,
            "updateTime": self.update_ms or self.time_ms,
            "isWorking": True,
            "origQuoteOrderQty": s(self.orig_quote_qty),
        }


@dataclass
class Account:
    """One API key's balances (free, locked), orders and trades."""

    api_key: str
    secret: str = field(repr=False)
    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    trades: list[dict[str, object]] = field(default_factory=list)
    reported: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # last pushed

    def changed_balances(
        self,
    ) -> list[tuple[str, tuple[Decimal, Decimal], tuple[Decimal, Decimal]]]:
        """``(asset, now, before)`` for every asset whose (free, locked) changed since last call."""
        changes = []
        for asset in sorted(set(self.free) | set(self.locked)):
            now = (self.free.get(asset, ZERO), self.locked.get(asset, ZERO))
            before = self.reported.get(asset, (ZERO, ZERO))
            if now != before:
                changes.append((asset, now, before))
                self.reported[asset] = now
        return changes

    def balances_json(self) -> list[dict[str, str]]:
        assets = sorted(set(self.free) | set(self.locked))
        return [
            {"asset": a, "free": s(self.free.get(a, ZERO)), "locked": s(self.locked.get(a, ZERO))}
            for a in assets
        ]

    def lock(self, asset: str, amount: Decimal) -> None:
        if self.free.get(asset, ZERO) < amount:
            raise ApiError(30004, "Insufficient position")
        self.free[asset] = self.free.get(asset, ZERO) - amount
        self.locked[asset] = self.locked.get(asset, ZERO) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.locked.get(asset, ZERO) - amount
        self.free[asset] = self.free.get(asset, ZERO) + amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.locked.get(asset, ZERO) - amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.free.get(asset, ZERO) + amount


class Book:
    """The synthetic book of one market and what takers consumed from it since the last step."""

    def __init__(self, market: SymbolMarket, levels: int, level_quote: Decimal) -> None:
        self.market = market
        self.levels = levels
        self.level_quote = level_quote
        self.consumed: dict[tuple[str, Decimal], Decimal] = {}

    def level_qty(self) -> Decimal:
        step = self.market.instrument.step_size
        qty = (self.level_quote / self.market.price).quantize(step, rounding=ROUND_DOWN)
        return max(step, qty)

    def side_levels(self, book_side: str) -> list[tuple[Decimal, Decimal]]:
        """``(price, available)`` best first; ``book_side`` is "asks" or "bids"."""
        bid, ask = self.market.best_bid_ask()
        tick = self.market.instrument.tick_size
        full = self.level_qty()
        out = []
        for i in range(self.levels):
            price = ask + tick * i if book_side == "asks" else bid - tick * i
            if price <= 0:
                break
            available = full - self.consumed.get((book_side, price), ZERO)
            if available > 0:
                out.append((price, available))
        return out

    def sweep(
        self, side: str, limit: Decimal | None, qty: Decimal | None, quote: Decimal | None
    ) -> list[tuple[Decimal, Decimal]]:
        """Fills ``(price, qty)`` a taker would get, without consuming (see :meth:`take`)."""
        step = self.market.instrument.step_size
        fills: list[tuple[Decimal, Decimal]] = []
        for price, available in self.side_levels("asks" if side == "BUY" else "bids"):
            if limit is not None and (price > limit if side == "BUY" else price < limit):
                break
            if qty is not None:
                want = qty - sum((q for _, q in fills), ZERO)
            else:
                spent = sum((p * q for p, q in fills), ZERO)
                want = ((quote or ZERO) - spent) / price
            take = min(available, want).quantize(step, rounding=ROUND_DOWN)
            if take <= 0:
                break
            fills.append((price, take))
        return fills

    def take(self, side: str, fills: list[tuple[Decimal, Decimal]]) -> None:
        book_side = "asks" if side == "BUY" else "bids"
        for price, qty in fills:
            key = (book_side, price)
            self.consumed[key] = self.consumed.get(key, ZERO) + qty

    def refresh(self) -> None:
        self.consumed.clear()


def new_order_id() -> str:
    return f"C02__{next(_ids)}"


def validate_type(order_type: str, side: str) -> None:
    if side not in {"BUY", "SELL"} or order_type not in ORDER_TYPES:
        raise ApiError(33333, "param is error")


Validated = tuple[str, str, Decimal | None, Decimal | None, Decimal | None]


def validated(market: SymbolMarket, p: dict[str, str]) -> Validated:
    """Side, type, quantity, quoteOrderQty and price of a new order, checked as MEXC does."""
    inst = market.instrument
    side, otype = p.get("side", "").upper(), p.get("type", "").upper()
    validate_type(otype, side)
    qty, quote, price = (
        parse_decimal(p, "quantity"),
        parse_decimal(p, "quoteOrderQty"),
        parse_decimal(p, "price"),
    )
    if otype == "MARKET":
        if qty is None and (quote is None or side == "SELL"):
            raise ApiError(44444, "param cannot be null")
        price = None
    elif qty is None or price is None:
        raise ApiError(44444, "param cannot be null")
    if (qty is not None and qty != inst.round_quantity(qty)) or (
        price is not None and price % inst.tick_size != 0
    ):
        raise ApiError(10096, "amount decimal places is too long")
    notional = quote if qty is None else qty * (price or market.price)
    if (qty is not None and qty < inst.min_quantity) or (notional or ZERO) < inst.min_notional:
        raise ApiError(
            30002,
            f"The minimum transaction volume cannot be less than :"
            f"{s(inst.min_notional)}{inst.quote_asset}",
        )
    return side, otype, qty, quote, price


def parse_decimal(p: dict[str, str], name: str) -> Decimal | None:
    text = p.get(name)
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ApiError(33333, "param is error") from None
    if not value.is_finite() or value <= 0:
        raise ApiError(33333, "param is error")
    return value
