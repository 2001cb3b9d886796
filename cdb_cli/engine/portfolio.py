"""The portfolio: cash, spot long-only positions, fees, marks, start-of-day and peak equity.

Accounting (average cost, all ``Decimal``):

* Every amount the ledger stores is on the store's grid of 10**-18 (``NUMERIC(38, 18)``): the
  notional ``quantity * price`` of a fill, the cost removed by a sell and a position's value at its
  mark are rounded half-even to 18 decimals, then only added or subtracted (exactly, in an
  80-digit context). So the invariants hold *exactly*:
  ``equity == cash + exposure`` and
  ``cash + exposure == starting_cash + realized + unrealized - fees``.
* A position keeps its cost basis; ``average_price`` is the basis / quantity (rounded to 18 places).
  A position without a mark is valued at its cost basis (its average entry), so unrealized PnL is 0.
* Realized PnL is gross: ``(price - average) * quantity`` on a sell; fees are counted apart.
* A fee in the quote currency moves cash. A fee in the base asset moves quantity: a BUY receives
  ``quantity - fee``, a SELL gives up ``quantity + fee``; the fee quantity is valued at the fill
  price in ``fees_paid``. A fee in a third asset (MEXC's MX deduction) moves neither and is kept
  apart in ``other_fees``, by asset (see ``cdb_cli.engine.fees``), and so is a sell's fee in the
  base asset that the position cannot cover (the account paid it from what it holds apart: MX
  deduction on MXUSDT); a fee in no named asset is taken as paid in the quote.

Restore (:meth:`Portfolio.restore`): fills are the source of truth. Given every fill since the
start (``store.fills()``), the replay rebuilds cash, quantities, cost bases, realized PnL and fees
exactly; position records newer than a symbol's last fill must agree with it (else
``StateError``). Without fills, cash comes from the latest snapshot (which must postdate the last
fill) and each position from its record; its cost basis is ``average_price * quantity`` (exact when
the stored average is) and ``fees_paid`` is derived from the identity above. Start-of-day and peak
equity, and the UTC day, come from the latest snapshot (taken as stored). Marks are not in these
records: pass the last prices as ``marks=`` (e.g. from stored trades), else a restored position is
valued at its cost basis until the next :meth:`Portfolio.mark`.

Pure: stdlib, pydantic records and ``cdb_cli.engine`` only; no clock (time is passed in as ns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from decimal import localcontext as _localcontext
from typing import Final

from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import Side
from cdb_cli.engine.fees import FeeParts, fee_parts
from cdb_cli.engine.records import EquitySnapshot, FillRecord, PositionRecord
from cdb_cli.engine.risk_inputs import RiskInputs, TradingState

__all__ = ["NS_PER_DAY", "Portfolio", "Position"]

NS_PER_DAY: Final = 86_400 * 1_000_000_000
_ZERO: Final = Decimal(0)
_HUNDRED: Final = Decimal(100)
_GRID: Final = Decimal("1e-18")
_CTX: Final = Context(
    prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)


def _q(value: Decimal) -> Decimal:
    """Round to the store's grid (18 decimals, half-even)."""
    return value.quantize(_GRID, rounding=ROUND_HALF_EVEN, context=_CTX)


def _pct_below(reference: Decimal, equity: Decimal) -> Decimal:
    """How far ``equity`` is below a positive ``reference``, in %; 0 when ``reference`` <= 0."""
    if reference <= 0:
        return _ZERO
    with _localcontext(_CTX):
        return (reference - equity) / reference * _HUNDRED


@dataclass(slots=True)
class Position:
    """One symbol's position: quantity, cost basis, realized PnL and Σ fills (the check)."""

    quantity: Decimal = _ZERO
    cost: Decimal = _ZERO
    realized_pnl: Decimal = _ZERO
    filled_net: Decimal = _ZERO  # Σ buys - Σ sells - Σ base-asset fees, kept apart from quantity
    last_fill_ns: int = -1

    @property
    def average_price(self) -> Decimal:
        """Cost basis / quantity on the 10**-18 grid; 0 for a closed position."""
        if self.quantity == 0:
            return _ZERO
        with _localcontext(_CTX):
            return _q(self.cost / self.quantity)


class Portfolio:
    """A spot long-only portfolio in one quote currency; see the module docstring for the rules."""

    def __init__(self, starting_cash: Decimal, *, quote_currency: str = "USDT") -> None:
        if not starting_cash.is_finite() or starting_cash < 0:
            raise ValueError(f"starting_cash must be finite and >= 0, received {starting_cash}")
        self.starting_cash: Final = starting_cash
        self.quote_currency: Final = quote_currency
        self.cash = starting_cash
        self.fees_paid = _ZERO
        self.other_fees: dict[str, Decimal] = {}  # asset → Σ fees paid in neither quote nor base
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, Decimal] = {}
        self._fill_ids: set[str] = set()
        self.day: int | None = None  # UTC day number (ts_ns // NS_PER_DAY) of the last roll
        self.day_start_equity = starting_cash
        self.peak_equity = starting_cash

    # --- fills and marks ------------------------------------------------------------------------

    def apply_fill(self, fill: FillRecord) -> bool:
        """Book ``fill``; False (and no change) if its ``fill_id`` was already applied."""
        if fill.fill_id in self._fill_ids:
            return False
        fee = fee_parts(fill, self.quote_currency)
        position = self.positions.get(fill.symbol, Position())
        if (
            fill.side is Side.SELL
            and fee.base
            and fill.quantity <= position.quantity < fill.quantity + fee.base
        ):
            # The venue took the fee from what the account holds of the asset apart from this
            # position (MX deduction on MXUSDT): kept apart like a fee in a third asset.
            fee = FeeParts(other=fee.base, other_asset=fill.fee_asset)
        quote_fee, base_fee = fee.quote, fee.base
        with _localcontext(_CTX):
            notional = _q(fill.quantity * fill.price)
            base_fee_quote = _q(base_fee * fill.price)
            if fill.side is Side.BUY:
                received = fill.quantity - base_fee
                if received <= 0:
                    raise StateError(
                        f"Fill {fill.fill_id} on {fill.symbol}: base fee {base_fee} leaves "
                        f"nothing of quantity {fill.quantity}"
                    )
                new = Position(
                    quantity=position.quantity + received,
                    cost=position.cost + notional - base_fee_quote,
                    realized_pnl=position.realized_pnl,
                    filled_net=position.filled_net + received,
                    last_fill_ns=max(position.last_fill_ns, fill.ts_event),
                )
                cash = self.cash - notional - quote_fee
            else:
                given = fill.quantity + base_fee
                if given > position.quantity:
                    raise StateError(
                        f"Cannot sell {given} {fill.symbol} (fill {fill.fill_id}): "
                        f"holding {position.quantity}"
                    )
                removed = (
                    position.cost
                    if given == position.quantity
                    else _q(position.cost * given / position.quantity)
                )
                new = Position(
                    quantity=position.quantity - given,
                    cost=position.cost - removed,
                    realized_pnl=position.realized_pnl + notional + base_fee_quote - removed,
                    filled_net=position.filled_net - given,
                    last_fill_ns=max(position.last_fill_ns, fill.ts_event),
                )
                cash = self.cash + notional - quote_fee
            self.fees_paid = self.fees_paid + quote_fee + base_fee_quote
            if fee.other:
                asset = fee.other_asset
                self.other_fees[asset] = self.other_fees.get(asset, _ZERO) + fee.other
        self.positions[fill.symbol] = new
        self.cash = cash
        self._fill_ids.add(fill.fill_id)
        self._update_peak()
        return True

    def mark(self, symbol: str, price: Decimal) -> None:
        """Set the mark price of ``symbol`` (a last trade or mid price) and update the peak."""
        self.mark_all({symbol: price})

    def mark_all(self, marks: Mapping[str, Decimal], *, update_peak: bool = True) -> None:
        """Set several marks at once, then update the peak once (unless the caller tracks it)."""
        for symbol, price in marks.items():
            if not price.is_finite() or price <= 0:
                raise ValueError(f"A mark price must be finite and above 0, received {price}")
            self.marks[symbol] = price
        if marks and update_peak:
            self._update_peak()

    def _update_peak(self) -> None:
        equity = self.equity()
        if equity > self.peak_equity:
            self.peak_equity = equity

    # --- valuation ------------------------------------------------------------------------------

    def quantity(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        return position.quantity if position else _ZERO

    def filled_quantity(self, symbol: str) -> Decimal:
        """Σ fills of ``symbol`` (buys - sells - base-asset fees), kept apart from the position."""
        position = self.positions.get(symbol)
        return position.filled_net if position else _ZERO

    def position_value(self, symbol: str) -> Decimal:
        """Quantity * mark on the 10**-18 grid; the cost basis when there is no mark."""
        position = self.positions.get(symbol)
        if position is None or position.quantity == 0:
            return _ZERO
        mark = self.marks.get(symbol)
        if mark is None:
            return position.cost
        with _localcontext(_CTX):
            return _q(position.quantity * mark)

    def unrealized_pnl(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        if position is None:
            return _ZERO
        with _localcontext(_CTX):
            return self.position_value(symbol) - position.cost

    def realized_pnl(self) -> Decimal:
        with _localcontext(_CTX):
            return sum((p.realized_pnl for p in self.positions.values()), _ZERO)

    def exposure(self) -> Decimal:
        """Σ position value over all symbols."""
        with _localcontext(_CTX):
            return sum((self.position_value(s) for s in self.positions), _ZERO)

    def equity(self) -> Decimal:
        with _localcontext(_CTX):
            return self.cash + self.exposure()

    # --- day and peak ---------------------------------------------------------------------------

    def roll_day(self, ts_ns: int) -> bool:
        """Start a new UTC day at ``ts_ns`` if it lies in a later day; True when it did."""
        day = ts_ns // NS_PER_DAY
        if self.day is not None and day <= self.day:
            return False
        self.day = day
        self.day_start_equity = self.equity()
        self._update_peak()
        return True

    def observe_equity(self, equity: Decimal) -> None:
        """Raise the peak to an equity seen between marks (the pipeline's float curve)."""
        if equity > self.peak_equity:
            self.peak_equity = equity

    def reset_peak(self) -> None:
        """Restart the peak at the current equity (an audited circuit-breaker reset)."""
        self.peak_equity = self.equity()

    def drawdown_from_peak_pct(self) -> Decimal:
        return _pct_below(self.peak_equity, self.equity())

    def daily_drawdown_pct(self) -> Decimal:
        return _pct_below(self.day_start_equity, self.equity())

    def _valuation(self, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
        """(equity, exposure, value held in ``symbol``) in one pass over the positions.

        On the signal path: the arithmetic of :meth:`position_value` and :meth:`equity`, inlined,
        on the context's own methods (no ``localcontext`` copy per position); closed positions,
        worth 0, are skipped.
        """
        held = _ZERO
        exposure = _ZERO
        marks = self.marks
        ctx = _CTX
        for name, position in self.positions.items():
            quantity = position.quantity
            if not quantity:
                continue
            mark = marks.get(name)
            if mark is None:
                value = position.cost
            else:
                value = ctx.multiply(quantity, mark).quantize(
                    _GRID, rounding=ROUND_HALF_EVEN, context=ctx
                )
            exposure = ctx.add(exposure, value)
            if name == symbol:
                held = value
        return ctx.add(self.cash, exposure), exposure, held

    def risk_inputs(
        self,
        symbol: str,
        *,
        bid: Decimal,
        ask: Decimal,
        last_price_age_ns: int,
        trading_state: TradingState = TradingState.ACTIVE,
        pending_quote: Decimal = _ZERO,
    ) -> RiskInputs:
        """The risk engine's inputs for ``symbol``: the portfolio's valuation with the market's
        quote and the trading state; ``pending_quote`` (working buys) adds to exposure."""
        equity, exposure, held = self._valuation(symbol)
        return RiskInputs(
            equity=equity,
            day_start_equity=self.day_start_equity,
            peak_equity=self.peak_equity,
            exposure_quote=exposure + pending_quote,
            position_quote_for_symbol=held,
            bid=bid,
            ask=ask,
            last_price_age_ns=last_price_age_ns,
            trading_state=trading_state,
        )

    # --- persistence ----------------------------------------------------------------------------

    def snapshot(self, ts_ns: int) -> EquitySnapshot:
        return EquitySnapshot(
            ts_event=ts_ns,
            cash=self.cash,
            position_value=self.exposure(),
            equity=self.equity(),
            day_start_equity=self.day_start_equity,
            peak_equity=self.peak_equity,
            currency=self.quote_currency,
        )

    def positions_records(self, ts_ns: int | None = None) -> list[PositionRecord]:
        """One record per symbol ever traded (closed positions keep their realized PnL), at
        ``ts_ns``, or each as of its last fill when None."""
        return [
            PositionRecord(
                symbol=symbol,
                quantity=position.quantity,
                average_price=position.average_price,
                realized_pnl=position.realized_pnl,
                ts_updated=ts_ns if ts_ns is not None else max(position.last_fill_ns, 0),
            )
            for symbol, position in sorted(self.positions.items())
        ]

    @classmethod
    def restore(
        cls,
        starting_cash: Decimal,
        positions: Iterable[PositionRecord],
        latest_snapshot: EquitySnapshot | None,
        fills: Iterable[FillRecord] | None = None,
        *,
        marks: Mapping[str, Decimal] | None = None,
        quote_currency: str = "USDT",
    ) -> Portfolio:
        """Rebuild a portfolio from the store; see the module docstring for what is needed."""
        portfolio = cls(starting_cash, quote_currency=quote_currency)
        if fills is not None:
            for fill in sorted(fills, key=lambda f: (f.ts_event, f.fill_id)):
                portfolio.apply_fill(fill)
            for record in positions:
                portfolio._check_record(record)
        elif latest_snapshot is None:
            raise StateError("Restoring without fills needs an equity snapshot; received none")
        else:
            portfolio._load_records(positions, latest_snapshot.cash)
        for symbol, price in (marks or {}).items():
            portfolio.mark(symbol, price)
        if latest_snapshot is not None:  # the stored peak, not one inflated by unmarked positions
            portfolio.day = latest_snapshot.ts_event // NS_PER_DAY
            portfolio.day_start_equity = latest_snapshot.day_start_equity
            portfolio.peak_equity = latest_snapshot.peak_equity
        else:
            portfolio.day_start_equity = portfolio.peak_equity = portfolio.equity()
        return portfolio

    def _check_record(self, record: PositionRecord) -> None:
        position = self.positions.get(record.symbol, Position())
        if record.ts_updated <= position.last_fill_ns:
            # saved before the symbol's last fill, or as of a time a later-stored fill shares
            # (components: a record is stamped at its last fill): the fills supersede it
            return
        stored = (record.quantity, record.average_price, record.realized_pnl)
        replayed = (position.quantity, position.average_price, position.realized_pnl)
        if stored != replayed:
            raise StateError(
                f"Position {record.symbol} (quantity, average, realized) is {stored} in the "
                f"store but {replayed} from the fills"
            )

    def _load_records(self, records: Iterable[PositionRecord], cash: Decimal) -> None:
        with _localcontext(_CTX):
            for record in records:
                self.positions[record.symbol] = Position(
                    quantity=record.quantity,
                    cost=_q(record.average_price * record.quantity),
                    realized_pnl=record.realized_pnl,
                    filled_net=record.quantity,
                    last_fill_ns=record.ts_updated,
                )
            self.cash = cash
            cost = sum((p.cost for p in self.positions.values()), _ZERO)
            self.fees_paid = self.starting_cash + self.realized_pnl() - cost - cash
