"""Simulator pieces that need no socket: auth canonicalisation, faults, topics, market."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cdb_cli.adapters.mexc.signing import sign
from cdb_cli.adapters.mexc.sim.auth import ApiError, check_signed, parse_params
from cdb_cli.adapters.mexc.sim.faults import Faults
from cdb_cli.adapters.mexc.sim.frames import parse_topic
from cdb_cli.adapters.mexc.sim.market import SymbolMarket, load_replay
from cdb_cli.engine.errors import ConfigurationError

SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"
NOW = 1644489390087


def check(query: str, body: str = "", now: int = NOW) -> None:
    check_signed(
        secret=SECRET, query=query, body=body, params=parse_params(query, body), server_ms=now
    )


def test_official_example_3_verifies_with_query_plus_body() -> None:
    check(
        "symbol=BTCUSDT&side=BUY&type=LIMIT",
        "quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
        "&signature=d1a676610ceb39174c8039b3f548357994b2a34139a8addd33baadba65684592",
    )


def test_signature_may_come_before_other_parameters() -> None:
    signed = "symbol=BTCUSDT&timestamp=1644489390087"
    check(f"signature={sign(SECRET, signed)}&{signed}")


@pytest.mark.parametrize(
    ("query", "now", "code"),
    [
        ("timestamp=1644489390087&signature=00", NOW, 700002),
        ("timestamp=1644489390087", NOW + 5001, 700003),
        ("timestamp=1644489390087", NOW - 1000, 700003),  # from the future
        ("recvWindow=60001&timestamp=1644489390087", NOW, 700005),
        ("symbol=BTCUSDT", NOW, 44444),
    ],
)
def test_rejections_use_mexc_codes(query: str, now: int, code: int) -> None:
    if "signature=" not in query:
        query = f"{query}&signature={sign(SECRET, query)}"  # validly signed: time is the problem
    with pytest.raises(ApiError) as caught:
        check(query, now=now)
    assert caught.value.code == code


def test_missing_signature_is_700002() -> None:
    with pytest.raises(ApiError) as caught:
        check("timestamp=1644489390087")
    assert caught.value.code == 700002


def test_uppercase_signature_is_refused() -> None:
    query = "timestamp=1644489390087"
    with pytest.raises(ApiError):
        check(f"{query}&signature={sign(SECRET, query).upper()}")


def test_query_wins_over_body_and_json_bodies_are_read() -> None:
    assert parse_params("a=1", "a=2&b=3") == {"a": "1", "b": "3"}
    assert parse_params("", '{"symbol": "BTCUSDT"}') == {"symbol": "BTCUSDT"}


def test_faults_count_down_and_validate() -> None:
    faults = Faults()
    faults.update({"http_5xx": 2, "delay": 0.5, "ws_stalled": True})
    assert [faults.take("http_5xx") for _ in range(3)] == [True, True, False]
    with pytest.raises(ValueError, match="unknown fault"):
        faults.update({"nope": 1})
    with pytest.raises(ValueError, match="non-negative integer"):
        faults.update({"http_429": -1})
    with pytest.raises(ValueError, match="true/false"):
        faults.update({"ws_stalled": 1})
    assert faults.as_dict()["delay"] == 0.5
    faults.update({"clock_offset_ms": -7000, "accept_then_5xx": 1})
    assert (faults.clock_offset_ms, faults.accept_then_5xx) == (-7000, 1)
    with pytest.raises(ValueError, match="takes an integer"):
        faults.update({"clock_offset_ms": 1.5})
    with pytest.raises(ValueError, match="non-negative integer"):
        faults.update({"accept_then_5xx": -1})


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        ("spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT", "deals"),
        ("spot@public.aggre.bookTicker.v3.api.pb@10ms@BTCUSDT", "bookTicker"),
        ("spot@public.kline.v3.api.pb@BTCUSDT@Min60", "kline"),
        ("spot@public.deals.v3.api@BTCUSDT", None),  # retired JSON channel
        ("spot@public.kline.v3.api.pb@BTCUSDT@1m", None),  # REST interval name on the WS
    ],
)
def test_topics_the_simulator_accepts(topic: str, kind: str | None) -> None:
    parsed = parse_topic(topic)
    assert (parsed.kind if parsed else None) == kind


def test_random_walk_is_deterministic_per_seed() -> None:
    a = SymbolMarket.random_walk("BTCUSDT", 3, 1_800_000_000_000, 30)
    b = SymbolMarket.random_walk("BTCUSDT", 3, 1_800_000_000_000, 30)
    c = SymbolMarket.random_walk("BTCUSDT", 4, 1_800_000_000_000, 30)
    assert [x.close for x in a.candles] == [x.close for x in b.candles]
    assert [x.close for x in a.candles] != [x.close for x in c.candles]
    assert all(x.low <= x.open <= x.high and x.low <= x.close <= x.high for x in a.candles)


def test_replay_files_are_read_exactly_and_bad_ones_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text("[[1509836520000, 0.00162008, 0.00162008, 0.00162008, 0.00162008, 108.1]]")
    (candle,) = load_replay(good)
    assert candle.close == Decimal("0.00162008")
    bad = tmp_path / "bad.json"
    for text in ("{}", "[]", "[[1, 2]]", "not json"):
        bad.write_text(text)
        with pytest.raises(ConfigurationError):
            load_replay(bad)


@pytest.mark.parametrize("offset_ms", [1, 60_000, 61_000, 299_999, 300_000, 300_001])
def test_klines_never_start_before_start_time(offset_ms: int) -> None:
    """MEXC serves rows with ``startTime <= open``: a start inside a 5-minute bucket begins at the
    next bucket, and a full page still holds ``limit`` rows."""
    market = SymbolMarket.random_walk("BTCUSDT", 1, 1_800_000_000_000, 120)
    first = market.candles[0].open_ms  # on a 5-minute boundary (1 800 000 000 000 is)
    start = first + offset_ms
    rows = market.klines(300_000, start, None, 3)
    opens = [int(str(r[0])) for r in rows]
    expected_first = first + -(-offset_ms // 300_000) * 300_000
    assert opens == [expected_first, expected_first + 300_000, expected_first + 600_000]
