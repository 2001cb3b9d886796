"""The simulator's request authentication, as MEXC does it (mexc_api.md §1.2, §1.3, §6)."""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qsl

from cdb_cli.adapters.mexc.signing import sign

__all__ = ["ApiError", "check_signed", "parse_params"]

MAX_RECV_WINDOW = 60_000


class ApiError(Exception):
    """An error answer ``{"code": code, "msg": msg}`` with HTTP ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status


def _without_signature(raw: str) -> tuple[str, str | None]:
    kept, signature = [], None
    for pair in raw.split("&") if raw else []:
        if pair.startswith("signature="):
            signature = pair.removeprefix("signature=")
        else:
            kept.append(pair)
    return "&".join(kept), signature


def parse_params(query: str, body: str) -> dict[str, str]:
    """Parameters from the query string and a form-style or JSON body; the query wins."""
    params: dict[str, str] = {}
    stripped = body.strip()
    if stripped.startswith("{"):
        try:
            decoded = json.loads(stripped)
        except ValueError:
            raise ApiError(700008, "Illegal characters found in parameter") from None
        if isinstance(decoded, dict):
            params.update({str(k): str(v) for k, v in decoded.items()})
    elif stripped:
        params.update(parse_qsl(stripped, keep_blank_values=True))
    params.update(parse_qsl(query, keep_blank_values=True))
    return params


def check_signed(
    *,
    secret: str,
    query: str,
    body: str,
    params: dict[str, str],
    server_ms: int,
) -> None:
    """Raise :class:`ApiError` exactly as MEXC would for a bad recvWindow, time or signature.

    ``totalParams`` = the raw query without its ``signature`` pair, directly followed by the raw
    body without its ``signature`` pair (mexc_api.md §1.2, fake-server rule).
    """
    recv_window_text = params.get("recvWindow", "5000")
    timestamp_text = params.get("timestamp")
    if not recv_window_text.isdigit():
        raise ApiError(33333, "param is error")
    recv_window = int(recv_window_text)
    if recv_window > MAX_RECV_WINDOW:
        raise ApiError(700005, "recvWindow must less than 60000")
    if timestamp_text is None or not timestamp_text.isdigit():
        raise ApiError(44444, "param cannot be null")
    timestamp = int(timestamp_text)
    if not (timestamp < server_ms + 1000 and server_ms - timestamp <= recv_window):
        raise ApiError(700003, "Timestamp for this request is outside of the recvWindow.")
    query_part, query_signature = _without_signature(query)
    body_part, body_signature = _without_signature(
        body if not body.lstrip().startswith("{") else ""
    )
    if body.lstrip().startswith("{"):
        body_part = body
    given = query_signature or body_signature or ""
    expected = sign(secret, query_part + body_part)
    if not hmac.compare_digest(given.lower().encode(), expected.encode()) or given != given.lower():
        raise ApiError(700002, "Signature for this request is not valid.")
