"""The health server, over real HTTP on 127.0.0.1: /health, /ready with reasons, /metrics in the
Prometheus formats, port 0, and one clear error for a taken port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from cdb_cli.adapters.http_health import HealthServer, ReadinessCheck, readiness_reasons
from cdb_cli.adapters.metrics import SEED_METRICS, Metrics
from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.engine.events import ExecutionReport, Topic
from cdb_cli.engine.risk import TradingState
from cdb_cli.settings import Settings

Probe = Callable[[httpx.AsyncClient, HealthServer], Awaitable[None]]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(run_id="run-7", symbols=["BTCUSDT"])


def serve(metrics: Metrics, readiness: ReadinessCheck, probe: Probe, **options: Any) -> None:
    """Start a real server on 127.0.0.1, port 0, run ``probe`` against it, stop it."""

    async def main() -> None:
        server = HealthServer(
            metrics=metrics, readiness=readiness, run_id="run-7", port=0, **options
        )
        async with server, httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            await probe(client, server)

    asyncio.run(main())


def ready() -> list[str]:
    return []


def test_health_answers_200_with_run_id_version_and_uptime(metrics: Metrics) -> None:
    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        response = await client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["run_id"] == "run-7"
        assert body["mode"] == "paper"
        assert body["version"] == server.version
        assert body["uptime_s"] >= 0

    serve(metrics, lambda: ["database down"], probe)  # liveness ignores readiness


def test_ready_is_200_when_the_check_has_no_reasons(metrics: Metrics) -> None:
    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        response = await client.get("/ready")
        assert response.status_code == 200
        assert response.json() == {"ready": True, "run_id": "run-7", "reasons": []}

    serve(metrics, ready, probe)


def test_ready_is_503_with_every_reason(metrics: Metrics) -> None:
    reasons = ["feed stale: BTCUSDT 45 s", "database down", "breaker halted"]

    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json() == {"ready": False, "run_id": "run-7", "reasons": reasons}

    serve(metrics, lambda: reasons, probe)


def test_ready_awaits_an_async_check(metrics: Metrics) -> None:
    async def check() -> Sequence[str]:
        await asyncio.sleep(0)
        return ("bus down",)

    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        response = await client.get("/ready")
        assert (response.status_code, response.json()["reasons"]) == (503, ["bus down"])

    serve(metrics, check, probe)


def test_ready_is_503_when_the_check_raises(metrics: Metrics) -> None:
    def check() -> list[str]:
        raise RuntimeError("store closed")

    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["reasons"] == ["readiness check failed: RuntimeError: store closed"]

    serve(metrics, check, probe)


def test_ready_is_503_when_the_check_hangs(metrics: Metrics) -> None:
    async def check() -> list[str]:
        await asyncio.Event().wait()  # never answers
        return []

    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["reasons"] == ["readiness check timed out after 0.05 s"]

    serve(metrics, check, probe, readiness_timeout_s=0.05)


def test_metrics_serves_the_registry_in_the_text_format(metrics: Metrics) -> None:
    for status in ("NEW", "FILLED", "NEW", "CANCELED", "REJECTED"):
        report = ExecutionReport.model_validate(
            {"symbol": "BTCUSDT", "ts_event": 1, "source": "paper", "client_order_id": "o",
             "side": "BUY", "status": status}
        )  # fmt: skip
        metrics.observe_event(Topic.EXECUTION_EVENTS, report)

    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        samples = {
            sample.name: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }
        assert set(SEED_METRICS) <= samples.keys()
        assert samples["trades_total"] == 3
        assert samples["trades_successful_total"] == 1
        assert samples["cdb_ready"] == 1  # refreshed by the scrape itself

    serve(metrics, ready, probe)


def test_metrics_speaks_openmetrics_when_the_scraper_asks(metrics: Metrics) -> None:
    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        accept = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
        response = await client.get("/metrics", headers={"Accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        names = {
            sample.name
            for family in openmetrics_families(response.text)
            for sample in family.samples
        }
        assert set(SEED_METRICS) <= names
        assert ("cdb_ready", 0.0) in {
            (s.name, s.value) for f in openmetrics_families(response.text) for s in f.samples
        }

    serve(metrics, lambda: ["database down"], probe)


def test_unknown_paths_are_404(metrics: Metrics) -> None:
    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        assert (await client.get("/nope")).status_code == 404
        assert (await client.post("/health")).status_code == 405

    serve(metrics, ready, probe)


def test_port_zero_reports_the_bound_port_on_loopback(metrics: Metrics) -> None:
    async def probe(client: httpx.AsyncClient, server: HealthServer) -> None:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert (await client.get("/health")).status_code == 200

    serve(metrics, ready, probe)


def test_a_taken_port_is_one_configuration_error_line(metrics: Metrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer(metrics=metrics, readiness=ready, run_id="r", port=port)
        with pytest.raises(ConfigurationError) as caught:
            asyncio.run(server.start())
    message = str(caught.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message
    assert "already in use" in message
    assert "CDB_HTTP_PORT" in message


def test_a_stopped_server_frees_its_port_and_stop_is_idempotent(metrics: Metrics) -> None:
    async def main() -> None:
        first = HealthServer(metrics=metrics, readiness=ready, run_id="r", port=0)
        port = await first.start()
        await first.stop()
        await first.stop()
        again = HealthServer(metrics=metrics, readiness=ready, run_id="r", port=port)
        assert await again.start() == port
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{again.url}/health")).status_code == 200
        await again.stop()

    asyncio.run(main())


def test_from_settings_binds_cdb_http_host_and_port(metrics: Metrics) -> None:
    server = HealthServer.from_settings(Settings(), metrics=metrics, readiness=ready, run_id="r")
    assert (server.host, server.requested_port) == ("127.0.0.1", 8000)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port


# --- the standard reasons -------------------------------------------------------------------------


def test_readiness_reasons_name_stale_feeds_services_and_the_breaker() -> None:
    reasons = readiness_reasons(
        feed_ages={"BTCUSDT": 45.2, "ETHUSDT": 3.0, "SOLUSDT": None},
        max_feed_age_s=30,
        database_up=False,
        bus_up=True,
        trading_state=TradingState.HALTED,
    )
    assert reasons == [
        "feed stale: BTCUSDT 45 s",
        "feed stale: SOLUSDT no data yet",
        "database down",
        "breaker halted",
    ]


def test_readiness_reasons_are_empty_when_all_is_well() -> None:
    assert readiness_reasons() == []
    assert (
        readiness_reasons(
            feed_ages={"BTCUSDT": 1.0}, database_up=True, trading_state=TradingState.REDUCING
        )
        == []
    )
    assert readiness_reasons(bus_up=False) == ["bus down"]
