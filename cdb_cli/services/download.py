"""``cdb data download`` as a service: MEXC klines into replay files or the store, resuming.

The MEXC REST client and the store come from the kernel; this module picks the destination
(``SYMBOL-INTERVAL.json`` files or closed ``Bar`` events in ``CDB_DATABASE_URL``), downloads
symbol after symbol and counts what the source could not serve against the closed candles of
the range. The command parses the options, shows the progress and renders what comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

    from cdb_cli.engine.ports.store import Store
    from cdb_cli.settings import Settings

__all__ = ["DownloadRequest", "Downloaded", "KlineDownload", "kline_interval", "shortfalls"]

Progress = Callable[[int, int], None]
"""``progress(done, total)`` in candles, after every page."""


def kline_interval(name: str) -> str:
    """The interval's canonical name from any of its names (``60m`` → ``1h``); ``ValueError``
    naming the known ones when the venue has no such interval."""
    from cdb_cli.adapters.mexc.intervals import interval

    return interval(name).name


@dataclass(frozen=True)
class DownloadRequest:
    """What the operator asked for (options already parsed)."""

    symbols: Sequence[str]
    interval: str
    """A canonical name (:func:`kline_interval`)."""
    start_ms: int
    end_ms: int
    """Exclusive."""
    out: Path
    """The folder of the replay files (unused with ``to_store``)."""
    to_store: bool = False


@dataclass(frozen=True)
class Downloaded:
    """One symbol's download: where it went, how much is there, how much is missing."""

    symbol: str
    path: str
    """The replay file, or the store's URL (its password redacted)."""
    rows: int
    new_rows: int
    resumed: bool
    expected_rows: int
    """The closed candles of the range (those the source should serve)."""

    @property
    def missing_rows(self) -> int:
        return max(0, self.expected_rows - self.rows)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "new_rows": self.new_rows,
            "resumed": self.resumed,
            "expected_rows": self.expected_rows,
            "missing_rows": self.missing_rows,
        }


def shortfalls(results: Sequence[Downloaded], interval: str) -> list[str]:
    """One line per symbol that came back short, naming how much is missing."""
    return [
        f"{item.symbol}: {item.missing_rows} of {item.expected_rows} closed {interval} candles "
        f"missing (got {item.rows})"
        for item in results
        if item.missing_rows
    ]


class KlineDownload:
    """One ``cdb data download``: open it (``with``), then :meth:`run` it.

    Opening opens the store (created at the current schema when new) for ``to_store``, and
    counts the closed candles expected by now; closing closes the store.
    """

    def __init__(self, settings: Settings, request: DownloadRequest) -> None:
        self.settings = settings
        self.request = request
        self._store: Store | None = None
        self.expected_rows = 0

    def __enter__(self) -> KlineDownload:
        from cdb_cli.adapters.mexc.coverage import expected_candles
        from cdb_cli.kernel import open_store

        request = self.request
        if request.to_store:
            self._store = open_store(self.settings, create_if_new=True)
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        self.expected_rows = expected_candles(
            request.interval, request.start_ms, request.end_ms, now_ms
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    async def run(self, started: Callable[[str], Progress]) -> list[Downloaded]:
        """Download every symbol in turn; ``started(symbol)`` gives that symbol's progress."""
        from cdb_cli.adapters.mexc.download import download_klines, download_to_store
        from cdb_cli.kernel import mexc_http_client
        from cdb_cli.redaction import redact_url

        request = self.request
        results = []
        async with mexc_http_client(self.settings) as client:
            for symbol in request.symbols:
                progress = started(symbol)
                if self._store is not None:
                    result = await download_to_store(
                        client,
                        self._store,
                        symbol,
                        request.interval,
                        request.start_ms,
                        request.end_ms,
                        progress=progress,
                    )
                    where = redact_url(self.settings.database_url)
                else:
                    path = request.out / f"{symbol}-{request.interval}.json"
                    result = await download_klines(
                        client,
                        symbol,
                        request.interval,
                        request.start_ms,
                        request.end_ms,
                        path,
                        progress=progress,
                    )
                    where = str(result.path)
                results.append(
                    Downloaded(
                        symbol=symbol,
                        path=where,
                        rows=result.rows,
                        new_rows=result.new_rows,
                        resumed=result.resumed_from_ms is not None,
                        expected_rows=self.expected_rows,
                    )
                )
        return results
