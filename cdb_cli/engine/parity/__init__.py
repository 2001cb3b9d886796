"""Parity: a stored run and its re-run on the same market events, matched and explained.

``cdb parity`` re-runs a paper or live run's own stored market events through the engine
(:mod:`cdb_cli.services.parity`) and hands both sides here. This module matches them decision by
decision (by symbol, the bar that raised it and its side) and order by order (by the decision
that approved it), and attributes every difference in PnL to a cause:

* ``latency``: the two fills came at different times, and the market's price (the touch, or
  the last trade) moved in between;
* ``slippage``: a fill paid more (or got less) than the market's price at its own time;
* ``partial_fill``: an order filled in parts while the price moved, or filled less than asked;
* ``fees``: the fees differ (a fee in a third asset, e.g. MX, is listed apart);
* ``restart``, ``operator``, ``feed_gap``, ``venue_fault``: the difference lies in a named
  window (the run was down, an operator halted or reset it, the feed was silent, the venue
  answered 5xx to an order it had taken);
* ``venue_reject``: the venue rejected or expired the run's order;
* ``portfolio``: a decision sized differently because the account already differed (from the
  causes above), which the risk inputs it saw show;
* ``unexplained``: everything else. Nothing is hidden: every unexplained difference is listed.

A cause is only given with evidence: a paper run's fill must be at a time the stored market
shows a trade, at the price the paper model gives there (the touch, or within the slippage
band); a live fill's slippage needs a market price at its time. A run whose market data was
changed after the fact (a trade removed) shows as bars that differ and fills the data cannot
explain.

PnL of a side over a window is what its fills did to the account, valued at the window's last
price: ``Σ side·quantity·(end price - fill price) - fee`` plus the position it came in with
times the price change; the difference of the two sides splits exactly into the causes' parts.

Pure: stdlib, records and events only.
"""

from cdb_cli.engine.parity.compare import compare
from cdb_cli.engine.parity.model import (
    CAUSES,
    BarDifference,
    Cause,
    DecisionMatch,
    DecisionRow,
    Difference,
    FillMatch,
    Market,
    OrderFills,
    ParityInput,
    ParityReport,
    Side,
    Window,
)

__all__ = [
    "CAUSES",
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
    "compare",
]
