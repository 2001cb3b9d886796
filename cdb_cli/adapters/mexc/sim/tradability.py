"""What the simulator lets the API trade, and how: MEXC's live gotchas, per symbol.

- **Not API-tradable** (``--api-untradable``): listed and quoted, but left out of
  ``/api/v3/defaultSymbols`` and every order answered :data:`NOT_API_TRADABLE`.
- **No MARKET orders** (``--no-market``): ``orderTypes`` without MARKET (and
  ``quoteOrderQtyMarketAllowed`` false) in ``exchangeInfo``; MARKET orders answered
  :data:`MARKET_DISABLED`.
- **One side only** (``trade_sides``, MEXC's ``tradeSideType``: "2" buy only, "3" sell only,
  "4" closed): orders on a side not allowed answered :data:`SIDE_NOT_ALLOWED`.

Set from :class:`~.exchange.SimConfig`, changed while running by tests or over HTTP
(``POST /_sim/symbols``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cdb_cli.adapters.mexc.sim.auth import ApiError

__all__ = ["MARKET_DISABLED", "NOT_API_TRADABLE", "SIDE_NOT_ALLOWED", "Tradability"]

NOT_API_TRADABLE = (10007, "symbol not support api")
"""MEXC's answer to an order on a symbol not in ``defaultSymbols``: documented as 10007 "bad
symbol" (EN) / "该交易对不支持api交易" (CN: the symbol does not support API trading); the text is
what MEXC sent to JKorf/Mexc.Net #13 (2024)."""
MARKET_DISABLED = (30051, "api market order is disabled")
"""MEXC's answer to a MARKET order on a symbol whose ``orderTypes`` lack MARKET, as a live MEXC
sent it to hummingbot (issue #6932, 2024-03); the docs list the same text as 30019 and
"market order is disabled" as 30018."""
SIDE_NOT_ALLOWED = (30001, "The current transaction direction is not allowed to place an order")
"""MEXC's documented answer to an order on a side the symbol's ``tradeSideType`` forbids."""
SIDES_ALLOWED = {"1": {"BUY", "SELL"}, "2": {"BUY"}, "3": {"SELL"}, "4": set()}


@dataclass
class Tradability:
    """The symbols with a gotcha; every other symbol trades both ways, MARKET included."""

    api_untradable: set[str] = field(default_factory=set)
    no_market: set[str] = field(default_factory=set)
    trade_sides: dict[str, str] = field(default_factory=dict)

    def check_order(self, symbol: str, side: str, order_type: str) -> None:
        """ApiError as MEXC answers an order the API may not place."""
        if symbol in self.api_untradable:
            raise ApiError(*NOT_API_TRADABLE)
        if side not in SIDES_ALLOWED.get(self.trade_sides.get(symbol, "1"), set()):
            raise ApiError(*SIDE_NOT_ALLOWED)
        if order_type == "MARKET" and symbol in self.no_market:
            raise ApiError(*MARKET_DISABLED)

    def symbol_json(self, answer: dict[str, object]) -> dict[str, object]:
        """An ``exchangeInfo`` symbol object as this tradability shows it."""
        name = str(answer["symbol"])
        types = answer.get("orderTypes")
        if name in self.no_market and isinstance(types, list):
            answer["orderTypes"] = [t for t in types if t != "MARKET"]
            answer["quoteOrderQtyMarketAllowed"] = False
        answer["tradeSideType"] = self.trade_sides.get(name, "1")
        return answer

    def as_json(self) -> dict[str, object]:
        """``GET /_sim/symbols``."""
        return {
            "api_untradable": sorted(self.api_untradable),
            "no_market": sorted(self.no_market),
            "trade_sides": dict(sorted(self.trade_sides.items())),
        }

    def update(self, changes: object, symbol: Callable[[str], str]) -> None:
        """Replace any of ``api_untradable``, ``no_market`` (lists of symbols) and
        ``trade_sides`` ({symbol: "1".."4"}) (``POST /_sim/symbols``); ``symbol`` names a known
        symbol (ApiError otherwise). ValueError on an unknown name or a wrong type; either way
        nothing changes."""
        known = {"api_untradable", "no_market", "trade_sides"}
        if not isinstance(changes, dict) or not set(changes) <= known:
            raise ValueError(f"expected an object with some of {', '.join(sorted(known))}")
        lists: dict[str, set[str]] = {}
        for name in ("api_untradable", "no_market"):
            if name in changes:
                value = changes[name]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{name} takes a list of symbols")
                lists[name] = {symbol(v) for v in value}
        sides = changes.get("trade_sides", self.trade_sides)
        if not isinstance(sides, dict) or any(
            not isinstance(v, str) or v not in SIDES_ALLOWED for v in sides.values()
        ):
            raise ValueError('trade_sides takes {"SYMBOL": "1" | "2" | "3" | "4"}')
        sides = {symbol(str(k)): str(v) for k, v in sides.items()}
        self.api_untradable = lists.get("api_untradable", self.api_untradable)
        self.no_market = lists.get("no_market", self.no_market)
        self.trade_sides = sides
