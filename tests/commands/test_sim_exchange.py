"""``cdb sim-exchange``: in process for its options, and as a real process for a rehearsal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from typer.testing import Result

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.ws import MexcDataClient, deals_topic
from cdb_cli.engine.errors import VenueRejected
from cdb_cli.engine.events import TradeTick
from cdb_cli.errors import ExitCode

from .conftest import SIM_KEY, SIM_SECRET


def test_runs_for_a_duration_and_prints_the_urls(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_MEXC_API_KEY", SIM_KEY)
    monkeypatch.setenv("CDB_MEXC_API_SECRET", SIM_SECRET)
    result = cdb("sim-exchange", "--port", "0", "--duration", "0.3", "-s", "BTCUSDT")
    assert result.exit_code == 0, result.output
    rest, ws = result.stdout.splitlines()
    assert rest.startswith("CDB_MEXC_REST_URL=http://127.0.0.1:")
    assert ws.startswith("CDB_MEXC_WS_URL=ws://127.0.0.1:")
    assert ws.endswith("/ws")
    assert "mx0v…ey1" in result.stderr
    assert SIM_SECRET not in result.stdout + result.stderr
    assert SIM_KEY not in result.stdout + result.stderr


def test_replay_file_drives_the_market(cdb: Callable[..., Result], tmp_path: Path) -> None:
    replay = tmp_path / "btc.json"
    replay.write_text("[[1509836520000, 0.0016, 0.0017, 0.0015, 0.0016, 108.1]]")
    result = cdb("sim-exchange", "--port", "0", "--duration", "0.2", "--replay", str(replay))
    assert result.exit_code == 0, result.output


def test_fault_flags_reach_the_running_simulator(cdb: Callable[..., Result]) -> None:
    result = cdb(
        "sim-exchange", "--port", "0", "--duration", "0.3", "--drop-every", "0.1",
        "--stall-every", "0.1", "--stall-for", "0.05", "--fail-html", "1", "--fail-empty", "1",
        "--fail-5xx", "1", "--fail-429", "1", "--delay", "0.01", "--ws-duplicate-rate", "0.5",
        "--accept-then-5xx", "2", "--clock-offset-ms", "-7000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rest = result.stdout.splitlines()[0]
    assert rest.startswith("CDB_MEXC_REST_URL=http://127.0.0.1:")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--balance", "USDT"], ExitCode.USAGE),
        (["--balance", "USDT=lots"], ExitCode.USAGE),
        (["--api-key", "mx0only"], ExitCode.CONFIGURATION),
        (["-s", "BTCXYZ"], ExitCode.CONFIGURATION),
    ],
)
def test_bad_options_are_refused(cdb: Callable[..., Result], args: list[str], code: int) -> None:
    result = cdb("sim-exchange", "--port", "0", "--duration", "0.1", *args)
    assert result.exit_code == code, result.output


async def _rehearse(rest_url: str, ws_url: str) -> tuple[str | None, Decimal, int]:
    async with MexcHttpClient(rest_url, Credentials(SIM_KEY, SIM_SECRET)) as client:
        placed = await client.new_order("BTCUSDT", "BUY", "MARKET", quote_order_qty=Decimal(50))
        assert placed is not None
        status = (await client.query_order("BTCUSDT", order_id=placed.order_id)).status
        usdt = (await client.account())["USDT"].free
    async with MexcDataClient(ws_url, [deals_topic("BTCUSDT")]) as data:
        async with asyncio.timeout(10):
            event = await data.events.get()
    assert isinstance(event, TradeTick)
    return status, usdt, len(event.trade_id)


@pytest.mark.slow
def test_a_rehearsal_against_the_real_process_then_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CDB_MEXC_API_KEY": SIM_KEY,
        "CDB_MEXC_API_SECRET": SIM_SECRET,
        "NO_COLOR": "1",
    }
    command = [
        sys.executable,
        "-c",
        "from cdb_cli.app import main; main()",
        "sim-exchange",
        "--port",
        "0",
        "--tick-interval",
        "0.05",
        "--balance",
        "USDT=500",
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    ) as process:
        try:
            assert process.stdout is not None
            rest = process.stdout.readline().strip().removeprefix("CDB_MEXC_REST_URL=")
            ws = process.stdout.readline().strip().removeprefix("CDB_MEXC_WS_URL=")
            assert rest.startswith("http://127.0.0.1:"), rest
            status, usdt, trade_id_length = asyncio.run(_rehearse(rest, ws))
            assert status == "FILLED"
            assert Decimal(450) <= usdt < Decimal(451)
            assert trade_id_length > 0
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=10)
        code = process.returncode
    assert code == 0, stderr
    assert SIM_SECRET not in stderr
    assert json.dumps(SIM_SECRET) not in stderr


async def _gotchas(rest_url: str) -> tuple[frozenset[str], int, int, int]:
    """defaultSymbols, then the codes of a MARKET order on the no-market symbol and of any order
    on the API-untradable one, then how many 429s a burst over the weight budget met."""
    async with MexcHttpClient(rest_url, Credentials(SIM_KEY, SIM_SECRET)) as client:
        api = await client.api_symbols()
        codes = []
        for symbol in ("BTCUSDT", "ETHUSDT"):
            try:
                await client.new_order(symbol, "BUY", "MARKET", quote_order_qty=Decimal(20))
            except VenueRejected as e:
                codes.append(e.code)
    async with httpx.AsyncClient(base_url=rest_url) as raw:
        answers = [await raw.get("/api/v3/exchangeInfo") for _ in range(6)]  # weight 10 each
    return api, codes[0], codes[1], sum(1 for a in answers if a.status_code == 429)


@pytest.mark.slow
def test_the_gotcha_switches_in_the_real_process(tmp_path: Path) -> None:
    """``--api-untradable``, ``--no-market`` and ``--rate-limit`` as an operator starts them."""
    env = {**os.environ, "CDB_MEXC_API_KEY": SIM_KEY, "CDB_MEXC_API_SECRET": SIM_SECRET}
    command = [
        sys.executable, "-c", "from cdb_cli.app import main; main()", "sim-exchange",
        "--port", "0", "-s", "BTCUSDT,ETHUSDT", "--api-untradable", "ethusdt",
        "--no-market", "BTCUSDT", "--rate-limit", "60", "--tick-interval", "0",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    ) as process:
        try:
            assert process.stdout is not None
            rest = process.stdout.readline().strip().removeprefix("CDB_MEXC_REST_URL=")
            assert rest.startswith("http://127.0.0.1:"), rest
            api, no_market, untradable, limited = asyncio.run(_gotchas(rest))
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert api == {"BTCUSDT"}
    assert (no_market, untradable) == (30051, 10007)
    assert limited >= 1  # 6 x 10 on top of the orders' and symbols' weight exceeds 60 per 10 s


def test_a_gotcha_switch_naming_another_symbol_is_refused(cdb: Callable[..., Result]) -> None:
    result = cdb(
        "sim-exchange", "--port", "0", "--duration", "0.1", "-s", "BTCUSDT", "--no-market", "X"
    )
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "--no-market X" in result.stderr
