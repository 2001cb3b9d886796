"""The MCP server in process: which tools it offers for which options, the log tail's bounds
and filter, and the redaction every answer goes through (the stdio tests, driving ``cdb mcp``
with the SDK's client, are in tests/commands/test_mcp.py)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from cdb_cli.services.mcp_server import READ_TOOLS, _Answers, build_server, tail_log
from cdb_cli.settings import Settings

SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", mexc_api_secret=SECRET)


def tool_names(server: object) -> set[str]:
    async def names() -> set[str]:
        return {tool.name for tool in await server.list_tools()}  # type: ignore[attr-defined]

    return anyio.run(names)


@pytest.mark.parametrize(
    ("options", "extra"),
    [
        ({}, set()),
        ({"allow_halt": True}, {"halt"}),
        ({"log_file": Path("run.log")}, {"logs"}),
        ({"allow_halt": True, "log_file": Path("run.log")}, {"halt", "logs"}),
    ],
)
def test_the_tools_each_option_offers(
    settings: Settings, options: dict[str, object], extra: set[str]
) -> None:
    assert tool_names(build_server(settings, **options)) == set(READ_TOOLS) | extra  # type: ignore[arg-type]


def test_every_read_tool_says_it_is_read_only(settings: Settings) -> None:
    async def tools() -> list[object]:
        return list(await build_server(settings, allow_halt=True).list_tools())

    for tool in anyio.run(tools):
        read_only = tool.annotations.read_only_hint  # type: ignore[attr-defined]
        assert read_only is (tool.name != "halt"), tool.name  # type: ignore[attr-defined]


def test_the_log_tail_is_bounded_and_keeps_one_run(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    rows = [{"message": f"line {i}", "run_id": "a" if i % 2 else "b"} for i in range(1000)]
    log.write_text("\n".join(json.dumps(row) for row in rows) + "\n\nplain text\n")
    assert tail_log(log, 2) == [rows[-1], "plain text"]
    of_a = tail_log(log, 3, run_id="a")
    assert [row["message"] for row in of_a] == ["line 995", "line 997", "line 999"]
    assert tail_log(log, 5, run_id="nobody") == []


def test_answers_are_redacted_keys_and_values(settings: Settings) -> None:
    answers = _Answers(settings, None)
    document = {
        "reason": f"key {SECRET}",
        SECRET: ["postgresql://cdb:hunter22@db/cdb", {"deep": (SECRET,)}],
        "n": 3,
        "none": None,
    }
    cleaned = answers.clean(document)
    assert SECRET not in json.dumps(cleaned)
    assert "hunter22" not in json.dumps(cleaned)
    assert cleaned["reason"] == "key ***"
    assert cleaned["n"] == 3
    assert cleaned["none"] is None
