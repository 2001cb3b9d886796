"""The kernel opens the parts of a run and picks what differs by mode: the loop's venue and the
clock (paper: the simulated fills, live: real orders through the signed client)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from live_testkit import SYMBOL, live_settings, sim_config

from cdb_cli.adapters.clock import LiveClock
from cdb_cli.adapters.mexc.execution import MexcExecutionClient
from cdb_cli.adapters.mexc.sim.exchange import SimExchange
from cdb_cli.adapters.mexc.sim.server import SimServer
from cdb_cli.engine.records import Mode
from cdb_cli.kernel.system import open_kernel
from cdb_cli.runtime.live import LiveVenue
from cdb_cli.runtime.paper import PaperVenue


def test_a_paper_kernel_gives_the_paper_venue_and_the_wall_clock(tmp_path: Path) -> None:
    settings = live_settings(tmp_path, mexc_api_key=None, mexc_api_secret=None)

    async def scenario() -> None:
        async with open_kernel(
            settings, Mode.PAPER, symbols=[SYMBOL], run_id="pkernel1", feed="sim"
        ) as kernel:
            assert isinstance(kernel.venue(), PaperVenue)
            assert isinstance(kernel.clock, LiveClock)
            assert kernel.ws_url.startswith("ws://127.0.0.1:")  # the in-process simulator

    asyncio.run(scenario())


def test_a_live_kernel_gives_the_live_venue_on_the_signed_client(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with SimServer(SimExchange(sim_config())) as server:
            settings = live_settings(
                tmp_path, mexc_rest_url=server.rest_url, mexc_ws_url=server.ws_url
            )
            async with open_kernel(
                settings, Mode.LIVE, symbols=[SYMBOL], run_id="lkernel1"
            ) as kernel:
                kernel.instruments = await kernel.http.exchange_info([SYMBOL])
                venue = kernel.venue()
                assert isinstance(venue, LiveVenue)
                assert isinstance(venue.client, MexcExecutionClient)
                assert (await venue.client.balances())["USDT"] > 0  # signed: the account answers
                assert isinstance(kernel.clock, LiveClock)

    asyncio.run(scenario())


def test_the_warm_up_covers_a_strategy_that_needs_more_than_the_default(tmp_path: Path) -> None:
    from strategies_testkit import EXAMPLE_SPEC

    from cdb_cli.kernel.system import WARM_UP_BARS

    base = live_settings(tmp_path, mexc_api_key=None, mexc_api_secret=None)
    long = base.model_copy(
        update={"strategy": EXAMPLE_SPEC, "strategy_params": {"lookback": "700"}}
    )

    async def history_lengths() -> list[int]:
        lengths = []
        for settings in (base, long):
            async with open_kernel(
                settings, Mode.PAPER, symbols=[SYMBOL], run_id="pkernel3", feed="sim"
            ) as kernel:
                lengths.append(len(await kernel.kline_warm_up()(SYMBOL)))
        return lengths

    default, longer = asyncio.run(history_lengths())
    assert default == WARM_UP_BARS
    assert longer == 701
