"""Request signing (mexc_api.md §1.2): lowercase hex HMAC-SHA256 over query string + body.

The secret lives in :class:`Credentials`, whose ``repr`` and ``str`` show only the masked key, so
it cannot leak through a log line, an error message or a traceback that prints locals.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from urllib.parse import quote

__all__ = ["Credentials", "encode_params", "mask_key", "sign"]

# Values we send are restricted to this set (mexc_api.md §1.2: no percent-encoding ambiguity).
_SAFE = "-._~"
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")  # an HMAC-SHA256 in hex


def sign(secret: str, total_params: str) -> str:
    """``hex(HMAC_SHA256(secret, totalParams))`` in lowercase, exactly as MEXC checks it."""
    return hmac.new(secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()


def encode_params(params: Iterable[tuple[str, str]]) -> str:
    """``k=v&k=v`` in the given order; reserved characters percent-encoded with uppercase hex."""
    return "&".join(f"{quote(k, safe=_SAFE)}={quote(v, safe=_SAFE)}" for k, v in params)


def mask_key(api_key: str) -> str:
    """``mx0aBYs33eIilxBWC5`` → ``mx0a…WC5``: enough to tell keys apart, not enough to use one."""
    if len(api_key) <= 8:
        return "*" * len(api_key)
    return f"{api_key[:4]}…{api_key[-3:]}"


class Credentials:
    """An API key and secret. Prints as ``Credentials(api_key='mx0a…WC5')``; the secret never."""

    __slots__ = ("_api_key", "_secret")

    def __init__(self, api_key: str, secret: str) -> None:
        if not api_key or not secret:
            raise ValueError("API key and secret must both be non-empty")
        self._api_key = api_key
        self._secret = secret

    @property
    def api_key(self) -> str:
        """The access key for the ``X-MEXC-APIKEY`` header (not secret; masked in output)."""
        return self._api_key

    @property
    def api_key_masked(self) -> str:
        """The key for display."""
        return mask_key(self._api_key)

    def sign(self, total_params: str) -> str:
        """Sign ``totalParams`` with the secret."""
        return sign(self._secret, total_params)

    def redact(self, text: str) -> str:
        """``text`` with the key masked and the secret and any signature-like hex run removed."""
        text = text.replace(self._api_key, self.api_key_masked).replace(self._secret, "***")
        return _SIGNATURE.sub("***", text)

    def __repr__(self) -> str:
        return f"Credentials(api_key={self.api_key_masked!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Credentials cannot be pickled")
