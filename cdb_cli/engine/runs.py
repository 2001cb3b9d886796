"""Persisting a finished replay to the store, and restoring its portfolio from the store alone.

A persisted run is one ``AuditRecord`` (action ``replay``) that names the run id, its order-id
prefix, the starting cash and the last marks, plus everything the run produced: market data,
signals, risk decisions with their traces, approvals, execution reports, orders, fills, the final
positions and an equity snapshot. ``cdb risk explain`` and ``cdb report`` read those tables;
:func:`restore_run` rebuilds the run's portfolio from its fills (the source of truth), so a fresh
process gets exactly the ledger the replay ended with.

Pure: the engine's ``Store`` port and records only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from cdb_cli.engine.errors import StateError
from cdb_cli.engine.events import Event, RiskDecision, TradingSignal
from cdb_cli.engine.operator import OPERATOR
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.portfolio import NS_PER_DAY, Portfolio
from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import AuditRecord, EquitySnapshot, FillRecord, OrderRecord
from cdb_cli.engine.risk import TradingState

__all__ = [
    "HALT_ACTION",
    "LIVE_REFUSED_ACTION",
    "LIVE_START_ACTION",
    "REPLAY_ACTION",
    "RESET_ACTION",
    "START_ACTION",
    "STATE_ACTION",
    "STOP_ACTION",
    "VENUE_FAULT_ACTION",
    "WARM_UP_ACTION",
    "OperatorActions",
    "TradingStatus",
    "find_run",
    "halt_reason",
    "order_prefix",
    "persist_run",
    "restore_run",
    "resumed_state",
    "select_decisions",
    "select_fills",
    "signal_of",
    "trading_status",
]

START_ACTION: Final = "run_start"
"""Audit action of a ``cdb run`` (or component) start (detail: mode, cdb version, settings hash,
and the settings and the venue's instruments it ran with, for ``cdb parity``)."""
STOP_ACTION: Final = "run_stop"
"""Audit action of a run's stop (detail: its counts)."""
WARM_UP_ACTION: Final = "warm_up"
"""Audit action of the history one symbol's strategy was warmed with at a start (detail:
``symbol``, ``bars`` a JSON list of [close time ns, close, volume]), for ``cdb parity``."""
VENUE_FAULT_ACTION: Final = "venue_fault"
"""Audit action of a live order whose venue answer was lost (detail: ``client_order_id``,
``symbol``, ``fault``): MEXC took it but answered 5xx or not at all, and it was asked for."""
REPLAY_ACTION: Final = "replay"
STATE_ACTION: Final = "trading_state"
"""Audit action of a change of the trading state (detail: ``state``, ``reason``)."""
RESET_ACTION: Final = "risk_reset"
"""Audit action of an operator's ``cdb risk reset`` (detail: ``reason``, ``previous``)."""
HALT_ACTION: Final = "risk_halt"
"""Audit action of an operator's kill switch, ``cdb risk halt`` or SIGUSR1 to a running
``cdb run`` (detail: ``reason``, ``flatten`` ``yes``/``no``, ``via`` ``cli``/``sigusr1``)."""
LIVE_START_ACTION: Final = "live_start"
"""Audit action of a ``cdb run --live`` the governance gate let start (detail: each condition)."""
LIVE_REFUSED_ACTION: Final = "live_refused"
"""Audit action of a ``cdb run --live`` the governance gate refused (detail: each condition)."""
_BATCH: Final = 5_000
_MARK_PREFIX: Final = "mark."


def persist_run(
    store: Store,
    *,
    audit: AuditRecord,
    portfolio: Portfolio,
    marks: dict[str, Decimal],
    events: Iterable[Event],
    orders: Sequence[OrderRecord],
    fills: Sequence[FillRecord],
    ts_end: int,
    state_changes: Sequence[tuple[int, str, str]] = (),
    snapshots: Sequence[EquitySnapshot] = (),
) -> None:
    """Write a finished run: events in batches, orders before their fills, then the ledger and
    the audit trail (each trading-state change, then the run's own record)."""
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= _BATCH:
            store.append_events(batch)
            batch = []
    if batch:
        store.append_events(batch)
    for order in orders:
        store.save_order(order)
    for fill in fills:
        store.add_fill(fill)
    for position in portfolio.positions_records(ts_end):
        store.save_position(position)
    for snapshot in snapshots:
        store.add_equity_snapshot(snapshot)
    store.add_equity_snapshot(portfolio.snapshot(ts_end))
    for ts, state, reason in state_changes:
        store.add_audit(
            AuditRecord(
                ts_event=ts,
                action=STATE_ACTION,
                actor=audit.actor,
                run_id=audit.run_id,
                detail={"state": state, "reason": reason},
            )
        )
    detail = dict(audit.detail)
    detail.update({f"{_MARK_PREFIX}{symbol}": str(price) for symbol, price in marks.items()})
    detail["starting_cash"] = str(portfolio.starting_cash)
    detail["quote_currency"] = portfolio.quote_currency
    store.add_audit(audit.model_copy(update={"detail": detail}))


def find_run(store: Store, run_id: str | None = None) -> AuditRecord:
    """The audit record of persisted replay ``run_id`` (the latest one when None)."""
    for record in store.audits(action=REPLAY_ACTION, descending=True):
        if run_id is None or record.run_id == run_id:
            return record
    raise StateError(
        f"No persisted replay {run_id!r} in the store"
        if run_id
        else "No persisted replay in the store (run 'cdb replay --persist')"
    )


def restore_run(store: Store, run_id: str | None = None) -> Portfolio:
    """Rebuild the portfolio a persisted replay ended with, from its fills and last marks."""
    record = find_run(store, run_id)
    prefix = record.detail.get("order_prefix", "")
    if not prefix or "starting_cash" not in record.detail:
        raise StateError(f"Replay {record.run_id} has an incomplete audit record: {record.detail}")
    fills = [fill for fill in store.fills() if fill.client_order_id.startswith(prefix)]
    marks = {
        key.removeprefix(_MARK_PREFIX): Decimal(value)
        for key, value in record.detail.items()
        if key.startswith(_MARK_PREFIX)
    }
    return Portfolio.restore(
        Decimal(record.detail["starting_cash"]),
        positions=(),
        latest_snapshot=None,
        fills=fills,
        marks={s: p for s, p in marks.items() if any(f.symbol == s for f in fills)},
        quote_currency=record.detail.get("quote_currency", "USDT"),
    )


def order_prefix(run_id: str) -> str:
    """The client-order-id prefix of a run (what ``kernel.build_pipeline`` gives the venue)."""
    return run_id.replace("-", "_")[:22]


def select_decisions(
    store: Store,
    *,
    symbol: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    run_id: str | None = None,
    operator: bool = True,
) -> list[RiskDecision]:
    """Stored decisions in the window, of one run when ``run_id`` is given (ids start with it).

    ``operator=False`` leaves out an operator's decisions (a flatten's exits, source
    ``operator``): the risk rules did not make them, so rule statistics and what-ifs skip them.
    """
    decisions = store.events(RiskDecision, symbol=symbol, since_ns=since_ns, until_ns=until_ns)
    if not operator:
        decisions = [d for d in decisions if d.source != OPERATOR]
    if run_id is None:
        return decisions
    return [d for d in decisions if d.event_id.startswith(f"{run_id}-")]


def signal_of(store: Store, decision: RiskDecision) -> TradingSignal | None:
    """The stored signal a decision judged (same symbol and time), None when it is not stored."""
    signals = store.events(
        TradingSignal,
        symbol=decision.symbol,
        since_ns=decision.ts_event,
        until_ns=decision.ts_event + 1,
    )
    return next((s for s in signals if s.event_id == decision.signal_id), None)


def select_fills(
    store: Store,
    *,
    symbol: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    run_id: str | None = None,
) -> list[FillRecord]:
    """Stored fills in the window, of one run when ``run_id`` is given."""
    fills = store.fills(symbol=symbol, since_ns=since_ns, until_ns=until_ns)
    if run_id is None:
        return fills
    prefix = order_prefix(run_id)
    return [fill for fill in fills if fill.client_order_id.startswith(prefix)]


@dataclass(frozen=True)
class TradingStatus:
    """The trading state as the store knows it: since when, why, and by whom when reset."""

    state: TradingState
    since_ns: int | None
    reason: str
    actor: str
    run_id: str


def trading_status(
    store: Store, run_id: str | None = None, *, until_ns: int | None = None
) -> TradingStatus:
    """The latest state change, halt or reset (of ``run_id``; before ``until_ns``), ACTIVE when
    the store has none.

    An operator's halt (:data:`HALT_ACTION`) is HALTED until a later reset, also when no run
    picked it up (it persists across restarts like the breaker's halt)."""
    latest: AuditRecord | None = None
    for action in (STATE_ACTION, RESET_ACTION, HALT_ACTION):
        for record in store.audits(action=action, until_ns=until_ns, descending=True):
            if run_id is not None and record.run_id != run_id:
                continue
            if latest is None or record.ts_event >= latest.ts_event:
                latest = record
            break
    if latest is None:
        return TradingStatus(TradingState.ACTIVE, None, "no state change recorded", "", "")
    if latest.action == RESET_ACTION:
        state = TradingState.ACTIVE
    elif latest.action == HALT_ACTION:
        state = TradingState.HALTED
    else:
        state = TradingState(latest.detail.get("state", "active"))
    return TradingStatus(
        state, latest.ts_event, latest.detail.get("reason", ""), latest.actor, latest.run_id
    )


def resumed_state(status: TradingStatus, now_ns: int) -> TradingState | None:
    """The state a start at ``now_ns`` takes up again: a halt, or today's reduction (None:
    it starts active)."""
    if status.state is TradingState.HALTED:
        return status.state
    same_day = status.since_ns is not None and status.since_ns // NS_PER_DAY == now_ns // NS_PER_DAY
    return status.state if status.state is TradingState.REDUCING and same_day else None


@dataclass
class OperatorActions:
    """Which audited ``cdb risk halt`` / ``cdb risk reset`` records a running loop has acted on
    (one process and the ``risk`` component alike). Seeded at start with what was in the store
    then (``trading_status`` weighed those)."""

    halts_seen: set[int]
    resets_seen: set[int]

    @classmethod
    def seen(cls, halts: Iterable[AuditRecord], resets: Iterable[AuditRecord]) -> OperatorActions:
        return cls({r.ts_event for r in halts}, {r.ts_event for r in resets})

    def new_halts(self, halts: Iterable[AuditRecord]) -> list[AuditRecord]:
        """The halts not seen yet, oldest first (not marked: :meth:`halts_to_apply` does)."""
        fresh = (record for record in halts if record.ts_event not in self.halts_seen)
        return sorted(fresh, key=lambda record: record.ts_event)

    def halts_to_apply(
        self, new: Iterable[AuditRecord], resets: Sequence[AuditRecord]
    ) -> list[AuditRecord]:
        """Of the ``new`` halts, those no later reset has ended; all are marked seen, and so are
        the resets older than a halt applied (they are not a reset of it)."""
        apply = []
        for record in new:
            self.halts_seen.add(record.ts_event)
            if any(reset.ts_event > record.ts_event for reset in resets):
                continue  # reset since: the operator resumed already
            self.resets_seen.update(reset.ts_event for reset in resets)
            apply.append(record)
        return apply

    def new_resets(self, resets: Iterable[AuditRecord]) -> list[AuditRecord]:
        """The resets not seen yet, now marked seen: one that comes while trading is not halted
        (a halt and its reset between two checks) is spent, so it cannot end a later halt."""
        new = [record for record in resets if record.ts_event not in self.resets_seen]
        self.resets_seen.update(record.ts_event for record in new)
        return new

    def apply_resets(
        self, pipeline: TradingPipeline, resets: Iterable[AuditRecord], now_ns: int
    ) -> AuditRecord | None:
        """Resume a halted ``pipeline`` at ``now_ns`` for the newest unseen reset; return it
        (None when there is none, or trading was not halted: then the resets are spent)."""
        new = self.new_resets(resets)
        if not new or pipeline.trading_state is not TradingState.HALTED:
            return None
        pipeline.reset_breaker(now_ns)
        return new[-1]

    def apply_halts(
        self,
        pipeline: TradingPipeline,
        halts: Iterable[AuditRecord],
        resets: Sequence[AuditRecord],
        now_ns: int,
    ) -> list[AuditRecord]:
        """Halt ``pipeline`` at ``now_ns`` for each unseen halt no later reset ended (its reason
        and operator in the state change's why); return them, for the caller's flatten and log."""
        applied = self.halts_to_apply(self.new_halts(halts), resets)
        for record in applied:
            pipeline.halt(now_ns, halt_reason(record.detail.get("reason", ""), record.actor))
        return applied


def halt_reason(reason: str, actor: str = "") -> str:
    """The trading state's why for an operator's halt: ``halted by the operator (who): why``."""
    by = f" ({actor})" if actor else ""
    return f"halted by the operator{by}: {reason}"
