"""Golden WebSocket frames (tests/data/mexc/ws/): MEXC's documented example of a push, as the
protobuf frame it describes (plus the 2026 fields), and the simulator's recorded frame on the same
channel.

A fixture holds ``channel``, ``source``, ``documented`` (MEXC's example, verbatim but for its
``//`` comments), ``documented_body`` (the example's body key) and ``body`` (the wrapper field
that carries it on the wire: the examples show some bodies under older names),
``added_2026`` (fields of MEXC's 2026-06 protos the docs example predates, with illustrative
values), ``frame`` (hex of the protobuf frame the two make, see :func:`documented_frame`) and
``simulator`` (hex of the simulator's frame, recorded by :func:`record`).

Run ``python tests/adapters/mexc/ws_golden_kit.py`` to record the ``simulator`` entries again (for
an intended change of the simulator's frames only; the tests check the recorded shape).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from websockets.asyncio.client import connect

from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer

if __package__:
    from .golden_kit import fixtures as load_fixtures
else:  # run as a script: python tests/adapters/mexc/ws_golden_kit.py
    from golden_kit import fixtures as load_fixtures

WS_DIR = Path(__file__).resolve().parents[2] / "data" / "mexc" / "ws"
BTC = "BTCUSDT"


def fixtures() -> dict[str, dict[str, Any]]:
    """Every golden frame by file stem (the REST kit's loader, on ``WS_DIR``)."""
    return load_fixtures(WS_DIR)


def _proto_dict(documented: dict[str, Any], descriptor: Any) -> dict[str, Any]:
    """The docs' JSON (lower-case keys, repeated fields named ``…List``) in protobuf JSON form."""
    by_lower = {f.name.lower(): f for f in descriptor.fields}
    out: dict[str, Any] = {}
    for key, value in documented.items():
        field = by_lower.get(key.lower()) or by_lower[key.lower().removesuffix("list")]
        if field.message_type is None:
            out[field.name] = value
        elif isinstance(value, list):
            out[field.name] = [_proto_dict(item, field.message_type) for item in value]
        else:
            out[field.name] = _proto_dict(value, field.message_type)
    return out


def documented_frame(fixture: dict[str, Any]) -> bytes:
    """The frame MEXC's example describes, with the 2026 fields of ``added_2026`` set."""
    documented = dict(fixture["documented"])
    documented_body = documented.pop(fixture["documented_body"])
    message = _proto_dict(documented, PushDataV3ApiWrapper.DESCRIPTOR)
    body_descriptor = PushDataV3ApiWrapper.DESCRIPTOR.fields_by_name[fixture["body"]].message_type
    assert body_descriptor is not None
    body = _proto_dict(documented_body, body_descriptor)
    message[fixture["body"]] = {**body, **fixture["added_2026"]}
    return json_format.ParseDict(message, PushDataV3ApiWrapper()).SerializeToString()


def shape(frame: bytes) -> set[str]:
    """The field paths a frame sets (list positions dropped)."""
    paths: set[str] = set()

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")
        else:
            paths.add(path)

    walk(json_format.MessageToDict(PushDataV3ApiWrapper.FromString(frame)), "")
    return paths


async def simulator_frames(server: SimServer, channels: list[str]) -> dict[str, bytes]:
    """One frame of each channel from a running simulator, after one market step."""
    frames: dict[str, bytes] = {}
    async with connect(server.ws_url) as ws:
        await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": channels, "id": 1}))
        async with asyncio.timeout(5):
            ack = json.loads(await ws.recv())
            assert ack["msg"] == ",".join(channels), ack
            market = server.exchange.markets[BTC]
            await server.step(prices={BTC: market.price + market.instrument.tick_size * 3})
            while len(frames) < len(channels):
                data = await ws.recv()
                if isinstance(data, bytes):
                    frames[PushDataV3ApiWrapper.FromString(data).channel] = data
    return frames


def golden_config() -> SimConfig:
    return SimConfig(symbols=(BTC,), seed=11, history_minutes=60, tick_interval=None)


async def record() -> None:
    found = fixtures()
    async with SimServer(SimExchange(golden_config())) as server:
        frames = await simulator_frames(server, [f["channel"] for f in found.values()])
    for stem, fixture in found.items():
        fixture["simulator"] = frames[fixture["channel"]].hex()
        (WS_DIR / f"{stem}.json").write_text(json.dumps(fixture, indent=2) + "\n")
        print(f"recorded {stem}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(record())
