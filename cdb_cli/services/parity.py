"""``cdb parity``: re-run a stored paper or live run on its own market events and explain every
difference (the matching and the attribution are :mod:`cdb_cli.engine.parity`'s).

A run is one or more **segments**, one per start of ``cdb run`` (a restart begins a new one).
Each segment is re-run the way the run itself went through it:

* from the account the run started it with (the ledger from the run's fills before it, the
  orders still working, a halt resumed), at the **settings and instruments its start audit
  recorded** (the settings hash checked), its strategy warmed with the **history it recorded**;
* its stored trades and quotes go through the one :class:`~cdb_cli.engine.ticks.TickDriver`
  in time order; a bar the run's clock closed (no trade of the next interval came first) is
  closed at the time the run stored for it; each decision is taken at the time the run took
  the same bar's decision (the wall clock is an input like the market);
* the operator's halts and resets are applied when the run picked them up.

A paper run is re-run with its own paper model; a live run with the paper model **calibrated
from its own orders and fills** (the latency from an order to its first fill, the share of
orders filled in parts). What differs then is the venue's doing, or unexplained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cdb_cli import __version__
from cdb_cli.engine.errors import ConfigurationError, StateError
from cdb_cli.engine.parity import (
    CAUSES,
    DecisionMatch,
    DecisionRow,
    FillMatch,
    OrderFills,
    ParityReport,
    compare,
)
from cdb_cli.services.parity_rerun import Collector
from cdb_cli.services.parity_segments import Segment, calibrate, find_segments, restart_windows

if TYPE_CHECKING:
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.settings import Settings

__all__ = [
    "TABLES",
    "ParityResult",
    "Segment",
    "document",
    "find_segments",
    "iso",
    "parity_document",
    "run_parity",
    "table_rows",
]

_ZERO: Final = Decimal(0)


@dataclass
class ParityResult:
    """What ``cdb parity`` reports: the comparison and how it was made."""

    report: ParityReport
    segments: list[Segment]
    mode: str
    symbols: list[str]
    since_ns: int
    until_ns: int
    versions: list[str]
    settings_note: str
    calibration: dict[str, str] = field(default_factory=dict)

    @property
    def crosses_versions(self) -> bool:
        return any(version != __version__ for version in self.versions)


# --- the comparison ----------------------------------------------------------------------------


def run_parity(
    store: Store,
    settings: Settings,
    *,
    run_ids: Sequence[str] = (),
    symbols: Sequence[str] = (),
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> ParityResult:
    """Re-run the segments and compare them with what the run did (see the module docstring)."""
    segments = find_segments(store, run_ids)
    since = since_ns if since_ns is not None else segments[0].begin_ns
    until = until_ns if until_ns is not None else segments[-1].end_ns
    chosen = [s for s in segments if s.end_ns >= since and s.begin_ns <= until]
    if not chosen:
        raise StateError("No run segment lies in that window (--since/--until)")
    mode = chosen[0].mode
    all_symbols = sorted({x for s in chosen for x in s.start.detail.get("symbols", "").split(",")})
    wanted = [x for x in all_symbols if x and (not symbols or x in symbols)]
    if not wanted:
        raise ConfigurationError(f"The run traded {', '.join(all_symbols)}, not {symbols}")
    fills = store.fills()
    orders = store.orders()
    calibration = calibrate(orders, fills) if mode == "live" else {}
    collector = Collector(store, [x for x in all_symbols if x], settings)
    notes: list[str] = []
    for segment in chosen:
        notes.append(collector.replay_segment(segment, fills, orders, calibration, since, until))
    data = collector.parity_input(mode == "paper", since, until, wanted)
    data.windows.extend(restart_windows(chosen))
    data.windows.sort(key=lambda w: w.start_ns)
    report = compare(data)
    versions = sorted({s.start.detail.get("cdb_version", "?") for s in chosen})
    return ParityResult(
        report=report,
        segments=chosen,
        mode=mode,
        symbols=wanted,
        since_ns=since,
        until_ns=until,
        versions=versions,
        settings_note=sorted(set(notes))[0] if len(set(notes)) == 1 else "; ".join(notes),
        calibration={k: str(v) for k, v in calibration.items()},
    )


# --- the document ------------------------------------------------------------------------------

TABLES: Final = ("decisions", "fills", "differences", "windows", "curve")
"""The tables ``cdb parity --csv`` prints."""


def parity_document(
    settings: Settings,
    *,
    run_ids: Sequence[str] = (),
    symbols: Sequence[str] = (),
    since_ns: int | None = None,
    until_ns: int | None = None,
    plot: Path | None = None,
) -> dict[str, Any]:
    """``cdb parity``: the comparison of the run(s) in CDB_DATABASE_URL as one JSON-able
    document (amounts as strings, every digit kept); with ``plot`` the curves as a PNG."""
    from cdb_cli.kernel import open_store

    if plot is not None:
        from cdb_cli.adapters.plot import require_matplotlib

        require_matplotlib()
    store = open_store(settings)
    try:
        result = run_parity(
            store, settings, run_ids=run_ids, symbols=symbols, since_ns=since_ns, until_ns=until_ns
        )
    finally:
        store.close()
    if plot is not None:
        from cdb_cli.adapters.plot import plot_parity

        runs = ", ".join(s.run_id for s in result.segments)
        curve = [(ts, float(a), float(b), float(c)) for ts, a, b, c in result.report.curve]
        plot_parity(curve, plot, title=f"cdb parity: {runs} and its re-run")
    return document(result)


def document(result: ParityResult) -> dict[str, Any]:
    """The JSON-able form of ``result``."""
    report = result.report
    fills = report.fills
    worst = max((f.unexplained_bp for f in fills), default=_ZERO)
    return {
        "runs": [
            {
                "run_id": s.run_id,
                "mode": s.mode,
                "started": iso(s.started_ns),
                "stopped": iso(s.stopped_ns) if s.stop is not None else None,
                "cdb_version": s.start.detail.get("cdb_version", ""),
            }
            for s in result.segments
        ],
        "mode": result.mode,
        "symbols": result.symbols,
        "since": iso(result.since_ns),
        "until": iso(result.until_ns),
        "versions": {
            "runs": result.versions,
            "this": __version__,
            "crosses_versions": result.crosses_versions,
        },
        "settings": result.settings_note,
        "calibration": result.calibration,
        "decisions": {
            "run": len([d for d in report.decisions if d.run is not None]),
            "replay": len([d for d in report.decisions if d.replay is not None]),
            **{name: report.count(name) for name in OUTCOMES},
            "parity_pct": str(report.parity_pct(outside_windows=False)),
            "parity_pct_outside_windows": str(report.parity_pct(outside_windows=True)),
        },
        "fills": {
            "compared": len(fills),
            "both_sides": sum(1 for f in fills if f.run is not None and f.replay is not None),
            "max_unexplained_bp": str(worst),
        },
        "pnl": {
            "run": str(report.pnl_run),
            "replay": str(report.pnl_replay),
            "difference": str(report.difference),
            "unexplained": str(report.unexplained),
            "explained_pct": str(report.explained_pct),
            "by_cause": {c: str(report.by_cause[c]) for c in CAUSES if c in report.by_cause},
        },
        "windows": [
            {
                "cause": w.cause,
                "start": iso(w.start_ns),
                "end": iso(w.end_ns),
                "symbol": w.symbol,
                "detail": w.detail,
            }
            for w in report.windows
        ],
        "differences": [
            {
                "kind": d.kind,
                "symbol": d.symbol,
                "at": iso(d.ts_ns),
                "cause": d.cause,
                "amount": str(d.amount),
                "detail": d.detail,
            }
            for d in report.differences
        ],
        "decision_rows": [_decision_row(d) for d in report.decisions],
        "fill_rows": [_fill_row(f) for f in fills],
        "curve": [
            {"at": iso(ts), "run": str(a), "replay": str(b), "attributed": str(c)}
            for ts, a, b, c in report.curve
        ],
    }


OUTCOMES: Final = ("equal", "only_run", "only_replay", "different")


def _decision_row(match: DecisionMatch) -> dict[str, Any]:
    def side(row: DecisionRow | None) -> dict[str, Any] | None:
        if row is None:
            return None
        quote = None if row.quote is None else str(row.quote)
        return {"verdict": row.verdict, "quote": quote, "at": iso(row.ts_ns), "id": row.decision_id}

    return {
        "symbol": match.symbol,
        "bar": iso(match.bar_ns),
        "side": match.side,
        "outcome": match.outcome,
        "cause": match.cause,
        "run": side(match.run),
        "replay": side(match.replay),
        "detail": match.detail,
    }


def _fill_row(match: FillMatch) -> dict[str, Any]:
    def side(order: OrderFills | None) -> dict[str, Any] | None:
        if order is None:
            return None
        return {
            "client_order_id": order.order.client_order_id,
            "status": order.order.status,
            "fills": len(order.fills),
            "quantity": str(order.quantity),
            "vwap": str(order.vwap),
            "fee": str(order.fee),
            "first_fill": iso(order.fills[0].ts_event) if order.fills else None,
            "note": order.note,
        }

    bp = match.price_difference_bp
    return {
        "symbol": match.symbol,
        "bar": iso(match.bar_ns),
        "side": match.side,
        "run": side(match.run),
        "replay": side(match.replay),
        "price_difference_bp": None if bp is None else str(bp),
        "unexplained_bp": str(match.unexplained_bp),
        "difference": str(match.difference),
        "by_cause": {c: str(a) for c, a in match.parts.items()},
    }


def iso(ts_ns: int) -> str:
    """A time for people and machines: UTC, ISO 8601, milliseconds."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    when = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{nanos // 1_000_000:03d}Z"


def table_rows(document: Mapping[str, Any], name: str) -> tuple[list[str], list[list[Any]]]:
    """One table of the document as (header, rows), for ``--csv``."""
    if name == "decisions":
        header = ["symbol", "bar", "side", "outcome", "cause", "run_verdict", "run_quote",
                  "replay_verdict", "replay_quote", "detail"]  # fmt: skip
        rows = [
            [r["symbol"], r["bar"], r["side"], r["outcome"], r["cause"] or "",
             *_pair(r["run"], "verdict", "quote"), *_pair(r["replay"], "verdict", "quote"),
             r["detail"]]
            for r in document["decision_rows"]
        ]  # fmt: skip
    elif name == "fills":
        header = ["symbol", "bar", "side", "run_vwap", "run_quantity", "run_fee", "run_fills",
                  "replay_vwap", "replay_quantity", "replay_fee", "price_difference_bp",
                  "unexplained_bp", "difference"]  # fmt: skip
        rows = [
            [r["symbol"], r["bar"], r["side"],
             *_pair(r["run"], "vwap", "quantity", "fee", "fills"),
             *_pair(r["replay"], "vwap", "quantity", "fee"),
             r["price_difference_bp"] or "", r["unexplained_bp"], r["difference"]]
            for r in document["fill_rows"]
        ]  # fmt: skip
    elif name == "curve":
        header = ["at", "run", "replay", "attributed"]
        rows = [[p["at"], p["run"], p["replay"], p["attributed"]] for p in document["curve"]]
    else:
        key = "differences" if name == "differences" else "windows"
        items = document[key]
        header = (
            ["at", "kind", "symbol", "cause", "amount", "detail"]
            if key == "differences"
            else ["start", "end", "cause", "symbol", "detail"]
        )
        rows = [[item[column] for column in header] for item in items]
    return header, rows


def _pair(side: Mapping[str, Any] | None, *names: str) -> list[Any]:
    return ["" if side is None else side[name] for name in names]
