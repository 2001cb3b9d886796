"""Which halt a reset ends (the operator's, with its reason, or the circuit breaker's), and
drawdowns that are never negative: a gain is no drawdown."""

from __future__ import annotations

from decimal import Decimal

from cdb_cli.engine.halts import (
    BREAKER_HALT,
    OPERATOR_HALT,
    Halt,
    current_halt,
    describe_reset,
    drawdown_pct,
    equity_figures,
)
from cdb_cli.engine.records import AuditRecord, EquitySnapshot
from cdb_cli.engine.runs import HALT_ACTION, RESET_ACTION, STATE_ACTION, trading_status
from cdb_cli.engine.store_memory import InMemoryStore

T0 = 1_772_409_600_000_000_000  # 2026-03-02T00:00:00Z
BREAKER_WHY = "loss from peak 10.2000 % is above 10 % (circuit breaker)"


def audit(
    ts: int, action: str, actor: str = "cdb run", run_id: str = "", **detail: str
) -> AuditRecord:
    return AuditRecord(ts_event=ts, action=action, actor=actor, run_id=run_id, detail=detail)


def halt_of(store: InMemoryStore, run_id: str | None = None) -> Halt | None:
    return current_halt(store, trading_status(store, run_id), run_id)


def test_the_breaker_s_halt_and_the_operator_s_are_told_apart() -> None:
    store = InMemoryStore()
    assert halt_of(store) is None  # active: nothing to end
    store.add_audit(audit(T0, STATE_ACTION, state="halted", reason=BREAKER_WHY))
    breaker = halt_of(store)
    assert breaker == Halt(BREAKER_HALT, BREAKER_WHY, "cdb run", T0)
    assert (
        breaker.describe() == f"the circuit breaker's halt (at 2026-03-02T00:00:00Z: {BREAKER_WHY})"
    )
    store.add_audit(audit(T0 + 5, RESET_ACTION, actor="ops@desk", reason="ok", ended=BREAKER_HALT))
    assert halt_of(store) is None
    # the operator halts; the running loop applies it as a state change with the same reason
    store.add_audit(audit(T0 + 10, HALT_ACTION, actor="ops@desk", reason="exchange incident"))
    store.add_audit(audit(T0 + 11, STATE_ACTION, state="halted", reason="exchange incident"))
    operator = halt_of(store)
    assert operator == Halt(OPERATOR_HALT, "exchange incident", "ops@desk", T0 + 10)
    assert operator.describe() == (
        "the operator's halt (by ops@desk at 2026-03-02T00:00:00Z: exchange incident)"
    )


def test_a_reducing_day_is_not_a_halt_and_runs_are_apart() -> None:
    store = InMemoryStore()
    store.add_audit(audit(T0, STATE_ACTION, run_id="paper-a", state="reducing", reason="daily"))
    assert halt_of(store) is None
    store.add_audit(audit(T0 + 1, HALT_ACTION, actor="ops", run_id="paper-b", reason="stop b"))
    assert halt_of(store, "paper-a") is None
    stopped = halt_of(store, "paper-b")
    assert stopped is not None
    assert (stopped.kind, stopped.reason) == (OPERATOR_HALT, "stop b")


def test_a_reset_in_the_loop_s_log_says_what_it_ended() -> None:
    operator = audit(T0, RESET_ACTION, actor="ops@desk", reason="over", ended=OPERATOR_HALT)
    assert describe_reset(operator) == "ops@desk ended the operator's halt: over"
    breaker = audit(T0, RESET_ACTION, actor="ops@desk", reason="ok", ended=BREAKER_HALT)
    assert describe_reset(breaker) == "ops@desk ended the circuit breaker's halt: ok"
    older = audit(T0, RESET_ACTION, actor="ops@desk", reason="ok", previous="halted")
    assert describe_reset(older) == "ops@desk ended the halt: ok"


def test_a_gain_is_no_drawdown() -> None:
    assert drawdown_pct(Decimal(1000), Decimal(950)) == Decimal("5.0000")
    assert drawdown_pct(Decimal(1000), Decimal(1100)) == Decimal("0.0000")
    assert drawdown_pct(Decimal(0), Decimal(10)) is None
    snapshot = EquitySnapshot(
        ts_event=T0,
        cash=Decimal(600),
        position_value=Decimal(500),
        equity=Decimal(1100),
        day_start_equity=Decimal(1000),
        peak_equity=Decimal(1200),
    )
    assert equity_figures(snapshot) == {
        "drawdown_from_peak_pct": "8.3333",
        "daily_drawdown_pct": "0.0000",
        "exposure_pct": "45.4545",
    }
