"""``cdb systemcheck --daily``: one UTC day's summary from the store, as text and mail.

The summary answers the seed's morning questions from the store alone:

* **trades**: round trips (flat → flat, ``report.round_trips``) that *closed* that day, won and
  lost, their net PnL after fees; fills and fees paid that day;
* **equity**: the last snapshot before the day and the last one in it, when there are any;
* **decisions**: counts by verdict and the rejections by reason code (``explain.summarize``);
* **feed gaps**: per symbol, the minutes of the day without a stored closed 1-minute bar and the
  longest run of them (every configured symbol is listed, so a dead feed shows as 1440).

Money is a ``Decimal`` string; the document is JSON-able as it is.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.services.systemcheck.model import CheckRow
    from cdb_cli.settings import Settings

__all__ = [
    "MINUTES_PER_DAY",
    "daily_summary",
    "day_window",
    "feed_gaps",
    "mail_report",
    "report_text",
    "summary_lines",
    "yesterday",
]

logger = logging.getLogger(__name__)

MINUTES_PER_DAY: Final = 24 * 60
_MINUTE_NS: Final = 60 * 1_000_000_000
_ZERO: Final = Decimal(0)


def day_window(day: date) -> tuple[int, int]:
    """``[00:00, 24:00)`` UTC of ``day`` in ns since the epoch."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    since = int(start.timestamp()) * 1_000_000_000
    return since, since + MINUTES_PER_DAY * _MINUTE_NS


def yesterday(now: datetime) -> date:
    """The UTC day before ``now``."""
    return (now.astimezone(UTC) - timedelta(days=1)).date()


def feed_gaps(
    bar_minutes: dict[str, set[int]], symbols: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Per symbol: bars seen, minutes without a bar, and the longest run of missing minutes.

    ``bar_minutes`` maps a symbol to the minutes of the day (0..1439) that have a closed bar.
    """
    gaps: dict[str, dict[str, int]] = {}
    for symbol in sorted({*symbols, *bar_minutes}):
        seen = bar_minutes.get(symbol, set())
        longest = run = 0
        for minute in range(MINUTES_PER_DAY):
            run = 0 if minute in seen else run + 1
            longest = max(longest, run)
        gaps[symbol] = {
            "bars": len(seen),
            "missing_minutes": MINUTES_PER_DAY - len(seen),
            "longest_gap_minutes": longest,
        }
    return gaps


def _bar_minutes(store: Store, since: int, until: int) -> dict[str, set[int]]:
    from cdb_cli.engine.events import Bar

    minutes: dict[str, set[int]] = {}
    for bar in store.events(Bar, since_ns=since, until_ns=until):
        if bar.interval == "1m" and bar.closed:
            minutes.setdefault(bar.symbol, set()).add((bar.ts_event - since) // _MINUTE_NS)
    return minutes


def _trades(store: Store, since: int, until: int) -> dict[str, Any]:
    from cdb_cli.engine.fees import fees_in_quote, other_fees
    from cdb_cli.engine.report import round_trips

    history = store.fills(until_ns=until)  # a trip closed today may have opened earlier
    trips, still_open = round_trips(history)
    closed = [trip for trip in trips if since <= trip.ts_close < until]
    today = [fill for fill in history if fill.ts_event >= since]
    won = sum(1 for trip in closed if trip.pnl > 0)
    return {
        "closed": len(closed),
        "won": won,
        "lost": len(closed) - won,
        "open_at_end": still_open,
        "pnl": str(sum((trip.pnl for trip in closed), _ZERO)),
        "fills": len(today),
        "fees": str(fees_in_quote(today)),
        "fees_other_assets": other_fees(today),
    }


def _equity(store: Store, since: int, until: int) -> dict[str, str] | None:
    before = store.equity_snapshots(until_ns=since, limit=1, descending=True)
    during = store.equity_snapshots(since_ns=since, until_ns=until, limit=1, descending=True)
    if not during:
        return None
    end = during[0].equity
    start = before[0].equity if before else None
    return {
        "start": "" if start is None else str(start),
        "end": str(end),
        "change": "" if start is None else str(end - start),
    }


def _decisions(store: Store, settings: Settings, since: int, until: int) -> dict[str, Any]:
    from cdb_cli.engine.events import RiskDecision
    from cdb_cli.engine.explain import summarize
    from cdb_cli.engine.risk import normalize_decision
    from cdb_cli.kernel import risk_limits

    decisions = store.events(RiskDecision, since_ns=since, until_ns=until)
    summary = summarize(decisions, risk_limits(settings))
    rejected: Counter[str] = Counter()
    for decision in map(normalize_decision, decisions):
        if decision.verdict == "rejected":
            rejected.update({check.code for check in decision.checks if not check.passed})
    return {
        **summary["decisions"],
        "rejections_by_reason": dict(sorted(rejected.items(), key=lambda i: (-i[1], i[0]))),
        "top_blocker": summary["top_blocker"],
    }


def daily_summary(store: Store, settings: Settings, day: date) -> dict[str, Any]:
    """The summary of UTC ``day`` (see the module docstring)."""
    since, until = day_window(day)
    return {
        "day": day.isoformat(),
        "trades": _trades(store, since, until),
        "equity": _equity(store, since, until),
        "decisions": _decisions(store, settings, since, until),
        "feed_gaps": feed_gaps(_bar_minutes(store, since, until), settings.symbols),
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as plain text lines (terminal and mail)."""
    from cdb_cli.engine.fees import describe_other

    if "error" in summary:
        return [f"Summary of {summary['day']}: not available ({summary['error']})"]
    trades, decisions = summary["trades"], summary["decisions"]
    lines = [
        f"Summary of {summary['day']} (UTC)",
        f"  trades: {trades['closed']} closed ({trades['won']} won, {trades['lost']} lost), "
        f"PnL {trades['pnl']} after fees; {trades['fills']} fills, fees {trades['fees']}"
        f"{describe_other(trades.get('fees_other_assets', {}))}; "
        f"{trades['open_at_end']} position(s) open",
    ]
    equity = summary["equity"]
    if equity is not None:
        start = equity["start"] or "?"
        lines.append(f"  equity: {start} → {equity['end']} ({equity['change'] or 'n/a'})")
    reasons = ", ".join(f"{code} {n}" for code, n in decisions["rejections_by_reason"].items())
    lines.append(
        f"  decisions: {decisions['total']} ({decisions['approved']} approved, "
        f"{decisions['reduced']} reduced, {decisions['rejected']} rejected"
        + (f": {reasons})" if reasons else ")")
    )
    for symbol, gap in summary["feed_gaps"].items():
        lines.append(
            f"  feed {symbol}: {gap['bars']} bars, {gap['missing_minutes']} minutes missing "
            f"(longest gap {gap['longest_gap_minutes']} min)"
        )
    return lines


def report_text(rows: Sequence[CheckRow], summary: dict[str, Any]) -> str:
    """The mail body: one line per check, then the summary."""
    width = max((len(row.name) for row in rows), default=0)
    lines = [
        f"{str(row.status).upper():4}  {row.name:{width}}  {row.value}"
        + (f"  ({row.hint})" if row.hint else "")
        for row in rows
    ]
    return "\n".join([*lines, "", *summary_lines(summary), ""])


def mail_report(
    settings: Settings, rows: Sequence[CheckRow], summary: dict[str, Any]
) -> dict[str, Any]:
    """Mail the report when SMTP is configured, and post it to each ``CDB_WEBHOOK_URLS`` target;
    return what happened (for ``--json``; ``webhooks``: one result per target, when set).

    Raises ``DependencyError`` (one line, no password) when the mail cannot be sent; a webhook
    that fails is a warning line and its result, not an error.
    """
    import socket

    from cdb_cli.adapters.notify import EmailNotifier
    from cdb_cli.services.systemcheck.model import Status

    failed = [row.name for row in rows if row.status is Status.FAIL]
    verdict = "all ok" if not failed else f"{len(failed)} failed: {', '.join(failed)}"
    subject = f"cdb daily check {summary['day']} on {socket.gethostname()}: {verdict}"
    text = report_text(rows, summary)
    posted = _post_report(settings, subject, text)
    notifier = EmailNotifier.from_settings(settings)
    if notifier is None:
        return {"sent": False, "reason": "CDB_SMTP_HOST is unset", **posted}
    notifier.send(subject, text)
    return {"sent": True, "subject": subject, "to": list(notifier.config.recipients), **posted}


def _post_report(settings: Settings, subject: str, text: str) -> dict[str, Any]:
    """The report to each webhook (``{"webhooks": [results]}``; empty when none is set)."""
    if settings.webhook_urls is None:
        return {}
    from cdb_cli.adapters.notify import Notifier, WebhookChannel, parse_webhook_urls

    targets = parse_webhook_urls(settings.webhook_urls.get_secret_value())
    results = Notifier([WebhookChannel(target) for target in targets]).send(subject, text)
    for result in results:
        if not result.ok:
            logger.warning("Daily report not posted to %s: %s", result.channel, result.detail)
    return {"webhooks": [result.to_dict() for result in results]}
