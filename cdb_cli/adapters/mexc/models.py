"""Typed results of the REST client, parsed leniently from MEXC's JSON (numbers as int or string).

Money is ``Decimal`` from the wire strings; times stay in MEXC's milliseconds here (these are venue
records, not engine events; conversion to nanoseconds happens where events are built).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from cdb_cli.engine.errors import MalformedEvent
from cdb_cli.engine.instruments import Instrument

__all__ = [
    "SIDES",
    "TRADE_SIDE_PROBLEMS",
    "Balance",
    "BookTicker",
    "Depth",
    "Fields",
    "Fill",
    "Kline",
    "MexcSymbol",
    "Order",
    "array",
    "dec",
    "format_decimal",
    "instrument_from_symbol",
    "integer",
    "symbol_from_json",
    "text",
]

SIDES = frozenset({"", "BUY", "SELL"})
"""An order's side as parsed: "" only where MEXC may leave it out (a cancel answer)."""


MAX_TEXT = 200
"""The longest string field accepted (symbols, ids, statuses); longer is a malformed answer."""
MAX_NUMBER_TEXT = 64
"""The longest numeric string accepted; MEXC's decimals have at most ~30 characters."""
MAX_EXPONENT = 40
"""Decimals beyond 10^±40 are no price, quantity or fee: a malformed answer."""
MAX_INTEGER = 2**63 - 1
"""Integers (times, ids, precisions) beyond int64 are a malformed answer."""
MAX_PRECISION = 30
"""The most decimals a precision field may give (MEXC uses 0..18)."""
_MAX_SHOWN = 24  # a wire value shown in a message: enough for a number, too short for a key


def _shown(value: Any) -> str:
    """A short, one-line repr of a wire value for an error message (never the whole body)."""
    if isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    text = repr(value)
    if len(text) <= _MAX_SHOWN:
        return text
    return f"a {len(value)}-character string" if isinstance(value, str) else "a huge number"


def dec(value: Any, field: str = "value") -> Decimal:
    """A Decimal from a JSON string or number; MalformedEvent (naming the field) otherwise.

    Non-finite values, numeric strings over :data:`MAX_NUMBER_TEXT` characters and magnitudes
    beyond 10^±:data:`MAX_EXPONENT` are malformed too.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise MalformedEvent(f"MEXC field {field!r} is {_shown(value)}, expected a decimal")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_NUMBER_TEXT:
        raise MalformedEvent(f"MEXC field {field!r} is {_shown(value)}, expected a decimal")
    try:
        result = Decimal(text.strip())
    except InvalidOperation as e:
        raise MalformedEvent(f"MEXC field {field!r} is {_shown(value)}, expected a decimal") from e
    if not result.is_finite():
        raise MalformedEvent(f"MEXC field {field!r} is {_shown(value)}, expected a finite decimal")
    if result and abs(result.adjusted()) > MAX_EXPONENT:
        raise MalformedEvent(f"MEXC field {field!r} is {_shown(value)}, out of range")
    return result


def integer(value: Any, field: str = "value") -> int:
    """An int from a JSON number or numeric string (MEXC sends both), within int64."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT:
        with contextlib.suppress(ValueError):
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEvent(f"MEXC field {field!r} is {_shown(value)}, expected an integer")
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise MalformedEvent(f"MEXC field {field!r} is {_shown(value)}, out of range")
    return value


def text(value: Any, field: str = "value") -> str:
    """A non-empty string field (numbers are accepted for ids, which MEXC sends either way)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(integer(value, field))
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise MalformedEvent(f"MEXC field {field!r} is {_shown(value)}, expected a string")
    return value


class Fields:
    """One JSON object of a MEXC answer, read field by field; every problem is a MalformedEvent
    naming the object and the field (no ``KeyError``/``TypeError`` ever leaves a parse)."""

    __slots__ = ("raw", "what")

    def __init__(self, raw: Any, what: str) -> None:
        if not isinstance(raw, dict):
            raise MalformedEvent(f"MEXC {what} is {_shown(raw)}, expected a JSON object")
        self.raw: dict[str, Any] = raw
        self.what = what

    def has(self, name: str) -> bool:
        """The field is present and not null."""
        return self.raw.get(name) is not None

    def _get(self, name: str) -> Any:
        value = self.raw.get(name)
        if value is None:
            raise MalformedEvent(f"MEXC {self.what} lacks field {name!r}")
        return value

    def text(self, name: str) -> str:
        return text(self._get(name), name)

    def opt_text(self, name: str) -> str | None:
        """A string, or None when absent, null or empty."""
        value = self.raw.get(name)
        return None if value in (None, "") else text(value, name)

    def decimal(self, name: str, default: Decimal | None = None) -> Decimal:
        if default is not None and not self.has(name):
            return default
        return dec(self._get(name), name)

    def opt_decimal(self, name: str) -> Decimal | None:
        value = self.raw.get(name)
        return None if value in (None, "") else dec(value, name)

    def integer(self, name: str) -> int:
        return integer(self._get(name), name)

    def opt_integer(self, name: str) -> int | None:
        value = self.raw.get(name)
        return None if value in (None, "") else integer(value, name)

    def flag(self, name: str) -> bool:
        """A boolean; absent or null is False, anything but true/false is malformed."""
        value = self.raw.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise MalformedEvent(f"MEXC field {name!r} is {_shown(value)}, expected true/false")
        return value

    def array(self, name: str, *, default_empty: bool = False) -> list[Any]:
        value = self.raw.get(name)
        if value is None and default_empty:
            return []
        return array(self._get(name), f"{self.what} {name!r}")

    def texts(self, name: str) -> tuple[str, ...]:
        """An array of strings; absent or null is empty."""
        return tuple(text(v, name) for v in self.array(name, default_empty=True))


def array(value: Any, what: str) -> list[Any]:
    """``value`` as a JSON array; MalformedEvent otherwise."""
    if not isinstance(value, list):
        raise MalformedEvent(f"MEXC {what} is {_shown(value)}, expected a JSON array")
    return value


def format_decimal(value: Decimal) -> str:
    """A plain decimal string for the wire, never an exponent: ``1E+1`` → ``10`` (§5)."""
    text = f"{value.normalize():f}"
    return "0" if text in {"-0", ""} else text


@dataclass(frozen=True, slots=True)
class MexcSymbol:
    """One ``exchangeInfo`` symbol: the engine's :class:`Instrument` plus what only MEXC says."""

    instrument: Instrument
    tradable: bool
    order_types: tuple[str, ...]
    trade_side: str = "1"
    """``tradeSideType``: "1" both sides, "2" buy only, "3" sell only, "4" closed."""

    @property
    def sides_problem(self) -> str | None:
        """Why the symbol cannot be traded both ways (None when it can)."""
        return TRADE_SIDE_PROBLEMS.get(self.trade_side)


TRADE_SIDE_PROBLEMS: dict[str, str] = {
    "2": "takes buy orders only (tradeSideType 2): an exit could not sell",
    "3": "takes sell orders only (tradeSideType 3): no entry could buy",
    "4": "is closed to orders (tradeSideType 4)",
}
"""MEXC's ``tradeSideType`` values that stop a long-only bot (spot v3 exchangeInfo: "1 - All,
2 - buy order only, 3 - Sell order only, 4 - Close")."""


def symbol_from_json(raw: Any) -> MexcSymbol:
    """One ``exchangeInfo.symbols[]`` object (mexc_api.md §2.1, §5).

    Tick = 10^-quotePrecision (D-CN: price precision), step = 10^-baseAssetPrecision, min quantity =
    ``baseSizePrecision``, min notional = ``quoteAmountPrecision``. Tradable when status is "1"
    (or the legacy "ENABLED"), spot trading is allowed and SPOT is in the permissions. MARKET
    orders are taken when ``orderTypes`` lists MARKET (an absent list says nothing: assumed yes)
    and ``quoteOrderQtyMarketAllowed`` is not false (cdb buys at market by quote amount).
    ``tradeSideType`` (string or number) is kept as text.
    """
    f = Fields(raw, "exchangeInfo symbol")
    status = f.raw.get("status")
    base_precision = f.integer("baseAssetPrecision")
    quote_precision = f.integer("quotePrecision")
    for name, value in (
        ("baseAssetPrecision", base_precision),
        ("quotePrecision", quote_precision),
    ):
        if not 0 <= value <= MAX_PRECISION:
            raise MalformedEvent(f"MEXC exchangeInfo field {name!r} is {value}, out of range")
    zero = Decimal(0)
    try:
        instrument = Instrument.from_precisions(
            f.text("symbol"),
            base_asset=f.text("baseAsset"),
            quote_asset=f.text("quoteAsset"),
            base_asset_precision=base_precision,
            quote_precision=quote_precision,
            min_quantity=f.decimal("baseSizePrecision", zero),
            min_notional=f.decimal("quoteAmountPrecision", zero),
            max_notional=f.opt_decimal("maxQuoteAmount") or None,
            maker_fee=f.decimal("makerCommission", zero),
            taker_fee=f.decimal("takerCommission", zero),
        )
    except ValueError as e:  # Instrument refuses non-positive steps, negative minimums
        raise MalformedEvent(f"MEXC exchangeInfo symbol is invalid: {e}") from e
    spot_allowed, permissions = f.flag("isSpotTradingAllowed"), f.texts("permissions")
    order_types = f.texts("orderTypes")
    online = isinstance(status, str | int) and str(status) in {"1", "ENABLED"}
    tradable = online and spot_allowed and "SPOT" in permissions
    by_quote = f.raw.get("quoteOrderQtyMarketAllowed") is not False
    if (order_types and "MARKET" not in order_types) or not by_quote:
        instrument = replace(instrument, market_orders=False)
    side = f.raw.get("tradeSideType")
    trade_side = str(side) if isinstance(side, str | int) and not isinstance(side, bool) else "1"
    return MexcSymbol(instrument, tradable, order_types, trade_side or "1")


def instrument_from_symbol(raw: Any) -> Instrument:
    """The :class:`Instrument` of one ``exchangeInfo`` symbol."""
    return symbol_from_json(raw).instrument


@dataclass(frozen=True, slots=True)
class Kline:
    """One REST kline row: ``[openTime, o, h, l, c, volume, closeTime, quoteVolume]``."""

    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time_ms: int
    quote_volume: Decimal

    @classmethod
    def from_row(cls, row: Any) -> Kline:
        if not isinstance(row, list) or len(row) < 8:
            raise MalformedEvent(f"MEXC kline row is {_shown(row)}, expected an 8-element array")
        return cls(
            integer(row[0], "openTime"),
            dec(row[1], "open"),
            dec(row[2], "high"),
            dec(row[3], "low"),
            dec(row[4], "close"),
            dec(row[5], "volume"),
            integer(row[6], "closeTime"),
            dec(row[7], "quoteVolume"),
        )


@dataclass(frozen=True, slots=True)
class Depth:
    """An order book snapshot: levels best first."""

    last_update_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    timestamp_ms: int | None

    @classmethod
    def from_json(cls, raw: Any) -> Depth:
        f = Fields(raw, "depth")

        def level(row: Any, key: str) -> tuple[Decimal, Decimal]:
            if not isinstance(row, list) or len(row) < 2:
                raise MalformedEvent(f"MEXC depth {key!r} level is {_shown(row)}, expected a pair")
            return dec(row[0], key), dec(row[1], key)

        def levels(key: str) -> tuple[tuple[Decimal, Decimal], ...]:
            return tuple(level(row, key) for row in f.array(key, default_empty=True))

        return cls(
            f.opt_integer("lastUpdateId") or 0,
            levels("bids"),
            levels("asks"),
            f.opt_integer("timestamp"),
        )


@dataclass(frozen=True, slots=True)
class BookTicker:
    """Best bid and ask from ``/api/v3/ticker/bookTicker``."""

    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal

    @classmethod
    def from_json(cls, raw: Any) -> BookTicker:
        f = Fields(raw, "bookTicker")
        return cls(
            f.text("symbol"),
            f.decimal("bidPrice"),
            f.decimal("bidQty"),
            f.decimal("askPrice"),
            f.decimal("askQty"),
        )


@dataclass(frozen=True, slots=True)
class Balance:
    """Free and locked amount of one asset."""

    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class Order:
    """An order as ``GET /api/v3/order`` / ``openOrders`` / ``POST`` report it (ids are strings)."""

    symbol: str
    order_id: str
    client_order_id: str | None
    side: str
    type: str
    status: str | None
    price: Decimal | None
    orig_qty: Decimal | None
    executed_qty: Decimal
    cumulative_quote_qty: Decimal
    time_ms: int | None

    @classmethod
    def from_json(cls, raw: Any, *, complete: bool = False) -> Order:
        """One order object; ``complete`` (query and list answers) also needs side and status.

        ``side`` is "BUY"/"SELL" or "" when absent (a cancel answer may leave it out).
        """
        f = Fields(raw, "order")
        side = (f.opt_text("side") or "").upper()
        if side not in SIDES or (complete and not side):
            raise MalformedEvent(f"MEXC order field 'side' is {_shown(f.raw.get('side'))}")
        status = f.text("status") if complete else f.opt_text("status")
        time_name = "time" if f.has("time") else "transactTime"
        return cls(
            symbol=f.text("symbol"),
            order_id=f.text("orderId"),
            client_order_id=f.opt_text("clientOrderId") or f.opt_text("origClientOrderId"),
            side=side,
            type=f.opt_text("type") or "",
            status=status,
            price=f.opt_decimal("price"),
            orig_qty=f.opt_decimal("origQty") if "origQty" in f.raw else f.opt_decimal("Qty"),
            executed_qty=f.opt_decimal("executedQty") or Decimal(0),
            cumulative_quote_qty=f.opt_decimal("cummulativeQuoteQty") or Decimal(0),
            time_ms=f.opt_integer(time_name),
        )


@dataclass(frozen=True, slots=True)
class Fill:
    """One of our trades from ``/api/v3/myTrades``."""

    symbol: str
    trade_id: str
    order_id: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_buyer: bool
    is_maker: bool
    client_order_id: str | None = None
    """Often null at MEXC: attribute a fill by its ``order_id``."""

    @classmethod
    def from_json(cls, raw: Any) -> Fill:
        f = Fields(raw, "trade")
        return cls(
            symbol=f.text("symbol"),
            trade_id=f.text("id"),
            order_id=f.text("orderId"),
            price=f.decimal("price"),
            qty=f.decimal("qty"),
            quote_qty=f.decimal("quoteQty"),
            commission=f.decimal("commission", Decimal(0)),
            commission_asset=f.opt_text("commissionAsset") or "",
            time_ms=f.integer("time"),
            is_buyer=f.flag("isBuyer"),
            is_maker=f.flag("isMaker"),
            client_order_id=f.opt_text("clientOrderId"),
        )
