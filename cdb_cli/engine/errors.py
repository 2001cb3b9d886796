"""The one exception tree of cdb. Every class says who must act.

::

    CdbError                     base of everything cdb raises on purpose
    ├── ConfigurationError       the operator must fix settings / .env; exit 3
    ├── DependencyError          a service we need (database, Redis, MEXC) is unreachable; exit 1
    │   └── TransientError       retrying may help (timeouts, 5xx, dropped connection)
    │       └── RateLimited      the venue asked us to slow down; honour ``retry_after``
    ├── VenueError               the venue answered with an error payload
    │   ├── VenueRejected        the venue refused the request (bad order, funds); do not retry
    │   └── VenueServerError     the venue failed (5xx); the outcome may be unknown
    ├── MalformedEvent           an event or frame could not be decoded; the sender must fix it
    ├── SchemaOutOfDate          the database schema is behind the code; run ``cdb db upgrade``
    ├── CheckFailed              a health or consistency check failed; exit 4
    └── StateError               a persistence or reconciliation invariant broke; fail fast

Adapters translate library errors (httpx, redis, SQLAlchemy) into this tree with
``raise … from e``; engine code never sees a library exception. Messages never contain secrets.
"""

from __future__ import annotations

__all__ = [
    "CdbError",
    "CheckFailed",
    "ConfigurationError",
    "DependencyError",
    "MalformedEvent",
    "RateLimited",
    "SchemaOutOfDate",
    "StateError",
    "TransientError",
    "VenueError",
    "VenueRejected",
    "VenueServerError",
]


class CdbError(Exception):
    """Base class of every error cdb raises on purpose; its message is one line for the operator."""

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[str] = list(details or [])


class ConfigurationError(CdbError):
    """Settings or ``.env`` are invalid. The operator must fix the configuration."""


class DependencyError(CdbError):
    """A service cdb needs cannot be reached. The operator must start or point at it."""


class TransientError(DependencyError):
    """A temporary failure; the caller may retry with backoff."""


class RateLimited(TransientError):
    """The venue rate-limited us; wait ``retry_after`` seconds before the next request."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class VenueError(CdbError):
    """The venue answered with an error payload; ``code`` is the venue's own error code."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class VenueRejected(VenueError):
    """The venue refused the request (bad parameters, insufficient funds). Do not retry as is."""


class VenueServerError(VenueError):
    """The venue failed internally; the outcome of the request is unknown until queried."""


class MalformedEvent(CdbError):
    """An event, message or frame could not be decoded. The producer must be fixed."""


class SchemaOutOfDate(CdbError):
    """The database schema is not at the code's revision. The operator runs ``cdb db upgrade``."""


class CheckFailed(CdbError):
    """A health or consistency check failed; the operator reads the report."""


class StateError(CdbError):
    """A persistence or reconciliation invariant is broken. Stop and investigate; never guess."""
