"""The simulator's market: per symbol a price path (the seeded :mod:`.model` or a replay file),
1-minute candles for ``/klines``, public trades for the WebSocket, and a synthetic book around the
price."""

from __future__ import annotations

import itertools
import json
import math
import random
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from cdb_cli.adapters.mexc.sim.model import MINUTE_MS, MarketModel, ModelMinute
from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.engine.events import Side
from cdb_cli.engine.instruments import Instrument, split_symbol

__all__ = ["Candle", "PublicTrade", "SymbolMarket", "instrument_for", "load_replay"]

START_PRICES = {"BTC": Decimal("30000"), "ETH": Decimal("2000"), "SOL": Decimal("100")}
MINUTE_NOTIONAL = 50_000.0
"""Median value of a minute's volume, in the base price's unit (about 1.7 BTC at 30 000)."""
JITTER = 0.1
"""Sd of a trade's scatter around the minute's path, in units of the model's volatility."""
GAP_FILL_MINUTES = 7 * 1440
"""At most this many minutes skipped between two steps are filled in from the model."""
RECENT_TRADES = 1000
"""Public trades kept for ``/trades`` and ``/aggTrades`` (MEXC's largest ``limit``)."""


@dataclass(slots=True)
class Candle:
    """One 1-minute candle, mutable while it is the current one."""

    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    quote_volume: Decimal = Decimal(0)

    def add(self, price: Decimal, quantity: Decimal) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += quantity
        self.quote_volume += price * quantity


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """One public trade printed by the market (numeric, increasing trade ids per symbol)."""

    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    side: Side
    time_ms: int


def _split(symbol: str) -> tuple[str, str]:
    try:
        return split_symbol(symbol)
    except ValueError as e:
        raise ConfigurationError(str(e)) from None


def instrument_for(symbol: str, price: Decimal) -> Instrument:
    """Filters a MEXC symbol of this price level would have (tick scales with the price)."""
    base, quote = _split(symbol)
    digits = max(0, 6 - math.floor(math.log10(float(price)))) if price > 0 else 8
    tick = Decimal(1).scaleb(-min(digits, 8))
    step = Decimal("0.000001") if price >= 1000 else Decimal("0.0001") if price >= 1 else Decimal(1)
    return Instrument(
        symbol=symbol,
        base_asset=base,
        quote_asset=quote,
        tick_size=tick,
        step_size=step,
        min_quantity=step,
        min_notional=Decimal(1) if quote in {"USDT", "USDC"} else Decimal("0.0001"),
        max_notional=Decimal(5_000_000),
        maker_fee=Decimal(0),
        taker_fee=Decimal("0.0005"),
    )


def load_replay(path: Path) -> list[Candle]:
    """Candles from a JSON file of ``[open_ms, o, h, l, c, v]`` arrays (the replay format)."""
    try:
        rows = json.loads(path.read_text(), parse_float=Decimal, parse_int=int)
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"Cannot read replay file {path}: {e}") from None
    if not isinstance(rows, list) or not rows:
        raise ConfigurationError(f"Replay file {path} is not a non-empty JSON array")
    try:
        return [
            Candle(
                int(r[0]), Decimal(r[1]), Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), Decimal(r[5])
            )
            for r in rows
        ]
    except (TypeError, IndexError, ArithmeticError) as e:
        raise ConfigurationError(f"Replay file {path} has a bad row: {e}") from None


@dataclass
class SymbolMarket:
    """Price, history and public trades of one symbol. Deterministic for a given seed.

    With a :class:`~.model.MarketModel` (the seeded market), the history and the live trades are
    both read from the model, which is a function of wall-clock minutes: each live trade is at the
    price of the model's path at its time and carries the minute's volume times the share of the
    minute elapsed since the previous trade, so the trades of a minute add up to (nearly) the
    model's candle whatever the tick rate. A price forced by :meth:`step` or :meth:`set_price`
    shifts the model's path by a constant factor from then on. With a replay, live prices replay
    the file's closes in a loop.
    """

    symbol: str
    instrument: Instrument
    price: Decimal
    rng: random.Random
    model: MarketModel | None = None
    candles: list[Candle] = field(default_factory=list)
    replay: list[Candle] = field(default_factory=list)
    trade_seq: int = 0
    recent: deque[PublicTrade] = field(default_factory=lambda: deque(maxlen=RECENT_TRADES))
    """The latest public trades, oldest first: the market's own and the fills of accounts' orders
    (those with ``trade_id`` 0; MEXC serves trade ids as null anyway)."""
    _replay_pos: int = 0
    _log_shift: float = 0.0  # log of the factor between forced prices and the model's
    _last_ms: int | None = None  # time of the last trade (the model's volume is spread from it)

    @classmethod
    def random_walk(
        cls, symbol: str, seed: int, now_ms: int, history_minutes: int, start: Decimal | None = None
    ) -> SymbolMarket:
        """The seeded market, with a history of ``history_minutes`` candles ending at ``now_ms``.

        ``start`` is the level prices revert to (default by base asset: BTC 30 000, ...); the
        price now is wherever the model's path has got to at ``now_ms``.
        """
        base = start or START_PRICES.get(_split(symbol)[0], Decimal(1))
        model = MarketModel(seed, symbol, float(base), volume=MINUTE_NOTIONAL / float(base))
        market = cls(
            symbol, instrument_for(symbol, base), base, random.Random(f"{seed}:{symbol}"), model
        )
        now_minute = now_ms // MINUTE_MS
        market.candles = [
            market._candle(m) for m in model.minutes(now_minute - history_minutes, history_minutes)
        ]
        last = model.minute(now_minute - 1)
        market.price = market._round(Decimal(repr(last.close)))
        market._last_ms = now_ms  # the first trade carries the volume since the start, no more
        return market

    @classmethod
    def from_replay(cls, symbol: str, candles: list[Candle], seed: int) -> SymbolMarket:
        """A market whose history is the file and whose live prices replay its closes in a loop."""
        price = candles[-1].close
        market = cls(
            symbol, instrument_for(symbol, price), price, random.Random(f"{seed}:{symbol}")
        )
        market.candles = list(candles)
        market.replay = list(candles)
        return market

    def _round(self, price: Decimal) -> Decimal:
        tick = self.instrument.tick_size
        return max(tick, price.quantize(tick, rounding=ROUND_HALF_EVEN))

    def _decimal_price(self, price: float) -> Decimal:
        return self._round(Decimal(repr(price * math.exp(self._log_shift))))

    def _candle(self, minute: ModelMinute) -> Candle:
        """The model's minute as a served candle (shifted by any forced price, rounded)."""
        volume = max(
            self.instrument.step_size,
            self.instrument.round_quantity(Decimal(repr(minute.volume))),
        )
        candle = Candle(
            minute.open_ms,
            self._decimal_price(minute.open),
            self._decimal_price(minute.high),
            self._decimal_price(minute.low),
            self._decimal_price(minute.close),
            volume,
        )
        candle.quote_volume = volume * (candle.open + candle.close) / 2
        return candle

    def _replay_price(self) -> Decimal:
        self._replay_pos = (self._replay_pos + 1) % len(self.replay)
        return self._round(self.replay[self._replay_pos].close)

    def _replay_quantity(self) -> Decimal:
        notional = Decimal(repr(round(self.rng.uniform(5, 500), 2)))
        return max(self.instrument.step_size, self.instrument.round_quantity(notional / self.price))

    def _model_price(self, model: MarketModel, now_ms: int) -> Decimal:
        """The price of a trade at ``now_ms``: on the model's path, scattered a little around it
        but never outside the minute's range."""
        current = model.minute(now_ms // MINUTE_MS)
        path = current.price_at(now_ms % MINUTE_MS / MINUTE_MS)
        scattered = path * math.exp(self.rng.gauss(0.0, JITTER * model.volatility))
        return self._decimal_price(min(current.high, max(current.low, scattered)))

    def _model_quantity(self, model: MarketModel, now_ms: int) -> Decimal:
        """The minute's volume times the share of the minute since the previous trade."""
        minute_ms = now_ms - now_ms % MINUTE_MS
        since = minute_ms if self._last_ms is None else max(self._last_ms, minute_ms)
        share = Decimal(max(0, now_ms - since)) / MINUTE_MS
        volume = Decimal(repr(model.minute(now_ms // MINUTE_MS).volume))
        return max(self.instrument.step_size, self.instrument.round_quantity(volume * share))

    def _fill_gap(self, model: MarketModel, minute_ms: int) -> None:
        """Candles for the minutes nobody stepped through before ``minute_ms`` (a manual clock, a
        paused process): the market traded in them all the same."""
        if not self.candles:
            return
        missing = (minute_ms - self.candles[-1].open_ms) // MINUTE_MS - 1
        count = min(missing, GAP_FILL_MINUTES)
        if count > 0:
            first = minute_ms // MINUTE_MS - count
            self.candles.extend(self._candle(m) for m in model.minutes(first, count))

    def set_price(self, price: Decimal, now_ms: int | None = None) -> None:
        """Move the market to ``price`` (tests and rehearsals); the model's path follows it."""
        if self.model is not None:
            at = now_ms if now_ms is not None else self._last_ms
            if at is not None:
                self._log_shift = math.log(float(price) / self.model.price_at(at))
            else:  # not traded yet: the price is the last history close's
                self._log_shift += math.log(float(price) / float(self.price))
        self.price = self._round(price)

    def step(self, now_ms: int, price: Decimal | None = None) -> PublicTrade:
        """Advance one tick: a new price (or the given one) and one public trade at it."""
        previous = self.price
        minute = now_ms - now_ms % MINUTE_MS
        if self.model is not None:
            self._fill_gap(self.model, minute)
            if price is not None:
                self.set_price(price, now_ms)
            else:
                self.price = self._model_price(self.model, now_ms)
            quantity = self._model_quantity(self.model, now_ms)
        else:
            self.price = self._round(price) if price is not None else self._replay_price()
            quantity = self._replay_quantity()
        self._last_ms = now_ms if self._last_ms is None else max(self._last_ms, now_ms)
        if not self.candles or self.candles[-1].open_ms < minute:
            self.candles.append(Candle(minute, previous, previous, previous, previous))
        self.candles[-1].add(self.price, quantity)
        self.trade_seq += 1
        side = Side.BUY if self.price >= previous else Side.SELL
        trade = PublicTrade(self.symbol, self.trade_seq, self.price, quantity, side, now_ms)
        self.recent.append(trade)
        return trade

    def record_fill(self, price: Decimal, quantity: Decimal, taker: Side, now_ms: int) -> None:
        """An account's order traded: the market printed it (``taker`` is the aggressor's side)."""
        self.recent.append(PublicTrade(self.symbol, 0, price, quantity, taker, now_ms))

    def best_bid_ask(self) -> tuple[Decimal, Decimal]:
        """The synthetic book's top: one tick either side of the last price."""
        tick = self.instrument.tick_size
        return max(tick, self.price - tick), self.price + tick

    def klines(
        self, interval_ms: int, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[object]]:
        """REST kline rows (8 columns, strings for money) aggregated from the 1-minute candles.

        Like MEXC: rows with ``start_ms <= open < end_ms``, oldest first, at most ``limit``;
        without ``start_ms`` the latest ``limit`` rows (before ``end_ms`` when given).
        """
        if not self.candles:
            return []
        if start_ms is None:
            last = end_ms - 1 if end_ms is not None else self.candles[-1].open_ms
            start_ms = last - last % interval_ms - (limit - 1) * interval_ms
        first_open = -(-start_ms // interval_ms) * interval_ms  # the first row opening at/after it
        first = bisect_left(self.candles, first_open, key=lambda c: c.open_ms)
        rows: list[list[object]] = []
        bucket: Candle | None = None
        for candle in itertools.islice(self.candles, first, None):
            if end_ms is not None and candle.open_ms >= end_ms:
                break
            open_ms = candle.open_ms - candle.open_ms % interval_ms
            if bucket is None or bucket.open_ms != open_ms:
                if bucket is not None:
                    rows.append(_row(bucket, interval_ms))
                    if len(rows) >= limit:
                        return rows
                bucket = Candle(open_ms, candle.open, candle.high, candle.low, candle.close)
                bucket.volume, bucket.quote_volume = candle.volume, candle.quote_volume
            else:
                bucket.high = max(bucket.high, candle.high)
                bucket.low = min(bucket.low, candle.low)
                bucket.close = candle.close
                bucket.volume += candle.volume
                bucket.quote_volume += candle.quote_volume
        if bucket is not None and len(rows) < limit:
            rows.append(_row(bucket, interval_ms))
        return rows


def _row(candle: Candle, interval_ms: int) -> list[object]:
    return [
        candle.open_ms,
        f"{candle.open:f}",
        f"{candle.high:f}",
        f"{candle.low:f}",
        f"{candle.close:f}",
        f"{candle.volume:f}",
        candle.open_ms + interval_ms,
        f"{candle.quote_volume.quantize(Decimal('0.01')):f}",
    ]
