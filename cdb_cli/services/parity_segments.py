"""A stored run's segments (one per start of ``cdb run``), the settings and instruments each
recorded, the restarts between them, and a live run's own latency and partial fills (the paper
model's calibration for ``cdb parity``)."""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from cdb_cli.engine.errors import ConfigurationError, StateError
from cdb_cli.engine.events import ExecutionReport, RiskDecision, TradeTick, TradingSignal
from cdb_cli.engine.parity import DecisionRow, Window
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord
from cdb_cli.engine.runs import (
    START_ACTION,
    STOP_ACTION,
)

if TYPE_CHECKING:
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.settings import Settings

__all__ = [
    "Segment",
    "calibrate",
    "decision_rows",
    "find_segments",
    "recorded_instruments",
    "recorded_settings",
    "restart_windows",
    "segment_interval",
    "venue_notes",
]

_NS: Final = 1_000_000_000
_MS: Final = 1_000_000
_ZERO: Final = Decimal(0)
_MODES: Final = frozenset({"paper", "live"})
_EARLY_NS: Final = 5 * _NS
"""How far before a run's first start its stored events are taken (exchange time runs ahead of
the moment the run heard them)."""


@dataclass(frozen=True)
class Segment:
    """One start of a run: its audit, where its stretch of the stored data begins and ends."""

    run_id: str
    mode: str
    start: AuditRecord
    stop: AuditRecord | None
    begin_ns: int
    """Where its stored events begin (half-way through the downtime before it)."""
    end_ns: int
    """Where they end (half-way to the next start; the stop, or the last event, for the last)."""

    @property
    def started_ns(self) -> int:
        return self.start.ts_event

    @property
    def stopped_ns(self) -> int:
        return self.stop.ts_event if self.stop is not None else self.end_ns


# --- the run's segments ----------------------------------------------------------------------


def find_segments(store: Store, run_ids: Sequence[str] = ()) -> list[Segment]:
    """The stored paper and live runs' segments (``run_ids``: only those), oldest first."""
    starts = [a for a in store.audits(action=START_ACTION) if a.detail.get("mode") in _MODES]
    chosen = [a for a in starts if not run_ids or a.run_id in run_ids]
    if not chosen:
        which = f" {', '.join(run_ids)}" if run_ids else ""
        raise StateError(f"No paper or live run{which} in this database (CDB_DATABASE_URL)")
    modes = {a.detail.get("mode", "") for a in chosen}
    if len(modes) > 1:
        raise ConfigurationError("These runs mix paper and live; compare one mode at a time")
    stops = {a.run_id: a for a in store.audits(action=STOP_ACTION)}
    starts.sort(key=lambda a: a.ts_event)
    segments: list[Segment] = []
    for start in starts:
        stop = stops.get(start.run_id)
        begin = start.ts_event - _EARLY_NS  # a trade made just before the start, heard after it
        if segments:
            previous = segments[-1]
            begin = max((previous.stopped_ns + start.ts_event) // 2, previous.stopped_ns + 1)
            segments[-1] = Segment(
                previous.run_id, previous.mode, previous.start, previous.stop,
                previous.begin_ns, begin - 1,
            )  # fmt: skip
        end = stop.ts_event if stop is not None else _last_event_ns(store, start.ts_event)
        segments.append(Segment(start.run_id, start.detail["mode"], start, stop, begin, end))
    wanted = {a.run_id for a in chosen}
    return [s for s in segments if s.run_id in wanted]


def _last_event_ns(store: Store, after: int) -> int:
    last = store.events(TradeTick, since_ns=after, limit=1, descending=True)
    return last[0].ts_event if last else after


# --- settings and instruments a run recorded -------------------------------------------------


def recorded_settings(segment: Segment, current: Settings) -> tuple[Settings, str]:
    """The settings the segment ran with (its start audit's), or the current ones when it
    recorded none and their hash matches; (settings, a note for the report)."""
    from cdb_cli.settings import SECRET_FIELDS, Settings
    from cdb_cli.settings_io import payload_hash, settings_hash

    detail = segment.start.detail
    recorded_hash = detail.get("settings_sha256", "")
    payload = detail.get("settings")
    if payload is None:
        if settings_hash(current) != recorded_hash:
            raise ConfigurationError(
                f"Run {segment.run_id} recorded only its settings' hash ({recorded_hash}), and "
                f"the current settings differ ({settings_hash(current)}): run cdb parity with "
                "the settings the run had"
            )
        return current, "the current settings (the run recorded only their hash, which matches)"
    if payload_hash(payload) != recorded_hash:
        raise StateError(
            f"Run {segment.run_id}'s recorded settings do not match their hash: the audit "
            "record was changed"
        )
    values: dict[str, Any] = json.loads(payload)
    kept = {
        name: value
        for name, value in values.items()
        if name not in SECRET_FIELDS and name not in {"database_url", "bus_url"}
        and value is not None
    }  # fmt: skip
    kept["database_url"] = current.database_url
    return Settings(**kept), f"the run's own (sha256 {recorded_hash})"


def recorded_instruments(
    segment: Segment, settings: Settings, symbols: Sequence[str]
) -> dict[str, Instrument]:
    from cdb_cli.engine.instruments import instrument_from_detail
    from cdb_cli.kernel import instrument_for

    raw = json.loads(segment.start.detail.get("instruments", "{}") or "{}")
    chosen = {symbol: instrument_from_detail(raw[symbol]) for symbol in symbols if symbol in raw}
    for symbol in symbols:
        chosen.setdefault(symbol, instrument_for(settings, symbol))
    return chosen


def restart_windows(segments: Sequence[Segment]) -> list[Window]:
    windows = []
    for before, after in itertools.pairwise(segments):
        down = (after.started_ns - before.stopped_ns) / _NS
        windows.append(
            Window(
                "restart",
                before.stopped_ns,
                after.started_ns,
                f"run {before.run_id} stopped, {after.run_id} started {down:.1f} s later",
            )
        )
    return windows


def calibrate(orders: Sequence[OrderRecord], fills: Sequence[FillRecord]) -> dict[str, Decimal]:
    """The paper model's latency and partial-fill share from a live run's own orders and fills."""
    by_order: dict[str, list[FillRecord]] = {}
    for fill in fills:
        by_order.setdefault(fill.client_order_id, []).append(fill)
    latencies: list[int] = []
    parts: list[int] = []
    for order in orders:
        mine = sorted(by_order.get(order.client_order_id, []), key=lambda f: f.ts_event)
        if not mine:
            continue
        latencies.append(max(0, mine[0].ts_event - order.ts_created))
        parts.append(len(mine))
    if not latencies:
        return {"latency_ms": _ZERO, "orders": _ZERO}
    partial = sum(1 for n in parts if n > 1)
    return {
        "latency_ms": Decimal(int(statistics.median(latencies)) // _MS),
        "latency_p90_ms": Decimal(int(sorted(latencies)[int(0.9 * (len(latencies) - 1))]) // _MS),
        "orders": Decimal(len(latencies)),
        "orders_in_parts": Decimal(partial),
        "median_parts": Decimal(int(statistics.median(parts))),
    }


def segment_interval(segment: Segment) -> int:
    """The segment's bar length (ns), as its start recorded it (else its settings' bar_seconds)."""
    detail = segment.start.detail
    if detail.get("bar_interval_ns", "").isdigit():
        return int(detail["bar_interval_ns"])
    payload = detail.get("settings")
    seconds = json.loads(payload).get("bar_seconds", 60) if payload else 60
    return int(seconds) * _NS


def decision_rows(
    decisions: Iterable[RiskDecision], signals: Mapping[str, TradingSignal], run_id: str
) -> list[DecisionRow]:
    """Each decision with the bar that raised it (from its signal's trace id: the run id, the
    bar's close in hex, the symbol)."""
    rows = []
    marker = f"{run_id}-t"
    for decision in decisions:
        signal = signals.get(decision.signal_id)
        bar_ns = decision.ts_event
        if signal is not None and signal.trace_id.startswith(marker):
            bar_ns = int(signal.trace_id[len(marker) :].split("-", 1)[0], 16)
        failed = ",".join(c.code for c in decision.checks if not c.passed)
        equity = decision.state.get("equity")
        rows.append(
            DecisionRow(
                symbol=decision.symbol,
                bar_ns=bar_ns,
                side=str(decision.side),
                verdict=decision.verdict,
                quote=decision.final_quote if decision.verdict in {"approved", "reduced"} else None,
                ts_ns=decision.ts_event,
                decision_id=decision.event_id,
                equity=Decimal(equity) if equity else None,
                reasons=failed,
            )
        )
    return rows


def venue_notes(
    store: Store, orders: Sequence[OrderRecord], since: int, until: int
) -> dict[str, str]:
    """What the venue said of each order that did not simply fill: a reject's or an expiry's
    reason, from the execution reports."""
    wanted = {o.client_order_id for o in orders}
    notes: dict[str, str] = {}
    for report in store.events(ExecutionReport, since_ns=since, until_ns=until):
        if report.client_order_id not in wanted:
            continue
        reason = report.reason
        if report.status in {"REJECTED", "EXPIRED"}:
            notes[report.client_order_id] = f"{report.status.lower()} at the venue: {reason}"
        elif reason and report.client_order_id not in notes:
            notes[report.client_order_id] = reason
    return notes
