"""The kernel's simulator: the operator's options become the exchange's config, and it serves."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.kernel.simulator import SimulatorReady, serve_simulator, simulator_config

KEY = "mx0vglSimulatorKey1"


def test_options_in_the_operators_units_become_the_config(tmp_path: Path) -> None:
    config = simulator_config(
        symbols=("BTCUSDT",),
        balances={"USDT": Decimal(500)},
        api_key=KEY,
        api_secret="s3cret",
        seed=7,
        replay=tmp_path / "BTCUSDT-1m.json",
        history_days=0.5,
        tick_interval=0.0,
        level_quote=0.1,
        mx_deduct_price=0.0,
        rate_limit=20,
    )

    assert config.accounts == {KEY: "s3cret"}
    assert config.balances == {"USDT": Decimal(500)}
    assert config.history_minutes == 720
    assert config.tick_interval is None  # 0: trades only when asked
    assert config.level_quote == Decimal("0.1")  # the float as written, not its binary value
    assert config.mx_deduct_price is None  # 0: off
    assert (config.seed, config.replay, config.rate_limit) == (7, tmp_path / "BTCUSDT-1m.json", 20)
    assert simulator_config(
        symbols=("BTCUSDT",), balances={}, mx_deduct_price=0.25
    ).mx_deduct_price == Decimal("0.25")


@pytest.mark.parametrize(("key", "secret"), [(KEY, None), (None, "s3cret"), (KEY, "")])
def test_an_account_needs_key_and_secret(key: str | None, secret: str | None) -> None:
    with pytest.raises(ConfigurationError, match="Give both --api-key and --api-secret"):
        simulator_config(symbols=("BTCUSDT",), balances={}, api_key=key, api_secret=secret)


@pytest.mark.parametrize(
    ("key", "account"), [(KEY, "mx0v…ey1"), (None, "none (public endpoints only)")]
)
def test_it_serves_rest_with_the_faults_and_names_the_account_masked(
    key: str | None, account: str
) -> None:
    heard: list[SimulatorReady] = []
    answers: list[int] = []
    config = simulator_config(
        symbols=("BTCUSDT",),
        balances={"USDT": Decimal(1000)},
        api_key=key,
        api_secret="s3cret" if key else None,
        tick_interval=0,
    )

    async def main() -> None:
        ready = asyncio.Event()

        def on_ready(where: SimulatorReady) -> None:
            heard.append(where)
            ready.set()

        served = asyncio.create_task(
            serve_simulator(
                config,
                host="127.0.0.1",
                port=0,
                faults={"http_5xx": 1},
                duration=3,
                on_ready=on_ready,
            )
        )
        await asyncio.wait_for(ready.wait(), 3)
        async with httpx.AsyncClient(base_url=heard[0].rest_url) as client:
            for _ in range(2):
                answers.append((await client.get("/api/v3/time")).status_code)
        served.cancel()
        with pytest.raises(asyncio.CancelledError):
            await served

    asyncio.run(main())

    assert heard[0].account == account
    assert heard[0].rest_url.startswith("http://127.0.0.1:")
    assert heard[0].ws_url == heard[0].rest_url.replace("http", "ws", 1) + "/ws"
    assert answers == [503, 200]  # the injected fault, then the exchange
