"""The seed's analytics queries as one pure function over what the store holds.

Trades are round trips (flat → flat, :func:`~cdb_cli.engine.report.round_trips`), booked on the
UTC day and symbol they closed; PnL is net of every fee on the way. Exposure over time comes from
the equity snapshots; rejections from the stored risk decisions (failing reason codes).

Pure: stdlib and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Final

from cdb_cli.engine.events import RiskDecision
from cdb_cli.engine.fees import fees_in_quote, other_fees
from cdb_cli.engine.records import EquitySnapshot, FillRecord
from cdb_cli.engine.report import RoundTrip, iso_utc, round_trips

__all__ = ["TABLES", "analytics", "table_rows"]

TABLES: Final = ("daily", "symbols", "trades", "exposure", "rejections")
"""The tables ``cdb report --csv TABLE`` can print."""

_ZERO: Final = Decimal(0)
_PCT: Final = Decimal("0.0001")


def _summary(trips: Sequence[RoundTrip]) -> dict[str, Any]:
    won = sum(1 for trip in trips if trip.pnl > 0)
    return {
        "trades": len(trips),
        "won": won,
        "lost": len(trips) - won,
        "win_rate": round(won / len(trips), 6) if trips else None,
        "pnl": str(sum((trip.pnl for trip in trips), _ZERO)),
        "fees": str(sum((trip.fees for trip in trips), _ZERO)),
    }


def _pct(part: Decimal, whole: Decimal) -> str | None:
    return f"{(part / whole * 100).quantize(_PCT):f}" if whole > 0 else None


def analytics(
    fills: Iterable[FillRecord],
    decisions: Iterable[RiskDecision],
    snapshots: Iterable[EquitySnapshot],
) -> dict[str, Any]:
    """Trades, PnL per day and per symbol, win rate, fees, exposure over time, rejections."""
    fill_list = list(fills)
    trips, still_open = round_trips(fill_list)
    by_day: dict[str, list[RoundTrip]] = {}
    by_symbol: dict[str, list[RoundTrip]] = {}
    for trip in trips:
        by_day.setdefault(iso_utc(trip.ts_close)[:10], []).append(trip)
        by_symbol.setdefault(trip.symbol, []).append(trip)
    verdicts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for decision in decisions:
        verdicts[decision.verdict] += 1
        reasons.update({check.code for check in decision.checks if not check.passed})
    return {
        "summary": {
            **_summary(trips),
            "open_positions": still_open,
            "fills": len(fill_list),
            "fees_all_fills": str(fees_in_quote(fill_list)),
            "fees_other_assets": other_fees(fill_list),
        },
        "daily": {day: _summary(day_trips) for day, day_trips in sorted(by_day.items())},
        "symbols": {
            symbol: _summary(symbol_trips) for symbol, symbol_trips in sorted(by_symbol.items())
        },
        "trades": [
            {
                "symbol": trip.symbol,
                "opened": iso_utc(trip.ts_open),
                "closed": iso_utc(trip.ts_close),
                "pnl": str(trip.pnl),
                "fees": str(trip.fees),
            }
            for trip in trips
        ],
        "exposure": [
            {
                "at": iso_utc(snap.ts_event),
                "equity": str(snap.equity),
                "exposure_pct": _pct(snap.position_value, snap.equity),
            }
            for snap in snapshots
        ],
        "rejections": {
            "decisions": dict(sorted(verdicts.items())),
            "by_reason": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        },
    }


def table_rows(report: dict[str, Any], table: str) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of one table of :func:`analytics`, for CSV or a terminal table."""
    if table in ("daily", "symbols"):
        key = "day" if table == "daily" else "symbol"
        header = [key, "trades", "won", "lost", "win_rate", "pnl", "fees"]
        rows = [
            [name, s["trades"], s["won"], s["lost"], s["win_rate"], s["pnl"], s["fees"]]
            for name, s in report[table].items()
        ]
        return header, rows
    if table == "trades":
        header = ["symbol", "opened", "closed", "pnl", "fees"]
        return header, [[t[column] for column in header] for t in report["trades"]]
    if table == "exposure":
        header = ["at", "equity", "exposure_pct"]
        return header, [[e[column] for column in header] for e in report["exposure"]]
    if table == "rejections":
        reasons = report["rejections"]["by_reason"]
        return ["reason", "decisions"], [[code, count] for code, count in reasons.items()]
    raise ValueError(f"unknown table {table!r}; one of {', '.join(TABLES)}")
