"""``cdb mcp``: cdb's operator questions as MCP tools for AI assistants (the official ``mcp`` SDK).

Every tool calls the service function its CLI command calls (:mod:`cdb_cli.services.operator`)
and answers the document that command prints with ``--json``, passed through the CLI's
redaction (:func:`cdb_cli.redaction.redact` with the configured secrets). Long lists are paged
(``cursor``/``limit``). Read-only unless the server was built with ``allow_halt``: then a
``halt`` tool writes the operator's halt (``engine.halts.halt_trading``, as ``cdb risk halt``),
audited with the MCP client's name (``mcp:<clientInfo.name>``) as the actor. There is never a
reset, a flatten or a live start.

Imported by ``commands/mcp.py`` inside the command only: the SDK is an optional extra
(``pip install 'cdb-cli[mcp]'``) and ``cdb --help`` never loads it.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from cdb_cli import __version__
from cdb_cli.services import operator

if TYPE_CHECKING:
    from cdb_cli.settings import Settings

__all__ = ["MAX_LIMIT", "READ_TOOLS", "build_server", "tail_log"]

T = TypeVar("T")

MAX_LIMIT = 200
"""The most items one page holds (decisions, trades, exposure rows, log lines)."""

READ_TOOLS = (
    "status",
    "explain",
    "risk_explain",
    "decisions",
    "decision_trace",
    "report",
    "systemcheck",
    "backups",
)
"""The read-only tools every server has (``logs`` too when it was given a log file)."""

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)

Since = Annotated[
    str | None,
    Field(description="Window start: a duration back from now (90m, 24h, 7d) or a UTC time."),
]
Until = Annotated[
    str | None, Field(description="Window end: a duration back from now or a UTC time.")
]
Symbol = Annotated[str | None, Field(description="Only this symbol, e.g. BTCUSDT.")]
Run = Annotated[str | None, Field(description="Only this run id (cdb run / replay --persist).")]
Cursor = Annotated[
    int, Field(ge=0, description="Where the page starts: 0, then the answer's next_cursor.")
]


def _limit(default: int) -> Any:
    return Field(default=default, ge=1, le=MAX_LIMIT, description="Items per page.")


class _Answers:
    """The tools' bodies: settings, secrets and redaction shared by all of them."""

    def __init__(self, settings: Settings, env_file: Path | None) -> None:
        from cdb_cli.services.systemcheck import secret_values

        self.settings = settings
        self.env_file = env_file
        self.secrets = secret_values(settings)

    def clean(self, value: Any) -> Any:
        """``value`` with every string redacted as the CLI redacts (secrets never leave)."""
        from cdb_cli.redaction import redact

        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, dict):
            return {self.clean(str(k)): self.clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.clean(item) for item in value]
        return value

    async def answer(self, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``body`` off the event loop (the store is blocking I/O); a question with no
        answer or a bad option is the tool's error, with the document the CLI prints."""
        from cdb_cli.engine.errors import CdbError

        try:
            document = await anyio.to_thread.run_sync(body)
        except operator.Unanswered as e:
            raise ToolError(json.dumps(self.clean(e.document), default=str)) from None
        except operator.BadOption as e:
            raise ToolError(self.clean(f"{e.param_hint}: {e.message}")) from None
        except CdbError as e:
            raise ToolError(self.clean(e.message)) from None
        except Exception as e:  # a bad time (typer.BadParameter) or the unexpected: one line
            import typer

            if isinstance(e, typer.BadParameter):
                raise ToolError(self.clean(e.format_message())) from None
            raise ToolError(self.clean(f"{type(e).__name__}: {e}")) from None
        # JSON as the CLI writes it (default=str), then redacted
        cleaned: dict[str, Any] = self.clean(json.loads(json.dumps(document, default=str)))
        return cleaned


def _window(symbol: str | None, since: str | None, until: str | None, run: str | None) -> Any:
    from cdb_cli.options import parse_when

    return operator.Window(
        symbol=symbol,
        since_ns=parse_when(since, "since"),
        until_ns=parse_when(until, "until"),
        run_id=run,
    )


def _page(items: list[Any], cursor: int, limit: int) -> tuple[list[Any], int | None]:
    end = cursor + limit
    return items[cursor:end], end if end < len(items) else None


def tail_log(path: Path, limit: int, run_id: str | None = None) -> list[Any]:
    """The last ``limit`` lines of ``path`` (of ``run_id``'s when given): JSON lines as their
    objects (``cdb run`` off a terminal writes them), other lines as text."""
    lines: deque[Any] = deque(maxlen=limit)
    with path.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            text = raw.rstrip("\n")
            if not text:
                continue
            try:
                line: Any = json.loads(text)
            except ValueError:
                line = text
            if run_id is not None and not (isinstance(line, dict) and line.get("run_id") == run_id):
                continue
            lines.append(line)
    return list(lines)


def _client_name(ctx: Context) -> str:
    params = ctx.session.client_params
    name = params.client_info.name if params is not None else ""
    return f"mcp:{name or 'unknown'}"


def build_server(
    settings: Settings,
    env_file: Path | None = None,
    *,
    allow_halt: bool = False,
    log_file: Path | None = None,
) -> MCPServer:
    """The MCP server with cdb's tools; ``halt`` only with ``allow_halt``, ``logs`` only with a
    ``log_file``."""
    answers = _Answers(settings, env_file)
    server: MCPServer = MCPServer(
        name="cdb",
        version=__version__,
        log_level="WARNING",  # stderr stays cdb's: the SDK's INFO lines name every tool call
        instructions=(
            "Claire de Binare (cdb), a MEXC spot trading bot: read its trading state, why it did "
            "or did not trade, its risk decisions, reports, checks and backups. Each tool answers "
            "what the matching cdb command prints with --json."
        ),
    )
    _add_read_tools(server, answers)
    if log_file is not None:
        _add_logs_tool(server, answers, log_file)
    if allow_halt:
        _add_halt_tool(server, answers)
    return server


def _add_read_tools(server: MCPServer, answers: _Answers) -> None:  # noqa: C901 - one per tool
    settings = answers.settings

    @server.tool(annotations=_READ_ONLY)
    async def status(run: Run = None) -> dict[str, Any]:
        """The trading state (active, reducing, halted), why, by whom and since when, equity
        with drawdowns and exposure against their limits, and the open positions
        (= cdb risk status --json)."""
        return await answers.answer(functools.partial(operator.status, settings, run))

    @server.tool(annotations=_READ_ONLY)
    async def explain(
        target: Annotated[
            str | None,
            Field(description="One bar's whole path: SYMBOL@TIME (UTC) or a decision/signal id."),
        ] = None,
        symbol: Symbol = None,
        since: Since = None,
        until: Until = None,
        run: Run = None,
        what_if: Annotated[
            list[str] | None,
            Field(description="NAME=VALUE strategy settings or risk limits to re-run with."),
        ] = None,
        strategy: Annotated[
            str | None, Field(description="Re-run the stored bars with this strategy.")
        ] = None,
        near: Annotated[int, Field(ge=0, le=50, description="Near misses to list.")] = 5,
    ) -> dict[str, Any]:
        """Why the bot did or did not trade: per symbol market data -> bars -> strategy
        conditions -> signals -> risk -> orders -> fills and the stage that stopped things,
        one bar's whole path, or a what-if (= cdb explain --json)."""
        from cdb_cli.options import parse_when

        def body() -> dict[str, Any]:
            def when(text: str) -> int:
                moment = parse_when(text, "SYMBOL@TIME")
                if moment is None:  # pragma: no cover - parse_when returns None only for None
                    raise ToolError(f"no time in {target!r}")
                return moment

            return operator.explain(
                settings,
                answers.env_file,
                target=target,
                window=_window(symbol, since, until, run),
                what_if=what_if or [],
                strategy=strategy,
                near=near,
                parse_time=when,
            )

        return await answers.answer(body)

    @server.tool(annotations=_READ_ONLY)
    async def risk_explain(
        symbol: Symbol = None,
        since: Since = None,
        until: Until = None,
        run: Run = None,
        what_if: Annotated[
            list[str] | None,
            Field(description="LIMIT=VALUE risk limits to re-decide the window with."),
        ] = None,
        show: Annotated[int, Field(ge=0, le=MAX_LIMIT, description="Flips to list.")] = 20,
    ) -> dict[str, Any]:
        """Why orders were rejected: verdicts, reasons, the top blocker, per rule the observed
        values against its limit; with what_if the decisions that would flip
        (= cdb risk explain --json)."""
        return await answers.answer(
            lambda: operator.risk_explain(
                settings, _window(symbol, since, until, run), what_if or [], show
            )
        )

    @server.tool(annotations=_READ_ONLY)
    async def decisions(
        symbol: Symbol = None,
        since: Since = None,
        until: Until = None,
        run: Run = None,
        cursor: Cursor = 0,
        limit: Annotated[int, _limit(20)] = 20,
    ) -> dict[str, Any]:
        """The risk decisions, newest first, one page: id, time, symbol, side, verdict, sizes,
        the rules that failed. The whole trace of one: decision_trace."""

        def body() -> dict[str, Any]:
            page = operator.recent_decisions(
                settings, _window(symbol, since, until, run), offset=cursor, limit=limit
            )
            return {
                "total": page["total"],
                "decisions": page["decisions"],
                "next_cursor": page["next_offset"],
            }

        return await answers.answer(body)

    @server.tool(annotations=_READ_ONLY)
    async def decision_trace(
        decision_id: Annotated[str, Field(description="A decision id, e.g. r1a2b3c4d5e6-42.")],
    ) -> dict[str, Any]:
        """One risk decision in full: every rule with observed value, limit and outcome, what
        it saw, and its signal (= cdb risk explain DECISION_ID --json)."""
        return await answers.answer(
            functools.partial(operator.decision_trace, settings, decision_id)
        )

    @server.tool(annotations=_READ_ONLY)
    async def report(
        symbol: Symbol = None,
        since: Since = None,
        until: Until = None,
        run: Run = None,
        cursor: Cursor = 0,
        limit: Annotated[int, _limit(100)] = 100,
    ) -> dict[str, Any]:
        """Trades (round trips), PnL per day and per symbol, win rate, fees, exposure over time,
        rejections by reason (= cdb report --json); the trades and exposure lists are paged
        (next_cursor while either has more)."""

        def body() -> dict[str, Any]:
            document, reason = operator.report(settings, _window(symbol, since, until, run))
            if reason is not None:
                raise operator.Unanswered(reason, {**document, "reason": reason})
            trades, more_trades = _page(document["trades"], cursor, limit)
            exposure, more_exposure = _page(document["exposure"], cursor, limit)
            return {
                **document,
                "trades": trades,
                "exposure": exposure,
                "page": {
                    "trades_total": len(document["trades"]),
                    "exposure_total": len(document["exposure"]),
                    "next_cursor": more_trades or more_exposure,
                },
            }

        return await answers.answer(body)

    @server.tool(annotations=_READ_ONLY)
    async def systemcheck(
        quick: Annotated[
            bool, Field(description="Skip the checks that reach the network (Redis, SMTP, MEXC).")
        ] = True,
    ) -> dict[str, Any]:
        """Every dependency checked, one row each with ok/warn/fail/skip, the value and a hint,
        and the full path through strategy, risk, paper execution and portfolio
        (= cdb systemcheck --json)."""
        return await answers.answer(
            lambda: (
                operator.systemcheck(
                    answers.env_file, settings, quick=quick, now=datetime.now(UTC)
                ).document
            )
        )

    @server.tool(annotations=_READ_ONLY)
    async def backups() -> dict[str, Any]:
        """The backups in CDB_BACKUP_DIR, oldest first; damaged ones marked, the last verified
        one too (= cdb backup list --json)."""
        return await answers.answer(functools.partial(operator.backup_list, settings))


def _add_logs_tool(server: MCPServer, answers: _Answers, log_file: Path) -> None:
    @server.tool(annotations=_READ_ONLY)
    async def logs(
        run: Run = None,
        limit: Annotated[int, _limit(50)] = 50,
    ) -> dict[str, Any]:
        """The last log lines of the run (the file cdb run's stderr goes to), newest last."""
        return await answers.answer(
            lambda: {"file": str(log_file), "lines": tail_log(log_file, limit, run)}
        )


def _add_halt_tool(server: MCPServer, answers: _Answers) -> None:
    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True
        )
    )
    async def halt(
        reason: Annotated[str, Field(min_length=1, description="Why trading stops (audited).")],
        ctx: Context,
        run: Run = None,
    ) -> dict[str, Any]:
        """The kill switch (= cdb risk halt): halt new entries, audited with this MCP client's
        name as the actor; a running cdb run halts at its next flush. Only cdb risk reset, by a
        person, ends it."""
        import time

        from cdb_cli.engine.halts import halt_trading
        from cdb_cli.kernel import open_store

        why = reason.strip()
        if not why:
            raise ToolError("reason: must say why")
        actor = _client_name(ctx)

        def body() -> dict[str, Any]:
            store = open_store(answers.settings)
            try:
                already = halt_trading(
                    store,
                    reason=why,
                    actor=actor,
                    flatten=False,
                    run_id=run,
                    now_ns=time.time_ns(),
                    via="mcp",
                )
            finally:
                store.close()
            return {
                "halted": True,
                "actor": actor,
                "reason": why,
                "already_halted": already.describe() if already is not None else None,
            }

        return await answers.answer(body)
