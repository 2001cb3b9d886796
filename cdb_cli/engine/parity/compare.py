"""Matching both sides decision by decision and listing every difference (the package's
:func:`compare`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final, Literal

from cdb_cli.engine.parity.fills import fill_time, match_fills
from cdb_cli.engine.parity.ledger import curve, pnl
from cdb_cli.engine.parity.model import (
    ZERO,
    Cause,
    DecisionMatch,
    DecisionRow,
    Difference,
    FillMatch,
    ParityInput,
    ParityReport,
    amount_text,
    same_amount,
    window_cause,
)

__all__ = ["compare"]

_ROUNDING: Final = Decimal("1e-12")
"""A residue of the split this small (in the quote currency) is the arithmetic's: a VWAP is a
division, rounded to 28 digits. It goes to the largest part; anything larger is unexplained."""


def compare(data: ParityInput) -> ParityReport:
    """Match both sides, attribute every difference, and sum PnL by cause."""
    decisions = _match_decisions(data)
    fills = match_fills(data, decisions)
    differences = _differences(data, decisions, fills)
    by_cause: dict[Cause, Decimal] = {}
    for fill in fills:
        for cause, amount in fill.parts.items():
            by_cause[cause] = by_cause.get(cause, ZERO) + amount
    pnl_run, pnl_replay, carried = pnl(data)
    if carried:
        by_cause["portfolio"] = by_cause.get("portfolio", ZERO) + carried
    residual = (pnl_run - pnl_replay) - sum(by_cause.values(), ZERO)
    if by_cause and abs(residual) <= _ROUNDING:  # the split's own rounding (a VWAP's division)
        largest = max(by_cause, key=lambda cause: abs(by_cause[cause]))
        by_cause[largest] += residual
    elif residual != 0:  # what the parts do not sum to: listed, never dropped
        by_cause["unexplained"] = by_cause.get("unexplained", ZERO) + residual
    return ParityReport(
        decisions=decisions,
        fills=fills,
        differences=differences,
        windows=data.windows,
        pnl_run=pnl_run,
        pnl_replay=pnl_replay,
        by_cause=by_cause,
        curve=curve(data, differences),
    )


def _differences(
    data: ParityInput, decisions: Sequence[DecisionMatch], fills: Sequence[FillMatch]
) -> list[Difference]:
    """Every difference, listed in time order: decisions, fills (one line per cause), bars."""
    differences: list[Difference] = []
    for match in decisions:
        row = match.run or match.replay
        if match.outcome != "equal" and row is not None:
            cause = match.cause or "unexplained"
            differences.append(
                Difference("decision", match.symbol, row.ts_ns, cause, ZERO, match.detail)
            )
    for fill in fills:
        for cause, amount in fill.parts.items():
            note = fill.notes.get(cause, cause)
            differences.append(
                Difference("fill", fill.symbol, fill_time(fill), cause, amount, note)
            )
    for bar in data.bar_differences:
        cause = window_cause(data.windows, bar.symbol, bar.ts_open) or "market_data"
        differences.append(Difference("market", bar.symbol, bar.ts_open, cause, ZERO, bar.detail))
    differences.sort(key=lambda d: (d.ts_ns, d.symbol, d.kind))
    return differences


def _key(row: DecisionRow) -> tuple[str, int, str]:
    return (row.symbol, row.bar_ns, row.side)


def _match_decisions(data: ParityInput) -> list[DecisionMatch]:
    run = {_key(row): row for row in data.run.decisions}
    replay = {_key(row): row for row in data.replay.decisions}
    matches: list[DecisionMatch] = []
    for key in sorted(run.keys() | replay.keys()):
        symbol, bar_ns, side = key
        a, b = run.get(key), replay.get(key)
        if a is not None and b is not None:
            if a.verdict == b.verdict and same_amount(a.quote, b.quote):
                matches.append(DecisionMatch(symbol, bar_ns, side, "equal", a, b, None))
                continue
            cause = window_cause(data.windows, symbol, bar_ns)
            if cause is None and not same_amount(a.equity, b.equity):
                cause = "portfolio"
            detail = (
                f"{a.verdict} {amount_text(a.quote)} in the run, "
                f"{b.verdict} {amount_text(b.quote)} in the re-run"
            )
            if cause == "portfolio":
                detail += f" (equity {amount_text(a.equity)} against {amount_text(b.equity)})"
            elif a.reasons != b.reasons:
                detail += f" ({a.reasons or 'no rule failed'} / {b.reasons or 'no rule failed'})"
            matches.append(
                DecisionMatch(symbol, bar_ns, side, "different", a, b, cause or "unexplained",
                              detail)
            )  # fmt: skip
        else:
            only = a if a is not None else b
            if only is None:  # pragma: no cover - a key comes from one side at least
                continue
            outcome: Literal["only_run", "only_replay"] = "only_run" if a else "only_replay"
            cause = window_cause(data.windows, symbol, bar_ns) or "unexplained"
            where = "the run" if a else "the re-run"
            detail = f"{side} signal on this bar only in {where} ({only.verdict})"
            matches.append(DecisionMatch(symbol, bar_ns, side, outcome, a, b, cause, detail))
    return matches
