"""``cdb events``: inject a test event into the bus, or watch topics live."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import AppContext, app_context, run_async
from cdb_cli.options import JsonOpt

if TYPE_CHECKING:
    from cdb_cli.engine.events import Event, Topic
    from cdb_cli.engine.ports.bus import MessageBus

app = typer.Typer(
    help="Events on the bus: publish a test event, tail topics live.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

TOPICS_HELP = (
    "market_data, trading_signals, risk_approved_trades, risk_events, execution_events, "
    "system_health, market_bars"
)


def _topic(name: str) -> Topic:
    from cdb_cli.engine.events import Topic

    try:
        return Topic(name)
    except ValueError:
        raise typer.BadParameter(f"{name!r} is not a topic; one of {TOPICS_HELP}") from None


def _open_bus(context: AppContext) -> MessageBus:
    from urllib.parse import urlsplit

    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.kernel import open_bus

    settings = context.settings()
    if urlsplit(settings.bus_url).scheme == "memory":
        raise ConfigurationError(
            "CDB_BUS_URL is memory:// (inside one process): no other process would see the "
            "events; set CDB_BUS_URL=redis://HOST:6379/0"
        )
    return open_bus(settings)


def build_event(topic: Topic, raw: str, type_name: str | None, now_ns: int) -> Event:
    """The event in ``raw``: a full envelope, or the data of one event (``type_name`` or the
    topic's only type), with ``event_id``, ``ts_event`` and ``source`` filled in when absent."""
    from cdb_cli.engine.errors import MalformedEvent
    from cdb_cli.engine.events import TOPIC_EVENT_TYPES, decode_event, new_event_id

    try:
        document: Any = json.loads(raw)
    except ValueError as e:
        raise MalformedEvent(f"--data is not valid JSON: {e}") from None
    if not isinstance(document, dict):
        raise MalformedEvent("--data must be a JSON object (an event or its envelope)")
    allowed = TOPIC_EVENT_TYPES[topic]
    if {"type", "v", "data"} <= document.keys():
        envelope = document
    else:
        names = [cls.TYPE for cls in allowed]
        chosen = type_name or (names[0] if len(names) == 1 else None)
        if chosen is None:
            raise MalformedEvent(f"{topic} carries {', '.join(names)}: name one with --type")
        envelope = {"type": chosen, "v": 1, "data": document}
    data = envelope["data"]
    if isinstance(data, dict):
        data.setdefault("event_id", new_event_id())
        data.setdefault("ts_event", now_ns)
        data.setdefault("source", "cdb-events")
    event = decode_event(json.dumps(envelope))
    if not isinstance(event, allowed):
        raise MalformedEvent(
            f"{topic} does not carry {event.TYPE!r}; it carries "
            f"{', '.join(cls.TYPE for cls in allowed)}"
        )
    return event


@app.command("publish")
def publish(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(metavar="TOPIC", help=f"One of {TOPICS_HELP}.")],
    *,
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="JSON|@FILE",
            help="The event (or its envelope) as JSON, or @path to a file holding it.",
        ),
    ],
    type_name: Annotated[
        str | None,
        typer.Option("--type", metavar="TYPE", help="Event type when --data is bare data."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Publish one test event, validated against its type, to CDB_BUS_URL (Redis).

    Exit 2 when the event does not validate, 3 when the bus is in-process (memory://).
    """
    import time

    from cdb_cli.engine.errors import MalformedEvent

    context = app_context(ctx)
    chosen = _topic(topic)
    raw = data
    if data.startswith("@"):
        try:
            raw = Path(data[1:]).read_text(encoding="utf-8")
        except OSError as e:
            raise typer.BadParameter(
                f"cannot read {data[1:]}: {e.strerror}", param_hint="--data"
            ) from None
    try:
        event = build_event(chosen, raw, type_name, time.time_ns())
    except MalformedEvent as e:
        raise typer.BadParameter(e.message, param_hint="--data") from None
    bus = _open_bus(context)

    async def send() -> str:
        async with bus:
            return await bus.publish(chosen, event)

    message_id = run_async(send())
    if json_output or context.json:
        context.terminal.json(
            {"topic": str(chosen), "message_id": message_id, "event_id": event.event_id}
        )
    else:
        context.terminal.out.print(
            f"Published {event.TYPE} {event.event_id} to {chosen} as {message_id}", markup=False
        )


@app.command("tail")
def tail(
    ctx: typer.Context,
    topics: Annotated[list[str], typer.Argument(metavar="TOPIC...", help=f"{TOPICS_HELP}.")],
    *,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many events.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.1, help="Stop after this many seconds (default: never)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per event and line.")
    ] = False,
) -> None:
    """Print events of TOPIC... as they are published (from now on), until Ctrl-C.

    Each tail is its own consumer group, removed when it stops, so it never takes events from
    the components that consume the same topics.
    """
    context = app_context(ctx)
    chosen = [_topic(name) for name in topics]
    bus = _open_bus(context)
    as_json = json_output or context.json
    group = f"tail-{socket.gethostname()}-{os.getpid()}"
    printed = run_async(_tail(bus, chosen, group, count, timeout, as_json, context))
    context.terminal.err.print(f"{printed} events", markup=False)


async def _tail(
    bus: MessageBus,
    topics: list[Topic],
    group: str,
    count: int | None,
    seconds: float | None,
    as_json: bool,
    context: AppContext,
) -> int:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    printed = 0
    async with bus:
        subscriptions = [await bus.subscribe(topic, group, "tail") for topic in topics]
        context.terminal.err.print(
            f"Tailing {', '.join(str(t) for t in topics)} (group {group})", markup=False
        )
        try:
            while count is None or printed < count:
                if deadline is not None and loop.time() >= deadline:
                    break
                for subscription in subscriptions:
                    deliveries = await subscription.fetch(100, timeout_s=0.2)
                    for delivery in deliveries:
                        if count is not None and printed >= count:
                            break
                        _print_event(delivery.topic, delivery.message_id, delivery.event, as_json)
                        printed += 1
                    await subscription.ack(*deliveries)
        finally:
            for topic in topics:
                await bus.drop_group(topic, group)
    return printed


def _print_event(topic: Topic, message_id: str, event: Event, as_json: bool) -> None:
    from cdb_cli.engine.report import iso_utc

    data = event.model_dump(mode="json")
    if as_json:
        line = {"topic": str(topic), "message_id": message_id, "type": event.TYPE, "data": data}
        sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    else:
        rest = {k: v for k, v in data.items() if k not in {"event_id", "symbol", "ts_event"}}
        details = " ".join(f"{key}={value}" for key, value in rest.items())
        sys.stdout.write(
            f"{iso_utc(event.ts_event)} {topic} {event.TYPE} {event.symbol} {details}\n"
        )
    sys.stdout.flush()
