"""The records of a parity comparison: windows, decisions, orders with fills, the stored market,
what :func:`~cdb_cli.engine.parity.compare` takes and what it reports.

Pure: stdlib, records and events only.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal, get_args

from cdb_cli.engine.fees import fee_parts
from cdb_cli.engine.records import FillRecord, OrderRecord

__all__ = [
    "BP",
    "CAUSES",
    "FINE_PRICE",
    "WINDOW_CAUSES",
    "ZERO",
    "BarDifference",
    "Cause",
    "DecisionMatch",
    "DecisionRow",
    "Difference",
    "FillMatch",
    "Market",
    "OrderFills",
    "ParityInput",
    "ParityReport",
    "Side",
    "Window",
    "amount_text",
    "same_amount",
    "window_cause",
]

Cause = Literal[
    "latency",
    "slippage",
    "partial_fill",
    "fees",
    "restart",
    "operator",
    "feed_gap",
    "venue_fault",
    "venue_reject",
    "portfolio",
    "market_data",
    "unexplained",
]
CAUSES: Final[tuple[Cause, ...]] = get_args(Cause)
"""Every cause, in the order reports list them. ``market_data`` is a stored bar that its own
stored trades do not make (always unexplained: counted apart so the summary can name it)."""

ZERO: Final = Decimal(0)
BP: Final = Decimal(10_000)
SAME: Final = Decimal("1e-9")
"""Relative tolerance of 'the same amount' (the ledger's Decimal against a float mark)."""
FINE_PRICE: Final = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of time in which differences have a named cause (``symbol`` "": every one)."""

    cause: Cause
    start_ns: int
    end_ns: int
    detail: str
    symbol: str = ""

    def covers(self, symbol: str, ts: int) -> bool:
        return self.start_ns <= ts <= self.end_ns and (not self.symbol or self.symbol == symbol)


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One risk decision of one side: the bar that raised it (its close), its verdict and the
    quote amount it approved (None: no order), the time it was taken, the equity it saw."""

    symbol: str
    bar_ns: int
    side: str
    verdict: str
    quote: Decimal | None
    ts_ns: int
    decision_id: str
    equity: Decimal | None = None
    reasons: str = ""


@dataclass(frozen=True, slots=True)
class OrderFills:
    """An order with its fills (oldest first) and what the venue said of it."""

    order: OrderRecord
    fills: tuple[FillRecord, ...]
    note: str = ""
    """Why it ended as it did at the venue (a reject's or an expiry's reason)."""
    fault: str = ""
    """The venue's answer that was lost on the way (MEXC took it, answered 5xx), if any."""

    @property
    def quantity(self) -> Decimal:
        return sum((f.quantity for f in self.fills), ZERO)

    @property
    def vwap(self) -> Decimal:
        quantity = self.quantity
        if quantity == 0:
            return ZERO
        return sum((f.quantity * f.price for f in self.fills), ZERO) / quantity

    @property
    def fee(self) -> Decimal:
        """Fees in the quote currency (a base-asset fee at its fill's price); a third asset's
        fee is not in it (:attr:`other_fees`)."""
        return sum((fee_parts(f).in_quote(f.price) for f in self.fills), ZERO)

    @property
    def other_fees(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for fill in self.fills:
            parts = fee_parts(fill)
            if parts.other:
                totals[parts.other_asset] = totals.get(parts.other_asset, ZERO) + parts.other
        return totals


@dataclass
class Side:
    """One side of the comparison: its decisions and its orders with their fills."""

    decisions: list[DecisionRow] = field(default_factory=list)
    orders: dict[str, OrderFills] = field(default_factory=dict)
    """By decision id."""


class Market:
    """The stored market, per symbol, in the order the re-run fed it: trade times and prices,
    quote times and touches, and which quote the pipeline knew when each trade came (the touch
    a paper fill at that trade took; none before the first quote of a segment: a new start
    knows no quote until one comes)."""

    def __init__(self, stale_ns: int) -> None:
        self.stale_ns = stale_ns
        self._trades: dict[str, tuple[list[int], list[Decimal], list[int]]] = {}
        self._quotes: dict[str, tuple[list[int], list[Decimal], list[Decimal]]] = {}
        self._starts: list[tuple[int, dict[str, int]]] = []
        """(a segment's start, each symbol's quote count then): quotes before it are unknown."""

    def begin_segment(self, ts: int) -> None:
        """A segment starts at ``ts``: the quotes so far are not the new pipeline's."""
        self._starts.append((ts, {s: len(q[0]) for s, q in self._quotes.items()}))

    def _floor(self, symbol: str, ts: int) -> int:
        """How many quotes of ``symbol`` came before the segment that ``ts`` is in."""
        i = bisect_right([start for start, _ in self._starts], ts)
        return self._starts[i - 1][1].get(symbol, 0) if i else 0

    def add_trade(self, symbol: str, ts: int, price: Decimal) -> None:
        """A trade, in the order fed (time order)."""
        times, prices, quotes = self._trades.setdefault(symbol, ([], [], []))
        times.append(ts)
        prices.append(price)
        quotes.append(len(self._quotes.get(symbol, ((),))[0]))

    def add_quote(self, symbol: str, ts: int, bid: Decimal, ask: Decimal) -> None:
        """A quote, in the order fed (time order)."""
        times, bids, asks = self._quotes.setdefault(symbol, ([], [], []))
        times.append(ts)
        bids.append(bid)
        asks.append(ask)

    def price(self, symbol: str, ts: int) -> Decimal | None:
        """The last trade's price at or before ``ts`` (None: no trade yet)."""
        times, prices, _ = self._trades.get(symbol, ([], [], []))
        i = bisect_right(times, ts)
        return prices[i - 1] if i else None

    def _known(self, symbol: str, ts: int) -> int:
        """How many quotes the pipeline knew at ``ts`` (at a trade's time: those before it); 0
        when none of its segment's yet."""
        times, _, seen = self._trades.get(symbol, ([], [], []))
        i = bisect_right(times, ts)
        if i and times[i - 1] == ts:
            known = seen[i - 1]
        else:
            known = bisect_right(self._quotes.get(symbol, ([], [], []))[0], ts)
        return known if known > self._floor(symbol, ts) else 0

    def reference(self, symbol: str, buy: bool, ts: int) -> Decimal | None:
        """What a taker pays (a buy: the ask) or gets (a sell: the bid) at ``ts``: the touch of
        the quote the pipeline knew, else the last trade's price."""
        known = self._known(symbol, ts)
        _, bids, asks = self._quotes.get(symbol, ([], [], []))
        if known and 0 < bids[known - 1] < asks[known - 1]:
            return asks[known - 1] if buy else bids[known - 1]
        return self.price(symbol, ts)

    def has_quote(self, symbol: str, ts: int) -> bool:
        """Whether the pipeline knew a quote at ``ts`` (the paper model fills at its touch)."""
        return self._known(symbol, ts) > 0

    def trade_at(self, symbol: str, ts: int) -> bool:
        """Whether a stored trade has exactly this time."""
        times = self._trades.get(symbol, ([], [], []))[0]
        i = bisect_left(times, ts)
        return i < len(times) and times[i] == ts

    def sample_times(self, start: int, end: int, count: int) -> list[int]:
        """About ``count`` trade times between ``start`` and ``end``, evenly by trade."""
        times = sorted(
            t
            for trades, _, _ in self._trades.values()
            for t in trades[bisect_left(trades, start) : bisect_right(trades, end)]
        )
        return times[:: max(1, len(times) // count)] if times else []

    def seen_near(self, symbol: str, ts: int) -> bool:
        """Whether the stored market has a trade or a quote within the staleness bound before
        ``ts`` (evidence for a live fill's price)."""
        for times in (self._trades.get(symbol, ([],))[0], self._quotes.get(symbol, ([],))[0]):
            i = bisect_right(times, ts)
            if i and ts - times[i - 1] <= self.stale_ns:
                return True
        return False


@dataclass(frozen=True, slots=True)
class BarDifference:
    """A stored closed bar that the re-run did not build alike from the stored trades."""

    symbol: str
    ts_open: int
    detail: str


@dataclass
class ParityInput:
    """Everything :func:`compare` needs; the service builds it."""

    run: Side
    replay: Side
    market: Market
    windows: list[Window]
    segments: list[tuple[int, int]]
    """The compared stretches (each a run segment within the window): both sides start each
    one from the same account (the run's, as it restarted)."""
    run_positions: Mapping[int, Mapping[str, Decimal]]
    """By segment start: the quantity the run held of each symbol when the stretch began."""
    replay_positions: Mapping[int, Mapping[str, Decimal]]
    """The same for the re-run: equal to the run's at a run's start (both restart from the
    run's account), different when the window begins in the middle of a run and the sides
    already differed."""
    bar_differences: list[BarDifference] = field(default_factory=list)
    paper_venue: bool = True
    """The run's venue was the paper model (its fills must be what the model gives)."""
    slippage_band_pct: tuple[Decimal, Decimal] = (ZERO, ZERO)
    """The paper model's slippage band without a quote (min, max, in %)."""


@dataclass
class DecisionMatch:
    symbol: str
    bar_ns: int
    side: str
    outcome: Literal["equal", "only_run", "only_replay", "different"]
    run: DecisionRow | None
    replay: DecisionRow | None
    cause: Cause | None
    detail: str = ""


@dataclass
class FillMatch:
    """The orders of one decision on both sides (either may be missing) and their difference in
    PnL, split by cause."""

    symbol: str
    bar_ns: int
    side: str
    run: OrderFills | None
    replay: OrderFills | None
    parts: dict[Cause, Decimal] = field(default_factory=dict)
    notes: dict[Cause, str] = field(default_factory=dict)
    """What shows each part (times, prices, counts)."""

    @property
    def difference(self) -> Decimal:
        return sum(self.parts.values(), ZERO)

    @property
    def unexplained_bp(self) -> Decimal:
        """The unexplained part per unit of the notional, in basis points."""
        notional = ZERO
        for side in (self.run, self.replay):
            if side is not None and side.fills:
                notional = max(notional, side.quantity * side.vwap)
        if notional == 0:
            return ZERO
        return abs(self.parts.get("unexplained", ZERO)) / notional * BP

    @property
    def price_difference_bp(self) -> Decimal | None:
        if self.run is None or self.replay is None or not self.run.fills or not self.replay.fills:
            return None
        return (self.run.vwap - self.replay.vwap) / self.replay.vwap * BP


@dataclass(frozen=True, slots=True)
class Difference:
    """One listed difference: what, where, its cause and its effect on PnL (run - re-run)."""

    kind: Literal["decision", "fill", "market"]
    symbol: str
    ts_ns: int
    cause: Cause
    amount: Decimal
    detail: str


@dataclass
class ParityReport:
    decisions: list[DecisionMatch]
    fills: list[FillMatch]
    differences: list[Difference]
    windows: list[Window]
    pnl_run: Decimal
    pnl_replay: Decimal
    by_cause: dict[Cause, Decimal]
    curve: list[tuple[int, Decimal, Decimal, Decimal]]
    """(time, run PnL, re-run PnL, explained difference) so far, at each price sample."""

    @property
    def difference(self) -> Decimal:
        return self.pnl_run - self.pnl_replay

    @property
    def unexplained(self) -> Decimal:
        return self.by_cause.get("unexplained", ZERO) + self.by_cause.get("market_data", ZERO)

    @property
    def explained_pct(self) -> Decimal:
        """How much of the absolute differences is explained (100 when there is none)."""
        total = sum((abs(v) for v in self.by_cause.values()), ZERO)
        if total == 0:
            return Decimal(100)
        return (total - abs(self.unexplained)) / total * 100

    def count(self, outcome: str) -> int:
        return sum(1 for d in self.decisions if d.outcome == outcome)

    def parity_pct(self, *, outside_windows: bool) -> Decimal:
        """Share of decisions equal on both sides (outside the named windows: only those)."""
        rows = [
            d
            for d in self.decisions
            if not outside_windows or d.outcome == "equal" or d.cause not in WINDOW_CAUSES
        ]
        if not rows:
            return Decimal(100)
        equal = sum(1 for d in rows if d.outcome == "equal")
        return Decimal(equal) * 100 / len(rows)


WINDOW_CAUSES: Final = frozenset({"restart", "operator", "feed_gap", "venue_fault"})


def window_cause(windows: Iterable[Window], symbol: str, ts: int) -> Cause | None:
    for window in windows:
        if window.covers(symbol, ts):
            return window.cause
    return None


def same_amount(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= SAME * max(abs(a), abs(b), Decimal(1))


def amount_text(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.8f}".rstrip("0").rstrip(".")
