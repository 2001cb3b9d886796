"""Attributing the difference of one decision's orders (run against re-run) to causes, exactly:
fees, quantity, and the price split into latency, partial fills and slippage, with what the
market data and the venue model cannot back left unexplained."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from cdb_cli.engine.parity.model import (
    BP,
    FINE_PRICE,
    ZERO,
    Cause,
    DecisionMatch,
    FillMatch,
    OrderFills,
    ParityInput,
    amount_text,
    same_amount,
    window_cause,
)
from cdb_cli.engine.records import FillRecord

__all__ = ["fill_time", "match_fills"]


def match_fills(data: ParityInput, decisions: Sequence[DecisionMatch]) -> list[FillMatch]:
    out: list[FillMatch] = []
    for match in decisions:
        a = data.run.orders.get(match.run.decision_id) if match.run else None
        b = data.replay.orders.get(match.replay.decision_id) if match.replay else None
        if (a is None or not a.fills) and (b is None or not b.fills):
            continue
        fill = FillMatch(match.symbol, match.bar_ns, match.side, a, b)
        segment_end = _segment_end(data.segments, match.bar_ns)
        end_price = data.market.price(match.symbol, segment_end)
        if end_price is None:
            continue
        if a is not None and a.fills and b is not None and b.fills:
            _attribute_pair(data, fill, a, b, end_price, match)
        elif a is not None and a.fills:
            cause = _only_cause(data, match, a)
            _add(fill, cause, _contribution(a, end_price),
                 f"filled only in the run: {_why(match, a, cause)}")  # fmt: skip
        elif b is not None:
            cause = _only_cause(data, match, a)
            _add(fill, cause, -_contribution(b, end_price),
                 f"filled only in the re-run: {_why(match, a, cause)}")  # fmt: skip
        out.append(fill)
    return out


def _why(match: DecisionMatch, run_order: OrderFills | None, cause: Cause) -> str:
    if run_order is not None and run_order.note:
        return run_order.note
    return match.detail or cause


def _only_cause(data: ParityInput, match: DecisionMatch, run_order: OrderFills | None) -> Cause:
    """Why an order filled on one side only."""
    if match.outcome != "equal" and match.cause is not None:
        return match.cause
    if run_order is not None and run_order.order.status in {"REJECTED", "EXPIRED"}:
        return "venue_reject"
    if run_order is not None and run_order.fault:
        return "venue_fault"
    return window_cause(data.windows, match.symbol, match.bar_ns) or "unexplained"


def _segment_end(segments: Sequence[tuple[int, int]], ts: int) -> int:
    for start, end in segments:
        if start <= ts <= end:
            return end
    return segments[-1][1] if segments else ts


def _sign(order: OrderFills) -> Decimal:
    return Decimal(1) if order.order.side == "BUY" else Decimal(-1)


def _contribution(order: OrderFills, end_price: Decimal) -> Decimal:
    """What an order's fills did to PnL, valued at ``end_price``."""
    return _sign(order) * order.quantity * (end_price - order.vwap) - order.fee


def _attribute_pair(
    data: ParityInput,
    fill: FillMatch,
    a: OrderFills,
    b: OrderFills,
    end_price: Decimal,
    match: DecisionMatch,
) -> None:
    """Split (run - re-run) of one decision's orders into causes, exactly: the fees, the
    quantity, and the price (latency, partial fills, slippage); what the market data and the
    venue model cannot back is unexplained."""
    sign, buy = _sign(a), a.order.side == "BUY"
    q1, q2, v1, v2 = a.quantity, b.quantity, a.vwap, b.vwap
    t1, t2 = a.fills[0].ts_event, b.fills[0].ts_event
    _add(
        fill,
        "fees",
        b.fee - a.fee,
        f"fees {amount_text(a.fee)} in the run, {amount_text(b.fee)} in the re-run",
    )
    if a.other_fees != b.other_fees:
        other = ", ".join(f"{amount} {asset}" for asset, amount in sorted(a.other_fees.items()))
        fill.notes["fees"] = f"{fill.notes['fees']}; in another asset: {other or 'none'} in the run"
        fill.parts.setdefault("fees", ZERO)
    quantity_part = sign * (q1 - q2) * (end_price - v1)  # filled less (or more)
    if quantity_part:
        what = f"quantity {q1} in the run ({len(a.fills)} fills), {q2} in the re-run"
        _add(fill, _quantity_cause(data, a, match), quantity_part, what)
    timing = f"filled at {_hms(t1)} in the run, {_hms(t2)} in the re-run"
    if a.fault:  # the time the lost answer cost is the fault's, and it is named either way
        _name(fill, "venue_fault", f"{a.fault}; {timing}")
    parts_note = f"{len(a.fills)} fills in the run, {len(b.fills)} in the re-run"
    if len(a.fills) > 1:  # named either way: the venue filled it in parts
        _name(fill, "partial_fill", parts_note)
    scale = -sign * q2  # the price term: sign·q2·(v2 - v1) = -sign·q2·(v1 - v2)
    r1 = data.market.reference(fill.symbol, buy, t1)
    r2 = data.market.reference(fill.symbol, buy, t2)
    if r1 is None or r2 is None or not _latency_backed(data, a):
        if v1 != v2:
            why = "no trade" if data.paper_venue else "no market data near it"
            _add(fill, "unexplained", scale * (v1 - v2),
                 f"the run filled at {_hms(t1)}, where the stored market shows {why}")  # fmt: skip
        return
    slip1, part1, unexplained1 = _price_split(data, a, buy, r1)
    slip2, part2, _ = _price_split(data, b, buy, r2)
    _add(fill, "venue_fault" if a.fault else "latency", scale * (r1 - r2),
         f"{timing}; the market's price {amount_text(r1)} against {amount_text(r2)}")  # fmt: skip
    _add(fill, "partial_fill", scale * (part1 - part2), f"{parts_note}, while the price moved")
    _add(fill, "slippage", scale * ((slip1 - unexplained1) - slip2),
         f"{_bp(slip1 - unexplained1, r1)} bp from the market's price in the run, "
         f"{_bp(slip2, r2)} bp in the re-run")  # fmt: skip
    _add(fill, "unexplained", scale * unexplained1,
         f"the run's fill price is {_bp(unexplained1, r1)} bp off what the market data and "
         "the venue model allow")  # fmt: skip


def _add(fill: FillMatch, cause: Cause, amount: Decimal, note: str) -> None:
    """Book ``amount`` of a fill match's difference to ``cause``, with what shows it (nothing
    for a zero amount)."""
    if not amount:
        return
    fill.parts[cause] = fill.parts.get(cause, ZERO) + amount
    fill.notes[cause] = f"{fill.notes[cause]}; {note}" if cause in fill.notes else note


def _name(fill: FillMatch, cause: Cause, note: str) -> None:
    """Name ``cause`` for a fill match even when no amount goes to it (a fault the venue
    recovered from, an order filled in parts at one price)."""
    fill.parts.setdefault(cause, ZERO)
    if note not in fill.notes.get(cause, ""):
        fill.notes[cause] = f"{fill.notes[cause]}; {note}" if cause in fill.notes else note


def _bp(amount: Decimal, price: Decimal) -> str:
    return f"{abs(amount) / price * BP:.2f}" if price else "?"


def _hms(ts: int) -> str:
    seconds, nanos = divmod(ts, 1_000_000_000)
    hms = f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{hms}.{nanos // 1_000_000:03d}"


def _quantity_cause(data: ParityInput, run: OrderFills, match: DecisionMatch) -> Cause:
    """Why the run's order filled another quantity than the re-run's."""
    if len(run.fills) > 1 or run.order.status in {"PARTIALLY_CANCELED", "EXPIRED"}:
        return "partial_fill"
    window = window_cause(data.windows, match.symbol, match.bar_ns)
    if window is not None:
        return window
    run_equity = match.run.equity if match.run else None
    replay_equity = match.replay.equity if match.replay else None
    return "unexplained" if same_amount(run_equity, replay_equity) else "portfolio"


def _price_split(
    data: ParityInput, order: OrderFills, buy: bool, first_reference: Decimal
) -> tuple[Decimal, Decimal, Decimal]:
    """(slippage, partial-fill move, unexplained) of an order's VWAP against the reference at
    its first fill: VWAP - first reference = slippage + move; the unexplained part of the
    slippage is what neither the market data nor the venue model allows."""
    market, symbol = data.market, order.order.symbol
    quantity = order.quantity
    weighted_reference = ZERO
    unexplained = ZERO
    for fill in order.fills:
        reference = market.reference(symbol, buy, fill.ts_event) or first_reference
        weighted_reference += fill.quantity * reference
        slip = fill.price - reference
        unexplained += fill.quantity * _beyond(data, symbol, buy, fill, reference, slip)
    weighted_reference /= quantity
    vwap = order.vwap
    return vwap - weighted_reference, weighted_reference - first_reference, unexplained / quantity


def _beyond(
    data: ParityInput, symbol: str, buy: bool, fill: FillRecord, reference: Decimal, slip: Decimal
) -> Decimal:
    """The part of one fill's slippage the evidence does not allow (0 when it does)."""
    market = data.market
    if not data.paper_venue:  # a venue's slippage is a fact, given market data at its time
        return ZERO if market.seen_near(symbol, fill.ts_event) else slip
    if market.has_quote(symbol, fill.ts_event):  # the paper model fills at the touch
        return ZERO if abs(slip) <= FINE_PRICE * reference else slip
    low, high = data.slippage_band_pct
    allowed = reference * high / 100 + FINE_PRICE * reference
    adverse = slip if buy else -slip
    floor = reference * low / 100 - FINE_PRICE * reference
    if floor <= adverse <= allowed:
        return ZERO
    return slip


def _latency_backed(data: ParityInput, run: OrderFills) -> bool:
    """Whether the run's first fill time is one the market data backs (a paper fill happens at
    a stored trade; a venue's needs market data near it)."""
    symbol, ts = run.order.symbol, run.fills[0].ts_event
    if data.paper_venue:
        return data.market.trade_at(symbol, ts)
    return data.market.seen_near(symbol, ts)


def fill_time(fill: FillMatch) -> int:
    for side in (fill.run, fill.replay):
        if side is not None and side.fills:
            return side.fills[0].ts_event
    return fill.bar_ns
