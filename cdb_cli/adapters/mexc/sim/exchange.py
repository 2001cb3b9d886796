"""``SimExchange``: the simulator's state and REST semantics, independent of HTTP (pure, sync).

The aiohttp server (:mod:`.server`) only translates requests into these calls and
:class:`~.auth.ApiError` into MEXC error bodies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal
from pathlib import Path

from cdb_cli.adapters.mexc.sim.auth import ApiError, check_signed, parse_params
from cdb_cli.adapters.mexc.sim.depth import DepthJournal
from cdb_cli.adapters.mexc.sim.faults import Faults
from cdb_cli.adapters.mexc.sim.frames import (
    PRIVATE_ACCOUNT,
    PRIVATE_DEALS,
    PRIVATE_ORDERS,
    private_account_frame,
    private_deal_frame,
    private_order_frame,
)
from cdb_cli.adapters.mexc.sim.listenkeys import ListenKeys
from cdb_cli.adapters.mexc.sim.market import PublicTrade, SymbolMarket, load_replay
from cdb_cli.adapters.mexc.sim.orders import (
    ORDER_TYPES,
    TAKER_TYPES,
    ZERO,
    Account,
    Book,
    SimOrder,
    new_order_id,
    s,
    validated,
)
from cdb_cli.adapters.mexc.sim.tradability import Tradability
from cdb_cli.engine.events import Side

__all__ = ["SimConfig", "SimExchange"]


MX = "MX"
MX_STEP = Decimal("0.00000001")
MAX_CANCEL_SYMBOLS = 5


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class SimConfig:
    """How the simulator is set up (the ``cdb sim-exchange`` flags)."""

    symbols: tuple[str, ...] = ("BTCUSDT",)
    accounts: dict[str, str] = field(default_factory=dict)  # api key → secret
    balances: dict[str, Decimal] = field(default_factory=dict)  # starting balances per account
    seed: int = 1
    """Seed of the market model: with the clock, it fixes every price and volume (see
    :mod:`.model`); the same seed at the same clock reproduces a run exactly."""
    replay: Path | None = None
    history_minutes: int = 3 * 1440  # 1-minute candles served before the start
    tick_interval: float | None = 0.5  # a symbol's mean seconds between trades; None: manual
    lockstep: bool = False
    """Every symbol trades at once, exactly every ``tick_interval``; otherwise each symbol trades on
    its own seeded random schedule (exponential gaps, mean ``tick_interval``), as a real market
    does: bars of different symbols then do not all close in the same instant."""
    levels: int = 10
    level_quote: Decimal = Decimal(5000)
    rate_limit: int = 0  # MEXC request weight per 10 s per client address; 0: unlimited
    max_subscriptions: int = 30
    idle_without_subscription: float = 30.0
    idle_without_messages: float = 60.0
    max_connection_age: float = 24 * 3600.0  # MEXC closes every WebSocket after 24 h
    mx_deduct_price: Decimal | None = None
    """MX deduction: an account holding enough MX pays each commission in MX, valued at this price
    in the quote asset, and gets the whole of what it bought or sold; None: off."""
    api_untradable: frozenset[str] = frozenset()
    """Symbols listed and quoted but not tradable over the API: left out of
    ``/api/v3/defaultSymbols``, their orders answered ``10007``."""
    no_market: frozenset[str] = frozenset()
    """Symbols whose ``orderTypes`` lack MARKET: MARKET orders answered ``30051``."""
    trade_sides: dict[str, str] = field(default_factory=dict)
    """``tradeSideType`` per symbol ("2" buy only, "3" sell only, "4" closed; default "1" all):
    orders on a side not allowed are answered ``30001``."""


class SimExchange:
    """Markets, accounts, orders. Every public method maps to one MEXC endpoint."""

    def __init__(self, config: SimConfig, *, clock_ms: Callable[[], int] = _wall_ms) -> None:
        self.config = config
        self.clock_ms = clock_ms
        self.faults = Faults()
        now = clock_ms()
        replay = load_replay(config.replay) if config.replay is not None else None
        self.markets: dict[str, SymbolMarket] = {}
        for symbol in config.symbols:
            if replay is not None:
                self.markets[symbol] = SymbolMarket.from_replay(symbol, replay, config.seed)
            else:
                self.markets[symbol] = SymbolMarket.random_walk(
                    symbol, config.seed, now, config.history_minutes
                )
        self.books = {
            sym: Book(m, config.levels, config.level_quote) for sym, m in self.markets.items()
        }
        self.tradability = Tradability(  # settable while running (tests, /_sim/symbols)
            set(config.api_untradable), set(config.no_market), dict(config.trade_sides)
        )
        self.depth_journals = {sym: DepthJournal() for sym in self.markets}
        self.accounts = {
            key: Account(key, secret, free=dict(config.balances))
            for key, secret in config.accounts.items()
        }
        self._trade_ids = 0
        self.listen_keys = ListenKeys(clock_ms)
        self.outbox: list[tuple[str, str, bytes]] = []  # (api key, private channel, frame)
        for account in self.accounts.values():
            account.changed_balances()  # the starting balances are not a change

    def server_ms(self) -> int:
        """The server clock MEXC would report: wall time plus the ``clock_offset_ms`` fault."""
        return self.clock_ms() + self.faults.clock_offset_ms

    # -- market --------------------------------------------------------------------------------

    def step(
        self, prices: dict[str, Decimal] | None = None, symbols: Iterable[str] | None = None
    ) -> list[PublicTrade]:
        """Advance every market (or those of ``symbols``) one tick (or to the given prices) and
        fill resting orders."""
        now = self.clock_ms()
        trades = []
        chosen = self.markets if symbols is None else {s: self.markets[s] for s in symbols}
        for symbol, market in chosen.items():
            trades.append(market.step(now, (prices or {}).get(symbol)))
            self.books[symbol].refresh()
            self._match_resting(symbol, now)
        return trades

    def market(self, symbol: str | None) -> SymbolMarket:
        if not symbol:
            raise ApiError(44444, "param cannot be null")
        found = self.markets.get(symbol.upper())
        if found is None:
            raise ApiError(-1121, "Invalid symbol.")
        return found

    def exchange_info(self, symbols: list[str]) -> dict[str, object]:
        chosen = [self.market(sym) for sym in symbols] if symbols else self.markets.values()
        return {
            "timezone": "CST",
            "serverTime": self.server_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [self._symbol_json(m) for m in chosen],
        }

    def _symbol_json(self, market: SymbolMarket) -> dict[str, object]:
        return self.tradability.symbol_json(_symbol_json(market))

    def default_symbols(self) -> list[str]:
        """``GET /api/v3/defaultSymbols``: the symbols tradable over the API."""
        return [name for name in self.markets if name not in self.tradability.api_untradable]

    def depth(self, symbol: str | None, limit: int) -> dict[str, object]:
        """The book with ``lastUpdateId`` = its depth version, which the diff-depth pushes continue
        (see :mod:`.depth`)."""
        name = self.market(symbol).symbol
        version, levels = self.depth_journals[name].snapshot(self.books[name], limit)
        return {
            "lastUpdateId": version,
            "bids": [[s(p), s(q)] for p, q in levels["bids"]],
            "asks": [[s(p), s(q)] for p, q in levels["asks"]],
            "timestamp": self.clock_ms(),
        }

    # -- auth ----------------------------------------------------------------------------------

    def authenticate(
        self, api_key: str | None, query: str, body: str
    ) -> tuple[Account, dict[str, str]]:
        """The account and parameters of a signed request, or ApiError as MEXC answers."""
        if not api_key:
            raise ApiError(400, "api key required")
        account = self.accounts.get(api_key)
        if account is None:
            raise ApiError(10072, "invalid access key")
        params = parse_params(query, body)
        check_signed(
            secret=account.secret, query=query, body=body, params=params, server_ms=self.server_ms()
        )
        return account, params

    # -- orders --------------------------------------------------------------------------------

    def place_order(
        self, account: Account, p: dict[str, str], *, test: bool = False
    ) -> dict[str, object]:
        market = self.market(p.get("symbol"))
        inst = market.instrument
        side, otype, qty, quote, price = validated(market, p)
        self.tradability.check_order(market.symbol, side, otype)
        book = self.books[market.symbol]
        bid, ask = market.best_bid_ask()
        crosses = price is not None and (price >= ask if side == "BUY" else price <= bid)
        if otype == "LIMIT_MAKER" and crosses:
            fills: list[tuple[Decimal, Decimal]] = []
        else:
            fills = book.sweep(side, price, qty, quote if qty is None else None)
        filled = sum((q for _, q in fills), ZERO)
        if otype == "FILL_OR_KILL" and qty is not None and filled < qty:
            fills, filled = [], ZERO
        rests = otype == "LIMIT" or (otype == "LIMIT_MAKER" and not crosses)
        rest_qty = (qty or ZERO) - filled if rests else ZERO
        cost = sum((fp * fq for fp, fq in fills), ZERO)
        need = cost + rest_qty * (price or ZERO) if side == "BUY" else filled + rest_qty
        asset = inst.quote_asset if side == "BUY" else inst.base_asset
        if account.free.get(asset, ZERO) < need or (need == 0 and otype == "MARKET"):
            raise ApiError(30004, "Insufficient position")
        if test:
            return {}
        now = self.clock_ms()
        order = SimOrder(
            order_id=new_order_id(),
            client_order_id=p.get("newClientOrderId") or None,  # MEXC: null without one
            symbol=market.symbol,
            side=side,
            type=otype,
            price=price,
            orig_qty=qty if qty is not None else filled,
            orig_quote_qty=quote or ZERO,
            time_ms=now,
        )
        account.lock(asset, need)
        order.locked = need
        account.orders[order.order_id] = order
        book.take(side, fills)
        for fill_price, fill_qty in fills:
            self._fill(account, order, fill_price, fill_qty, maker=False, now=now)
        # A quote-sized market order is done when what is left cannot buy one more step.
        dust = inst.step_size * (fills[-1][0] if fills else market.price)
        order.status = self._status_after_placing(order, rests, quote, crosses, dust)
        if not order.is_open:
            self._release(account, order)
        self._report(account, order, sum((q for _, q in fills), ZERO), "ENTRUST_PLACE", now)
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "price": s(price or ZERO),
            "origQty": s(order.orig_qty),
            "type": otype,
            "side": side,
            "transactTime": now,
        }

    @staticmethod
    def _status_after_placing(
        order: SimOrder, rests: bool, quote: Decimal | None, crosses: bool, dust: Decimal
    ) -> str:
        if order.type == "LIMIT_MAKER" and crosses:
            return "CANCELED"
        if quote is not None and order.type == "MARKET":
            done = order.executed_qty > 0 and quote - order.cum_quote < dust
            return "FILLED" if done else "PARTIALLY_CANCELED" if order.executed_qty else "CANCELED"
        if order.executed_qty >= order.orig_qty and order.orig_qty > 0:
            return "FILLED"
        if rests:
            return "PARTIALLY_FILLED" if order.executed_qty else "NEW"
        return "PARTIALLY_CANCELED" if order.executed_qty else "CANCELED"

    def _fee_in_mx(self, account: Account, fee_in_quote: Decimal) -> Decimal | None:
        """The commission in MX when MX deduction is on and the account can pay it; else None."""
        price = self.config.mx_deduct_price
        if price is None or price <= 0 or fee_in_quote <= 0:
            return None
        fee = (fee_in_quote / price).quantize(MX_STEP, rounding=ROUND_UP)
        return fee if account.free.get(MX, ZERO) >= fee else None

    def _fill(
        self,
        account: Account,
        order: SimOrder,
        price: Decimal,
        qty: Decimal,
        *,
        maker: bool,
        now: int,
    ) -> None:
        inst = self.markets[order.symbol].instrument
        rate = inst.maker_fee if maker else inst.taker_fee
        quote_amount = price * qty
        in_mx = self._fee_in_mx(account, quote_amount * rate)
        if order.side == "BUY":
            # Takers locked exactly their fills' cost; resting orders locked at their limit price.
            reserved = (order.price or price) * qty if maker else quote_amount
            account.spend_locked(inst.quote_asset, reserved)
            order.locked -= reserved
            account.credit(inst.quote_asset, reserved - quote_amount)
            fee, fee_asset = qty * rate, inst.base_asset
            account.credit(inst.base_asset, qty if in_mx is not None else qty - fee)
        else:
            account.spend_locked(inst.base_asset, qty)
            order.locked -= qty
            fee, fee_asset = quote_amount * rate, inst.quote_asset
            account.credit(
                inst.quote_asset, quote_amount if in_mx is not None else quote_amount - fee
            )
        if in_mx is not None:
            account.free[MX] -= in_mx
            fee, fee_asset = in_mx, MX
        order.executed_qty += qty
        order.cum_quote += quote_amount
        order.update_ms = now
        taker = Side(order.side) if not maker else Side.SELL if order.side == "BUY" else Side.BUY
        self.markets[order.symbol].record_fill(price, qty, taker, now)
        self._trade_ids += 1
        trade: dict[str, object] = {
            "symbol": order.symbol,
            "id": f"{self._trade_ids:032x}",
            "orderId": order.order_id,
            "orderListId": -1,
            "price": s(price),
            "qty": s(qty),
            "quoteQty": s(quote_amount),
            "commission": s(fee),
            "commissionAsset": fee_asset,
            "time": now,
            "isBuyer": order.side == "BUY",
            "isMaker": maker,
            "isBestMatch": True,
            "isSelfTrade": False,
            "clientOrderId": order.client_order_id,
        }
        account.trades.append(trade)
        pushed = {**trade, "clientOrderId": ""} if self.faults.hide_client_ids else trade
        self.outbox.append((account.api_key, PRIVATE_DEALS, private_deal_frame(pushed, now)))

    def _report(
        self, account: Account, order: SimOrder, last_qty: Decimal, kind: str, now: int
    ) -> None:
        """Queue the private pushes of an order change: the order, then changed balances."""
        key = account.api_key
        hide = self.faults.hide_client_ids
        frame = private_order_frame(order, last_qty, now, hide_client_id=hide)
        self.outbox.append((key, PRIVATE_ORDERS, frame))
        for asset, after, before in account.changed_balances():
            frame = private_account_frame(asset, after, before, kind, now)
            self.outbox.append((key, PRIVATE_ACCOUNT, frame))

    def drain_outbox(self) -> list[tuple[str, str, bytes]]:
        """The private pushes queued since the last call."""
        out, self.outbox = self.outbox, []
        return out

    def _release(self, account: Account, order: SimOrder) -> None:
        if order.locked > 0:
            inst = self.markets[order.symbol].instrument
            asset = inst.quote_asset if order.side == "BUY" else inst.base_asset
            account.unlock(asset, order.locked)
            order.locked = ZERO

    def _match_resting(self, symbol: str, now: int) -> None:
        book = self.books[symbol]
        bid, ask = book.market.best_bid_ask()
        for account in self.accounts.values():
            for order in list(account.orders.values()):
                if order.symbol != symbol or not order.is_open or order.type in TAKER_TYPES:
                    continue
                limit = order.price or ZERO  # resting orders are limit orders
                through = limit >= ask if order.side == "BUY" else ZERO < limit <= bid
                if not through:
                    continue
                qty = min(order.remaining, book.level_qty())
                self._fill(account, order, limit, qty, maker=True, now=now)
                order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
                if order.status == "FILLED":
                    self._release(account, order)
                self._report(account, order, qty, "ENTRUST", now)

    def find_order(self, account: Account, p: dict[str, str]) -> SimOrder:
        self.market(p.get("symbol"))
        order_id, client_id = p.get("orderId"), p.get("origClientOrderId")
        if not order_id and not client_id:
            raise ApiError(
                700004,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null",
            )
        for order in account.orders.values():
            if (order_id and order.order_id == order_id) or (
                client_id and order.client_order_id == client_id
            ):
                return order
        raise ApiError(-2011, "Unknown order sent.")

    def cancel_order(self, account: Account, p: dict[str, str]) -> dict[str, object]:
        order = self.find_order(account, p)
        if not order.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        answer = order.as_json()  # MEXC reports the status before the cancel (mexc_api.md §2.2)
        answer["origClientOrderId"] = order.client_order_id
        order.status = "PARTIALLY_CANCELED" if order.executed_qty > 0 else "CANCELED"
        order.update_ms = self.clock_ms()
        self._release(account, order)
        self._report(account, order, ZERO, "ENTRUST_CANCEL", order.update_ms)
        return answer

    def cancel_open_orders(self, account: Account, p: dict[str, str]) -> list[dict[str, object]]:
        """``DELETE /api/v3/openOrders``: cancel every open order of up to 5 comma-separated
        symbols (MEXC: "maximum input 5 symbols")."""
        names = [name for name in (p.get("symbol") or "").split(",") if name]
        if len(names) > MAX_CANCEL_SYMBOLS:
            raise ApiError(33333, "param is error")
        symbols = {self.market(name).symbol for name in names or [""]}
        return [
            self.cancel_order(account, {"symbol": order.symbol, "orderId": order.order_id})
            for order in list(account.orders.values())
            if order.symbol in symbols and order.is_open
        ]

    def open_orders(self, account: Account, p: dict[str, str]) -> list[dict[str, object]]:
        symbol = self.market(p.get("symbol")).symbol
        return [o.as_json() for o in account.orders.values() if o.symbol == symbol and o.is_open]


def _symbol_json(market: SymbolMarket) -> dict[str, object]:
    inst = market.instrument
    quote_places = -inst.tick_size.as_tuple().exponent  # type: ignore[operator]
    base_places = -inst.step_size.as_tuple().exponent  # type: ignore[operator]
    return {
        "symbol": inst.symbol,
        "status": "1",
        "baseAsset": inst.base_asset,
        "baseAssetPrecision": base_places,
        "quoteAsset": inst.quote_asset,
        "quotePrecision": quote_places,
        "quoteAssetPrecision": quote_places,
        "baseCommissionPrecision": base_places,
        "quoteCommissionPrecision": quote_places,
        "orderTypes": list(ORDER_TYPES),
        "quoteOrderQtyMarketAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "quoteAmountPrecision": s(inst.min_notional),
        "baseSizePrecision": s(inst.min_quantity),
        "permissions": ["SPOT"],
        "filters": [],
        "maxQuoteAmount": s(inst.max_notional or Decimal(5_000_000)),
        "makerCommission": s(inst.maker_fee),
        "takerCommission": s(inst.taker_fee),
        "quoteAmountPrecisionMarket": s(inst.min_notional),
        "maxQuoteAmountMarket": s(inst.max_notional or Decimal(5_000_000)),
        "tradeSideType": "1",
    }
