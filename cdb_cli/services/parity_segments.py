"""A stored run's segments (one per start of ``cdb run``), the settings and instruments each
recorded, the restarts between them, and a live run's own latency and partial fills (the paper
model's calibration for ``cdb parity``)."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from cdb_cli.engine.errors import ConfigurationError, StateError
from cdb_cli.engine.events import Bar, ExecutionReport, RiskDecision, TradeTick, TradingSignal
from cdb_cli.engine.parity import DecisionRow, Window
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord
from cdb_cli.engine.runs import (
    START_ACTION,
    STOP_ACTION,
    VENUE_FAULT_ACTION,
)
from cdb_cli.engine.traces import trace_bar_close

if TYPE_CHECKING:
    from cdb_cli.engine.bars import ClosedBar
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.settings import Settings

__all__ = [
    "Segment",
    "bar_detail",
    "calibrate",
    "decision_rows",
    "find_segments",
    "recorded_instruments",
    "recorded_settings",
    "restart_windows",
    "segment_interval",
    "venue_faults",
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
    """One start of a run (of ``cdb run``, or of a component-mode run's components together):
    its start audit, its stop, where its stretch of the stored data begins and ends."""

    run_ids: tuple[str, ...]
    """The run id, or a component-mode run's components' ids (each component has its own)."""
    mode: str
    start: AuditRecord
    stop: AuditRecord | None
    begin_ns: int
    """Where its stored events begin (half-way through the downtime before it)."""
    end_ns: int
    """Where they end (half-way to the next start; the stop, or the last event, for the last)."""

    @property
    def run_id(self) -> str:
        """The run's name in reports: its id, or its components' ids."""
        return "+".join(self.run_ids)

    @property
    def started_ns(self) -> int:
        return self.start.ts_event

    @property
    def stopped_ns(self) -> int:
        return self.stop.ts_event if self.stop is not None else self.end_ns

    def owns(self, event_id: str) -> bool:
        """Whether an event, order or record id is one of this segment's (ids start with the
        run id: ``p1a2b3c4d5e6-42``, ``p1a2b3c4d5e6_0000000042``)."""
        return any(event_id.startswith(run_id) for run_id in self.run_ids)


# --- the run's segments ----------------------------------------------------------------------


def find_segments(store: Store, run_ids: Sequence[str] = ()) -> list[Segment]:
    """The stored paper and live runs' segments (``run_ids``: only those), oldest first."""
    groups = _starts(store)
    chosen = [g for g in groups if not run_ids or set(g[0]) & set(run_ids)]
    if not chosen:
        which = f" {', '.join(run_ids)}" if run_ids else ""
        raise StateError(f"No paper or live run{which} in this database (CDB_DATABASE_URL)")
    modes = {start.detail.get("mode", "") for _, start, _ in chosen}
    if len(modes) > 1:
        raise ConfigurationError("These runs mix paper and live; compare one mode at a time")
    segments: list[Segment] = []
    for ids, start, stop in groups:
        begin = start.ts_event - _EARLY_NS  # a trade made just before the start, heard after it
        if segments:
            previous = segments[-1]
            begin = max((previous.stopped_ns + start.ts_event) // 2, previous.stopped_ns + 1)
            segments[-1] = Segment(
                previous.run_ids, previous.mode, previous.start, previous.stop,
                previous.begin_ns, begin - 1,
            )  # fmt: skip
        end = stop.ts_event if stop is not None else _last_event_ns(store, start.ts_event)
        segments.append(Segment(ids, start.detail["mode"], start, stop, begin, end))
    wanted = {ids for ids, _, _ in chosen}
    return [s for s in segments if s.run_ids in wanted]


Group = tuple[tuple[str, ...], AuditRecord, AuditRecord | None]


def _starts(store: Store) -> list[Group]:
    """Each run's (ids, start, stop), oldest first. The components of a component-mode run
    each start with an id of their own; the ones that start while the others run are one run,
    from the first start to the last stop, with the detail of the start that recorded most."""
    stops: dict[str, AuditRecord] = {}
    for record in store.audits(action=STOP_ACTION):
        stops[record.run_id] = record
    starts = [a for a in store.audits(action=START_ACTION) if a.detail.get("mode") in _MODES]
    starts.sort(key=lambda a: a.ts_event)
    groups: list[list[AuditRecord]] = []
    for record in starts:
        group = groups[-1] if groups else None
        if (
            group is not None
            and "component" in record.detail
            and "component" in group[0].detail
            and all(
                m.run_id not in stops or stops[m.run_id].ts_event > record.ts_event for m in group
            )
        ):
            group.append(record)
        else:
            groups.append([record])
    out: list[Group] = []
    for group in groups:
        fullest = max(group, key=lambda r: (len(r.detail.get("instruments", "")), len(r.detail)))
        start = fullest.model_copy(update={"ts_event": group[0].ts_event})
        ended = [stops[m.run_id] for m in group if m.run_id in stops]
        stop = max(ended, key=lambda r: r.ts_event) if len(ended) == len(group) else None
        out.append((tuple(m.run_id for m in group), start, stop))
    return out


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
        "latency_p90_ms": Decimal(_p90(latencies) // _MS),
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
    decisions: Iterable[RiskDecision], signals: Mapping[str, TradingSignal]
) -> list[DecisionRow]:
    """Each decision with the bar that raised it (its signal's trace id ends in ``-t<the bar's
    close, hex>-<symbol>``; without one, the decision's own time)."""
    rows = []
    for decision in decisions:
        signal = signals.get(decision.signal_id)
        bar_ns = decision.ts_event
        if signal is not None:
            bar_ns = trace_bar_close(signal.trace_id) or bar_ns
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


def _p90(values: Sequence[int]) -> int:
    """The 90th percentile by nearest rank (the largest of fewer than ten values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def venue_faults(store: Store, since: int, until: int) -> dict[str, str]:
    """The live orders whose venue answer was lost (MEXC took them, answered 5xx), by client
    order id, from the run's ``venue_fault`` audit records."""
    return {
        record.detail.get("client_order_id", ""): record.detail.get("fault", "")
        for record in store.audits(action=VENUE_FAULT_ACTION, since_ns=since, until_ns=until)
    }


def bar_detail(stored: Bar | None, built: ClosedBar | None) -> str | None:
    """How a stored bar differs from the one its stored trades make again (None: alike)."""
    if stored is None:
        return "a bar the re-run closed that the run never stored"
    if built is None:
        return "a bar the run stored that its stored trades do not make"
    names = ("open", "high", "low", "close", "volume")
    run = [float(getattr(stored, name)) for name in names]
    again = [float(getattr(built, name)) for name in names]
    changed = [
        f"{name} {x:g} stored, {y:g} rebuilt"
        for name, x, y in zip(names, run, again, strict=True)
        if abs(x - y) > 1e-9 * max(abs(x), 1.0)
    ]
    if not changed:
        return None
    return "the stored bar differs from what its stored trades make: " + ", ".join(changed)
