"""MEXC answers → cdb's error tree (mexc_api.md §1.1, §3). One function decides; nothing else maps.

=================================================  ==========================================
MEXC answer                                        cdb error
=================================================  ==========================================
HTTP 429 / 418, or body code 429                   RateLimited (``retry_after`` from Retry-After)
HTTP 403 (WAF limit)                               RateLimited
HTTP 5xx, HTML page, empty / non-JSON 2xx body     VenueServerError: the outcome is UNKNOWN
2xx JSON of the wrong shape (:func:`read_answer`)   MalformedAnswer, a VenueServerError: UNKNOWN
body code 700002 / 602 (signature)                 VenueRejected, hint at CDB_MEXC_API_SECRET
body code 10072 / 700001 / 400 (key)               VenueRejected, hint at CDB_MEXC_API_KEY
body code 700003 / 10073 (timestamp)               VenueRejected; the client re-syncs and retries
body code 30004 / 10101 (funds)                    VenueRejected "insufficient balance"
body code -2011 / -2013 (unknown order)            VenueRejected; ``CODE_UNKNOWN_ORDER``
body code 30051 / 30019 / 30018 / 30041            VenueRejected; ``CODE_MARKET_DISABLED``: the
                                                   execution client sends a MARKET order again
                                                   as LIMIT
body code 10007 (symbol not tradable over the API) VenueRejected, hint at defaultSymbols
other 4xx / code                                   VenueRejected with MEXC's code and message
=================================================  ==========================================

"Wrong shape" is anything the endpoint's parser cannot read: a missing field, a wrong type, a
non-numeric string, a number out of range, deep nesting, non-UTF-8 or non-JSON bytes. Messages
name the request (``GET /api/v3/ticker/bookTicker``) and the problem, never the query string (it
carries the signature) nor more than a short excerpt of what MEXC sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cdb_cli.engine.errors import (
    CdbError,
    MalformedEvent,
    RateLimited,
    VenueRejected,
    VenueServerError,
)

__all__ = [
    "CODE_BAD_KEY",
    "CODE_INSUFFICIENT",
    "CODE_MARKET_DISABLED",
    "CODE_NOT_API_TRADABLE",
    "CODE_SIGNATURE",
    "CODE_TIMESTAMP",
    "CODE_UNKNOWN_ORDER",
    "MalformedAnswer",
    "decode_json",
    "error_for_response",
    "parse_retry_after",
    "read_answer",
]

T = TypeVar("T")

CODE_SIGNATURE = frozenset({700002, 602})
CODE_BAD_KEY = frozenset({10072, 700001, 400})
CODE_TIMESTAMP = frozenset({700003, 10073})
CODE_INSUFFICIENT = frozenset({30004, 10101})
CODE_UNKNOWN_ORDER = frozenset({-2011, -2013})  # documented -2011; -2013 seen in the wild
CODE_MARKET_DISABLED = frozenset({30018, 30019, 30041, 30051})
"""A MARKET order refused for its type: documented 30018 "market order is disabled", 30019 "api
market order is disabled", 30041 "current order type can not place order"; 30051 "api market
order is disabled" is what MEXC sent live (hummingbot #6932, 2024-03)."""
CODE_NOT_API_TRADABLE = 10007  # "bad symbol" (EN docs) / the symbol does not support API trading
_MAX_SHOWN = 120
_NOT_JSON: Any = object()


class MalformedAnswer(VenueServerError):
    """MEXC answered 2xx with a body of the wrong shape; like a 5xx, the outcome is unknown."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (MEXC sends seconds); None when absent or odd."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text[:_MAX_SHOWN] + ("…" if len(text) > _MAX_SHOWN else "")


def _snippet(body: bytes) -> str:
    return _one_line(body[: _MAX_SHOWN * 4].decode("utf-8", "replace"))


def _looks_like_html(body: bytes) -> bool:
    head = body.lstrip()[:64].lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<"))


def decode_json(body: bytes) -> Any:
    """The JSON value of ``body``; a private sentinel when it is not JSON (invalid, non-UTF-8,
    numbers with over 4300 digits, nesting too deep for the parser)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return _NOT_JSON


def _parse(body: bytes) -> Any:
    parsed = decode_json(body)
    return None if parsed is _NOT_JSON else parsed


def _business_error(where: str, code: int, raw_msg: object) -> CdbError:
    msg = _one_line(str(raw_msg)) if isinstance(raw_msg, str | int | float) else "(no message)"
    if code == 429:
        return RateLimited(f"MEXC rate limit on {where}: {msg}")
    if code in CODE_SIGNATURE:
        return VenueRejected(
            f"MEXC rejected the signature on {where} ({code} {msg}): check CDB_MEXC_API_SECRET",
            code=code,
        )
    if code in CODE_BAD_KEY:
        return VenueRejected(
            f"MEXC rejected the API key on {where} ({code} {msg}): check CDB_MEXC_API_KEY",
            code=code,
        )
    if code in CODE_TIMESTAMP:
        return VenueRejected(
            f"MEXC rejected the timestamp on {where} ({code} {msg}): clock out of recvWindow",
            code=code,
        )
    if code == CODE_NOT_API_TRADABLE:
        return VenueRejected(
            f"MEXC rejected {where}: {code} {msg} (the symbol is not tradable over the API: "
            "see /api/v3/defaultSymbols)",
            code=code,
        )
    if code in CODE_INSUFFICIENT:
        return VenueRejected(f"MEXC: insufficient balance on {where} ({code} {msg})", code=code)
    return VenueRejected(f"MEXC rejected {where}: {code} {msg}", code=code)


def error_for_response(
    status: int, body: bytes, headers: Mapping[str, str], *, where: str
) -> CdbError | None:
    """The error an HTTP answer means, or None when it is a usable success.

    ``where`` names the request for the message (``POST /api/v3/order``); never the query string,
    which carries the signature.
    """
    if status in (418, 429):
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RateLimited(
            f"MEXC rate limit on {where} (HTTP {status}); retry after {retry_after or '?'} s",
            retry_after=retry_after,
        )
    parsed = _parse(body)
    if status >= 500:
        detail = "an HTML error page" if _looks_like_html(body) else repr(_snippet(body))
        return VenueServerError(
            f"MEXC server error on {where} (HTTP {status}, {detail}); the outcome is unknown",
            code=status,
        )
    if status == 403 and not isinstance(parsed, dict):
        return RateLimited(f"MEXC refused {where} (HTTP 403, WAF limit)", retry_after=None)
    if 200 <= status < 300:
        if not body.strip():
            return VenueServerError(
                f"MEXC answered {where} with HTTP {status} and an empty body; outcome unknown"
            )
        if parsed is None:
            kind = "an HTML page" if _looks_like_html(body) else f"non-JSON {_snippet(body)!r}"
            return VenueServerError(
                f"MEXC answered {where} with HTTP {status} and {kind}; outcome unknown"
            )
        if isinstance(parsed, dict) and "code" in parsed and "msg" in parsed:
            code = parsed.get("code")
            if isinstance(code, int) and code not in (0, 200):
                return _business_error(where, code, parsed.get("msg"))
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("code"), int):
        return _business_error(where, parsed["code"], parsed.get("msg", ""))
    kind = "an HTML page" if _looks_like_html(body) else repr(_snippet(body))
    return VenueRejected(f"MEXC rejected {where} with HTTP {status} and {kind}", code=status)


def read_answer(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    where: str,
    parse: Callable[[Any], T],
) -> T:
    """What a MEXC answer says, through ``parse`` (the endpoint's reader of the decoded JSON).

    Raises the error the answer means (:func:`error_for_response`), or :class:`MalformedAnswer`
    when ``parse`` finds the body of the wrong shape (it raises ``MalformedEvent``, nothing else).
    """
    error = error_for_response(status, body, headers, where=where)
    if error is not None:
        raise error
    try:
        return parse(decode_json(body))
    except MalformedEvent as e:
        problem = e.message.removeprefix("MEXC ")
        raise MalformedAnswer(
            f"MEXC answered {where} with a malformed body ({problem}); the outcome is unknown"
        ) from None
