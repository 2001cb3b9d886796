"""Depth versions of one simulated book, as MEXC's diff-depth channel and REST snapshot share them.

MEXC's documented local-order-book procedure (spot v3 docs, "How to Properly Maintain a Local
Copy of the Order Book"): a client buffers ``spot@public.aggre.depth.v3.api.pb`` pushes, reads
``GET /api/v3/depth`` (its ``lastUpdateId`` is the book's version), drops pushes whose
``toVersion`` is below it, applies the first push whose ``[fromVersion, toVersion]`` holds it, and
then needs every push's ``fromVersion`` to be the previous ``toVersion + 1``. Quantities are
absolute; ``"0"`` removes a level.

:class:`DepthJournal` gives the synthetic book (:class:`~.orders.Book`, computed from the price)
such versions: it remembers the book as last published, and each :meth:`~DepthJournal.sync`
turns the differences into a new version. A REST snapshot always takes a fresh version, so the next
push starts at or before it (the procedure's step 7 holds, never its "data missing" case).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from cdb_cli.adapters.mexc.sim.orders import Book

__all__ = ["SIDES", "DepthDiff", "DepthJournal"]

SIDES = ("asks", "bids")
ZERO = Decimal(0)
FIRST_VERSION = 10_000_000_000  # MEXC's versions are 11-digit numbers; any start works


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """One push: versions ``from_version..to_version`` and the levels they changed (0: removed)."""

    from_version: int
    to_version: int
    asks: tuple[tuple[Decimal, Decimal], ...]
    bids: tuple[tuple[Decimal, Decimal], ...]


@dataclass
class DepthJournal:
    """The published state and version of one book; pending changes not yet pushed."""

    version: int = FIRST_VERSION
    published: dict[str, dict[Decimal, Decimal]] = field(
        default_factory=lambda: {side: {} for side in SIDES}
    )
    _pending_from: int | None = None
    _pending: dict[str, dict[Decimal, Decimal]] = field(
        default_factory=lambda: {side: {} for side in SIDES}
    )

    def sync(self, book: Book, *, force: bool = False) -> int:
        """Record the book's changes since the last sync as a new version (or a new version anyway
        when ``force``); return the current version."""
        changed = False
        for side in SIDES:
            now = dict(book.side_levels(side))
            before = self.published[side]
            for price in before.keys() - now.keys():
                self._pending[side][price] = ZERO
                changed = True
            for price, qty in now.items():
                if before.get(price) != qty:
                    self._pending[side][price] = qty
                    changed = True
            self.published[side] = now
        if changed or force:
            self.version += 1
            if self._pending_from is None:
                self._pending_from = self.version
        return self.version

    def snapshot(
        self, book: Book, limit: int
    ) -> tuple[int, dict[str, list[tuple[Decimal, Decimal]]]]:
        """``(lastUpdateId, {"bids": …, "asks": …})`` best first, for ``GET /api/v3/depth``."""
        version = self.sync(book, force=True)
        levels = {
            "bids": sorted(self.published["bids"].items(), reverse=True)[:limit],
            "asks": sorted(self.published["asks"].items())[:limit],
        }
        return version, levels

    def take(self, book: Book) -> DepthDiff | None:
        """The push of all versions since the last one (None when there is none)."""
        self.sync(book)
        if self._pending_from is None:
            return None
        diff = DepthDiff(
            self._pending_from,
            self.version,
            tuple(sorted(self._pending["asks"].items())),
            tuple(sorted(self._pending["bids"].items(), reverse=True)),
        )
        self._pending_from = None
        self._pending = {side: {} for side in SIDES}
        return diff
