"""Decode benchmark for MEXC protobuf frames, run on demand: ``python benchmarks/mexc_decode.py``.

Decodes aggregated-deal frames (and, for comparison, book-ticker and kline frames) on one core
through the same ``FrameDecoder`` the WebSocket client uses: protobuf parse, Decimal prices,
ms → ns, validation and event construction. Then, end to end, how many deal messages per second
``MexcDataClient`` absorbs from the in-process simulator pushing 30 symbols on one connection as
fast as it can (MEXC itself sends at most 100 per second per connection). Prints one table; exit 1
when deal frames decode slower than the issue's target of 100 000 frames/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from decimal import Decimal

from google.protobuf.internal import api_implementation

from cdb_cli.adapters.mexc.decoder import FrameDecoder
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper

TARGET_FRAMES_S = 100_000.0


def deal_frames(count: int) -> list[bytes]:
    """Distinct deal frames (one deal each, increasing ids), like a live aggre.deals stream."""
    frames = []
    for i in range(count):
        wrapper = PushDataV3ApiWrapper(
            channel="spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT",
            symbol="BTCUSDT",
            sendTime=1736409765052 + i,
        )
        deal = wrapper.publicAggreDeals.deals.add()
        deal.price = f"{93220 + (i % 500) / 100:.2f}"
        deal.quantity = f"0.{1 + (i * 7919) % 99_999_999:08d}"
        deal.tradeType = 1 + i % 2
        deal.time = 1736409765051 + i
        deal.tradeId = str(1_000_000 + i)
        wrapper.publicAggreDeals.eventType = "spot@public.aggre.deals.v3.api.pb@100ms"
        frames.append(wrapper.SerializeToString())
    return frames


def book_ticker_frames(count: int) -> list[bytes]:
    frames = []
    for i in range(count):
        wrapper = PushDataV3ApiWrapper(
            channel="spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT",
            symbol="BTCUSDT",
            sendTime=1736412092433 + i,
        )
        ticker = wrapper.publicAggreBookTicker
        ticker.bidPrice, ticker.askPrice = f"{93387 + i % 100}.28", f"{93387 + i % 100}.29"
        ticker.bidQuantity, ticker.askQuantity = "3.73485", "7.669875"
        frames.append(wrapper.SerializeToString())
    return frames


def kline_frames(count: int) -> list[bytes]:
    frames = []
    for i in range(count):
        wrapper = PushDataV3ApiWrapper(
            channel="spot@public.kline.v3.api.pb@BTCUSDT@Min1",
            symbol="BTCUSDT",
            createTime=1736410707571 + i,
        )
        kline = wrapper.publicSpotKline
        kline.interval, kline.windowStart, kline.windowEnd = "Min1", 1736410500 + 60 * i, 0
        kline.openingPrice, kline.closingPrice = "92925", f"{93000 + i % 100}.47"
        kline.highestPrice, kline.lowestPrice = "93158.47", "92800"
        kline.volume, kline.amount = "36.83803224", "3424811.05"
        frames.append(wrapper.SerializeToString())
    return frames


def rate(frames: list[bytes], repeats: int) -> tuple[float, int]:
    """Best-of-``repeats`` frames per second and the number of events decoded per pass."""
    samples = []
    events = 0
    for _ in range(repeats):
        decoder = FrameDecoder()
        decode = decoder.decode
        start = time.perf_counter()
        events = 0
        for frame in frames:
            events += len(decode(frame)[1])
        samples.append(len(frames) / (time.perf_counter() - start))
        if decoder.bad:
            raise SystemExit(f"benchmark frames did not decode: {dict(decoder.bad)}")
    return max(samples), events


async def websocket_rate(steps: int) -> tuple[float, int]:
    """Deal messages per second through simulator → socket → client → queue, and the max backlog."""
    from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
    from cdb_cli.adapters.mexc.ws import MexcDataClient, deals_topic

    symbols = tuple(f"B{i:02d}USDT" for i in range(30))
    config = SimConfig(
        symbols=symbols, balances={"USDT": Decimal(1)}, history_minutes=1, tick_interval=None
    )
    async with SimServer(SimExchange(config)) as server:
        client = MexcDataClient(server.ws_url, [deals_topic(s) for s in symbols])
        async with client:
            await client.wait_connected(10)
            expected = steps * len(symbols)
            received = 0
            start = time.perf_counter()

            async def consume() -> None:
                nonlocal received
                while received < expected:
                    await client.events.get()
                    received += 1

            consumer = asyncio.create_task(consume())
            for _ in range(steps):
                await server.step()
            await asyncio.wait_for(consumer, 60)
            elapsed = time.perf_counter() - start
    return expected / elapsed, client.max_backlog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames per pass (200k)")
    parser.add_argument("--repeats", type=int, default=3, help="passes; best counts (3)")
    parser.add_argument("--ws-steps", type=int, default=500, help="simulator steps x 30 (500)")
    args = parser.parse_args()

    results = []
    for name, build in (
        ("aggre.deals", deal_frames),
        ("aggre.bookTicker", book_ticker_frames),
        ("kline", kline_frames),
    ):
        frames = build(args.frames)
        per_second, events = rate(frames, args.repeats)
        results.append((name, per_second, events, statistics.mean(map(len, frames))))

    print(f"protobuf runtime: {api_implementation.Type()}; {args.frames} frames per pass")
    print(f"{'channel':<18} {'frames/s':>12} {'events':>9} {'bytes/frame':>12}  target")
    failed = False
    for name, per_second, events, size in results:
        target = ""
        if name == "aggre.deals":
            ok = per_second >= TARGET_FRAMES_S
            failed |= not ok
            target = f">= {TARGET_FRAMES_S:,.0f}  {'ok' if ok else 'MISSED'}"
        print(f"{name:<18} {per_second:>12,.0f} {events:>9} {size:>12.0f}  {target}")
    ws_rate, backlog = asyncio.run(websocket_rate(args.ws_steps))
    print(
        f"{'ws end-to-end':<18} {ws_rate:>12,.0f} {args.ws_steps * 30:>9} {'':>12}  "
        f"msg/s through a socket, 30 symbols (MEXC sends <= 100); max backlog {backlog}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
