"""deploy/prometheus: promtool accepts the scrape config and the alert rules, the rules pass their
unit tests (resources/alerts_test.yml), and every expression uses only metrics cdb exports."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from cdb_cli.adapters.metrics import SEED_METRICS, Metrics

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
UNIT_TESTS = Path(__file__).parent / "resources" / "alerts_test.yml"


def promtool_run(promtool: str, *args: str | Path) -> None:
    done = subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_scrape_config(promtool: str) -> None:
    promtool_run(promtool, "check", "config", PROMETHEUS / "prometheus.yml")


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    promtool_run(promtool, "check", "rules", PROMETHEUS / "alerts.yml")


def test_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    promtool_run(promtool, "test", "rules", UNIT_TESTS)


def test_scrape_config_scrapes_cdb_on_its_default_port() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "cdb"]
    assert job["metrics_path"] == "/metrics"
    assert [t for group in job["static_configs"] for t in group["targets"]] == ["127.0.0.1:8000"]
    assert config["rule_files"] == ["alerts.yml"]


def test_alert_rules_cover_the_operators_cases() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "CdbDown",
        "CdbNotReady",
        "CircuitBreakerHalted",
        "DailyDrawdownNearLimit",
        "DailyDrawdownOverLimit",
        "FeedStale",
        "NoTradesWhileSignals",
        "RejectionsSpiking",
        "RedisLatencyHigh",
        "DatabaseLatencyHigh",
        "DependencyDown",
    } <= names
    assert all(rule["labels"]["severity"] in {"warning", "critical"} for rule in alert_rules())


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_rule_uses_only_metrics_cdb_exports(
    rule: dict[str, Any],
    promql_names: Callable[[str], set[str]],
    exported_names: frozenset[str],
) -> None:
    used = promql_names(rule["expr"])
    assert used, f"no metric found in {rule['expr']!r}"
    assert used <= exported_names, f"not exported by cdb: {sorted(used - exported_names)}"


def test_alert_unit_tests_use_only_metrics_cdb_exports(
    promql_names: Callable[[str], set[str]], exported_names: frozenset[str]
) -> None:
    document = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))
    series = {s["series"] for test in document["tests"] for s in test["input_series"]}
    used = set().union(*(promql_names(s) for s in series))
    assert used <= exported_names, sorted(used - exported_names)


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ('up{job="cdb"} == 0', {"up"}),
        ('trading_state{state="halted"} == 1', {"trading_state"}),
        (
            "topk by (job, instance) (1, sum by (job, instance, reason) "
            "(increase(risk_rejections_total[15m]))) > 20",
            {"risk_rejections_total"},
        ),
        (
            "daily_drawdown_percent >= 0.8 * daily_drawdown_limit_percent and x_total offset 1h",
            {"daily_drawdown_percent", "daily_drawdown_limit_percent", "x_total"},
        ),
        ("time() - cdb_start_time_seconds", {"cdb_start_time_seconds"}),
        ("a / on (job) group_left (symbol) b", {"a", "b"}),
        ("rate(trades_total[$__rate_interval]) * 60 + 1e3", {"trades_total"}),
        ('sum(x{reason=~"a}b"}) without (le)', {"x"}),
    ],
)
def test_metric_names_are_parsed_out_of_promql(
    expression: str, names: set[str], promql_names: Callable[[str], set[str]]
) -> None:
    assert promql_names(expression) == names


def test_the_seed_names_are_exported(exported_names: frozenset[str]) -> None:
    assert set(SEED_METRICS) <= exported_names


def test_exposition_passes_promtool_lint_but_for_the_seeds_ms_names(promtool: str) -> None:
    """New metrics follow Prometheus' naming rules; only the seed's ``*_ms`` names (and the
    database latency named like them) are allowed to break the base-unit rule."""
    metrics = Metrics(symbols=["BTCUSDT"])
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(metrics.registry).decode(),
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    problems = {line.split()[0] for line in (done.stdout + done.stderr).splitlines() if line}
    assert problems == {"websocket_latency_ms", "redis_latency_ms", "database_latency_ms"}
