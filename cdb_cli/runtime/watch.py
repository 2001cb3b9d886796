"""Feed freshness, store outages and alerts for the live loop.

:class:`FeedWatch` remembers when each symbol last had market data; a symbol quiet for longer
than its limit raises one alert, and its return is logged. :class:`StoreWatch` follows the
store's outages: one line and one alert when it goes, one line when it is back, the run stopped
when it stays down too long. :func:`send_alert` hands an alert to
the notifier (``Notifier.send_async``: rate-limited by subject, queued for the mail and each
webhook, never waited for) and never lets a failed alert stop trading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from cdb_cli.engine.errors import CdbError, DependencyError
from cdb_cli.engine.risk import TradingState

if TYPE_CHECKING:
    from cdb_cli.engine.records import FillRecord
    from cdb_cli.kernel.system import Metrics

__all__ = [
    "Alert",
    "Dependency",
    "FeedWatch",
    "StoreWatch",
    "fill_alerts",
    "halt_alerts",
    "send_alert",
]

logger = logging.getLogger(__name__)

Alert = Callable[[str, str], Awaitable[object]]
"""Sends an alert (subject, body), e.g. ``Notifier.send_async``; rate-limits itself."""


class FeedWatch:
    """When each symbol last had market data, and which ones are stale."""

    def __init__(self, symbols: Sequence[str], stale_after_ns: int) -> None:
        self.symbols = list(symbols)
        self.stale_after_ns = stale_after_ns
        self._last_seen: dict[str, int] = {}
        self._stale: set[str] = set()
        self._started: int | None = None  # a symbol that never sends counts from here

    def start(self, now_ns: int) -> None:
        """The feed started: a symbol with no data at all goes stale from this moment."""
        self._started = now_ns

    def seen(self, symbol: str, now_ns: int) -> None:
        self._last_seen[symbol] = now_ns

    def ages(self, now_ns: int) -> dict[str, float | None]:
        """Seconds since each symbol's last data (None: nothing yet)."""
        return {
            symbol: (now_ns - self._last_seen[symbol]) / 1e9 if symbol in self._last_seen else None
            for symbol in self.symbols
        }

    def check(self, now_ns: int, run_id: str) -> list[tuple[str, str]]:
        """The alerts (subject, body) due now: each symbol that just went stale, once."""
        alerts = []
        for symbol in self.symbols:
            seen = self._last_seen.get(symbol, self._started)
            stale = seen is not None and now_ns - seen > self.stale_after_ns
            if stale and symbol not in self._stale:
                self._stale.add(symbol)
                age = (now_ns - (seen or now_ns)) / 1e9
                logger.warning("Feed of %s is stale: no market data for %.0f s", symbol, age)
                alerts.append(
                    (
                        f"cdb feed stale: {symbol}",
                        f"No market data for {symbol} for {age:.0f} s (run {run_id}); the risk "
                        "engine refuses to trade on stale prices.",
                    )
                )
            elif not stale and symbol in self._stale:
                self._stale.discard(symbol)
                logger.warning("Feed of %s is back", symbol)
        return alerts


def halt_alerts(changes: Sequence[tuple[int, str, str]], who: str) -> list[tuple[str, str]]:
    """The alerts (subject, body) of the HALTED ones among trading-state ``changes``
    (``(ts, state, reason)``, as ``PipelineStats.state_changes``); ``who`` names the run."""
    return [
        (
            "cdb circuit breaker: trading halted",
            f"{who} halted trading: {reason}. Resume with 'cdb risk reset --reason ...' after "
            "review.",
        )
        for _, state, reason in changes
        if state == TradingState.HALTED
    ]


def fill_alerts(fills: Sequence[FillRecord], who: str) -> list[tuple[str, str]]:
    """The alerts (subject, body) of stored ``fills`` (``CDB_NOTIFY_FILLS``); the subject
    names the order, so the rate limit holds back no other order's fill."""
    return [
        (
            f"cdb fill: {fill.symbol} {fill.side} {fill.quantity} at {fill.price} "
            f"({fill.client_order_id})",
            f"{who}: {fill.side} {fill.quantity} {fill.symbol} at {fill.price}, fee "
            f"{format(fill.fee.normalize(), 'f')} {fill.fee_asset} ({fill.liquidity}); order "
            f"{fill.client_order_id}, fill {fill.fill_id}.",
        )
        for fill in fills
    ]


async def send_alert(alert: Alert | None, subject: str, body: str) -> None:
    """Send through ``alert`` when there is one; a failure is a warning line, not an error."""
    if alert is None:
        return
    try:
        await alert(subject, body)
    except CdbError as e:
        logger.warning("Alert %r not sent: %s", subject, e.message)


class Dependency:
    """A dependency as one of a loop's calls sees it (``what``: the call, e.g. ``signals:
    publishing``): ``up`` until a call fails, one line when it goes and one when it answers
    again; with ``metrics``, ``dependency_up{dependency=name}`` follows and each failure counts.
    """

    def __init__(self, name: str, what: str, metrics: Metrics | None = None) -> None:
        self.name = name
        self.what = what
        self.up = True
        self._metrics = metrics
        if metrics is not None:
            metrics.set_dependency(name, True)

    def failed(self, error: CdbError) -> None:
        if self.up:
            logger.warning("%s failed (%s); trying again", self.what, error)
        self.up = False
        if self._metrics is not None:
            self._metrics.set_dependency(self.name, False)

    def answered(self) -> None:
        """The call worked. Called after every publication and read: only a change of state
        costs anything (a line, the gauge)."""
        if self.up:
            return
        logger.warning("%s works again", self.what)
        self.up = True
        if self._metrics is not None:
            self._metrics.set_dependency(self.name, True)


STORE_GRACE_S = 2.0
"""How long the store may fail before the loop treats it as down."""


class StoreWatch:
    """An outage of the store is a state, not an exit: while it takes no writes the loop refuses
    new entries (exits go on, kept in memory), ``/ready`` says ``database down``, the metrics
    show it (``dependency_up{dependency="database"}``) and one alert goes out; when a write
    succeeds again all of it resumes. Down longer than ``limit_s``
    (``CDB_STORE_OUTAGE_LIMIT_SECONDS``), :meth:`note` raises: the run stops with exit 1."""

    def __init__(
        self,
        limit_s: float,
        *,
        who: str,
        alert: Alert | None,
        metrics: Metrics | None,
        consequence: str = "no new entries until it does; exits go on",
    ) -> None:
        self.limit_s = limit_s
        self._who = who
        self._consequence = consequence
        self._alert = alert
        self._metrics = metrics
        self._down_since: float | None = None
        self._alarmed = False

    async def note(self, up: bool) -> bool:
        """Take the store's state after a write; return True while it is down. A failure that
        lasts less than :data:`STORE_GRACE_S` (a lock, a dropped connection that the next
        write reopens) refuses no entry and raises no alarm."""
        now = asyncio.get_running_loop().time()
        if self._metrics is not None:
            self._metrics.set_dependency("database", up)
        if up:
            if self._alarmed:
                logger.warning("The store takes writes again")
            self._down_since, self._alarmed = None, False
            return False
        if self._down_since is None:
            self._down_since = now
        down_s = now - self._down_since
        if down_s < STORE_GRACE_S:
            return False
        if not self._alarmed:
            self._alarmed = True
            logger.error("The store takes no writes: %s", self._consequence)
            await send_alert(
                self._alert,
                "cdb: the store is down",
                f"{self._who}: the store takes no writes: {self._consequence}. What it does "
                "meanwhile is kept in memory and written once the store is back.",
            )
        elif down_s > self.limit_s:
            raise DependencyError(
                f"The store has taken no writes for {down_s:.0f} s "
                "(CDB_STORE_OUTAGE_LIMIT_SECONDS): stopping; what it did not take is spilled"
            )
        return True
