"""The seed's analytics queries as one pure function over what the store holds.

Trades are round trips (flat → flat, :func:`~cdb_cli.engine.report.round_trips`), booked on the
UTC day and symbol they closed; PnL is net of every fee on the way. Exposure over time comes from
the equity snapshots; rejections from the stored risk decisions (failing reason codes).

A window (``--since``, or ``--run`` of a ``cdb run`` that took over an open position) can start
while a position is open. Its PnL is what the trades that *closed* in the window made, each from
its **true entry**: :func:`window_fills` reads the fills before the window that opened a position
still open at its start (``entries``), and :func:`analytics` prices those trades from them. So a
sale in the window is never booked as a trade that gained the whole sale, the PnL of consecutive
windows adds up to the PnL of the whole (each trade counts in the window it closed in), and the
report says how many trades opened before the window (``opened_before_window``). The window's
``fills`` and ``fees_all_fills`` count the window's own fills only; a trade's ``fees`` include its
entry's.

Pure: stdlib and ``cdb_cli.engine`` (its ``Store`` port) only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import RiskDecision
from cdb_cli.engine.fees import fees_in_quote, other_fees
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import EquitySnapshot, FillRecord
from cdb_cli.engine.report import RoundTrip, iso_utc, open_trip_fills, round_trips
from cdb_cli.engine.risk import normalize_decision
from cdb_cli.engine.runs import find_run, order_prefix, select_fills

__all__ = [
    "TABLES",
    "WindowFills",
    "analytics",
    "describe_window",
    "nothing_reported",
    "table_rows",
    "window_fills",
]

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


@dataclass(frozen=True, slots=True)
class WindowFills:
    """What a report reads: the window's fills, and the entries of positions open at its start."""

    fills: list[FillRecord]
    entries: list[FillRecord]


def window_fills(
    store: Store,
    *,
    symbol: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    run_id: str | None = None,
) -> WindowFills:
    """The window's fills (:func:`~cdb_cli.engine.runs.select_fills`) and, per symbol, the fills
    before its first one there that opened a position still open then.

    Before the window means the ledger the position belongs to: a persisted replay's own fills
    (it starts flat), else every fill in the store (what ``cdb run`` restores its ledger from).
    """
    fills = select_fills(store, symbol=symbol, since_ns=since_ns, until_ns=until_ns, run_id=run_id)
    if since_ns is None and run_id is None:
        return WindowFills(fills, [])  # the window starts with the store: nothing before it
    replay_prefix: str | None = None
    if run_id is not None:
        try:
            replay_prefix = order_prefix(find_run(store, run_id).run_id)
        except StateError:
            replay_prefix = None  # not a replay: a cdb run, whose ledger is the whole store
    firsts: dict[str, int] = {}
    for fill in fills:
        firsts.setdefault(fill.symbol, fill.ts_event)
    entries: list[FillRecord] = []
    for name, first in sorted(firsts.items()):
        before = store.fills(symbol=name, until_ns=first)
        if replay_prefix is not None:
            before = [f for f in before if f.client_order_id.startswith(replay_prefix)]
        entries.extend(open_trip_fills(before))
    entries.sort(key=lambda fill: fill.ts_event)
    return WindowFills(fills, entries)


def describe_window(
    since_ns: int | None, until_ns: int | None, symbol: str | None, run_id: str | None
) -> str:
    """``from 2017-11-09T00:00:00Z, until now, symbol BTCUSDT``: a window in words."""
    parts = [
        f"from {iso_utc(since_ns)}" if since_ns is not None else "from the start",
        f"until {iso_utc(until_ns)}" if until_ns is not None else "until now",
    ]
    if symbol:
        parts.append(f"symbol {symbol}")
    if run_id:
        parts.append(f"run {run_id}")
    return ", ".join(parts)


def nothing_reported(
    window: WindowFills,
    decisions: Sequence[RiskDecision],
    snapshots: Sequence[EquitySnapshot],
    where: str,
    *,
    account_wide: bool = True,
) -> str | None:
    """Why a report of ``where`` (:func:`describe_window`) would show nothing, or None.

    Equity snapshots are the account's, not a symbol's or a run's: they count only for a window
    of the whole account (``account_wide``)."""
    if window.fills or decisions or (account_wide and snapshots):
        return None
    held = "no fills and no risk decisions" + (" or equity snapshots" if account_wide else "")
    return f"Nothing to report {where}: {held}"


def analytics(
    fills: Iterable[FillRecord],
    decisions: Iterable[RiskDecision],
    snapshots: Iterable[EquitySnapshot],
    *,
    entries: Iterable[FillRecord] = (),
) -> dict[str, Any]:
    """Trades, PnL per day and per symbol, win rate, fees, exposure over time, rejections.

    ``entries`` are the fills before the window of the positions open at its start
    (:attr:`WindowFills.entries`): the trades they opened count from them, not from the window.
    """
    fill_list = list(fills)
    entry_list = list(entries)
    first_in_window: dict[str, int] = {}
    for fill in fill_list:
        first_in_window.setdefault(fill.symbol, fill.ts_event)
    trips, still_open = round_trips([*entry_list, *fill_list])

    def before_window(trip: RoundTrip) -> bool:
        return bool(entry_list) and trip.ts_open < first_in_window.get(trip.symbol, trip.ts_open)

    by_day: dict[str, list[RoundTrip]] = {}
    by_symbol: dict[str, list[RoundTrip]] = {}
    for trip in trips:
        by_day.setdefault(iso_utc(trip.ts_close)[:10], []).append(trip)
        by_symbol.setdefault(trip.symbol, []).append(trip)
    verdicts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for stored in decisions:
        decision = normalize_decision(stored)  # data of older versions read as today's
        verdicts[decision.verdict] += 1
        if decision.verdict == "rejected":
            reasons.update({check.code for check in decision.checks if not check.passed})
    return {
        "summary": {
            **_summary(trips),
            "open_positions": still_open,
            "opened_before_window": sum(1 for trip in trips if before_window(trip)),
            "entry_fills_before_window": len(entry_list),
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
                "opened_before_window": before_window(trip),
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
        header = ["symbol", "opened", "closed", "pnl", "fees", "opened_before_window"]
        return header, [[t[column] for column in header] for t in report["trades"]]
    if table == "exposure":
        header = ["at", "equity", "exposure_pct"]
        return header, [[e[column] for column in header] for e in report["exposure"]]
    if table == "rejections":
        reasons = report["rejections"]["by_reason"]
        return ["reason", "decisions"], [[code, count] for code, count in reasons.items()]
    raise ValueError(f"unknown table {table!r}; one of {', '.join(TABLES)}")
