"""Each side's PnL by compared stretch, and both curves for the plot."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from decimal import Decimal

from cdb_cli.engine.fees import fee_parts
from cdb_cli.engine.parity.model import ZERO, Difference, ParityInput, Side

__all__ = ["curve", "pnl"]


def pnl(data: ParityInput) -> tuple[Decimal, Decimal, Decimal]:
    """(run PnL, re-run PnL, the part of the difference carried in by positions that differed
    when a compared stretch began) over every segment."""
    run = _Ledger(data, data.run, data.run_positions)
    replay = _Ledger(data, data.replay, data.replay_positions)
    carried = ZERO
    for start, end in data.segments:
        for symbol in _symbols(data):
            first, last = data.market.price(symbol, start), data.market.price(symbol, end)
            if first is not None and last is not None:
                held = run.held(start, symbol) - replay.held(start, symbol)
                carried += held * (last - first)
    return run.total(), replay.total(), carried


def _symbols(data: ParityInput) -> set[str]:
    symbols = {row.symbol for row in data.run.decisions}
    symbols |= {row.symbol for row in data.replay.decisions}
    for positions in (*data.run_positions.values(), *data.replay_positions.values()):
        symbols.update(positions)
    return symbols


class _Ledger:
    """One side's PnL by segment: what it held when each began, valued at the market's last
    trade price, plus what its fills did (a fill's fee in the quote, a base fee at its price)."""

    def __init__(
        self, data: ParityInput, side: Side, positions: Mapping[int, Mapping[str, Decimal]]
    ) -> None:
        self.data = data
        self.positions = positions
        fills = [f for order in side.orders.values() for f in order.fills]
        fills.sort(key=lambda f: f.ts_event)
        self.fills = fills
        self.times = [f.ts_event for f in fills]

    def held(self, start: int, symbol: str) -> Decimal:
        return self.positions.get(start, {}).get(symbol, ZERO)

    def pnl(self, start: int, until: int) -> Decimal:
        """PnL from ``start`` (a segment's) to ``until``, at the prices of ``until``."""
        market = self.data.market
        held = dict(self.positions.get(start, {}))
        total = ZERO
        for symbol, quantity in held.items():
            first, last = market.price(symbol, start), market.price(symbol, until)
            if first is not None and last is not None:
                total += quantity * (last - first)
        lo, hi = bisect_left(self.times, start), bisect_right(self.times, until)
        for fill in self.fills[lo:hi]:
            price = market.price(fill.symbol, until)
            if price is None:
                continue
            sign = Decimal(1) if fill.side == "BUY" else Decimal(-1)
            fee = fee_parts(fill).in_quote(fill.price)
            total += sign * fill.quantity * (price - fill.price) - fee
        return total

    def total(self) -> Decimal:
        return sum((self.pnl(start, end) for start, end in self.data.segments), ZERO)


def curve(
    data: ParityInput, differences: Sequence[Difference]
) -> list[tuple[int, Decimal, Decimal, Decimal]]:
    """Both sides' PnL and the explained difference so far, at each fill of either side, at
    about 1,000 trades of the market between them (PnL moves with the price too) and at each
    segment's end. Thinned to about 2,000 points a segment: a plot needs no more."""
    run = _Ledger(data, data.run, data.run_positions)
    replay = _Ledger(data, data.replay, data.replay_positions)
    explained = sorted(
        (d.ts_ns, d.amount) for d in differences if d.cause not in {"unexplained", "market_data"}
    )
    curve: list[tuple[int, Decimal, Decimal, Decimal]] = []
    done, total, base_run, base_replay = 0, ZERO, ZERO, ZERO
    for start, end in data.segments:
        fills = {t for t in run.times + replay.times if start <= t <= end}
        times = sorted(fills | set(data.market.sample_times(start, end, 1_000)) | {end})
        step = max(1, len(times) // 2_000)
        for ts in times[::step] + ([end] if (len(times) - 1) % step else []):
            while done < len(explained) and explained[done][0] <= ts:
                total += explained[done][1]
                done += 1
            curve.append(
                (ts, base_run + run.pnl(start, ts), base_replay + replay.pnl(start, ts), total)
            )
        base_run += run.pnl(start, end)
        base_replay += replay.pnl(start, end)
    return curve
