"""Typed results of the REST client, parsed leniently from MEXC's JSON (numbers as int or string).

Money is ``Decimal`` from the wire strings; times stay in MEXC's milliseconds here (these are venue
records, not engine events; conversion to nanoseconds happens where events are built).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cdb_cli.engine.errors import MalformedEvent
from cdb_cli.engine.instruments import Instrument

__all__ = [
    "Balance",
    "BookTicker",
    "Depth",
    "Fill",
    "Kline",
    "MexcSymbol",
    "Order",
    "dec",
    "format_decimal",
    "instrument_from_symbol",
    "integer",
    "symbol_from_json",
]


def dec(value: Any, field: str = "value") -> Decimal:
    """A Decimal from a JSON string or number; MalformedEvent (naming the field) otherwise."""
    if isinstance(value, bool) or value is None:
        raise MalformedEvent(f"MEXC field {field!r} is {value!r}, expected a decimal")
    try:
        result = Decimal(str(value))
    except InvalidOperation as e:
        raise MalformedEvent(f"MEXC field {field!r} is {value!r}, expected a decimal") from e
    if not result.is_finite():
        raise MalformedEvent(f"MEXC field {field!r} is {value!r}, expected a finite decimal")
    return result


def integer(value: Any, field: str = "value") -> int:
    """An int from a JSON number or numeric string (MEXC sends both)."""
    if isinstance(value, bool):
        raise MalformedEvent(f"MEXC field {field!r} is {value!r}, expected an integer")
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise MalformedEvent(f"MEXC field {field!r} is {value!r}, expected an integer") from e


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


def symbol_from_json(raw: dict[str, Any]) -> MexcSymbol:
    """One ``exchangeInfo.symbols[]`` object (mexc_api.md §2.1, §5).

    Tick = 10^-quotePrecision (D-CN: price precision), step = 10^-baseAssetPrecision, min quantity =
    ``baseSizePrecision``, min notional = ``quoteAmountPrecision``. Tradable when status is "1"
    (or the legacy "ENABLED"), spot trading is allowed and SPOT is in the permissions.
    """
    try:
        status = str(raw.get("status", ""))
        max_quote = raw.get("maxQuoteAmount")
        instrument = Instrument.from_precisions(
            str(raw["symbol"]),
            base_asset=str(raw["baseAsset"]),
            quote_asset=str(raw["quoteAsset"]),
            base_asset_precision=integer(raw["baseAssetPrecision"], "baseAssetPrecision"),
            quote_precision=integer(raw["quotePrecision"], "quotePrecision"),
            min_quantity=dec(raw.get("baseSizePrecision", "0"), "baseSizePrecision"),
            min_notional=dec(raw.get("quoteAmountPrecision", "0"), "quoteAmountPrecision"),
            max_notional=dec(max_quote, "maxQuoteAmount") if max_quote else None,
            maker_fee=dec(raw.get("makerCommission", "0"), "makerCommission"),
            taker_fee=dec(raw.get("takerCommission", "0"), "takerCommission"),
        )
    except KeyError as e:
        raise MalformedEvent(f"MEXC exchangeInfo symbol lacks field {e.args[0]!r}") from e
    except ValueError as e:  # Instrument refuses non-positive steps, negative minimums
        raise MalformedEvent(f"MEXC exchangeInfo symbol is invalid: {e}") from e
    tradable = (
        status in {"1", "ENABLED"}
        and bool(raw.get("isSpotTradingAllowed", False))
        and "SPOT" in raw.get("permissions", ())
    )
    order_types = tuple(str(t) for t in raw.get("orderTypes", ()))
    return MexcSymbol(instrument, tradable, order_types)


def instrument_from_symbol(raw: dict[str, Any]) -> Instrument:
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
            raise MalformedEvent(f"MEXC kline row is not an 8-element array: {row!r:.80}")
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
    def from_json(cls, raw: dict[str, Any]) -> Depth:
        def levels(key: str) -> tuple[tuple[Decimal, Decimal], ...]:
            return tuple((dec(p, key), dec(q, key)) for p, q in raw.get(key, ()))

        ts = raw.get("timestamp")
        return cls(
            integer(raw.get("lastUpdateId", 0), "lastUpdateId"),
            levels("bids"),
            levels("asks"),
            None if ts is None else integer(ts, "timestamp"),
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
    def from_json(cls, raw: dict[str, Any]) -> BookTicker:
        return cls(
            str(raw["symbol"]),
            dec(raw["bidPrice"], "bidPrice"),
            dec(raw["bidQty"], "bidQty"),
            dec(raw["askPrice"], "askPrice"),
            dec(raw["askQty"], "askQty"),
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
    def from_json(cls, raw: dict[str, Any]) -> Order:
        def opt_dec(key: str) -> Decimal | None:
            value = raw.get(key)
            return None if value in (None, "") else dec(value, key)

        time_value = raw.get("time", raw.get("transactTime"))
        return cls(
            symbol=str(raw["symbol"]),
            order_id=str(raw["orderId"]),
            client_order_id=raw.get("clientOrderId") or raw.get("origClientOrderId"),
            side=str(raw.get("side", "")),
            type=str(raw.get("type", "")),
            status=raw.get("status"),
            price=opt_dec("price"),
            orig_qty=opt_dec("origQty") if "origQty" in raw else opt_dec("Qty"),
            executed_qty=opt_dec("executedQty") or Decimal(0),
            cumulative_quote_qty=opt_dec("cummulativeQuoteQty") or Decimal(0),
            time_ms=None if time_value is None else integer(time_value, "time"),
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
    def from_json(cls, raw: dict[str, Any]) -> Fill:
        return cls(
            symbol=str(raw["symbol"]),
            trade_id=str(raw["id"]),
            order_id=str(raw["orderId"]),
            price=dec(raw["price"], "price"),
            qty=dec(raw["qty"], "qty"),
            quote_qty=dec(raw["quoteQty"], "quoteQty"),
            commission=dec(raw.get("commission", "0"), "commission"),
            commission_asset=str(raw.get("commissionAsset", "")),
            time_ms=integer(raw["time"], "time"),
            is_buyer=bool(raw.get("isBuyer")),
            is_maker=bool(raw.get("isMaker")),
            client_order_id=raw.get("clientOrderId") or None,
        )
