"""``cdb mcp`` in a test: the SDK's own stdio client on a child ``cdb mcp`` (``mcp_tools``), the
commands' ``--json`` (``cli_json``), and stores filled by a persisted replay or a short paper run.
``pythonpath`` in pyproject.toml makes this module importable from every test."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cdb_testkit import CANDLES, QueueFeed, require_data
from market_testkit import eventually
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import Implementation
from paper_testkit import session, trade_minutes
from typer.testing import Result

from cdb_cli.engine.clock import TestClock
from cdb_cli.engine.ports.store import Store
from cdb_cli.runtime.loop import TradingLoop
from cdb_cli.services.replay import ReplayRequest, persist_replay, run_replay
from cdb_cli.settings import Settings

__all__ = ["CLIENT", "Tools", "cli_json", "mcp_tools", "paper_run", "persisted_replay"]

CLIENT = "cdb-test-client"
"""The clientInfo name the test client sends: the actor of its halts."""
SYMBOL_REPLAY = "UNITTESTBTC"


# --- the client -------------------------------------------------------------------------------


class Tools:
    """One stdio session with ``cdb mcp``: ``await tools.call(name, **arguments)``."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.texts: list[str] = []  # every answer as it came, for the secret check

    async def names(self) -> set[str]:
        return {tool.name for tool in (await self.session.list_tools()).tools}

    async def call(self, name: str, **arguments: Any) -> dict[str, Any]:
        result = await self.session.call_tool(name, arguments)
        text = "".join(getattr(part, "text", "") for part in result.content)
        self.texts.append(text + json.dumps(result.structured_content))
        assert not result.is_error, f"{name}: {text}"
        assert result.structured_content is not None, name
        return dict(result.structured_content)

    async def error(self, name: str, **arguments: Any) -> str:
        result = await self.session.call_tool(name, arguments)
        text = "".join(getattr(part, "text", "") for part in result.content)
        self.texts.append(text)
        assert result.is_error, f"{name} answered: {text}"
        return text


@asynccontextmanager
async def mcp_tools(tmp_path: Path, *args: str) -> AsyncIterator[Tools]:
    """``cdb mcp ARGS`` as a child process with this test's CDB_* environment."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("CDB_", "XDG_"))}
    env["NO_COLOR"] = "1"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", "from cdb_cli.app import main; main()", "mcp", *args],
        env=env,
        cwd=tmp_path,
    )
    with (tmp_path / "mcp-stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(
                read, write, client_info=Implementation(name=CLIENT, version="1.0")
            ) as client,
        ):
            await client.initialize()
            yield Tools(client)


def cli_json(cdb: Callable[..., Result], *args: str, exit_code: int = 0) -> dict[str, Any]:
    result = cdb(*args, "--json")
    assert result.exit_code == exit_code, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


# --- stores -----------------------------------------------------------------------------------


def persisted_replay(url: str) -> str:
    settings = Settings(database_url=url)
    result = run_replay(settings, ReplayRequest(data=require_data(CANDLES), symbol=SYMBOL_REPLAY))
    persist_replay(settings, result)
    return result.run_id


def paper_run(url: str) -> None:
    """A short paper run into ``url``: a buy on a jump in volume, filled, then a rise."""
    settings = Settings(database_url=url, paper_latency_ms=0)

    async def trades(runtime: TradingLoop, feed: QueueFeed, clock: TestClock, store: Store) -> None:
        await trade_minutes(feed, clock, 0, [99.6], volume=1.0)
        await trade_minutes(feed, clock, 1, [110.0], volume=1000.0)  # the buy, at this close
        await trade_minutes(feed, clock, 2, [110.5], volume=1.0)  # its first trade fills it
        await eventually(lambda: bool(store.fills()))
        await trade_minutes(feed, clock, 3, [111.0, 112.0], volume=1.0)

    asyncio.run(session(settings, trades))
