"""Each side's PnL by compared stretch, and both curves for the plot."""

from __future__ import annotations

from bisect import bisect_left
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
        return self.pnl_at(start, [until])[0]

    def pnl_at(self, start: int, times: Sequence[int]) -> list[Decimal]:
        """PnL from ``start`` (a segment's) at each of ``times`` (ascending), in one pass: what
        was held when it began valued at the market's last trade price, plus what each fill
        since did (its cash, its fee in the quote, its quantity at the price)."""
        market = self.data.market
        held: dict[str, Decimal] = {}
        base = ZERO
        for symbol, quantity in self.positions.get(start, {}).items():
            first = market.price(symbol, start)
            if first is not None:  # without a price when it began, it is not valued
                held[symbol] = quantity
                base += quantity * first
        flow = ZERO
        last_price: dict[str, Decimal] = {}
        i = bisect_left(self.times, start)
        out: list[Decimal] = []
        for ts in times:
            while i < len(self.fills) and self.fills[i].ts_event <= ts:
                fill = self.fills[i]
                sign = Decimal(1) if fill.side == "BUY" else Decimal(-1)
                held[fill.symbol] = held.get(fill.symbol, ZERO) + sign * fill.quantity
                flow -= sign * fill.quantity * fill.price + fee_parts(fill).in_quote(fill.price)
                last_price[fill.symbol] = fill.price
                i += 1
            value = flow
            for symbol, quantity in held.items():
                price = market.price(symbol, ts) or last_price.get(symbol, ZERO)
                value += quantity * price
            out.append(value - base)
        return out

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
        kept = times[::step] + ([end] if (len(times) - 1) % step else [])
        ours, theirs = run.pnl_at(start, kept), replay.pnl_at(start, kept)
        for ts, a, b in zip(kept, ours, theirs, strict=True):
            while done < len(explained) and explained[done][0] <= ts:
                total += explained[done][1]
                done += 1
            curve.append((ts, base_run + a, base_replay + b, total))
        base_run += ours[-1]
        base_replay += theirs[-1]
    return curve
