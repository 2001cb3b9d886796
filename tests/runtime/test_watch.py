"""The store's outages as the loop sees them (:class:`StoreWatch`): a short failure refuses no
entry and mails nothing; a longer one refuses entries, mails once and shows in the metrics; past
the operator's limit the run stops."""

from __future__ import annotations

import asyncio

import pytest
from market_testkit import eventually

from cdb_cli.adapters.metrics import Metrics
from cdb_cli.engine.errors import DependencyError
from cdb_cli.runtime.watch import STORE_GRACE_S, StoreWatch


def test_a_store_outage_is_a_state_with_one_alert_and_a_limit() -> None:
    alerts: list[str] = []
    metrics = Metrics(run_id="pwatch", symbols=["BTCUSDT"])

    async def alert(subject: str, body: str) -> None:
        alerts.append(subject)

    def up() -> float | None:
        return metrics.registry.get_sample_value("dependency_up", {"dependency": "database"})

    async def scenario() -> None:
        watch = StoreWatch(STORE_GRACE_S + 1.0, who="Run p1", alert=alert, metrics=metrics)
        assert await watch.note(False) is False  # a lock, a dropped connection: not yet down
        assert alerts == []
        assert up() == 0
        assert await watch.note(True) is False
        assert up() == 1
        assert await watch.note(False) is False
        await eventually(lambda: watch.note(False), STORE_GRACE_S + 2, "down after the grace")
        assert alerts == ["cdb: the store is down"]
        assert await watch.note(False) is True  # still down: no second mail
        assert alerts == ["cdb: the store is down"]
        with pytest.raises(DependencyError, match="CDB_STORE_OUTAGE_LIMIT_SECONDS"):
            await eventually(lambda: _stays_below_limit(watch), 5, "the limit")

    asyncio.run(scenario())


async def _stays_below_limit(watch: StoreWatch) -> bool:
    await watch.note(False)  # raises once the outage outlasts the limit
    return False
