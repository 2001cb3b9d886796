"""deploy/grafana: the four dashboards are valid JSON, their queries are valid PromQL (promtool)
using only metrics cdb exports, and the provisioning files point at them and their data source."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdb_cli.adapters.metrics import SEED_METRICS

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
TITLES = {"System Overview", "Trading Performance", "Risk Metrics", "Infrastructure Health"}
# Grafana's interval variables, replaced by typical values to check the PromQL itself.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "6h", "$__interval": "15s"}


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return board


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # panels folded into a row
    return found


def expressions(board: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(board) for target in panel.get("targets", [])]


def datasource_uid() -> str:
    provisioning = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
    [source] = yaml.safe_load(provisioning.read_text(encoding="utf-8"))["datasources"]
    assert source["type"] == "prometheus"
    uid: str = source["uid"]
    return uid


def test_dashboards_are_valid_json_with_the_four_titles() -> None:
    boards = [load(path) for path in DASHBOARDS]  # raises on invalid JSON
    assert {board["title"] for board in boards} == TITLES
    assert len({board["uid"] for board in boards}) == len(boards) == 4


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_dashboard_panels_are_well_formed(path: Path) -> None:
    board = load(path)
    uid = datasource_uid()
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
            assert target["expr"].strip()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_dashboard_queries_use_only_metrics_cdb_exports(
    path: Path, promql_names: Callable[[str], set[str]], exported_names: frozenset[str]
) -> None:
    for expression in expressions(load(path)):
        used = promql_names(expression)
        assert used, f"no metric in {expression!r}"
        assert used <= exported_names, f"{expression!r}: {sorted(used - exported_names)}"


def test_dashboards_show_every_seed_metric(promql_names: Callable[[str], set[str]]) -> None:
    shown = {
        name for path in DASHBOARDS for e in expressions(load(path)) for name in promql_names(e)
    }
    assert set(SEED_METRICS) <= shown, sorted(set(SEED_METRICS) - shown)


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Every query becomes a recording rule, so ``promtool check rules`` parses it."""
    rules = []
    for path in DASHBOARDS:
        for number, expression in enumerate(expressions(load(path))):
            for variable, value in GRAFANA_VARIABLES.items():
                expression = expression.replace(variable, value)
            rules.append({"record": f"dashboard:{path.stem.replace('-', '_')}:{number}",
                          "expr": expression})  # fmt: skip
    rule_file = tmp_path / "dashboard_queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(rule_file)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_provider_loads_the_dashboards_folder() -> None:
    provider_file = GRAFANA / "provisioning" / "dashboards" / "cdb.yml"
    document = yaml.safe_load(provider_file.read_text(encoding="utf-8"))
    assert document["apiVersion"] == 1
    [provider] = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


def test_monitoring_compose_mounts_the_files_where_the_provider_looks() -> None:
    compose_file = REPO / "deploy" / "docker-compose.monitoring.yml"
    services = yaml.safe_load(compose_file.read_text(encoding="utf-8"))["services"]
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for service in services.values()
        for volume in service["volumes"]
        if volume.startswith("./")
    }
    for source in mounts.values():
        assert (compose_file.parent / source).is_dir(), source
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "cdb.yml").read_text(encoding="utf-8")
    )["providers"][0]
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    assert mounts["/etc/prometheus"] == "./prometheus"


def test_risk_dashboard_shows_exit_signals_with_nothing_held_apart_from_rejections() -> None:
    """The strategy's exits while flat are risk_decisions_total{verdict="nothing_held"}, drawn
    beside the rejected decisions; no query reads them as a rejection reason."""
    board = load(GRAFANA / "dashboards" / "risk-metrics.json")
    held = [
        (panel["title"], target["legendFormat"])
        for panel in panels(board)
        for target in panel["targets"]
        if 'verdict="nothing_held"' in target["expr"]
    ]
    assert held == [
        (
            "Rejected decisions and exit signals with nothing held",
            "{{instance}} exit signal, nothing held",
        )
    ]
    for path in DASHBOARDS:
        assert "no_position" not in path.read_text(encoding="utf-8"), path.name


def test_dashboards_pick_an_instance_and_tell_instances_apart() -> None:
    """Two bots scraped by one Prometheus: every dashboard has an `instance` variable, every
    query keeps to the chosen instances, and every legend names the instance, so two bots'
    series never share a legend (issue 27)."""
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["instance"]["query"]["query"] == "label_values(cdb_info, instance)"
        assert variables["instance"]["includeAll"] is True
        targets = [t for panel in dashboard["panels"] for t in panel.get("targets", [])]
        assert targets
        for target in targets:
            expr = target["expr"]
            assert 'instance=~"$instance"' in expr, (path.name, expr)
            assert "{{instance}}" in target["legendFormat"], (path.name, target)
            aggregations = re.findall(r"\b(?:sum|max|min|avg|count|topk)\b\s*(by \(\w+)?", expr)
            assert all(by == "by (instance" for by in aggregations), (path.name, expr)
