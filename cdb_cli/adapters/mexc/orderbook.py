"""A local MEXC order book from diff-depth pushes and a REST snapshot, the documented way.

MEXC spot v3 docs, "How to Properly Maintain a Local Copy of the Order Book":

1. subscribe to ``spot@public.aggre.depth.v3.api.pb@(100ms|10ms)@SYMBOL`` and buffer the pushes;
2. read ``GET /api/v3/depth`` (its ``lastUpdateId`` is the snapshot's version);
3. each push's ``fromVersion`` must be the previous ``toVersion + 1``, else start again at 2;
4. quantities are absolute, not changes;
5. a push whose ``toVersion`` is below the snapshot's version is outdated: drop it;
6. a push whose ``fromVersion`` is above the snapshot's version means data is missing: start again;
7. apply the first push whose ``[fromVersion, toVersion]`` holds the snapshot's version, and every
   one after it: update or insert each level, remove a level whose quantity is 0.

:func:`parse_depth` reads a diff-depth frame (refusing what :mod:`.decoder` refuses: values that are
not plain decimals, versions that are not numbers); :class:`LocalOrderBook` follows the steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from google.protobuf.message import DecodeError

from cdb_cli.adapters.mexc.decoder import (
    BadValue,
    book_version,
    non_negative_decimal,
    optional_time_ms,
    positive_decimal,
)
from cdb_cli.adapters.mexc.proto.mexc_push_pb2 import PushDataV3ApiWrapper

__all__ = ["DepthUpdate", "LocalOrderBook", "OutOfSync", "parse_depth"]

Levels = tuple[tuple[Decimal, Decimal], ...]


class OutOfSync(Exception):
    """Pushes and snapshot do not line up (a gap): fetch a new snapshot (steps 3 and 6)."""


@dataclass(frozen=True, slots=True)
class DepthUpdate:
    """One ``publicAggreDepths`` push."""

    symbol: str
    from_version: int
    to_version: int
    asks: Levels
    bids: Levels
    last_order_create_time: int  # ms, 0 when not sent (2026 field)


def _levels(items: Any) -> Levels:
    return tuple(
        (positive_decimal(i.price, "price"), non_negative_decimal(i.quantity, "quantity"))
        for i in items
    )


def parse_depth(data: bytes) -> DepthUpdate:
    """The diff-depth push in ``data``; :class:`BadValue` when it is not one or is malformed."""
    wrapper = PushDataV3ApiWrapper()
    try:
        wrapper.ParseFromString(data)
    except (DecodeError, RuntimeWarning, ValueError) as e:
        raise BadValue(f"malformed protobuf: {e}") from None
    if wrapper.WhichOneof("body") != "publicAggreDepths":
        raise BadValue(f"not a diff-depth frame: {wrapper.WhichOneof('body')}")
    depth = wrapper.publicAggreDepths
    first = book_version(depth.fromVersion, "fromVersion")
    last = book_version(depth.toVersion, "toVersion")
    if not 0 < first <= last:
        raise BadValue(f"versions {first}..{last} are not a range")
    return DepthUpdate(
        wrapper.symbol,
        first,
        last,
        _levels(depth.asks),
        _levels(depth.bids),
        optional_time_ms(depth.lastOrderCreateTime, "lastOrderCreateTime"),
    )


@dataclass
class LocalOrderBook:
    """Buffer pushes until :meth:`snapshot`, then apply them in version order."""

    version: int | None = None  # None until a snapshot was taken
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    buffered: list[DepthUpdate] = field(default_factory=list)
    joined: bool = False  # a push holding the snapshot's version was applied (step 7)

    def push(self, update: DepthUpdate) -> None:
        """Buffer before the snapshot (step 1), join it (steps 5 to 7), then keep versions
        continuous (step 3; a repeated push is skipped, not a gap). Raises :class:`OutOfSync` on
        a gap; the book is then reset: buffer again and take a new snapshot."""
        if self.version is None:
            self.buffered.append(update)
        elif self.joined:
            if update.to_version <= self.version:
                return  # a duplicate of a push already applied: nothing was lost
            if update.from_version != self.version + 1:
                self._reset()
                raise OutOfSync(f"push from {update.from_version} after version {self.version}")
            self._apply(update)
        elif update.to_version < self.version:
            pass  # step 5: outdated
        elif update.from_version > self.version:
            self._reset()  # step 6: a gap between snapshot and pushes
            raise OutOfSync(f"first push from {update.from_version} after {self.version}")
        else:
            self._apply(update)  # step 7: the push that holds the snapshot's version
            self.joined = True

    def snapshot(self, last_update_id: int, bids: Levels, asks: Levels) -> None:
        """Step 2: take the REST snapshot, then the buffered pushes as they come."""
        self.bids, self.asks = dict(bids), dict(asks)
        self.version, self.joined = last_update_id, False
        buffered, self.buffered = self.buffered, []
        for update in buffered:
            self.push(update)

    def best(self) -> tuple[Decimal, Decimal] | None:
        """``(best bid, best ask)``, or None while a side is empty."""
        if not self.bids or not self.asks:
            return None
        return max(self.bids), min(self.asks)

    def _apply(self, update: DepthUpdate) -> None:
        for side, levels in ((self.asks, update.asks), (self.bids, update.bids)):
            for price, qty in levels:
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.version = update.to_version

    def _reset(self) -> None:
        self.version, self.bids, self.asks, self.buffered = None, {}, {}, []
        self.joined = False
