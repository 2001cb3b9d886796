"""Component mode: ``cdb run --paper --component NAME``, one stage of the loop per process.

The five components talk only over the bus (Redis Streams, ``CDB_BUS_URL=redis://…``) and share
one store (PostgreSQL, so that they can run on several hosts):

- ``marketdata``: the MEXC feed (``CDB_MEXC_WS_URL``) → ``market_data``: trades, quotes and the
  closed bars it builds; stores them. The bars also go, first, to ``market_bars``.
- ``signals``: closed bars (``market_bars``: woken once per bar, not once per trade) → the
  strategies → ``trading_signals`` (stored) and its progress.
- ``risk``: ``market_data``, ``trading_signals``, ``execution_events`` → decisions on
  ``risk_events`` and approvals on ``risk_approved_trades`` (stored) and its progress.
- ``execution``: ``market_data`` and approvals → the simulated venue → ``execution_events``;
  stores orders, fills and reports.
- ``portfolio``: ``market_data`` (read in batches, at most four times a second: it decides
  nothing, so it need not be woken by every trade) and ``execution_events`` → the ledger →
  positions and equity snapshots.

Same decisions as one process: streams are read independently, so every stage that decides
follows the market stream in order and waits, at the places where one process would have had the
answer already, for the stage before it (the rules are in each module's docstring):

- ``marketdata`` publishes a closed bar (``Bar.closed_at`` = the time of the trade that closed
  it) just before that trade; decisions are made at ``closed_at``, in event time, not wall time;
- ``signals`` says after each bar how many signals it published for it, ``risk`` how many orders
  it approved (progress reports, in the stream the next stage reads: ``trading_signals`` and
  ``risk_approved_trades``, so that stage is woken once per bar); ``risk`` and ``execution`` wait
  for them at the bar before they go past it;
- before each trade, ``risk`` waits for the reports of the orders that may fill at it, and books
  them there; ``execution`` fills in event time (first trade at or after approval time + latency).
- an operator's act is picked up by ``risk`` from the store (within a second); the exits of
  ``cdb risk halt --flatten`` are approved at each symbol's next closed bar, with its decisions,
  so ``execution`` places them at the same point of the stream as ``risk`` books them.

A wait is bounded (``risk`` 5 s for signals, ``execution`` 11 s for approvals; the time does not
run while the bus is down): after it the component warns and goes on with what it has. What comes
late for a bar handled without it is never dropped silently: an approved exit is placed at once,
an approved entry is recorded ``EXPIRED`` with its reason (``execution``'s docstring), a late
signal is named in a warning and counted, not decided.

Outages of the store or the bus are states, not exits (``base.Component``): writes are kept in
memory until the store takes them, ``risk`` approves no new entry meanwhile, reads and
publications are tried again with a growing pause, ``/ready`` says ``database down`` or ``bus
down`` and ``dependency_up`` follows (a ping every 5 s), and everything resumes by itself.

Consumer groups are named after the component: a restarted component gets back what it had not
acknowledged, and ``risk``, ``execution`` and ``portfolio`` rebuild the ledger from the stored
fills (so ``risk`` and ``portfolio`` acknowledge a fill report only once ``execution`` has stored
its fill: ``confirm.StoredFills``). A group starts at the end of its stream the first time, so
start the consumers before ``marketdata``. Health and metrics: each component serves ``/health``
on ``CDB_HTTP_PORT`` plus its index in ``marketdata, signals, risk, execution, portfolio``
(8000..8004 by default).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.runtime.components.base import COMPONENTS
from cdb_cli.runtime.stopping import stop_on_signals

if TYPE_CHECKING:
    from cdb_cli.kernel.system import Kernel
    from cdb_cli.settings import Settings

__all__ = ["COMPONENTS", "check_component_settings", "run_component"]

logger = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0002


def check_component_settings(settings: Settings, component: str) -> None:
    """Refuse what cannot work across processes (exit 3); warn about what only works on one host.

    Raises
    ------
    ConfigurationError
        Unknown component, or ``CDB_BUS_URL`` is not Redis.
    """
    if component not in COMPONENTS:
        raise ConfigurationError(f"Unknown component {component!r}; one of {', '.join(COMPONENTS)}")
    if urlsplit(settings.bus_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            "--component needs the components to share a bus: set CDB_BUS_URL=redis://HOST:6379/0"
        )
    if settings.database_url.startswith("sqlite"):
        logger.warning(
            "CDB_DATABASE_URL is an SQLite file: the components can share it only on this host; "
            "use PostgreSQL to run them on several hosts"
        )


async def run_component(
    settings: Settings,
    *,
    component: str,
    symbols: Sequence[str],
    stop: asyncio.Event | None = None,
    latency_log: Path | None = None,
) -> dict[str, int]:
    """Run one component until ``stop`` (or SIGINT/SIGTERM); return its counters."""
    from cdb_cli.engine.records import Mode
    from cdb_cli.kernel.system import open_kernel
    from cdb_cli.logs import RUN_ID
    from cdb_cli.runtime.components.base import Component
    from cdb_cli.runtime.lifecycle import new_run_id
    from cdb_cli.runtime.startup import StoppedStarting, load_instruments

    check_component_settings(settings, component)
    # The store is written from a worker thread; by default the loop's thread may wait 5 ms for
    # the GIL behind it at every await, which is the whole latency budget of a hop.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    stop = stop or asyncio.Event()
    run_id = new_run_id()
    with stop_on_signals(stop):
        async with open_kernel(
            settings, Mode.PAPER, symbols=symbols, run_id=run_id, create_store=False
        ) as kernel:
            try:
                kernel.instruments = await load_instruments(kernel.http, symbols, stop)
            except StoppedStarting as e:
                logger.info(
                    "Component %s stopped before it started, waiting for %s", component, e.what
                )
                return {}
            RUN_ID.set(run_id)
            common: dict[str, Any] = {
                "store": kernel.store,
                "bus": kernel.bus,
                "symbols": symbols,
                "instruments": kernel.instruments,
                "run_id": run_id,
                "latency_log": latency_log,
                "metrics": kernel.metrics,
                "alert": kernel.alert,
                "clock": kernel.clock,
            }
            runner: Component = _build(settings, component, common, kernel)
            health = kernel.health_server(
                runner.readiness, port=settings.http_port + COMPONENTS.index(component)
            )
            async with health:
                logger.info("Component %s: health and metrics on %s", component, health.url)
                return await runner.run(stop)


def _build(settings: Settings, component: str, common: dict[str, Any], kernel: Kernel) -> Any:
    if component == "marketdata":
        from cdb_cli.runtime.components.marketdata import MarketDataComponent

        return MarketDataComponent(settings, feed=kernel.market_feed(), **common)
    if component == "signals":
        from cdb_cli.runtime.components.signals import SignalsComponent

        warm_up = None
        if settings.bar_seconds == 60:  # MEXC's 1-minute klines are these bars
            warm_up = kernel.kline_warm_up()
        else:
            logger.warning("Bars of %d s: no kline warm-up of the indicators", settings.bar_seconds)
        return SignalsComponent(settings, warm_up=warm_up, **common)
    if component == "risk":
        from cdb_cli.runtime.components.risk import RiskComponent

        return RiskComponent(settings, **common)
    if component == "execution":
        from cdb_cli.runtime.components.execution import ExecutionComponent

        return ExecutionComponent(settings, **common)
    from cdb_cli.runtime.components.portfolio import PortfolioComponent

    return PortfolioComponent(settings, **common)
