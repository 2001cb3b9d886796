"""Prometheus metrics of a cdb run, on their own registry (never prometheus-client's global one).

The seed's names are kept exactly (:data:`SEED_METRICS`). Counters are created without their
``_total`` suffix: prometheus-client adds it on exposition (``Counter("trades", …)`` is exposed as
``trades_total``, plus ``trades_created``), so the exposed names are the seed's.

What counts as what:

- **A trade** is an order that reached its end at the venue (paper or live): its terminal
  execution report (FILLED, CANCELED, PARTIALLY_CANCELED, REJECTED or EXPIRED). ``trades_total``
  counts them, ``trades_successful_total`` counts the ones that ended **FILLED** (completely filled;
  an order whose unfillable dust rest was dropped also ends FILLED). A trade is counted once,
  when it ends, so no per-order memory is kept over a run of weeks; an order still working is
  not counted yet. ``trades_successful_total / trades_total`` is the execution success rate —
  not a PnL win rate, which the portfolio knows and ``portfolio_equity`` shows.
- **Risk checks**: every rule's result in every decision; ``risk_checks_passed_total`` counts the
  passed ones (a rule that does not apply to an exit passes), ``risk_checks_failed_total{rule}``
  the failed ones. ``risk_rejections_total{reason}`` counts the reason codes of *rejected*
  decisions (one decision may carry several; ``size_zero`` when every rule passed but the size
  came out as 0).
- **Exit signals with nothing held** (verdict ``nothing_held``: the strategy's exit while flat)
  are not rejections: they count only in ``risk_decisions_total{verdict="nothing_held"}``, never
  in ``risk_rejections_total``; their position check counts as passed. Decisions are read
  through :func:`~cdb_cli.engine.risk.normalize_decision`, like every other view.
- **Feed freshness**: :meth:`Metrics.mark_feed` notes when data of a symbol arrived (wall clock);
  ``feed_age_seconds{symbol}`` is computed at scrape time. A configured symbol that has not
  ticked yet ages from the moment the metrics were created.
- **Latencies** are the latest measurement in milliseconds (the seed's ``*_latency_ms`` gauges);
  ``NaN`` until first measured (so a threshold alert stays silent for a Redis that is not
  configured). Every measurement also goes to a histogram in seconds, as Prometheus names them
  (``cdb_websocket_latency_seconds``, ``cdb_redis_latency_seconds``,
  ``cdb_database_latency_seconds``): quantiles over any window, not only the last value.
- **Drawdowns** are losses, never negative: a day in profit reads 0.
- **Process**: ``process_*`` (CPU, memory, open files) and ``python_*`` (GC, version), from
  prometheus-client's own collectors.

Prometheus' own ``up{job="cdb"}`` is the liveness series; cdb exports ``cdb_ready`` instead of an
``up`` of its own, which would clash with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Final, get_args

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cdb_cli import __version__
from cdb_cli.engine.events import (
    Bar,
    Event,
    ExecutionReport,
    HealthReport,
    QuoteTick,
    RiskDecision,
    Side,
    SignalSide,
    Topic,
    TradeTick,
    TradingSignal,
)
from cdb_cli.engine.recorders import Recorder
from cdb_cli.engine.records import FillRecord, OrderRecord
from cdb_cli.engine.risk import (
    NOTHING_HELD,
    RULE_ORDER,
    RiskLimits,
    TradingState,
    normalize_decision,
)

__all__ = [
    "ORDER_STATUSES",
    "SEED_METRICS",
    "TERMINAL_STATUSES",
    "Metrics",
    "MetricsRecorder",
    "exposed_names",
]

SEED_METRICS: Final = (
    "trades_total",
    "trades_successful_total",
    "daily_drawdown_percent",
    "total_exposure_percent",
    "risk_checks_passed_total",
    "websocket_latency_ms",
    "redis_latency_ms",
    "database_connections_active",
)
"""The seed's metric names, exposed exactly like this."""

ORDER_STATUSES: Final[tuple[str, ...]] = get_args(ExecutionReport.model_fields["status"].annotation)
"""The statuses an execution report carries (its type's), each a label of ``orders_total``."""
TERMINAL_STATUSES: Final = frozenset(
    {"FILLED", "CANCELED", "PARTIALLY_CANCELED", "REJECTED", "EXPIRED"}
)
"""An order's last report carries one of these: that is when it counts as a trade."""

LATENCY_BUCKETS_S: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Buckets of the latency histograms: a local round trip of half a millisecond to a stalled
websocket of seconds."""
DEPENDENCIES: Final = ("database", "redis")
"""The dependencies whose state `dependency_up` shows."""
SIZE_ZERO: Final = "size_zero"
_SUFFIXES: Final = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


def exposed_names(registry: CollectorRegistry) -> frozenset[str]:
    """Every sample name ``registry`` can expose, with or without samples yet.

    A labelled metric has no sample before its first label set is used, so the names come from
    the metric families and their types: a counter ``trades`` → ``trades_total`` and
    ``trades_created``; a histogram → ``_bucket``, ``_sum``, ``_count``, ``_created``.
    """
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return frozenset(names)


class _FeedAges(Collector):
    """``feed_age_seconds{symbol}``: seconds since data of each symbol last arrived."""

    def __init__(self, clock: Callable[[], float], symbols: Iterable[str]) -> None:
        self._clock = clock
        start = clock()
        self.last_seen: dict[str, float] = dict.fromkeys(symbols, start)

    def ages(self) -> dict[str, float]:
        now = self._clock()
        return {symbol: max(0.0, now - seen) for symbol, seen in sorted(self.last_seen.items())}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "feed_age_seconds",
            "Seconds since market data of the symbol last arrived.",
            labels=["symbol"],
        )
        for symbol, age in self.ages().items():
            family.add_metric([symbol], age)
        yield family


class Metrics:
    """The metrics of one cdb run; the run loop and :class:`MetricsRecorder` update them.

    Parameters
    ----------
    run_id, mode, version:
        Exposed as the labels of ``cdb_info``.
    symbols:
        Symbols whose feed age is exposed from the start (others appear at their first data).
    clock:
        Wall clock in seconds (``time.time``); tests pass a settable one.
    """

    def __init__(
        self,
        *,
        run_id: str = "",
        mode: str = "paper",
        version: str = __version__,
        symbols: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._build_seed_metrics()
        self._build_pipeline_metrics()
        self._build_portfolio_metrics()
        self._build_process_metrics(run_id, mode, version)
        self._feeds = _FeedAges(clock, symbols)
        self.registry.register(self._feeds)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)  # process_* and python_*, read at scrape time

    def _counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(name, doc, labelnames=tuple(labels), registry=self.registry)

    def _gauge(self, name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return Gauge(name, doc, labelnames=tuple(labels), registry=self.registry)

    def _build_seed_metrics(self) -> None:
        self.trades = self._counter(
            "trades", "Orders that reached their end at the venue (filled, canceled, rejected)."
        )
        self.trades_successful = self._counter(
            "trades_successful", "Orders that ended completely FILLED."
        )
        self.daily_drawdown = self._gauge(
            "daily_drawdown_percent", "Loss since the start of the UTC day, in % of equity."
        )
        self.total_exposure = self._gauge(
            "total_exposure_percent", "Value of open positions and working buys, in % of equity."
        )
        self.risk_checks_passed = self._counter(
            "risk_checks_passed", "Risk rule results that passed, over all decisions."
        )
        self.websocket_latency = self._gauge(
            "websocket_latency_ms", "Latest MEXC websocket latency (event to receipt), in ms."
        )
        self.redis_latency = self._gauge("redis_latency_ms", "Latest Redis round trip, in ms.")
        self.database_connections = self._gauge(
            "database_connections_active",
            "Database connections open in the pool (idle or in use); 0 when the pool holds none.",
        )
        self.database_latency = self._gauge(
            "database_latency_ms", "Latest database round trip, in ms."
        )
        for gauge in (self.websocket_latency, self.redis_latency, self.database_latency):
            gauge.set(math.nan)  # not measured yet
        self.latency_seconds = {
            name: Histogram(
                f"cdb_{name}_latency_seconds",
                f"{doc}, in seconds.",
                buckets=LATENCY_BUCKETS_S,
                registry=self.registry,
            )
            for name, doc in (
                ("websocket", "MEXC websocket latency (event to receipt)"),
                ("redis", "Redis round trips"),
                ("database", "Database round trips"),
            )
        }
        self.dependency_up = self._gauge(
            "dependency_up",
            "1 while a dependency (database, redis) answers, 0 while it does not.",
            ["dependency"],
        )
        self.dependency_failures = self._counter(
            "dependency_failures",
            "Calls to a dependency (database, redis) that failed.",
            ["dependency"],
        )
        for dependency in DEPENDENCIES:
            self.dependency_up.labels(dependency)
            self.dependency_failures.labels(dependency)

    def _build_pipeline_metrics(self) -> None:
        self.signals = self._counter("signals", "Trading signals by side.", ["side"])
        self.decisions = self._counter(
            "risk_decisions",
            "Risk decisions by verdict (nothing_held: an exit signal with nothing held, "
            "not a rejection).",
            ["verdict"],
        )
        self.checks_failed = self._counter(
            "risk_checks_failed", "Risk rule results that failed, by rule.", ["rule"]
        )
        self.rejections = self._counter(
            "risk_rejections", "Reason codes of rejected decisions.", ["reason"]
        )
        self.orders = self._counter(
            "orders",
            "Execution reports by order side and the status they report.",
            ["side", "status"],
        )
        self.fills = self._counter("fills", "Fills booked, by side.", ["side"])
        self.filled_notional = self._counter(
            "filled_notional_quote",
            "Quantity times price of the fills, in quote currency.",
            ["side"],
        )
        self.market_events = self._counter(
            "market_events", "Market data events received, by type.", ["type"]
        )
        self.component_healthy = self._gauge(
            "component_healthy", "1 when the component last reported ok, else 0.", ["component"]
        )
        for side in SignalSide:
            self.signals.labels(side.value)
        for verdict in ("approved", "reduced", "rejected", NOTHING_HELD):
            self.decisions.labels(verdict)
        for rule in RULE_ORDER:
            self.checks_failed.labels(rule)
            self.rejections.labels(rule)
        for order_side in Side:
            self.fills.labels(order_side.value)
            self.filled_notional.labels(order_side.value)
            for status in ORDER_STATUSES:
                self.orders.labels(order_side.value, status)
        # Market data is the hot path: its label children are looked up once, here.
        self._market_children = {
            event_type.TYPE: self.market_events.labels(event_type.TYPE)
            for event_type in (TradeTick, QuoteTick, Bar)
        }

    def _build_portfolio_metrics(self) -> None:
        self.equity = self._gauge("portfolio_equity", "Cash plus positions at their marks (quote).")
        self.drawdown_from_peak = self._gauge(
            "drawdown_from_peak_percent", "Loss from the peak equity, in % (circuit breaker input)."
        )
        self.trading_state = self._gauge(
            "trading_state", "1 for the current trading state, 0 for the others.", ["state"]
        )
        self.daily_drawdown_limit = self._gauge(
            "daily_drawdown_limit_percent", "Daily drawdown at which only exits are allowed, in %."
        )
        self.circuit_breaker_limit = self._gauge(
            "circuit_breaker_limit_percent", "Loss from peak at which trading halts, in %."
        )
        self.exposure_limit = self._gauge(
            "max_exposure_limit_percent", "Largest allowed total exposure, in % of equity."
        )
        for state in TradingState:
            self.trading_state.labels(state.value)

    def _build_process_metrics(self, run_id: str, mode: str, version: str) -> None:
        info = self._gauge(
            "cdb_info", "Always 1; the labels describe the run.", ["version", "run_id", "mode"]
        )
        info.labels(version, run_id, mode).set(1)
        started = self._gauge("cdb_start_time_seconds", "When the run started (Unix time).")
        started.set(self._clock())
        self.ready = self._gauge("cdb_ready", "1 when /ready answers 200, else 0.")

    # --- what the pipeline produces -------------------------------------------------------------

    def observe_event(self, topic: Topic, event: Event) -> None:
        """Count one event the loop published: market data, signal, decision, report, health.

        ``topic`` is accepted for the :class:`Recorder` shape; the event's type decides.
        """
        if isinstance(event, TradeTick | QuoteTick | Bar):
            self._market_children[event.TYPE].inc()
            self._feeds.last_seen[event.symbol] = self._clock()
        elif isinstance(event, TradingSignal):
            self.signals.labels(event.side.value).inc()
        elif isinstance(event, RiskDecision):
            self._observe_decision(event)
        elif isinstance(event, ExecutionReport):
            self._observe_report(event)
        elif isinstance(event, HealthReport):
            self.component_healthy.labels(event.component).set(1 if event.status == "ok" else 0)

    def _observe_decision(self, decision: RiskDecision) -> None:
        decision = normalize_decision(decision)
        self.decisions.labels(decision.verdict).inc()
        failed = [check for check in decision.checks if not check.passed]
        passed = len(decision.checks) - len(failed)
        if passed:
            self.risk_checks_passed.inc(passed)
        for check in failed:
            self.checks_failed.labels(check.rule).inc()
        if decision.verdict == "rejected":
            for reason in {check.code for check in failed} or {SIZE_ZERO}:
                self.rejections.labels(reason).inc()

    def _observe_report(self, report: ExecutionReport) -> None:
        self.orders.labels(report.side.value, report.status).inc()
        if report.status in TERMINAL_STATUSES:
            self.trades.inc()
            if report.status == "FILLED":
                self.trades_successful.inc()

    def observe_fill(self, fill: FillRecord) -> None:
        """Count one booked fill and its notional."""
        self.fills.labels(fill.side.value).inc()
        self.filled_notional.labels(fill.side.value).inc(float(fill.quantity * fill.price))

    # --- what the loop measures -----------------------------------------------------------------

    def mark_feed(self, symbol: str, *, at: float | None = None) -> None:
        """Note that market data of ``symbol`` arrived now (or at wall-clock time ``at``)."""
        self._feeds.last_seen[symbol] = self._clock() if at is None else at

    def set_feed_age(self, symbol: str, seconds: float) -> None:
        """Say that the newest data of ``symbol`` is ``seconds`` old now."""
        self.mark_feed(symbol, at=self._clock() - seconds)

    def feed_ages(self) -> dict[str, float]:
        """Seconds since data of each known symbol arrived, by symbol (sorted)."""
        return self._feeds.ages()

    def set_portfolio(
        self,
        *,
        equity: Decimal | float,
        daily_drawdown_pct: Decimal | float,
        exposure_pct: Decimal | float,
        trading_state: TradingState,
        drawdown_from_peak_pct: Decimal | float | None = None,
    ) -> None:
        """Publish the portfolio's state (after each decision or fill, or on a timer)."""
        self.equity.set(float(equity))
        self.daily_drawdown.set(max(0.0, float(daily_drawdown_pct)))  # a gain is no drawdown
        self.total_exposure.set(float(exposure_pct))
        if drawdown_from_peak_pct is not None:
            self.drawdown_from_peak.set(max(0.0, float(drawdown_from_peak_pct)))
        self.set_trading_state(trading_state)

    def set_trading_state(self, state: TradingState) -> None:
        """Set ``trading_state{state=…}`` to 1 for ``state`` and 0 for the others."""
        for each in TradingState:
            self.trading_state.labels(each.value).set(1 if each is state else 0)

    def set_risk_limits(self, limits: RiskLimits) -> None:
        """Publish the limits the alert rules compare the drawdowns and exposure with."""
        self.daily_drawdown_limit.set(float(limits.daily_drawdown_pct))
        self.circuit_breaker_limit.set(float(limits.circuit_breaker_pct))
        self.exposure_limit.set(float(limits.max_exposure_pct))

    def set_latency(
        self,
        *,
        websocket_ms: float | None = None,
        redis_ms: float | None = None,
        database_ms: float | None = None,
    ) -> None:
        """Publish the latest latency measurements (gauge in ms, histogram in seconds); ``None``
        leaves a value as it is."""
        for name, gauge, value in (
            ("websocket", self.websocket_latency, websocket_ms),
            ("redis", self.redis_latency, redis_ms),
            ("database", self.database_latency, database_ms),
        ):
            if value is not None:
                gauge.set(value)
                if math.isfinite(value):
                    self.latency_seconds[name].observe(value / 1000.0)

    def set_dependency(self, dependency: str, up: bool) -> None:
        """Publish whether ``dependency`` (``database``, ``redis``) answers; a failure counts
        one, and its latency gauge goes to NaN (never frozen at the last good value)."""
        self.dependency_up.labels(dependency).set(1 if up else 0)
        if not up:
            self.dependency_failures.labels(dependency).inc()
            latency = {"database": self.database_latency, "redis": self.redis_latency}
            latency[dependency].set(math.nan)

    def set_database_connections(self, active: int) -> None:
        """Publish how many database connections the pool holds open."""
        self.database_connections.set(active)

    def set_ready(self, ready: bool) -> None:
        """Publish readiness (the health server does after each readiness check)."""
        self.ready.set(1 if ready else 0)

    def recorder(self, inner: Recorder) -> MetricsRecorder:
        """A recorder that forwards to ``inner`` and counts what passes in these metrics (the
        loop wraps its own recorder with it)."""
        return MetricsRecorder(inner, self)

    def exposed_names(self) -> frozenset[str]:
        """Every sample name this registry can expose (see :func:`exposed_names`)."""
        return exposed_names(self.registry)


class MetricsRecorder:
    """A :class:`Recorder` that forwards to ``inner`` and then updates ``metrics``.

    The pipeline keeps its recorder; the loop wraps it: ``MetricsRecorder(store_recorder,
    metrics)``. Order records are only forwarded: the execution reports carry the same statuses.
    """

    def __init__(self, inner: Recorder, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    @property
    def keeps_events(self) -> bool:
        return True  # the metrics count the events, whatever ``inner`` keeps

    def event(self, topic: Topic, event: Event) -> None:
        self.inner.event(topic, event)
        self.metrics.observe_event(topic, event)

    def order(self, order: OrderRecord) -> None:
        self.inner.order(order)

    def fill(self, fill: FillRecord) -> None:
        self.inner.fill(fill)
        self.metrics.observe_fill(fill)
