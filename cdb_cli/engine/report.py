"""The replay report: what a run did, as one JSON-able document with its provenance.

The same input and settings give the same document, byte for byte once serialised with sorted keys:
it holds no wall-clock time and no random id; money is a ``Decimal`` string, ratios are floats
rounded to 6 decimals.

Pure: stdlib and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from cdb_cli.engine.events import Side
from cdb_cli.engine.fees import fee_parts
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.recorders import PipelineStats
from cdb_cli.engine.records import FillRecord

__all__ = ["RoundTrip", "build_report", "iso_utc", "open_trip_fills", "round_trips"]

_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One trade from flat to flat: net PnL after fees, in the quote currency."""

    symbol: str
    ts_open: int
    ts_close: int
    pnl: Decimal
    fees: Decimal


@dataclass(slots=True)
class _Trip:
    ts_open: int
    quantity: Decimal = _ZERO
    cash: Decimal = _ZERO
    quote_fees: Decimal = _ZERO
    base_fees: Decimal = _ZERO
    fees: Decimal = _ZERO
    fills: list[FillRecord] = field(default_factory=list)


def iso_utc(ts_ns: int) -> str:
    """``2017-11-04T22:22:00Z`` for a time in ns since the epoch."""
    moment = datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _walk(fills: Iterable[FillRecord]) -> tuple[list[RoundTrip], dict[str, _Trip]]:
    """The closed round trips, and the trip still open in each symbol at the end."""
    open_trips: dict[str, _Trip] = {}
    closed: list[RoundTrip] = []
    for fill in fills:
        trip = open_trips.setdefault(fill.symbol, _Trip(fill.ts_event))
        trip.fills.append(fill)
        notional = fill.quantity * fill.price
        fee = fee_parts(fill)
        if fill.side is Side.BUY:
            trip.quantity += fill.quantity - fee.base
            trip.cash -= notional
        else:
            trip.quantity -= fill.quantity + fee.base
            trip.cash += notional
        trip.base_fees += fee.base
        trip.quote_fees += fee.quote
        trip.fees += fee.in_quote(fill.price)
        if trip.quantity <= trip.base_fees:
            pnl = trip.cash - trip.quote_fees
            closed.append(RoundTrip(fill.symbol, trip.ts_open, fill.ts_event, pnl, trip.fees))
            del open_trips[fill.symbol]
    return closed, open_trips


def round_trips(fills: Iterable[FillRecord]) -> tuple[list[RoundTrip], int]:
    """Closed round trips per symbol, and how many positions are still open at the end.

    A round trip starts with the first buy from flat and ends when the position is back to 0, or
    to no more than the base-asset fees paid on the way (the dust a venue's step-rounded exit
    leaves when a buy's fee was taken from what it bought). Its PnL is what the sells brought in
    minus what the buys cost and the fees paid in the quote asset (a fee in the base asset is
    already in it: the buy received that much less to sell). Its ``fees`` are the quote and base
    fees in the quote currency; fees in a third asset (MX deduction) are in neither (see
    ``cdb_cli.engine.fees``).

    ``fills`` must start flat in each symbol: a window that starts while a position is open must
    be given that position's fills from before it first (:func:`open_trip_fills`), else its first
    sell is taken for a trip of its own that gained the whole sale.
    """
    closed, still_open = _walk(fills)
    return closed, len(still_open)


def open_trip_fills(fills: Iterable[FillRecord]) -> list[FillRecord]:
    """The fills of the round trips still open at the end of ``fills``, in order: what a later
    window needs before its own fills so its round trips start from the true entry."""
    _, still_open = _walk(fills)
    entries = [fill for trip in still_open.values() for fill in trip.fills]
    return sorted(entries, key=lambda fill: fill.ts_event)


def _ratio(value: float) -> float:
    return round(value, 6)


def build_report(
    *,
    stats: PipelineStats,
    portfolio: Portfolio,
    fills: Iterable[FillRecord],
    first_ts: int | None,
    last_ts: int | None,
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """The report of a finished run (call ``pipeline.snapshot_stats()`` for ``stats``)."""
    trips, still_open = round_trips(fills)
    won = sum(1 for trip in trips if trip.pnl > 0)
    equity = portfolio.equity()
    pnl = equity - portfolio.starting_cash
    start = portfolio.starting_cash
    return {
        "provenance": dict(provenance),
        "period": {
            "start": iso_utc(first_ts) if first_ts is not None else None,
            "end": iso_utc(last_ts) if last_ts is not None else None,
        },
        "bars": stats.bars,
        "signals": {"buy": stats.signals.get("buy", 0), "exit": stats.signals.get("exit", 0)},
        "decisions": {
            "approved": stats.verdicts.get("approved", 0),
            "reduced": stats.verdicts.get("reduced", 0),
            "rejected": stats.verdicts.get("rejected", 0),
            "nothing_held": stats.verdicts.get("nothing_held", 0),
            "by_rule": dict(sorted(stats.failed_rules.items())),
        },
        "orders": stats.orders,
        "orders_rejected": stats.orders_rejected,
        "fills": stats.fills,
        "trades": {
            "closed": len(trips),
            "open": still_open,
            "won": won,
            "lost": len(trips) - won,
            "win_rate": _ratio(won / len(trips)) if trips else None,
            "best": str(max(trip.pnl for trip in trips)) if trips else None,
            "worst": str(min(trip.pnl for trip in trips)) if trips else None,
        },
        "starting_cash": str(start),
        "final_equity": str(equity),
        "cash": str(portfolio.cash),
        "pnl": str(pnl),
        "pnl_pct": _ratio(float(pnl / start * 100)) if start > 0 else None,
        "realized_pnl": str(portfolio.realized_pnl()),
        "fees": str(portfolio.fees_paid),
        "max_drawdown_pct": _ratio(stats.max_drawdown * 100),
        "exposure": {
            "mean_pct": _ratio(stats.mean_exposure * 100),
            "max_pct": _ratio(stats.max_exposure * 100),
        },
        "positions": {
            symbol: str(position.quantity)
            for symbol, position in sorted(portfolio.positions.items())
            if position.quantity
        },
        "trading_state_changes": [
            {"at": iso_utc(ts), "state": state, "reason": reason}
            for ts, state, reason in stats.state_changes
        ],
    }
