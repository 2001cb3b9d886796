"""Metrics: the seed's names exactly, what counts as a trade, and a real pipeline feeding them
through MetricsRecorder (the counts equal the pipeline's own statistics)."""

from __future__ import annotations

import math
import random
import re
from decimal import Decimal as D
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cdb_cli.adapters.metrics import SEED_METRICS, Metrics, MetricsRecorder
from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.events import (
    CheckResult,
    ExecutionReport,
    HealthReport,
    QuoteTick,
    RiskDecision,
    Side,
    SignalSide,
    Topic,
    TradeTick,
)
from cdb_cli.engine.execution import PaperExecutionConfig, SimulatedExecution
from cdb_cli.engine.instruments import Instrument
from cdb_cli.engine.pipeline import TradingPipeline
from cdb_cli.engine.portfolio import Portfolio
from cdb_cli.engine.recorders import MemoryRecorder
from cdb_cli.engine.records import FillRecord
from cdb_cli.engine.risk import RiskEngine, RiskLimits, TradingState
from cdb_cli.engine.signals import EmaCrossStrategy, SignalConfig

SYMBOL = "BTCUSDT"
MINUTE = 60 * 1_000_000_000
METRIC_SUFFIXES = ("_total", "_percent", "_seconds", "_ms", "_active", "_healthy", "_equity")


class ManualClock:
    """A settable wall clock in seconds."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def metrics(clock: ManualClock) -> Metrics:
    return Metrics(run_id="run-1", symbols=[SYMBOL], clock=clock)


def value(metrics: Metrics, name: str, **labels: str) -> float:
    sample = metrics.registry.get_sample_value(name, labels)
    assert sample is not None, f"{name}{labels} is not exposed"
    return sample


def exposition(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name → [(labels, value)] as Prometheus reads the text format."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def report(order_id: str, status: str, side: Side = Side.BUY) -> ExecutionReport:
    return ExecutionReport.model_validate(
        {"symbol": SYMBOL, "ts_event": 1, "source": "paper", "client_order_id": order_id,
         "side": side, "status": status}
    )  # fmt: skip


def decision(verdict: str, *checks: tuple[str, str, bool]) -> RiskDecision:
    return RiskDecision.model_validate(
        {
            "symbol": SYMBOL, "ts_event": 1, "source": "risk", "signal_id": "s", "verdict": verdict,
            "side": SignalSide.BUY, "requested_quote": D(100),
            "final_quote": D(0) if verdict in ("rejected", "nothing_held") else D(100),
            "checks": [CheckResult(rule=r, code=c, passed=p) for r, c, p in checks],
        }
    )  # fmt: skip


# --- names --------------------------------------------------------------------------------------


def test_metrics_expose_every_seed_name_with_a_sample(metrics: Metrics) -> None:
    samples = exposition(metrics)
    for name in SEED_METRICS:
        assert name in samples, f"{name} has no sample line"
    # The counters keep the seed's names: no doubled suffix, no bare base name.
    assert "trades_total_total" not in samples
    assert "trades" not in samples
    assert set(SEED_METRICS) <= metrics.exposed_names()


def test_metrics_exposed_names_cover_labelled_metrics_before_their_first_use(
    metrics: Metrics,
) -> None:
    names = metrics.exposed_names()
    assert "component_healthy" in names  # no component has reported yet
    assert "component_healthy" not in exposition(metrics)
    assert {"risk_rejections_total", "feed_age_seconds", "trading_state", "cdb_ready"} <= names


def test_metrics_live_on_their_own_registry_not_the_global_one(clock: ManualClock) -> None:
    first, second = Metrics(clock=clock), Metrics(clock=clock)  # no duplicate registration
    first.trades.inc()
    assert value(first, "trades_total") == 1
    assert value(second, "trades_total") == 0
    assert prometheus_client.REGISTRY.get_sample_value("trades_total") is None


def test_cdb_info_carries_run_id_mode_and_version(metrics: Metrics) -> None:
    [(labels, one)] = exposition(metrics)["cdb_info"]
    assert labels["run_id"] == "run-1"
    assert labels["mode"] == "paper"
    assert labels["version"]
    assert one == 1


# --- what counts ----------------------------------------------------------------------------------


def test_trades_count_ended_orders_and_success_means_filled(metrics: Metrics) -> None:
    for event in (
        report("a", "NEW"), report("a", "PARTIALLY_FILLED"), report("a", "FILLED"),
        report("b", "NEW"), report("b", "CANCELED"),
        report("c", "REJECTED", Side.SELL),
        report("d", "NEW"), report("d", "PARTIALLY_FILLED"), report("d", "PARTIALLY_CANCELED"),
        report("e", "NEW"),  # still working: not a trade yet
    ):  # fmt: skip
        metrics.observe_event(Topic.EXECUTION_EVENTS, event)
    assert value(metrics, "trades_total") == 4
    assert value(metrics, "trades_successful_total") == 1
    assert value(metrics, "orders_total", side="BUY", status="NEW") == 4
    assert value(metrics, "orders_total", side="SELL", status="REJECTED") == 1


def test_rejected_decision_counts_each_failed_reason_and_the_passed_checks(
    metrics: Metrics,
) -> None:
    metrics.observe_event(
        Topic.RISK_EVENTS,
        decision(
            "rejected",
            ("circuit_breaker", "ok", True),
            ("stale_data", "stale_data", False),
            ("spread", "bad_quote", False),
            ("exposure", "ok", True),
        ),
    )
    metrics.observe_event(Topic.RISK_EVENTS, decision("approved", ("spread", "ok", True)))
    assert value(metrics, "risk_decisions_total", verdict="rejected") == 1
    assert value(metrics, "risk_decisions_total", verdict="approved") == 1
    assert value(metrics, "risk_checks_passed_total") == 3
    assert value(metrics, "risk_checks_failed_total", rule="stale_data") == 1
    assert value(metrics, "risk_checks_failed_total", rule="spread") == 1
    assert value(metrics, "risk_rejections_total", reason="stale_data") == 1
    assert value(metrics, "risk_rejections_total", reason="bad_quote") == 1


def test_exit_signal_with_nothing_held_is_counted_apart_and_never_a_rejection(
    metrics: Metrics,
) -> None:
    assert value(metrics, "risk_decisions_total", verdict="nothing_held") == 0  # from the start
    metrics.observe_event(
        Topic.RISK_EVENTS,
        decision(
            "nothing_held",
            ("circuit_breaker", "circuit_breaker", False),  # during a halt: still nothing held
            ("position_size", "nothing_held", True),
        ),
    )
    # stored by an older version: a no_position rejection
    metrics.observe_event(
        Topic.RISK_EVENTS,
        decision("rejected", ("spread", "ok", True), ("position_size", "no_position", False)),
    )
    assert value(metrics, "risk_decisions_total", verdict="nothing_held") == 2
    assert value(metrics, "risk_decisions_total", verdict="rejected") == 0
    assert value(metrics, "risk_checks_passed_total") == 3  # the position checks passed
    assert value(metrics, "risk_checks_failed_total", rule="position_size") == 0
    assert value(metrics, "risk_checks_failed_total", rule="circuit_breaker") == 1
    rejections = exposition(metrics)["risk_rejections_total"]
    assert rejections  # the rules' series are there, all at 0
    assert all(count == 0 for _, count in rejections)
    assert not [labels for labels, _ in rejections if labels["reason"] == "no_position"]


def test_rejection_without_a_failed_rule_is_size_zero(metrics: Metrics) -> None:
    metrics.observe_event(Topic.RISK_EVENTS, decision("rejected", ("exposure", "ok", True)))
    assert value(metrics, "risk_rejections_total", reason="size_zero") == 1


def test_fills_count_by_side_with_their_notional(metrics: Metrics) -> None:
    fill = FillRecord(
        fill_id="f1", client_order_id="a", symbol=SYMBOL, side=Side.BUY, quantity=D("0.5"),
        price=D("40000"), ts_event=1, liquidity="taker",
    )  # fmt: skip
    metrics.observe_fill(fill)
    assert value(metrics, "fills_total", side="BUY") == 1
    assert value(metrics, "filled_notional_quote_total", side="BUY") == 20000
    assert value(metrics, "fills_total", side="SELL") == 0


def test_feed_age_is_computed_when_scraped(metrics: Metrics, clock: ManualClock) -> None:
    clock.now += 12
    assert value(metrics, "feed_age_seconds", symbol=SYMBOL) == 12  # never ticked: since start
    tick = TradeTick(
        symbol=SYMBOL, ts_event=1, source="mexc", price=D(1), quantity=D(1), aggressor=Side.BUY
    )
    metrics.observe_event(Topic.MARKET_DATA, tick)
    clock.now += 3
    assert value(metrics, "feed_age_seconds", symbol=SYMBOL) == 3
    assert value(metrics, "market_events_total", type="market.trade") == 1
    metrics.set_feed_age("ETHUSDT", 45)
    assert metrics.feed_ages() == {SYMBOL: 3, "ETHUSDT": 45}
    quote = QuoteTick(
        symbol="ETHUSDT", ts_event=1, source="mexc", bid=D(1), ask=D(2), bid_size=D(1),
        ask_size=D(1),
    )  # fmt: skip
    metrics.observe_event(Topic.MARKET_DATA, quote)
    assert value(metrics, "feed_age_seconds", symbol="ETHUSDT") == 0


def test_set_portfolio_sets_gauges_and_exactly_one_trading_state(metrics: Metrics) -> None:
    metrics.set_portfolio(
        equity=D("10250.5"),
        daily_drawdown_pct=D("1.25"),
        exposure_pct=D("30"),
        trading_state=TradingState.HALTED,
        drawdown_from_peak_pct=D("10.5"),
    )
    assert value(metrics, "portfolio_equity") == 10250.5
    assert value(metrics, "daily_drawdown_percent") == 1.25
    assert value(metrics, "total_exposure_percent") == 30
    assert value(metrics, "drawdown_from_peak_percent") == 10.5
    states = {s.value: value(metrics, "trading_state", state=s.value) for s in TradingState}
    assert states == {"active": 0, "reducing": 0, "halted": 1}
    metrics.set_trading_state(TradingState.ACTIVE)
    assert value(metrics, "trading_state", state="halted") == 0
    assert value(metrics, "trading_state", state="active") == 1


def test_risk_limits_are_published_for_the_alert_rules(metrics: Metrics) -> None:
    limits = RiskLimits()
    metrics.set_risk_limits(limits)
    assert value(metrics, "daily_drawdown_limit_percent") == float(limits.daily_drawdown_pct)
    assert value(metrics, "circuit_breaker_limit_percent") == float(limits.circuit_breaker_pct)
    assert value(metrics, "max_exposure_limit_percent") == float(limits.max_exposure_pct)


def test_latencies_are_nan_until_measured(metrics: Metrics) -> None:
    assert math.isnan(value(metrics, "redis_latency_ms"))
    metrics.set_latency(websocket_ms=85.5, database_ms=2.0)
    assert value(metrics, "websocket_latency_ms") == 85.5
    assert value(metrics, "database_latency_ms") == 2.0
    assert math.isnan(value(metrics, "redis_latency_ms"))  # None leaves it as it was
    metrics.set_database_connections(3)
    assert value(metrics, "database_connections_active") == 3


def test_latencies_also_go_to_histograms_in_seconds(metrics: Metrics) -> None:
    metrics.set_latency(websocket_ms=85.5, database_ms=2.0, redis_ms=math.nan)
    metrics.set_latency(database_ms=30.0)
    assert value(metrics, "cdb_database_latency_seconds_count") == 2
    assert value(metrics, "cdb_database_latency_seconds_sum") == pytest.approx(0.032)
    assert value(metrics, "cdb_database_latency_seconds_bucket", le="0.005") == 1
    assert value(metrics, "cdb_websocket_latency_seconds_count") == 1
    assert value(metrics, "cdb_redis_latency_seconds_count") == 0  # NaN: nothing measured


def test_drawdowns_never_go_negative_on_a_gain(metrics: Metrics) -> None:
    metrics.set_portfolio(
        equity=D(10_500),
        daily_drawdown_pct=D("-5"),  # the day is 5 % up
        exposure_pct=D(0),
        trading_state=TradingState.ACTIVE,
        drawdown_from_peak_pct=D("-0.0001"),
    )
    assert value(metrics, "daily_drawdown_percent") == 0.0
    assert value(metrics, "drawdown_from_peak_percent") == 0.0
    metrics.set_portfolio(
        equity=D(9_700),
        daily_drawdown_pct=D("3"),
        exposure_pct=D(0),
        trading_state=TradingState.ACTIVE,
    )
    assert value(metrics, "daily_drawdown_percent") == 3.0


def test_process_and_python_metrics_are_exposed(metrics: Metrics) -> None:
    names = metrics.exposed_names()
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total"} <= names
    assert "python_info" in names
    assert (value(metrics, "process_resident_memory_bytes") or 0) > 10_000_000


def test_health_reports_set_component_healthy(metrics: Metrics) -> None:
    for status in ("ok", "down"):
        event = HealthReport(
            symbol="*", ts_event=1, source="run", component="marketdata", status=status
        )  # type: ignore[arg-type]
        metrics.observe_event(Topic.SYSTEM_HEALTH, event)
        expected = 1 if status == "ok" else 0
        assert value(metrics, "component_healthy", component="marketdata") == expected


# --- a real pipeline through MetricsRecorder ------------------------------------------------------


def zigzag_pipeline(recorder: MemoryRecorder | MetricsRecorder) -> TradingPipeline:
    instrument = Instrument.from_precisions(
        SYMBOL, base_asset_precision=6, quote_precision=2, min_notional=D(5)
    )
    clock = TestClock()
    pipeline = TradingPipeline(
        strategies={
            SYMBOL: EmaCrossStrategy(
                SignalConfig(
                    ema_fast=2, ema_slow=4, rsi_period=2, volume_period=3, volume_factor=0.5
                )
            )
        },
        risk=RiskEngine(RiskLimits(circuit_breaker_pct=D(50))),
        execution=SimulatedExecution(
            PaperExecutionConfig(latency_ms=0), {SYMBOL: instrument}, random.Random(1)
        ),
        portfolio=Portfolio(D(10000)),
        clock=clock,
        recorder=recorder,
        run_id="test",
    )
    price = previous = 100.0
    for i in range(400):
        price *= 1.01 if (i // 7) % 2 == 0 else 0.992
        clock.set_time((i + 1) * MINUTE)
        pipeline.on_bar(SYMBOL, i * MINUTE, (i + 1) * MINUTE, previous, price, 1.0)
        previous = price
    pipeline.finish()
    return pipeline


def test_metrics_recorder_counts_what_the_pipeline_counted(metrics: Metrics) -> None:
    inner = MemoryRecorder()
    stats = zigzag_pipeline(MetricsRecorder(inner, metrics)).snapshot_stats()
    assert stats.fills >= 10
    for side in SignalSide:
        assert value(metrics, "signals_total", side=side.value) == stats.signals[side]
    for verdict in ("approved", "reduced", "rejected", "nothing_held"):
        assert value(metrics, "risk_decisions_total", verdict=verdict) == stats.verdicts[verdict]
    assert stats.verdicts["nothing_held"] > 0  # the exits while flat: no rejection among them
    for code, failed in stats.failed_rules.items():  # a failed rule always rejects here
        assert value(metrics, "risk_rejections_total", reason=code) == failed
    rejected = sum(count for _, count in exposition(metrics)["risk_rejections_total"])
    assert rejected == sum(stats.failed_rules.values())
    assert (
        value(metrics, "fills_total", side="BUY") + value(metrics, "fills_total", side="SELL")
        == stats.fills
    )
    ended = [o for o in inner.orders.values() if o.status in {"FILLED", "CANCELED",
             "PARTIALLY_CANCELED", "REJECTED"}]  # fmt: skip
    assert value(metrics, "trades_total") == len(ended)
    filled = sum(o.status == "FILLED" for o in inner.orders.values())
    assert value(metrics, "trades_successful_total") == filled > 0
    decisions = [e for _, e in inner.events if isinstance(e, RiskDecision)]
    passed = sum(c.passed for d in decisions for c in d.checks)
    assert value(metrics, "risk_checks_passed_total") == passed > 0


def test_metrics_recorder_forwards_everything_unchanged(metrics: Metrics) -> None:
    plain, wrapped = MemoryRecorder(), MemoryRecorder()
    zigzag_pipeline(plain)
    zigzag_pipeline(MetricsRecorder(wrapped, metrics))
    assert wrapped.events == plain.events
    assert wrapped.orders == plain.orders
    assert wrapped.fills == plain.fills


def test_readme_monitoring_section_names_only_exported_metrics(metrics: Metrics) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Monitoring", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+)(?:\{[^`]*\})?`", section))
    metric_like = {n for n in named if n.endswith(METRIC_SUFFIXES) or n.startswith("cdb_")}
    assert set(SEED_METRICS) <= metric_like
    assert metric_like <= metrics.exposed_names() | {"up"}, sorted(
        metric_like - metrics.exposed_names()
    )
