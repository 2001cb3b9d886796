"""``cdb explain`` as a service: why the bot did (not) trade, from the store alone.

Three questions, each answered as one JSON-able document that the command renders:

* :func:`explain_window` — per symbol, the funnel from market data to fills, the first stage that
  stopped things in one sentence, and the near misses (``cdb explain --since 10m``);
* :func:`explain_bar` — one bar's whole path: the bar and how late it closed, every condition,
  the signal, the risk trace, the orders, the venue's answers and the fills
  (``cdb explain BTCUSDT@12:03`` or ``cdb explain ID`` for a decision, signal or trace id);
* :func:`what_if` — the stored bars of the window through the same pipeline the run used, once
  with the settings as they are and once with ``--what-if`` changes (strategy settings and risk
  limits alike): which bars would have signalled, and what risk would then have said.

Errors are :class:`ExplainError` (one line for the operator, exit 1) and ``ValueError`` for a
bad ``--what-if`` (exit 2).
"""

from __future__ import annotations

from cdb_cli.services.why.bar import explain_bar, parse_bar_target
from cdb_cli.services.why.what_if import parse_changes, what_if, what_if_names
from cdb_cli.services.why.window import ExplainError, Window, explain_window

__all__ = [
    "ExplainError",
    "Window",
    "explain_bar",
    "explain_window",
    "parse_bar_target",
    "parse_changes",
    "what_if",
    "what_if_names",
]
