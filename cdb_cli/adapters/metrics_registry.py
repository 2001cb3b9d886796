"""What a metrics registry exposes and the collector computed at scrape time.

:func:`exposed_names` lists every sample name a registry can expose (the deploy tests check
the alert rules and dashboards against it); :class:`FeedAges` is ``feed_age_seconds{symbol}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["FeedAges", "exposed_names"]

_SUFFIXES: Final = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


def exposed_names(registry: CollectorRegistry) -> frozenset[str]:
    """Every sample name ``registry`` can expose, with or without samples yet.

    A labelled metric has no sample before its first label set is used, so the names come from
    the metric families and their types: a counter ``trades`` → ``trades_total`` and
    ``trades_created``; a histogram → ``_bucket``, ``_sum``, ``_count``, ``_created``.
    """
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return frozenset(names)


class FeedAges(Collector):
    """``feed_age_seconds{symbol}``: seconds since data of each symbol last arrived."""

    def __init__(self, clock: Callable[[], float], symbols: Iterable[str]) -> None:
        self._clock = clock
        start = clock()
        self.last_seen: dict[str, float] = dict.fromkeys(symbols, start)

    def ages(self) -> dict[str, float]:
        now = self._clock()
        return {symbol: max(0.0, now - seen) for symbol, seen in sorted(self.last_seen.items())}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "feed_age_seconds",
            "Seconds since market data of the symbol last arrived.",
            labels=["symbol"],
        )
        for symbol, age in self.ages().items():
            family.add_metric([symbol], age)
        yield family
