"""What the trading state stands on, in the operator's words: which halt a ``cdb risk reset``
ends, the drawdowns ``cdb risk status`` shows, and the audit records ``cdb risk halt`` and
``cdb risk reset`` write (:func:`halt_trading`, :func:`reset_halt`, :func:`risk_status`).

A HALTED state is either an operator's halt (``cdb risk halt`` or SIGUSR1, audited as
:data:`~cdb_cli.engine.runs.HALT_ACTION`) that no reset has ended since, or the circuit breaker's.
A reset ends either; it does not end a daily reduction (REDUCING), which lasts until the next
UTC day (the running loop acts on a reset only while halted).

Pure: the engine's ``Store`` port and records only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from cdb_cli.engine.ports.store import Store
from cdb_cli.engine.records import AuditRecord, EquitySnapshot
from cdb_cli.engine.report import iso_utc
from cdb_cli.engine.risk import RiskLimits, TradingState
from cdb_cli.engine.runs import HALT_ACTION, RESET_ACTION, TradingStatus, trading_status

__all__ = [
    "BREAKER_HALT",
    "OPERATOR_HALT",
    "Halt",
    "Reset",
    "current_halt",
    "describe_reset",
    "drawdown_pct",
    "equity_figures",
    "halt_trading",
    "not_halted",
    "reset_halt",
    "risk_status",
]

OPERATOR_HALT: Final = "operator_halt"
BREAKER_HALT: Final = "circuit_breaker"
_PCT: Final = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Halt:
    """The halt in force: whose, why, by whom and since when."""

    kind: Literal["operator_halt", "circuit_breaker"]
    reason: str
    actor: str
    since_ns: int | None

    def describe(self) -> str:
        """``the operator's halt (by ops@desk at 2026-03-02T09:00:00Z: exchange incident)``."""
        at = f" at {iso_utc(self.since_ns)}" if self.since_ns is not None else ""
        if self.kind == OPERATOR_HALT:
            by = f"by {self.actor}" if self.actor else "by the operator"
            return f"the operator's halt ({by}{at}: {self.reason or 'no reason given'})"
        return f"the circuit breaker's halt ({at.strip() or 'time unknown'}: {self.reason})"


def describe_reset(record: AuditRecord) -> str:
    """``ops@desk ended the operator's halt: incident over``: a reset's audit record in words,
    for the loop's log (a reset written before it named what it ended says "the halt")."""
    ended = {OPERATOR_HALT: "the operator's halt", BREAKER_HALT: "the circuit breaker's halt"}
    what = ended.get(record.detail.get("ended", ""), "the halt")
    return f"{record.actor} ended {what}: {record.detail.get('reason', '')}"


def _of_run(records: list[AuditRecord], run_id: str | None) -> list[AuditRecord]:
    return [r for r in records if run_id is None or r.run_id == run_id]


def current_halt(store: Store, status: TradingStatus, run_id: str | None = None) -> Halt | None:
    """The halt ``status`` (from ``trading_status(store, run_id)``) is in, None when not halted.

    The latest operator's halt newer than every reset, else the circuit breaker's (the state
    change the status comes from)."""
    if status.state is not TradingState.HALTED:
        return None
    resets = _of_run(store.audits(action=RESET_ACTION), run_id)
    last_reset = max((r.ts_event for r in resets), default=-1)
    halts = [
        r for r in _of_run(store.audits(action=HALT_ACTION), run_id) if r.ts_event > last_reset
    ]
    if halts:
        latest = halts[-1]
        return Halt(OPERATOR_HALT, latest.detail.get("reason", ""), latest.actor, latest.ts_event)
    return Halt(BREAKER_HALT, status.reason, status.actor, status.since_ns)


def drawdown_pct(reference: Decimal, equity: Decimal) -> Decimal | None:
    """How far ``equity`` is below ``reference``, in % (4 places); 0 when it is at or above it
    (a gain is no drawdown); None without a positive reference."""
    if reference <= 0:
        return None
    return max((reference - equity) / reference * 100, Decimal(0)).quantize(_PCT)


def equity_figures(snapshot: EquitySnapshot) -> dict[str, str | None]:
    """The drawdowns from the peak and from the day's start and the exposure of a snapshot, as
    4-place % strings (None where the reference is not positive)."""

    def pct(value: Decimal | None) -> str | None:
        return None if value is None else f"{value:f}"

    exposure = (
        (snapshot.position_value / snapshot.equity * 100).quantize(_PCT)
        if snapshot.equity > 0
        else None
    )
    return {
        "drawdown_from_peak_pct": pct(drawdown_pct(snapshot.peak_equity, snapshot.equity)),
        "daily_drawdown_pct": pct(drawdown_pct(snapshot.day_start_equity, snapshot.equity)),
        "exposure_pct": pct(exposure),
    }


def risk_status(store: Store, limits: RiskLimits, run_id: str | None = None) -> dict[str, Any]:
    """``cdb risk status``: the trading state, why, by whom and since when, and the latest
    snapshot's drawdowns and exposure against their limits (``equity`` None without one)."""
    current = trading_status(store, run_id)
    snapshots = store.equity_snapshots(limit=1, descending=True)
    document: dict[str, Any] = {
        "state": str(current.state),
        "since": iso_utc(current.since_ns) if current.since_ns is not None else None,
        "reason": current.reason,
        "actor": current.actor,
        "run_id": current.run_id,
        "equity": None,
    }
    if snapshots:
        snap = snapshots[0]
        figures = equity_figures(snap)
        document["equity"] = {
            "at": iso_utc(snap.ts_event),
            "equity": str(snap.equity),
            "currency": snap.currency,
            "drawdown_from_peak_pct": figures["drawdown_from_peak_pct"],
            "circuit_breaker_pct": str(limits.circuit_breaker_pct),
            "daily_drawdown_pct": figures["daily_drawdown_pct"],
            "daily_drawdown_limit_pct": str(limits.daily_drawdown_pct),
            "exposure_pct": figures["exposure_pct"],
            "max_exposure_pct": str(limits.max_exposure_pct),
        }
    return document


def halt_trading(
    store: Store,
    *,
    reason: str,
    actor: str,
    flatten: bool,
    run_id: str | None,
    now_ns: int,
    via: str = "cli",
) -> Halt | None:
    """``cdb risk halt``: write the operator's halt (:data:`HALT_ACTION`) to the audit table; a
    running loop halts (and with ``flatten`` sells every position) at its next flush. ``via``
    says how it came (``cli``, ``mcp``). Returns the halt that was in force already, None when
    trading was not halted."""
    current = trading_status(store, run_id)
    already = current_halt(store, current, run_id)
    store.add_audit(
        AuditRecord(
            ts_event=now_ns,
            action=HALT_ACTION,
            actor=actor[:64],
            run_id=run_id or current.run_id,
            detail={
                "reason": reason,
                "flatten": "yes" if flatten else "no",
                "via": via,
                "previous": str(current.state),
            },
        )
    )
    return already


@dataclass(frozen=True, slots=True)
class Reset:
    """What ``cdb risk reset`` found: the state before, and the halt it ended (None: not halted,
    nothing written)."""

    status: TradingStatus
    ended: Halt | None


def reset_halt(store: Store, *, reason: str, actor: str, run_id: str | None, now_ns: int) -> Reset:
    """``cdb risk reset``: end the halt in force (the operator's or the breaker's) with an audit
    record (:data:`RESET_ACTION`) naming which; writes nothing when trading is not halted."""
    current = trading_status(store, run_id)
    ended = current_halt(store, current, run_id)
    if ended is not None:
        store.add_audit(
            AuditRecord(
                ts_event=now_ns,
                action=RESET_ACTION,
                actor=actor[:64],
                run_id=current.run_id,
                detail={"reason": reason, "previous": str(current.state), "ended": ended.kind},
            )
        )
    return Reset(current, ended)


def not_halted(status: TradingStatus) -> str:
    """Why a reset did nothing, in one line (a daily reduction is not ended by a reset)."""
    if status.state is TradingState.REDUCING:
        return (
            f"Trading is reducing ({status.reason}), not halted: nothing to reset; a reset ends a "
            "halt, the daily reduction ends at the next UTC day"
        )
    return f"Trading is {status.state}, not halted: nothing to reset"
