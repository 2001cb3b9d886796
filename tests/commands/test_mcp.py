"""``cdb mcp`` driven over stdio by the ``mcp`` SDK's own client: it lists its tools, and each tool
answers what its command prints with ``--json`` (CliRunner, same store), on a store filled by a
persisted replay and by a short paper run, on SQLite and the real PostgreSQL. ``halt`` exists only
with ``--allow-halt`` and is audited with the client's name; no answer holds a configured secret.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from market_testkit import free_port, wait_until
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_testkit import CLIENT, Tools, cli_json, mcp_tools, paper_run, persisted_replay
from typer.testing import Result

from cdb_cli.engine.runs import HALT_ACTION
from cdb_cli.kernel import open_store
from cdb_cli.services.mcp_server import READ_TOOLS
from cdb_cli.settings import Settings

API_KEY = "mx0vglMcpTestKey42"
API_SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``configured(url)``: the commands and the server read ``url``, with MEXC keys set and a
    backup folder of the test's own."""

    def configure(url: str) -> None:
        monkeypatch.setenv("CDB_DATABASE_URL", url)
        monkeypatch.setenv("CDB_MEXC_API_KEY", API_KEY)
        monkeypatch.setenv("CDB_MEXC_API_SECRET", API_SECRET)
        monkeypatch.setenv("CDB_BACKUP_DIR", str(tmp_path / "backups"))
        # no run answers /ready here (another test's run may hold the default port 8000)
        monkeypatch.setenv("CDB_HTTP_PORT", str(free_port()))

    return configure


# --- the comparisons --------------------------------------------------------------------------


def without_page(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "page"}


async def check_read_tools(
    tools: Tools, cdb: Callable[..., Result], run_id: str | None, *, backup: bool = True
) -> None:
    """Every read tool against its command's --json on the same store (``backup``: make one
    first, so the list is not empty)."""
    assert await tools.names() >= set(READ_TOOLS)
    assert "halt" not in await tools.names()

    assert await tools.call("status") == cli_json(cdb, "risk", "status")

    window = cli_json(cdb, "explain")
    assert await tools.call("explain") == window
    assert window["symbols"]
    if window["near_misses"]:
        miss = window["near_misses"][0]
        target = f"{miss['symbol']}@{miss['bar'].replace(' ', 'T')}"
        assert await tools.call("explain", target=target) == cli_json(cdb, "explain", target)
    what_if = ["volume_factor=1.0"]
    assert await tools.call("explain", what_if=what_if) == cli_json(
        cdb, "explain", "--what-if", what_if[0]
    )
    if run_id is not None:
        assert await tools.call("explain", run=run_id) == cli_json(cdb, "explain", "--run", run_id)

    summary = cli_json(cdb, "risk", "explain")
    assert await tools.call("risk_explain") == summary
    flips = ["max_spread_pct=5"]
    assert await tools.call("risk_explain", what_if=flips) == cli_json(
        cdb, "risk", "explain", "--what-if", flips[0]
    )

    await check_decisions(tools, cdb, summary["decisions"]["total"])

    report = cli_json(cdb, "report")
    paged = await tools.call("report", limit=200)
    assert without_page(paged) == report
    assert paged["page"]["next_cursor"] is None
    first = await tools.call("report", limit=1)
    assert first["trades"] == report["trades"][:1]
    assert first["page"]["trades_total"] == len(report["trades"])
    if len(report["trades"]) > 1:
        assert first["page"]["next_cursor"] == 1
        second = await tools.call("report", cursor=1, limit=1)
        assert second["trades"] == report["trades"][1:2]

    check = await tools.call("systemcheck", quick=True)
    cli_check = cli_json(cdb, "systemcheck", "--quick", exit_code=0 if check["ok"] else 4)
    # the same rows with the same verdicts (measured values such as latency vary per run)
    assert [(r["name"], r["status"]) for r in check["checks"]] == [
        (r["name"], r["status"]) for r in cli_check["checks"]
    ]

    if backup:
        assert cdb("backup", "create").exit_code == 0
    assert await tools.call("backups") == cli_json(cdb, "backup", "list")


async def check_decisions(tools: Tools, cdb: Callable[..., Result], rule_decisions: int) -> None:
    """The pages of ``decisions`` cover every stored decision once, newest first, and each item
    agrees with its trace (= cdb risk explain ID --json), which ``decision_trace`` answers."""
    seen: list[dict[str, Any]] = []
    cursor: int | None = 0
    while cursor is not None:
        page = await tools.call("decisions", cursor=cursor, limit=7)
        assert len(page["decisions"]) <= 7
        seen += page["decisions"]
        cursor = page["next_cursor"]
    assert len(seen) == page["total"] >= rule_decisions > 0
    assert len({d["decision_id"] for d in seen}) == len(seen)
    assert [d["ts_event"] for d in seen] == sorted((d["ts_event"] for d in seen), reverse=True)
    for item in (seen[0], seen[-1]):
        cli = cli_json(cdb, "risk", "explain", item["decision_id"])
        assert await tools.call("decision_trace", decision_id=item["decision_id"]) == cli
        trace = cli["trace"]
        assert {k: v for k, v in item.items() if k != "failed_rules"} == {
            k: v for k, v in trace.items() if k not in ("checks", "state")
        }
        failed = [check["rule"] for check in trace["checks"] if check["outcome"] == "fail"]
        assert item["failed_rules"] == failed


def assert_no_secret(tools: Tools, *secrets: str) -> None:
    assert tools.texts
    for text in tools.texts:
        for secret in secrets:
            assert secret not in text


# --- the tests --------------------------------------------------------------------------------


def test_each_tool_answers_as_its_command_on_a_persisted_replay(
    cdb: Callable[..., Result], configured: Callable[[str], None], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    run_id = persisted_replay(url)
    configured(url)

    async def main() -> None:
        async with mcp_tools(tmp_path) as tools:
            await check_read_tools(tools, cdb, run_id)
            unknown = await tools.error("decision_trace", decision_id="nope-1")
            assert "No risk decision 'nope-1'" in unknown
            assert "is not a duration" in await tools.error("report", since="yesterday-ish")
            assert "LIMIT=VALUE" in await tools.error("risk_explain", what_if=["nothing"])
            # nothing to report: the error carries the document the command prints
            failed = await tools.error("report", since="2001-01-01", until="2001-01-02")
            assert failed.startswith("Error executing tool report: {")
            empty = json.loads(failed.partition(": ")[2])
            assert empty == cli_json(cdb, "report", "--since", "2001-01-01", "--until",
                                     "2001-01-02", exit_code=1)  # fmt: skip
            assert_no_secret(tools, API_KEY, API_SECRET)

    anyio.run(main)


def test_each_tool_answers_as_its_command_after_a_paper_run(
    cdb: Callable[..., Result], configured: Callable[[str], None], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    paper_run(url)
    configured(url)

    async def main() -> None:
        async with mcp_tools(tmp_path) as tools:
            await check_read_tools(tools, cdb, None)
            status = await tools.call("status")
            assert [p["symbol"] for p in status["positions"]] == ["BTCUSDT"]  # bought, held
            assert status["equity"] is not None
            assert_no_secret(tools, API_KEY, API_SECRET)

    anyio.run(main)


def test_halt_only_with_allow_halt_and_audited_with_the_client_name(
    cdb: Callable[..., Result], configured: Callable[[str], None], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    persisted_replay(url)
    configured(url)
    before = cli_json(cdb, "risk", "status")

    async def main() -> None:
        async with mcp_tools(tmp_path) as tools:
            assert "halt" not in await tools.names()
            assert "reset" not in await tools.names()
            assert "halt" in await tools.error("halt", reason="no")  # unknown tool
        assert cli_json(cdb, "risk", "status") == before  # nothing was written
        async with mcp_tools(tmp_path, "--allow-halt") as tools:
            names = await tools.names()
            assert "halt" in names
            assert not names & {"reset", "flatten", "start", "run"}
            answer = await tools.call("halt", reason="assistant saw a runaway loss")
            assert answer["actor"] == f"mcp:{CLIENT}"
            assert (await tools.call("status"))["state"] == "halted"

    anyio.run(main)
    status = cli_json(cdb, "risk", "status")
    assert (status["state"], status["actor"], status["reason"]) == (
        "halted",
        f"mcp:{CLIENT}",
        "assistant saw a runaway loss",
    )
    store = open_store(Settings(database_url=url))
    try:
        (halt,) = [a for a in store.audits(action=HALT_ACTION) if a.actor.startswith("mcp:")]
    finally:
        store.close()
    assert halt.actor == f"mcp:{CLIENT}"
    assert halt.detail["reason"] == "assistant saw a runaway loss"
    assert halt.detail["via"] == "mcp"


def test_no_answer_holds_a_configured_secret(
    cdb: Callable[..., Result], configured: Callable[[str], None], tmp_path: Path
) -> None:
    """A secret that reached the store (an operator pasted the key into a halt's reason) is
    printed by the CLI's --json as it is, and masked by every MCP answer."""
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    persisted_replay(url)
    configured(url)
    reason = f"rotate key {API_SECRET} now"
    assert cdb("risk", "halt", "--reason", reason).exit_code == 0
    assert cli_json(cdb, "risk", "status")["reason"] == reason  # the CLI's document has it

    async def main() -> None:
        async with mcp_tools(tmp_path) as tools:
            status = await tools.call("status")
            assert status["reason"] == "rotate key *** now"
            for name in READ_TOOLS:
                if name == "decision_trace":
                    await tools.error(name, decision_id=API_SECRET)
                else:
                    await tools.call(name)
            assert_no_secret(tools, API_KEY, API_SECRET)

    anyio.run(main)


def test_status_shows_the_readiness_of_the_run_on_the_http_port(
    cdb: Callable[..., Result],
    configured: Callable[[str], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cdb_cli.adapters.http_health import HealthServer
    from cdb_cli.adapters.metrics import Metrics

    url = f"sqlite:///{tmp_path / 'paper.db'}"
    paper_run(url)
    configured(url)

    def stale() -> list[str]:
        return ["feed stale: BTCUSDT 45 s"]

    async def main() -> None:
        async with mcp_tools(tmp_path) as tools:  # nothing serves its port
            readiness = (await tools.call("status"))["readiness"]
            assert (readiness["running"], readiness["error"]) == (False, "ConnectError")
        metrics = Metrics(run_id="run-9", symbols=["BTCUSDT"])
        async with HealthServer(metrics=metrics, readiness=stale, run_id="run-9", port=0) as web:
            monkeypatch.setenv("CDB_HTTP_PORT", str(web.port))
            async with mcp_tools(tmp_path) as tools:
                status = await tools.call("status")
            # the CLI in a thread: this loop serves /ready meanwhile
            cli = await anyio.to_thread.run_sync(lambda: cli_json(cdb, "risk", "status"))
        assert status == cli
        assert status["readiness"] == {
            "url": f"http://127.0.0.1:{web.port}/ready",
            "running": True,
            "ready": False,
            "reasons": ["feed stale: BTCUSDT 45 s"],
            "run_id": "run-9",
        }

    anyio.run(main)
    text = cdb("risk", "status")
    assert text.exit_code == 0
    assert "position BTCUSDT:" in text.stdout
    assert "run: none answers" in text.stdout


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


def _listening_addresses(port: int) -> set[str]:
    """The IPv4 and IPv6 addresses (hex, as Linux writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_http_serves_the_same_tools_on_loopback(
    cdb: Callable[..., Result], configured: Callable[[str], None], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    persisted_replay(url)
    configured(url)
    port = free_port()
    env = {**os.environ, "NO_COLOR": "1"}
    with (tmp_path / "mcp-http.log").open("w") as errlog:
        server = subprocess.Popen(
            [sys.executable, "-c", "from cdb_cli.app import main; main()", "mcp", "--http",
             "--port", str(port)],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=errlog,
        )  # fmt: skip
        try:
            wait_until(lambda: _listening(port), 30, "cdb mcp --http to listen")

            async def main() -> dict[str, Any]:
                async with (
                    streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write),
                    ClientSession(read, write) as client,
                ):
                    await client.initialize()
                    tools = Tools(client)
                    assert set(READ_TOOLS) <= await tools.names()
                    assert "halt" not in await tools.names()
                    return await tools.call("risk_explain")

            assert anyio.run(main) == cli_json(cdb, "risk", "explain")
            assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only, no wildcard
        finally:
            server.terminate()
            server.wait(10)
    assert "http://127.0.0.1:" in (tmp_path / "mcp-http.log").read_text()


def test_logs_tool_only_with_a_log_file_and_bounded(
    configured: Callable[[str], None], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    persisted_replay(url)
    configured(url)
    log = tmp_path / "run.log"
    lines = [
        json.dumps({"ts": f"t{i}", "level": "info", "message": f"bar {i}", "run_id": "r1"})
        for i in range(300)
    ]
    lines.append(json.dumps({"level": "error", "message": f"login {API_SECRET}", "run_id": "r1"}))
    lines.append(json.dumps({"level": "info", "message": "other run", "run_id": "r2"}))
    log.write_text("\n".join(lines) + "\nnot json at all\n")

    async def main() -> None:
        async with mcp_tools(tmp_path) as tools:
            assert "logs" not in await tools.names()
        async with mcp_tools(tmp_path, "--log-file", str(log)) as tools:
            assert "logs" in await tools.names()
            last = (await tools.call("logs", limit=3))["lines"]
            assert last[1] == {"level": "info", "message": "other run", "run_id": "r2"}
            assert last[2] == "not json at all"
            assert last[0]["message"] == "login ***"
            run = (await tools.call("logs", run="r1", limit=200))["lines"]
            assert len(run) == 200
            assert run[0]["message"] == "bar 101"
            assert "limit" in await tools.error("logs", limit=10_000)
            assert_no_secret(tools, API_SECRET)

    anyio.run(main)


def test_without_the_store_a_tool_says_why(
    configured: Callable[[str], None], tmp_path: Path
) -> None:
    configured(f"sqlite:///{tmp_path / 'none.db'}")

    async def main() -> None:
        async with mcp_tools(tmp_path) as tools:
            assert "cdb db upgrade" in await tools.error("status")

    anyio.run(main)


def test_port_only_with_http(cdb: Callable[..., Result]) -> None:
    result = cdb("mcp", "--port", "9999")
    assert result.exit_code == 2
    assert "--port" in result.output


@pytest.mark.infra
def test_each_tool_answers_as_its_command_on_postgres(
    cdb: Callable[..., Result],
    configured: Callable[[str], None],
    postgres_database: str,
    tmp_path: Path,
) -> None:
    run_id = persisted_replay(postgres_database)
    configured(postgres_database)

    async def main() -> None:
        async with mcp_tools(tmp_path) as tools:
            await check_read_tools(tools, cdb, run_id, backup=False)
            password = _password(postgres_database)
            assert_no_secret(tools, API_KEY, API_SECRET, *([password] if password else []))

    anyio.run(main)


def _password(url: str) -> str | None:
    from sqlalchemy import make_url

    return make_url(url).password  # type: ignore[no-any-return]
