"""The one module that chooses implementations: settings in, ports out.

Commands never construct ``SqlStore`` or ``RedisBus`` themselves; they ask the kernel, so replay,
paper and live differ only in what is picked here (STYLE.md §2.3). Adapters are imported inside the
functions, so importing the kernel costs nothing until a port is opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, overload
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from decimal import Decimal

    from cdb_cli.adapters.mexc.execution import MexcExecutionClient
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.adapters.notify.fanout import Notifier
    from cdb_cli.engine.clock import Clock, TestClock
    from cdb_cli.engine.config import PaperExecutionConfig, RiskLimits, SignalConfig
    from cdb_cli.engine.execution import SimulatedExecution
    from cdb_cli.engine.instruments import Instrument
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.portfolio import Portfolio
    from cdb_cli.engine.ports.bus import MessageBus
    from cdb_cli.engine.ports.execution import ExecutionVenue
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.engine.recorders import Recorder
    from cdb_cli.engine.records import Mode
    from cdb_cli.engine.remote import RemoteStrategy
    from cdb_cli.kernel.strategies import StrategyFactory
    from cdb_cli.settings import Settings

__all__ = [
    "approval_venue",
    "build_pipeline",
    "build_risk_pipeline",
    "cdb_executable",
    "clock_for",
    "instrument_for",
    "mexc_execution_client",
    "mexc_http_client",
    "notifier",
    "open_bus",
    "open_store",
    "paper_execution_config",
    "risk_limits",
    "signal_config",
    "strategy_factory",
]


@overload
def clock_for(mode: Literal[Mode.REPLAY], *, start_ns: int = 0) -> TestClock: ...


@overload
def clock_for(mode: Mode, *, start_ns: int = 0) -> Clock: ...


def clock_for(mode: Mode, *, start_ns: int = 0) -> Clock:
    """The clock of ``mode``: a replay's is simulated (its data moves it on, from ``start_ns``);
    paper and live runs read the wall."""
    from cdb_cli.engine.records import Mode

    if mode is Mode.REPLAY:
        from cdb_cli.engine.clock import TestClock

        return TestClock(start_ns)
    from cdb_cli.adapters.clock import LiveClock

    return LiveClock()


def open_store(settings: Settings, *, create_if_new: bool = False) -> Store:
    """Open the store at ``CDB_DATABASE_URL``.

    ``create_if_new`` migrates a brand-new database (no tables at all) to the current schema, so
    the first ``cdb run`` on embedded defaults just works. An existing database that is not at the
    code's revision is never touched: it raises ``SchemaOutOfDate`` (run ``cdb db upgrade``), and an
    unreachable server raises ``DependencyError`` naming host and port, never the password.
    """
    from cdb_cli.adapters.sql.migrations import create_if_new as create_schema
    from cdb_cli.adapters.sql.store import SqlStore

    if create_if_new:
        create_schema(settings.database_url)
    return SqlStore(settings.database_url)


def open_bus(settings: Settings) -> MessageBus:
    """The bus of ``CDB_BUS_URL``: in process for ``memory://``, Redis Streams for ``redis://``.

    The Redis bus connects lazily; enter it (``async with``) to ping the server, which raises
    ``DependencyError`` with one line when Redis is down.
    """
    if urlsplit(settings.bus_url).scheme == "memory":
        from cdb_cli.engine.bus import InMemoryBus

        return InMemoryBus()
    from cdb_cli.adapters.redis_bus import RedisBus

    return RedisBus(settings.bus_url, prefix=settings.bus_prefix)


def notifier(
    settings: Settings,
    *,
    run_id: str | None = None,
    timeout_s: float | None = None,
    attempts: int | None = None,
) -> Notifier | None:
    """The operator's channels (``CDB_SMTP_*`` mail, each ``CDB_WEBHOOK_URLS`` target) behind
    one notifier, or None when none is configured; ``timeout_s`` and ``attempts`` override the
    webhooks' defaults (``cdb notify test`` tries once)."""
    from cdb_cli.adapters.notify.fanout import Notifier
    from cdb_cli.adapters.notify.webhook import ATTEMPTS, TIMEOUT_S

    return Notifier.from_settings(
        settings,
        run_id=run_id,
        timeout_s=TIMEOUT_S if timeout_s is None else timeout_s,
        attempts=ATTEMPTS if attempts is None else attempts,
    )


def risk_limits(settings: Settings) -> RiskLimits:
    """The engine's frozen ``RiskLimits`` from the settings (``CDB_`` + field name)."""
    from cdb_cli.engine.config import RiskLimits
    from cdb_cli.settings import engine_config

    return engine_config(settings, RiskLimits)


def signal_config(settings: Settings) -> SignalConfig:
    """The strategy's frozen ``SignalConfig`` from the settings (``CDB_`` + field name)."""
    from cdb_cli.engine.config import SignalConfig
    from cdb_cli.settings import engine_config

    return engine_config(settings, SignalConfig)


def strategy_factory(settings: Settings) -> StrategyFactory:
    """The strategy of ``CDB_STRATEGY`` with its settings, loaded and probed: one instance per
    symbol from each call of the factory. ``StrategyError`` (exit 3, one line) when it is broken
    (:mod:`cdb_cli.kernel.strategies`)."""
    from cdb_cli.kernel.strategies import strategy_factory as load

    return load(settings)


def paper_execution_config(settings: Settings) -> PaperExecutionConfig:
    """The simulated venue's config from the settings (``CDB_PAPER_`` + field name)."""
    from cdb_cli.engine.config import PaperExecutionConfig
    from cdb_cli.settings import engine_config

    return engine_config(settings, PaperExecutionConfig)


def instrument_for(settings: Settings, symbol: str) -> Instrument:
    """The instrument of ``symbol`` when the venue's exchangeInfo is not at hand (replay)."""
    from cdb_cli.engine.instruments import default_instrument

    return default_instrument(symbol, taker_fee=settings.paper_fee_pct / 100)


def build_pipeline(
    settings: Settings,
    environment: Mode,
    *,
    symbols: Sequence[str],
    clock: Clock,
    recorder: Recorder,
    run_id: str,
    starting_cash: Decimal | None = None,
    instruments: Mapping[str, Instrument] | None = None,
    record_curve: bool = False,
    portfolio: Portfolio | None = None,
    trace_interval_ns: int | None = None,
) -> TradingPipeline:
    """Wire strategy, risk, execution and portfolio for ``environment``.

    Signals (one instance per symbol from :func:`strategy_factory`), risk and the portfolio are
    the same objects in every environment; the execution
    venue is simulated in REPLAY and PAPER (slippage seeded by ``CDB_PAPER_SEED``); in LIVE it is
    ``LiveExecution``, which queues orders for the runtime to send to MEXC (``instruments`` from
    the venue's exchangeInfo are required there).
    ``run_id`` prefixes every event and client order id, so runs never collide in one store.
    With ``trace_interval_ns`` (the bars' length) every closed bar's strategy trace goes to
    ``recorder`` too (``cdb explain``); the run loop always keeps them, a replay when it persists.
    """
    import random

    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.engine.execution import SimulatedExecution
    from cdb_cli.engine.instruments import split_symbol
    from cdb_cli.engine.live_execution import LiveExecution, client_order_id_prefix
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.portfolio import Portfolio as NewPortfolio
    from cdb_cli.engine.records import Mode
    from cdb_cli.engine.risk import RiskEngine
    from cdb_cli.engine.traces import Tracer

    if not symbols:
        raise ConfigurationError("No symbols to trade")
    try:
        quotes = {split_symbol(symbol)[1] for symbol in symbols}
    except ValueError as e:
        raise ConfigurationError(str(e)) from None
    if len(quotes) > 1:
        raise ConfigurationError(
            f"All symbols must share one quote currency, found {sorted(quotes)}"
        )
    strategy = strategy_factory(settings)
    execution: ExecutionVenue
    if environment is Mode.LIVE:
        if not instruments:
            raise ConfigurationError("Live trading needs the venue's instruments (exchangeInfo)")
        execution = LiveExecution(
            instruments,
            id_prefix=client_order_id_prefix(run_id),
            entry="LIMIT" if settings.live_entry_order == "limit" else "MARKET",
            limit_timeout_ns=settings.live_limit_timeout_seconds * 1_000_000_000,
        )
    else:
        chosen = (
            dict(instruments) if instruments else {s: instrument_for(settings, s) for s in symbols}
        )
        mode = Mode.REPLAY if environment is Mode.REPLAY else Mode.PAPER
        execution = SimulatedExecution(
            paper_execution_config(settings),
            chosen,
            random.Random(settings.paper_seed),  # noqa: S311 - simulated slippage, not crypto
            id_prefix=client_order_id_prefix(run_id),
            mode=mode,
            source=mode,
        )
    return TradingPipeline(
        strategies={symbol: strategy() for symbol in symbols},
        risk=RiskEngine(risk_limits(settings)),
        execution=execution,
        portfolio=portfolio
        or NewPortfolio(
            starting_cash if starting_cash is not None else settings.starting_cash,
            quote_currency=quotes.pop(),
        ),
        clock=clock,
        recorder=recorder,
        assumed_spread_pct=settings.assumed_spread_pct,
        run_id=run_id,
        record_curve=record_curve,
        max_strategy_errors=settings.strategy_max_errors,
        # A live loop builds its traces once the orders of the round are out (runtime/paper.py).
        tracer=Tracer(
            recorder,
            run_id=run_id,
            interval_ns=trace_interval_ns,
            source="signals",
            deferred=environment is not Mode.REPLAY,
        )
        if trace_interval_ns
        else None,
    )


def mexc_execution_client(
    http: MexcHttpClient, ws_url: str, instruments: Mapping[str, Instrument]
) -> MexcExecutionClient:
    """The MEXC venue: orders on a signed REST client, its user stream at ``ws_url``."""
    from cdb_cli.adapters.mexc.execution import MexcExecutionClient

    return MexcExecutionClient(http, ws_url, instruments=dict(instruments))


def cdb_executable() -> str:
    """The ``cdb`` program of this installation (the loop's scheduled jobs run it)."""
    from cdb_cli.adapters.backup.schedule import cdb_executable as find

    return str(find())


def mexc_http_client(settings: Settings) -> MexcHttpClient:
    """The MEXC REST client at ``CDB_MEXC_REST_URL``, signed with the configured keys if both are
    set (public endpoints only otherwise). Enter it (``async with``) to close its connections."""
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.adapters.mexc.signing import Credentials

    credentials = None
    if settings.mexc_api_key is not None and settings.mexc_api_secret is not None:
        credentials = Credentials(
            settings.mexc_api_key.get_secret_value(), settings.mexc_api_secret.get_secret_value()
        )
    return MexcHttpClient(settings.mexc_rest_url, credentials)


def build_risk_pipeline(
    settings: Settings,
    *,
    symbols: Sequence[str],
    clock: Clock,
    recorder: Recorder,
    run_id: str,
    portfolio: Portfolio,
    instruments: Mapping[str, Instrument],
) -> tuple[TradingPipeline, dict[str, RemoteStrategy]]:
    """The ``risk`` component's pipeline and its stand-in strategies (``cdb run --paper
    --component risk``): the paper pipeline's risk, portfolio and loss limits, with the intents
    coming from the ``signals`` process (``RemoteStrategy``) and the orders going to the
    ``execution`` process (``RemoteExecution``)."""
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.remote import RemoteExecution
    from cdb_cli.engine.remote import RemoteStrategy as StandIn
    from cdb_cli.engine.risk import RiskEngine

    strategies = {symbol: StandIn() for symbol in symbols}
    pipeline = TradingPipeline(
        strategies=strategies,
        risk=RiskEngine(risk_limits(settings)),
        execution=RemoteExecution(instruments, latency_ms=settings.paper_latency_ms),
        portfolio=portfolio,
        clock=clock,
        recorder=recorder,
        assumed_spread_pct=settings.assumed_spread_pct,
        run_id=run_id,
    )
    return pipeline, strategies


def approval_venue(
    settings: Settings, *, instruments: Mapping[str, Instrument], run_id: str
) -> SimulatedExecution:
    """The ``execution`` component's simulated venue: the paper venue of ``build_pipeline``
    (same config, same seeded slippage), naming each order by its approval's event id."""
    import random

    from cdb_cli.engine.records import Mode
    from cdb_cli.engine.remote import ApprovalIdExecution

    return ApprovalIdExecution(
        paper_execution_config(settings),
        instruments,
        random.Random(settings.paper_seed),  # noqa: S311 - simulated slippage, not crypto
        id_prefix=run_id.replace("-", "_")[:22],
        mode=Mode.PAPER,
        source="paper",
    )
