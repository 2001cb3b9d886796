"""Fuzzing the MEXC REST client's answers (issue 22): seeded mutations of real answers (the
simulator's, captured over HTTP, and mexc_api.md's documented examples) for each of the client's
calls. Every mutated answer is read, or ends in the documented error (``VenueRejected``,
``VenueServerError``/``MalformedAnswer``, ``RateLimited``): never ``KeyError``, ``TypeError``,
``AttributeError``, ``RecursionError``…

The bulk feeds each mutated body to :func:`~cdb_cli.adapters.mexc.errors.read_answer` with the
endpoint's reader, exactly what the client does with a response; a sample goes through the real
HTTP path (the simulator's ``garble``). Sizes: ``tests/fuzz_testkit.py`` (``CDB_FUZZ=full``).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from fuzz_testkit import cases, mutate
from mexc_answers_testkit import (
    ALLOWED,
    BTC,
    CALLS,
    DOCUMENTED,
    Recorder,
    mutate_json,
    request_of,
)

from cdb_cli.adapters.mexc.answers import READERS
from cdb_cli.adapters.mexc.errors import read_answer
from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.signing import Credentials
from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer

pytestmark = pytest.mark.fuzz

API_KEY = "mx0vglFuzzKey0001"
SECRET = "0123456789abcdef0123456789abcdef"
REST_PER_CALL = cases(ci=60, full=400)  # x 18 readers: 1 080 in CI, 7 200 in full
HTTP_PER_CALL = cases(ci=2, full=12)  # x 21 calls through the real server


def sim_config() -> SimConfig:
    return SimConfig(
        symbols=(BTC, "ETHUSDT"),
        accounts={API_KEY: SECRET},
        balances={"USDT": Decimal(1_000_000), "BTC": Decimal(10)},
        seed=11,
        history_minutes=120,
        tick_interval=None,
    )


def fuzz_client(url: str, transport: Recorder | None = None) -> MexcHttpClient:
    return MexcHttpClient(
        url,
        Credentials(API_KEY, SECRET),
        max_attempts=1,
        requests_per_second=100_000,
        orders_per_second=100_000,
        transport=transport,
    )


async def _capture() -> dict[str, list[Any]]:
    """Every call once against the simulator, after a fill (so myTrades has rows)."""
    recorder = Recorder()
    async with (
        SimServer(SimExchange(sim_config())) as sim,
        fuzz_client(sim.rest_url, recorder) as client,
    ):
        await client.new_order(BTC, "BUY", "MARKET", quote_order_qty=Decimal(100))
        for variants in CALLS.values():
            for _, call in variants:
                await call(client)
    captured: dict[str, list[Any]] = {}
    for key in READERS:
        bodies = recorder.bodies.get(request_of(key), [])
        captured[key] = [json.loads(body) for body in bodies[:3]]
    return captured


@pytest.fixture(scope="module")
def seeds() -> dict[str, list[Any]]:
    """Real answers by reader: the simulator's and the documented ones."""
    captured = asyncio.run(_capture())
    return {key: [*captured[key], *DOCUMENTED[key]] for key in READERS}


def hostile(seed: Any, rng: random.Random) -> bytes:
    """Half byte-level (``fuzz_testkit.mutate``), half structural (wrong types, missing keys…)."""
    if rng.random() < 0.5:
        return mutate(json.dumps(seed).encode(), rng)
    return mutate_json(seed, rng)


def test_mutated_answers_to_every_call_end_in_the_documented_error(
    seeds: dict[str, list[Any]],
) -> None:
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    for key, read in READERS.items():
        assert seeds[key], f"no real answer to {key}"
        for case in range(REST_PER_CALL):
            rng = random.Random(f"{key}:{case}")
            body = hostile(rng.choice(seeds[key]), rng)
            try:
                read_answer(200, body, {}, where=key, parse=read)
            except ALLOWED as e:
                outcomes[type(e).__name__] += 1
            except Exception as e:
                unexpected.append(f"{key} case {case}: {type(e).__name__}: {e!s:.100}")
            else:
                outcomes["read"] += 1
    total = len(READERS) * REST_PER_CALL
    print(f"\n{total} mutated REST answers: {dict(outcomes)}")
    assert not unexpected, "\n".join(unexpected[:20])
    assert outcomes["MalformedAnswer"] > total // 4  # the mutations do reach the readers


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_mutated_answers_through_the_real_http_path(
    seeds: dict[str, list[Any]], anyio_backend: str
) -> None:
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    async with SimServer(SimExchange(sim_config())) as sim, fuzz_client(sim.rest_url) as client:
        await client.sync_time()
        for key, variants in CALLS.items():
            method, path = request_of(key)
            for name, call in variants:
                for case in range(HTTP_PER_CALL):
                    rng = random.Random(f"http:{name}:{case}")
                    sim.garble(method, path, hostile(rng.choice(seeds[key]), rng))
                    try:
                        await call(client)
                    except ALLOWED as e:
                        outcomes[type(e).__name__] += 1
                    except Exception as e:
                        unexpected.append(f"{name} case {case}: {type(e).__name__}: {e!s:.100}")
                    else:
                        outcomes["read"] += 1
            await client.cancel_open_orders(BTC)
    print(f"\n{sum(outcomes.values())} mutated answers over HTTP: {dict(outcomes)}")
    assert not unexpected, "\n".join(unexpected[:20])
