"""The operator's questions as documents: what ``cdb risk status``, ``cdb explain``,
``cdb risk explain``, ``cdb report``, ``cdb systemcheck`` and ``cdb backup list`` print with
``--json``, built once here for the commands and for ``cdb mcp``'s tools (no second
implementation). Each function opens the store from the settings (SQLite or PostgreSQL), answers
and closes it; a question with no answer raises :class:`Unanswered` with the document the command
prints for it, a bad option :class:`BadOption`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdb_cli.engine.events import RiskDecision
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.services.systemcheck import CheckContext, CheckRow
    from cdb_cli.settings import Settings

__all__ = [
    "BadOption",
    "Unanswered",
    "Window",
    "backup_list",
    "decision_trace",
    "explain",
    "recent_decisions",
    "report",
    "risk_explain",
    "status",
    "systemcheck",
]


class BadOption(ValueError):
    """A bad option (the commands' exit 2): ``param_hint`` names it as the CLI spells it."""

    def __init__(self, message: str, param_hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.param_hint = param_hint


class Unanswered(Exception):
    """Nothing to answer (the commands' exit 1): ``message`` in one line and ``document``, what
    ``--json`` prints for it."""

    def __init__(self, message: str, document: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.document = document


@dataclass(frozen=True, slots=True)
class Window:
    """Which stored records a question is about: times in UTC nanoseconds, None for open."""

    symbol: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    run_id: str | None = None


def _store(settings: Settings) -> Store:
    from cdb_cli.kernel import open_store

    return open_store(settings)


# --- status -----------------------------------------------------------------------------------


def status(settings: Settings, run_id: str | None = None) -> dict[str, Any]:
    """``cdb risk status``: the trading state, why, by whom and since when, the latest equity
    snapshot's drawdowns and exposure against their limits, the open positions, and the
    readiness of the run on CDB_HTTP_HOST:CDB_HTTP_PORT (its ``/ready``; ``running`` False when
    none answers)."""
    from cdb_cli.adapters.http_health import probe_ready
    from cdb_cli.engine.halts import risk_status
    from cdb_cli.engine.report import iso_utc
    from cdb_cli.kernel import risk_limits

    store = _store(settings)
    try:
        document = risk_status(store, risk_limits(settings), run_id)
        document["positions"] = [
            {
                "symbol": p.symbol,
                "quantity": str(p.quantity),
                "average_price": str(p.average_price),
                "realized_pnl": str(p.realized_pnl),
                "updated": iso_utc(p.ts_updated),
            }
            for p in store.positions()
            if p.quantity != 0
        ]
    finally:
        store.close()
    document["readiness"] = probe_ready(settings.http_host, settings.http_port)
    return document


# --- cdb explain ------------------------------------------------------------------------------


def explain(
    settings: Settings,
    env_file: Path | None,
    *,
    target: str | None,
    window: Window,
    what_if: Sequence[str] = (),
    strategy: str | None = None,
    near: int = 5,
    parse_time: Callable[[str], int],
) -> dict[str, Any]:
    """``cdb explain``: one bar's whole path (``target``: ``SYMBOL@TIME`` or an id), the what-if
    over the stored bars (``what_if``, ``strategy``), or per symbol the funnel and near misses.
    ``parse_time`` reads ``TIME`` of ``SYMBOL@TIME`` as the CLI reads it."""
    from cdb_cli.kernel.strategies import strategy_fields
    from cdb_cli.services.why import ExplainError, parse_changes
    from cdb_cli.services.why import Window as WhyWindow

    try:
        changes = parse_changes(list(what_if), strategy_fields(strategy or settings.strategy))
    except ValueError as e:
        raise BadOption(str(e), "--what-if") from None
    why_window = WhyWindow(
        symbol=window.symbol.upper() if window.symbol else None,
        since_ns=window.since_ns,
        until_ns=window.until_ns,
        run_id=window.run_id,
    )
    changed = _changed_settings(env_file, changes, strategy) if changes or strategy else None
    store = _store(settings)
    try:
        if target is not None:
            from cdb_cli.services.why import explain_bar

            return explain_bar(store, settings, target=target, parse_time=parse_time)
        if changed is not None:
            from cdb_cli.services.why import what_if as run_what_if

            return run_what_if(store, settings, changed, why_window, changes)
        from cdb_cli.services.why import explain_window

        return explain_window(store, settings, why_window, near=near)
    except ExplainError as e:
        raise Unanswered(str(e), {"error": str(e), "symbols": []}) from None
    finally:
        store.close()


def _changed_settings(env_file: Path | None, changes: dict[str, str], strategy: str | None) -> Any:
    """The settings with the what-if's changes (and strategy); a bad value is a BadOption, a
    broken strategy its StrategyError."""
    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.kernel import strategy_factory
    from cdb_cli.kernel.strategies import StrategyError
    from cdb_cli.services.strategy import command_settings

    items = [f"{name}={value}" for name, value in changes.items()]
    try:
        changed = command_settings(env_file, items, strategy)
        strategy_factory(changed)
    except StrategyError:
        raise
    except (ConfigurationError, ValueError) as e:
        details = getattr(e, "details", None)
        raise BadOption(str(details[0] if details else e), "--what-if") from None
    return changed


# --- cdb risk explain -------------------------------------------------------------------------


def _risk_changes(items: Sequence[str]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise BadOption(f"{item!r} is not LIMIT=VALUE", "--what-if")
        changes[name.strip().lower().removeprefix("cdb_")] = value.strip()
    return changes


def _where(window: Window) -> str:
    from cdb_cli.engine.analytics import describe_window

    return describe_window(window.since_ns, window.until_ns, window.symbol, window.run_id)


def _signal_of(store: Store, decision: RiskDecision) -> dict[str, Any] | None:
    from cdb_cli.engine.runs import signal_of

    signal = signal_of(store, decision)
    if signal is None:
        return None
    return {
        "signal_id": signal.event_id,
        "strategy": signal.strategy,
        "side": str(signal.side),
        "price": str(signal.price),
        "strength": signal.strength,
        "indicators": signal.indicators,
    }


def _decisions(store: Store, window: Window, *, operator: bool) -> list[RiskDecision]:
    from cdb_cli.engine.runs import select_decisions

    return select_decisions(
        store,
        symbol=window.symbol,
        since_ns=window.since_ns,
        until_ns=window.until_ns,
        run_id=window.run_id,
        operator=operator,
    )


def decision_trace(
    settings: Settings, decision_id: str, window: Window | None = None
) -> dict[str, Any]:
    """``cdb risk explain DECISION_ID``: one decision's full trace with its signal (looked up in
    ``window``, every stored decision without one)."""
    window = window or Window()
    from cdb_cli.engine.explain import trace

    store = _store(settings)
    try:
        decisions = _decisions(store, window, operator=True)
        chosen = next((d for d in decisions if d.event_id == decision_id), None)
        if chosen is None:
            where = _where(window)
            message = f"No risk decision {decision_id!r} in the store ({where})"
            raise Unanswered(
                message, {"error": message, "decision_id": decision_id, "window": where}
            )
        return {"trace": trace(chosen), "signal": _signal_of(store, chosen)}
    finally:
        store.close()


def risk_explain(
    settings: Settings, window: Window, what_if: Sequence[str] = (), show: int = 20
) -> dict[str, Any]:
    """``cdb risk explain``: the window's verdicts, reasons, top blocker and per-rule values
    against their limits; with ``what_if`` (``LIMIT=VALUE``) the decisions that would flip."""
    from cdb_cli.engine.explain import apply_what_if, summarize
    from cdb_cli.kernel import risk_limits

    changes = _risk_changes(what_if)
    limits = risk_limits(settings)
    try:
        apply_what_if(limits, changes)
    except ValueError as e:
        raise BadOption(str(e), "--what-if") from None
    store = _store(settings)
    try:  # the rules' decisions only: an operator's (a flatten's exits) are no rule's
        decisions = _decisions(store, window, operator=False)
    finally:
        store.close()
    if not decisions:
        where = _where(window)
        message = f"No risk decisions in the window ({where})"
        raise Unanswered(message, {"error": message, "window": where, "decisions": {"total": 0}})
    document = summarize(decisions, limits)
    if changes:
        from cdb_cli.engine.explain import what_if as run_what_if

        document["what_if"] = run_what_if(decisions, limits, changes).as_dict(flips_shown=show)
    return document


def recent_decisions(
    settings: Settings, window: Window, *, offset: int = 0, limit: int = 20
) -> dict[str, Any]:
    """The window's risk decisions, newest first, ``limit`` from ``offset``: each as its trace
    (:func:`decision_trace` without the per-rule rows and what the rules saw) and the rules that
    failed; ``next_offset`` None on the last page."""
    from cdb_cli.engine.explain import trace

    store = _store(settings)
    try:
        decisions = _decisions(store, window, operator=True)
    finally:
        store.close()
    newest_first = decisions[::-1]
    page = newest_first[offset : offset + limit]
    items = []
    for decision in page:
        full = trace(decision)
        checks = full.pop("checks")
        full.pop("state")
        full["failed_rules"] = [c["rule"] for c in checks if c["outcome"] == "fail"]
        items.append(full)
    end = offset + len(page)
    return {
        "total": len(decisions),
        "offset": offset,
        "decisions": items,
        "next_offset": end if end < len(decisions) else None,
    }


# --- cdb report -------------------------------------------------------------------------------


def report(settings: Settings, window: Window) -> tuple[dict[str, Any], str | None]:
    """``cdb report``: trades, PnL per day and per symbol, win rate, fees, exposure and
    rejections of the window, and the reason when the window holds nothing (else None)."""
    from cdb_cli.engine.analytics import analytics, describe_window, nothing_reported, window_fills
    from cdb_cli.engine.runs import select_decisions

    symbol, run = window.symbol, window.run_id
    store = _store(settings)
    try:
        fills = window_fills(
            store, symbol=symbol, run_id=run, since_ns=window.since_ns, until_ns=window.until_ns
        )
        decisions = select_decisions(
            store, symbol=symbol, run_id=run, since_ns=window.since_ns, until_ns=window.until_ns
        )
        snapshots = store.equity_snapshots(since_ns=window.since_ns, until_ns=window.until_ns)
    finally:
        store.close()
    document = analytics(fills.fills, decisions, snapshots, entries=fills.entries)
    where = describe_window(window.since_ns, window.until_ns, symbol, run)
    reason = nothing_reported(
        fills, decisions, snapshots, where, account_wide=not symbol and not run
    )
    return document, reason


# --- cdb systemcheck --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checked:
    """What :func:`systemcheck` found: the ``--json`` document, its rows and what failed."""

    document: dict[str, Any]
    rows: list[CheckRow]
    failed: list[str]
    secrets: list[str]
    context: CheckContext


def systemcheck(env_file: Path | None, settings: Any, *, quick: bool, now: datetime) -> Checked:
    """``cdb systemcheck`` without ``--daily``: every check, one row each. ``settings`` is the
    loaded Settings or the ConfigurationError that loading them raised (its own failed row)."""
    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.services.systemcheck import CHECKS, CheckContext, Status, run_checks, secret_values

    context = CheckContext(settings=None, now=now, quick=quick, env_file=env_file)
    if isinstance(settings, ConfigurationError):
        context.settings_error = settings
    else:
        context.settings = settings
    secrets = secret_values(context.settings)
    rows = run_checks(CHECKS, context, secrets=secrets)
    failed = [row.name for row in rows if row.status is Status.FAIL]
    document: dict[str, Any] = {"ok": not failed, "checks": [row.to_dict() for row in rows]}
    return Checked(document=document, rows=rows, failed=failed, secrets=secrets, context=context)


# --- cdb backup list --------------------------------------------------------------------------


def backup_list(settings: Settings) -> dict[str, Any]:
    """``cdb backup list``: the backups in CDB_BACKUP_DIR, oldest first, damaged ones marked."""
    from cdb_cli.kernel.backups import last_verified, list_backups

    verified = last_verified(settings)
    rows = []
    for backup in list_backups(settings):
        manifest = backup.manifest
        rows.append(
            {
                "backup": backup.path.name,
                "path": str(backup.path),
                "created_at": backup.created_at.isoformat(),
                "engine": manifest.engine if manifest else None,
                "size_bytes": backup.size,
                "rows": manifest.total_rows if manifest else None,
                "schema_revision": manifest.schema_revision if manifest else None,
                "cdb_version": manifest.cdb_version if manifest else None,
                "last_verified": backup.path.name == verified,
                "problem": backup.problem,
            }
        )
    return {"folder": str(settings.backup_dir), "backups": rows}
