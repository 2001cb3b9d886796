"""The governance gate of ``cdb run --live``: every condition that must hold before real orders.

:func:`live_gate` checks, in this order, and returns one :class:`GateCondition` per line:

=====================  ==========================================================  =========
condition              passes when                                                 kind
=====================  ==========================================================  =========
``mexc keys``          both keys set and well-formed (env-validate's rules), and   config /
                       MEXC accepts them (a signed ``account()``)                  check
``systemcheck``        no row of ``cdb systemcheck`` fails, judged in live mode    check
                       with the run's own env file: clock offset below half the
                       recvWindow, the account may trade spot and every symbol is
                       tradable, breaker not halted, no ``.env`` or credential
                       file readable by group/others
``risk limits``        the loss and size limits are set by the operator            config
                       (environment or ``.env``; ``.env.example`` ships them
                       commented out), not left at their defaults (named), and
                       every percentage is below 100
``metrics endpoint``   ``CDB_HTTP_PORT`` is set explicitly (Prometheus must know   config
                       where to scrape; the port is always 1..65535)
``portfolio restored`` the caller's reconciliation says so (passed in)             check
``operator confirmed`` ``--confirm-live``, or on a terminal the operator typed     check
                       the account's masked API key at the prompt
=====================  ==========================================================  =========

The gate never raises for a failing condition: the command prints the table
(:meth:`GateResult.rows`) and then raises :meth:`GateResult.error` — a
:class:`~cdb_cli.engine.errors.ConfigurationError` (exit 3) when any failing condition is of kind
*config* (fix the settings), else :class:`~cdb_cli.engine.errors.CheckFailed` (exit 4).
The operator is asked to confirm only when every other condition passed.

Starting (or refusing) is audited with :func:`gate_audit` (action ``live_start`` or
``live_refused``, detail: each condition and the masked key; never a secret).

:func:`pass_gate` is the whole of it for ``cdb run --live``: open the store, reconcile (dry run),
judge, report each line, audit the verdict, raise when it refuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from cdb_cli.engine.errors import (
    CdbError,
    CheckFailed,
    ConfigurationError,
    DependencyError,
    VenueError,
    VenueRejected,
)
from cdb_cli.engine.records import AuditRecord
from cdb_cli.engine.runs import LIVE_REFUSED_ACTION, LIVE_START_ACTION

if TYPE_CHECKING:
    from cdb_cli.services.systemcheck import CheckRow
    from cdb_cli.settings import Settings

__all__ = [
    "EXPLICIT_RISK_LIMITS",
    "OPERATOR_DECIDES",
    "GateCondition",
    "GateResult",
    "gate_audit",
    "live_gate",
    "pass_gate",
    "portfolio_restored",
    "risk_limits_condition",
]

Kind = Literal["config", "check"]
Prompt = Callable[[str], str]

EXPLICIT_RISK_LIMITS: Final = (
    "daily_drawdown_pct",
    "circuit_breaker_pct",
    "max_exposure_pct",
    "max_position_quote",
)
"""Risk settings live trading needs set explicitly: the loss limits and the size caps. A default
meant for a paper account is not a decision about real money."""
OPERATOR_DECIDES: Final = (*EXPLICIT_RISK_LIMITS, "http_port")
"""What the operator must set for live trading (the risk limits and the metrics port):
``.env.example`` ships them commented out, with their defaults, so a copy of it passes nothing."""
_PERCENT_LIMITS: Final = (
    "daily_drawdown_pct",
    "circuit_breaker_pct",
    "max_exposure_pct",
    "max_spread_pct",
    "risk_per_trade_pct",
    "position_risk_pct",
)
_LIVE_KEYS: Final = frozenset({"CDB_MEXC_API_KEY", "CDB_MEXC_API_SECRET"})
_HUNDRED: Final = Decimal(100)


@dataclass(frozen=True)
class GateCondition:
    """One condition of the gate: its name, whether it holds, and a one-line detail."""

    name: str
    ok: bool
    detail: str
    kind: Kind = "check"
    """``config`` when a failure is fixed in the settings (exit 3), ``check`` otherwise (4)."""

    def line(self) -> str:
        return f"{self.name}: {self.detail}"


@dataclass(frozen=True)
class GateResult:
    """Every condition, in order, and the masked key of the account (None without keys)."""

    conditions: tuple[GateCondition, ...]
    api_key_masked: str | None = None

    @property
    def ok(self) -> bool:
        return all(condition.ok for condition in self.conditions)

    @property
    def failed(self) -> list[GateCondition]:
        return [condition for condition in self.conditions if not condition.ok]

    def rows(self) -> list[tuple[str, bool, str]]:
        """(condition, ok, detail) for a table."""
        return [(c.name, c.ok, c.detail) for c in self.conditions]

    def error(self) -> CdbError | None:
        """None when live trading may start; otherwise the error to raise: its message names the
        first failing condition, its details list every failing one."""
        failed = self.failed
        if not failed:
            return None
        message = f"cdb run --live refused: {failed[0].line()}"
        details = [condition.line() for condition in failed]
        if any(condition.kind == "config" for condition in failed):
            return ConfigurationError(message, details=details)
        return CheckFailed(message, details=details)

    def raise_if_refused(self) -> None:
        error = self.error()
        if error is not None:
            raise error


async def live_gate(
    settings: Settings,
    *,
    symbols: Sequence[str],
    confirm_live: bool,
    prompt: Prompt | None,
    portfolio_restored: tuple[bool, str],
    env_file: Path | None = None,
) -> GateResult:
    """Check every condition of ``cdb run --live`` (see the module docstring) and return them.

    ``symbols`` are the symbols the run will trade (they replace ``CDB_SYMBOLS`` for the
    systemcheck). ``prompt`` shows a question and returns what the operator typed (e.g.
    ``typer.prompt``); pass None off a terminal, where only ``confirm_live`` confirms.
    ``portfolio_restored`` is reconciliation's verdict: (restored?, why or what was restored).
    ``env_file`` is the ``.env`` the settings came from: the systemcheck judges it as
    ``cdb systemcheck`` in the same folder does (a file readable by others fails).

    Exit codes, through :meth:`GateResult.error`: 3 (``ConfigurationError``) when keys are
    missing or malformed, the risk limits are not set for live, or ``CDB_HTTP_PORT`` is not set;
    4 (``CheckFailed``) when MEXC rejects the keys, a systemcheck row fails (clock skew, no
    trading permission, an untradable symbol, a halted breaker, …), the portfolio is not
    restored, or the operator did not confirm.
    """
    live = settings.model_copy(update={"mode": "live", "symbols": list(symbols)})
    keys, masked = await _keys_condition(live)
    conditions = [
        keys,
        await asyncio.to_thread(_systemcheck_condition, live, env_file),
        risk_limits_condition(live),
        _metrics_condition(live),
        GateCondition("portfolio restored", portfolio_restored[0], portfolio_restored[1]),
    ]
    conditions.append(
        _confirmation(
            masked, confirm_live=confirm_live, prompt=prompt, ready=all(c.ok for c in conditions)
        )
    )
    return GateResult(tuple(conditions), masked)


async def _keys_condition(settings: Settings) -> tuple[GateCondition, str | None]:
    from cdb_cli.envcheck import settings_secret_problems
    from cdb_cli.kernel import mexc_http_client

    name = "mexc keys"
    problems = [
        problem
        for problem in settings_secret_problems(settings, "live")
        if problem.variable in _LIVE_KEYS
    ]
    if problems:
        detail = "; ".join(problem.line() for problem in problems)
        return GateCondition(name, False, detail, "config"), None
    async with mexc_http_client(settings) as client:
        masked = client.api_key_masked
        try:
            await client.sync_time()  # sign with the measured offset, as the run will
            await client.account()
        except VenueRejected as e:
            return GateCondition(name, False, f"{masked} rejected by MEXC: {e.message}"), masked
        except (DependencyError, VenueError) as e:
            return GateCondition(name, False, f"MEXC unreachable: {e.message}"), masked
        except CdbError as e:  # a malformed answer: not a MEXC we can trade on
            return GateCondition(name, False, f"MEXC answered badly: {e.message}"), masked
    return GateCondition(name, True, f"{masked} accepted by MEXC"), masked


def _systemcheck_condition(settings: Settings, env_file: Path | None) -> GateCondition:
    """Every systemcheck row in live mode, with the run's env file (in a worker thread: the
    checks run their own loop)."""
    from cdb_cli.services.systemcheck import CHECKS, CheckContext, Status, run_checks, secret_values

    context = CheckContext(settings=settings, now=datetime.now(UTC), env_file=env_file)
    rows = run_checks(CHECKS, context, secrets=secret_values(settings))
    failed = [row for row in rows if row.status is Status.FAIL]
    if failed:
        return GateCondition("systemcheck", False, "; ".join(_row_text(row) for row in failed))
    warned = [row.name for row in rows if row.status is Status.WARN]
    detail = f"{len(rows)} checks, none failed"
    if warned:
        detail += f" (warn: {', '.join(warned)})"
    return GateCondition("systemcheck", True, detail)


def _row_text(row: CheckRow) -> str:
    text = f"{row.name} failed"
    if row.value:
        text += f" ({row.value})"
    if row.hint:
        text += f": {row.hint}"
    return text


def risk_limits_condition(settings: Settings) -> GateCondition:
    """The rule for risk limits in live mode: :data:`EXPLICIT_RISK_LIMITS` are set explicitly
    (in the environment, a ``.env`` or an override: ``settings.model_fields_set``), every
    percentage is above 0 and below 100 (the schema already requires above 0), and the minimum
    order is below the maximum (the schema requires it)."""
    from cdb_cli.settings import env_name

    unset = [
        f"{env_name(name)} (default {getattr(settings, name)})"
        for name in EXPLICIT_RISK_LIMITS
        if name not in settings.model_fields_set
    ]
    problems = (
        [f"still at their defaults, set them yourself: {', '.join(unset)} (the defaults are "
         "for paper trading)"] if unset else []
    )  # fmt: skip
    problems += [
        f"{env_name(name)}={getattr(settings, name)} must be below 100"
        for name in _PERCENT_LIMITS
        if Decimal(getattr(settings, name)) >= _HUNDRED
    ]
    if problems:
        return GateCondition("risk limits", False, "; ".join(problems), "config")
    detail = ", ".join(f"{name} {getattr(settings, name)}" for name in EXPLICIT_RISK_LIMITS)
    return GateCondition("risk limits", True, detail)


def _metrics_condition(settings: Settings) -> GateCondition:
    if "http_port" not in settings.model_fields_set:
        return GateCondition(
            "metrics endpoint",
            False,
            "CDB_HTTP_PORT is not set: live trading needs /metrics on a port Prometheus scrapes",
            "config",
        )
    return GateCondition("metrics endpoint", True, f"/metrics on port {settings.http_port}")


def _confirmation(
    masked: str | None, *, confirm_live: bool, prompt: Prompt | None, ready: bool
) -> GateCondition:
    name = "operator confirmed"
    if confirm_live:
        return GateCondition(name, True, "--confirm-live")
    if not ready:
        return GateCondition(name, False, "not asked: another condition failed")
    if prompt is None or masked is None:
        return GateCondition(name, False, "not on a terminal: pass --confirm-live")
    typed = prompt(f"Live trading with real money on MEXC account {masked}. Type {masked} to go")
    if typed.strip() != masked:
        return GateCondition(name, False, "the typed key does not match: not confirmed")
    return GateCondition(name, True, f"typed {masked} at the prompt")


def gate_audit(result: GateResult, *, ts_ns: int, actor: str, run_id: str = "") -> AuditRecord:
    """The audit record of a gate's verdict: action ``live_start`` when it passed, else
    ``live_refused``; detail holds each condition (``ok: …`` / ``fail: …``) and the masked key,
    never a secret. Write it with ``store.add_audit``."""
    detail = {
        condition.name: f"{'ok' if condition.ok else 'fail'}: {condition.detail}"
        for condition in result.conditions
    }
    detail["api_key"] = result.api_key_masked or ""
    return AuditRecord(
        ts_event=ts_ns,
        action=LIVE_START_ACTION if result.ok else LIVE_REFUSED_ACTION,
        actor=actor[:64],
        run_id=run_id,
        detail=detail,
    )


async def pass_gate(
    settings: Settings,
    symbols: list[str],
    *,
    confirm_live: bool,
    prompt: Prompt | None,
    report: Callable[[str], None],
    env_file: Path | None = None,
) -> None:
    """The gate of ``cdb run --live``: ``report`` each line (``ok   name: detail`` or ``FAIL
    name: detail``), audit the verdict in the store, raise :meth:`GateResult.raise_if_refused`.

    A brand-new database is created at the current schema first (as ``--paper`` does), so the
    gate judges it like any other; an existing one out of date still fails the systemcheck."""
    import time

    from cdb_cli.kernel import open_store

    store = await asyncio.to_thread(open_store, settings, create_if_new=True)
    try:
        restored = await portfolio_restored(settings, symbols)
        result = await live_gate(
            settings,
            symbols=symbols,
            confirm_live=confirm_live,
            prompt=prompt,
            portfolio_restored=restored,
            env_file=env_file,
        )
        for name, ok, detail in result.rows():
            report(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        await asyncio.to_thread(
            store.add_audit, gate_audit(result, ts_ns=time.time_ns(), actor=_operator())
        )
    finally:
        await asyncio.to_thread(store.close)
    await _alert_gate(settings, symbols, result)
    result.raise_if_refused()


async def _alert_gate(settings: Settings, symbols: Sequence[str], result: GateResult) -> None:
    """Tell the operator's channels (mail, webhooks) that live trading starts or was refused;
    waits 5 s at most for them, and a channel that fails is a warning line only."""
    from cdb_cli.kernel import notifier

    alerts = notifier(settings)
    if alerts is None:
        return
    who = f"{_operator()} on {', '.join(symbols)}"
    if result.ok:
        subject = "cdb live start: real orders on MEXC"
        body = f"cdb run --live passed the governance gate and starts trading ({who})."
    else:
        subject = "cdb live refused: the governance gate failed"
        lines = "\n".join(condition.line() for condition in result.failed)
        body = f"cdb run --live was refused ({who}):\n{lines}"
    alerts.submit(subject, body)
    await asyncio.to_thread(alerts.close, 5.0)


def _operator() -> str:
    """``user@host`` of who starts the run (``cdb@host`` without a passwd entry: a container)."""
    import getpass
    import socket

    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return f"cdb@{socket.gethostname()}"


async def portfolio_restored(settings: Settings, symbols: list[str]) -> tuple[bool, str]:
    """The gate's "portfolio restored": a dry run of the start-up reconciliation."""
    from cdb_cli.services.reconcile import check_account

    if settings.mexc_api_key is None or settings.mexc_api_secret is None:
        return False, "not checked: the MEXC keys are missing"
    try:
        found = await check_account(settings, symbols, apply=False)
    except CdbError as e:
        return False, f"reconciliation failed: {e.message}"
    problems = [line for line in found.lines() if "external" not in line]
    if found.anomalies or not found.balances_ok:
        return False, "; ".join(problems[:3]) + " (see cdb reconcile)"
    return True, f"store and account agree; {len(problems)} to settle at start"
