"""Golden REST answers (tests/data/mexc/http/): MEXC's documented example of an answer and the
simulator's recorded answer to the same request, side by side, and how to compare their shapes.

A fixture file holds ``request`` (what was asked), ``source`` (where the documented example is
from), ``documented`` (MEXC's example, verbatim), ``simulator`` (the simulator's answer, recorded
by :func:`live_answers`) and ``differences`` (paths where the two may differ, each with why).

Run ``python tests/adapters/mexc/golden_kit.py`` to record the ``simulator`` entries again (for an
intended change of the simulator's answers only; the tests check the recorded shape).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from cdb_cli.adapters.mexc.signing import sign
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer

HTTP_DIR = Path(__file__).resolve().parents[2] / "data" / "mexc" / "http"
KEY, SECRET = "mx0vglGoldenKey", "0123456789abcdef0123456789abcdef"
BTC = "BTCUSDT"


def fixtures(directory: Path = HTTP_DIR) -> dict[str, dict[str, Any]]:
    """Every fixture by file stem; a missing folder fails (it ships with the repository)."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no golden fixtures in {directory}")
    return {f.stem: json.loads(f.read_text()) for f in files}


def shape(value: Any) -> Any:
    """The JSON types of ``value``: objects keep their keys, arrays their first element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "string"


def mismatches(documented: Any, answered: Any, skip: set[str], path: str = "") -> list[str]:
    """Where ``answered`` does not have the shape of ``documented``; a documented null stands for
    any type (MEXC's examples show null for values they leave out), paths in ``skip`` are not
    compared (``[]`` is an array's element, ``.`` joins keys)."""
    if path in skip or documented == "null":
        return []
    if isinstance(documented, dict) and isinstance(answered, dict):
        found = [
            f"{path}.{k}: only one side has it".lstrip(".")
            for k in sorted(set(documented) ^ set(answered))
            if f"{path}.{k}".lstrip(".") not in skip
        ]
        for k in sorted(set(documented) & set(answered)):
            found += mismatches(documented[k], answered[k], skip, f"{path}.{k}".lstrip("."))
        return found
    if isinstance(documented, list) and isinstance(answered, list):
        if not documented or not answered:
            return []
        return mismatches(documented[0], answered[0], skip, f"{path}[]")
    return [] if documented == answered else [f"{path}: {documented} vs {answered}"]


def _signed(params: dict[str, str]) -> dict[str, str]:
    query = "&".join(
        f"{k}={v}" for k, v in {**params, "timestamp": str(int(time.time() * 1000))}.items()
    )
    return dict(
        pair.split("=", 1) for pair in f"{query}&signature={sign(SECRET, query)}".split("&")
    )


async def live_answers(server: SimServer) -> dict[str, Any]:
    """The simulator's answer to each fixture's request, after one resting order, one market buy
    and a market step (so no list is empty)."""
    headers = {"X-MEXC-APIKEY": KEY, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=server.rest_url, headers=headers) as raw:

        async def get(path: str, params: dict[str, str], *, signed: bool = False) -> Any:
            answer = await raw.get(f"/api/v3/{path}", params=_signed(params) if signed else params)
            answer.raise_for_status()
            return answer.json()

        async def send(method: str, path: str, params: dict[str, str]) -> Any:
            answer = await raw.request(method, f"/api/v3/{path}", params=_signed(params))
            answer.raise_for_status()
            return answer.json()

        limit = {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": "0.01"}
        placed = await send("POST", "order", {**limit, "price": "20000", "newClientOrderId": "g-1"})
        await send(
            "POST", "order", {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.01"}
        )
        await server.step({BTC: Decimal("30000")})
        answers = {
            "time": await get("time", {}),
            "depth": await get("depth", {"symbol": BTC, "limit": "1"}),
            "ticker_bookTicker": await get("ticker/bookTicker", {"symbol": BTC}),
            "klines": await get("klines", {"symbol": BTC, "interval": "1m", "limit": "1"}),
            "ticker_24hr": await get("ticker/24hr", {"symbol": BTC}),
            "ticker_price": await get("ticker/price", {"symbol": BTC}),
            "trades": await get("trades", {"symbol": BTC, "limit": "1"}),
            "aggTrades": await get("aggTrades", {"symbol": BTC, "limit": "1"}),
            "avgPrice": await get("avgPrice", {"symbol": BTC}),
            "defaultSymbols": await get("defaultSymbols", {}),
            "account": await get("account", {}, signed=True),
            "order_new": placed,
            "openOrders": await get("openOrders", {"symbol": BTC}, signed=True),
            "allOrders": await get("allOrders", {"symbol": BTC, "limit": "1"}, signed=True),
            "myTrades": await get("myTrades", {"symbol": BTC}, signed=True),
            "tradeFee": await get("tradeFee", {"symbol": BTC}, signed=True),
        }
        answers["openOrders_cancel"] = await send("DELETE", "openOrders", {"symbol": BTC})
        return answers


def golden_config() -> SimConfig:
    return SimConfig(
        symbols=(BTC,),
        accounts={KEY: SECRET},
        balances={"USDT": Decimal(10_000)},
        seed=7,
        history_minutes=60,
        tick_interval=None,
    )


async def _record() -> None:  # pragma: no cover - run by hand
    async with SimServer(SimExchange(golden_config())) as server:
        answers = await live_answers(server)
    for name, fixture in fixtures().items():
        fixture["simulator"] = answers[name]
        (HTTP_DIR / f"{name}.json").write_text(
            json.dumps(fixture, indent=2, ensure_ascii=False) + "\n"
        )
        print(f"recorded {name}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_record())
