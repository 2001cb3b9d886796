"""listenKeys of the user data stream (mexc_api.md §4.7): 60 min validity, ≤ 60 per account."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from cdb_cli.adapters.mexc.sim.auth import ApiError

__all__ = ["ListenKeys"]

VALIDITY_MS = 60 * 60_000
MAX_PER_ACCOUNT = 60


def _unknown() -> ApiError:
    # UNCERTAIN: MEXC documents no code for an unknown listenKey; this is Binance's, whose codes
    # MEXC inherits elsewhere (-2011, -1121).
    return ApiError(-1125, "This listenKey does not exist.")


class ListenKeys:
    """Keys by owner (API key), each valid until its expiry; PUT extends it by 60 minutes."""

    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self.clock_ms = clock_ms
        self._keys: dict[str, tuple[str, int]] = {}  # listenKey → (api key, expires ms)

    def _expire(self) -> None:
        now = self.clock_ms()
        for key in [k for k, (_, expires) in self._keys.items() if expires <= now]:
            del self._keys[key]

    def create(self, api_key: str) -> str:
        self._expire()
        if len(self.valid(api_key)) >= MAX_PER_ACCOUNT:
            raise ApiError(30029, "Cannot exceed the maximum order limit")  # UNCERTAIN code
        key = secrets.token_hex(32)
        self._keys[key] = (api_key, self.clock_ms() + VALIDITY_MS)
        return key

    def extend(self, api_key: str, key: str | None) -> str:
        self._expire()
        if not key or self._keys.get(key, ("", 0))[0] != api_key:
            raise _unknown()
        self._keys[key] = (api_key, self.clock_ms() + VALIDITY_MS)
        return key

    def close(self, api_key: str, key: str | None) -> str:
        self._expire()
        if not key or self._keys.get(key, ("", 0))[0] != api_key:
            raise _unknown()
        del self._keys[key]
        return key

    def valid(self, api_key: str) -> list[str]:
        self._expire()
        return [k for k, (owner, _) in self._keys.items() if owner == api_key]

    def owner(self, key: str) -> str | None:
        """The API key a valid listenKey belongs to."""
        self._expire()
        found = self._keys.get(key)
        return found[0] if found else None
