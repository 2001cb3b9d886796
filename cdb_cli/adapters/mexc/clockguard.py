"""Whether our signed requests can be valid: the clock offset and MEXC's timestamp refusals. Pure.

MEXC refuses a request whose timestamp is off by more than recvWindow, and :class:`MexcHttpClient`
compensates a measured offset; but a local clock further off MEXC's than ``max_skew_ms`` (the
client's default: the REST client's recvWindow) is taken as broken (it also stamps every event and
drives the stale-data and daily rules), and so is any signed request still refused for its
timestamp (``700003``/``10073``) after the REST client's own re-sync. While either holds,
:attr:`ClockGuard.ok` is False and the execution client places nothing; it turns True again once
an offset measured is sane and a signed request succeeds.

The execution client does the requests; this guard only reads their outcomes:
:meth:`ClockGuard.offset_measured` after ``/api/v3/time``, :meth:`ClockGuard.refused` for a refusal,
:meth:`ClockGuard.signed` for a signed request answered.
"""

from __future__ import annotations

import logging
from collections import Counter

from cdb_cli.adapters.mexc.errors import CODE_TIMESTAMP
from cdb_cli.engine.errors import CdbError, VenueRejected

__all__ = ["ClockGuard"]

logger = logging.getLogger(__name__)


class ClockGuard:
    """The two reasons signing can be broken (clock, timestamps) and the log when ``ok`` flips."""

    def __init__(self, max_skew_ms: int | None, counters: Counter[str]) -> None:
        self.max_skew_ms = max_skew_ms
        self.counters = counters
        self._clock_problem: str | None = None
        self._timestamp_problem: str | None = None

    @property
    def ok(self) -> bool:
        """False while our requests cannot be signed validly."""
        return self._clock_problem is None and self._timestamp_problem is None

    @property
    def problem(self) -> str | None:
        """Why :attr:`ok` is False, for the operator; None when it is True."""
        return self._clock_problem or self._timestamp_problem

    def offset_measured(self, offset_ms: int) -> bool:
        """Judge MEXC's clock minus ours; True when a signed request should probe timestamps.

        Beyond ``max_skew_ms`` the clock is broken. Within it, a timestamp refusal seen before
        stays until a signed request succeeds: the caller sends one and reports the outcome.
        """
        bound = self.max_skew_ms
        if bound is not None and abs(offset_ms) > bound:
            ahead = "ahead of" if offset_ms > 0 else "behind"
            self._set(
                clock=f"MEXC's clock is {abs(offset_ms)} ms {ahead} ours, more than {bound} ms "
                "(recvWindow): fix the host's time (NTP)"
            )
            return False
        self._set(clock=None)
        return self._timestamp_problem is not None

    def refused(self, error: CdbError) -> None:
        """A signed request failed: a timestamp refusal means signing is broken."""
        if isinstance(error, VenueRejected) and error.code in CODE_TIMESTAMP:
            self._set(timestamp=error.message)

    def signed(self) -> None:
        """A signed request was answered: its timestamp was accepted."""
        if self._timestamp_problem is not None:
            self._set(timestamp=None)

    def _set(self, *, clock: str | None = "", timestamp: str | None = "") -> None:
        """Change either problem ("" leaves it as is) and log when ``ok`` flips."""
        before = self.ok
        if clock != "":
            self._clock_problem = clock
        if timestamp != "":
            self._timestamp_problem = timestamp
        if before and not self.ok:
            self.counters["signing_lost"] += 1
            logger.error("MEXC: cannot sign requests validly (%s); placing nothing", self.problem)
        elif not before and self.ok:
            logger.warning("MEXC: requests are signed validly again; placing resumes")
