"""Shared by the deploy tests: promtool (skips locally without it, fails under
CDB_REQUIRE_SERVICES=1) and the metric names a PromQL expression uses."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cdb_cli.adapters.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]

PROMETHEUS_OWN = frozenset({"up"})
"""Series Prometheus makes itself for every target; cdb does not (and must not) export them."""

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_VARIABLES = re.compile(r"\$\{?\w+\}?")  # Grafana's $__rate_interval, $__range
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_NUMBERS = re.compile(r"(?<![\w:])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
     "group_right", "offset", "inf", "nan"}
)  # fmt: skip


def metric_names(expression: str) -> set[str]:
    """The metric names ``expression`` selects (functions, labels and keywords left out).

    >>> sorted(metric_names('sum by (reason) (increase(risk_rejections_total{a="b"}[5m])) > 2'))
    ['risk_rejections_total']
    """
    text = _STRINGS.sub(" ", expression)
    for pattern in (_VARIABLES, _MATCHERS, _RANGES, _GROUPING, _OFFSET, _NUMBERS):
        text = pattern.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):  # a function or an aggregation
            continue
        if match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


@pytest.fixture
def promql_names() -> Callable[[str], set[str]]:
    return metric_names


@pytest.fixture(scope="session")
def exported_names() -> frozenset[str]:
    """Every sample name cdb's Metrics can expose, plus Prometheus' own ``up``."""
    return Metrics().exposed_names() | PROMETHEUS_OWN


@pytest.fixture
def promtool() -> str:
    """Path of promtool (Debian package ``prometheus``); skips or fails when it is absent."""
    path = shutil.which("promtool")
    if path is not None:
        return path
    reason = "promtool is not on PATH (apt-get install --no-install-recommends prometheus)"
    if os.environ.get("CDB_REQUIRE_SERVICES", "") == "1":
        pytest.fail(f"{reason} and CDB_REQUIRE_SERVICES=1")
    pytest.skip(f"{reason}; set CDB_REQUIRE_SERVICES=1 to make this a failure")
