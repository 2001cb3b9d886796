"""The one place that keeps secrets out of output: every error path that echoes a settings value, a
URL or a ``.env`` line passes it through :func:`redact`; a store or a bus is named with
:func:`describe_url`.

What is hidden:

- the known secret values given (the MEXC keys, the SMTP password, URL passwords), wherever they
  appear, also inside another value (an unclosed quote, ``${…}`` interpolation);
- the password of every URL in the text (``scheme://user:PASSWORD@host``), also of a malformed URL;
- query parameters with a secret-looking name (``password``, ``sslpassword``, ``api_key``,
  ``token``, …);
- the value of a secret-looking assignment (``CDB_MEXC_API_SECRET=…``, ``password: …``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

__all__ = ["MASK", "describe_url", "redact", "redact_url", "url_secrets"]

MASK = "***"
# Shorter secrets are not searched for in free text (a one-letter password would mask every
# occurrence of that letter); URL passwords and secret assignments are still masked by shape.
MIN_SECRET_LENGTH = 4

_SECRET_WORDS = r"pass|pwd|secret|token|api_?key|auth|credential|private"  # noqa: S105 - names
_TOKEN = re.compile(r"[^\s'\"<>()]*@[^\s'\"<>()]*|[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*")
_QUERY_SECRET = re.compile(
    rf"(?i)([?&;][^=&#;\s]*(?:{_SECRET_WORDS})[^=&#;\s]*=)[^&#;\s'\"]*",
)
_ASSIGNMENT_SECRET = re.compile(
    rf"(?i)([A-Za-z0-9_.\-]*(?:{_SECRET_WORDS})[A-Za-z0-9_.\-]*['\"]?\s*[=:]\s*)(?!\*\*\*)[^\s'\"]+",
)


def _password_span(token: str) -> tuple[int, int] | None:
    """Where the password of ``user:password@host`` is in ``token``: after the first ``:`` of the
    user info, up to the last ``@`` (a password may hold an unencoded ``@``, ``/`` or ``?``); also
    without a well-formed ``scheme://`` (``postgresql//u:pw@h``, ``u:pw@h``)."""
    at = token.rfind("@")
    if at < 0:
        return None
    scheme_end = token.find("://", 0, at)
    start = scheme_end + 3 if scheme_end >= 0 else token.rfind("/", 0, at) + 1
    colon = token.find(":", start, at)
    if colon < 0 or any(mark in token[start:colon] for mark in "/?#"):
        return None
    return colon + 1, at


def redact_url(url: str) -> str:
    """``url`` with its password and secret query parameters as ``***``; malformed URLs too.

    ``postgresql://u:pw@h/db?sslpassword=x`` → ``postgresql://u:***@h/db?sslpassword=***``.
    """
    span = _password_span(url)
    if span is not None:
        url = f"{url[: span[0]]}{MASK}{url[span[1] :]}"
    return _QUERY_SECRET.sub(rf"\1{MASK}", url)


def url_secrets(url: str) -> list[str]:
    """The secrets in ``url`` (its password, secret query values), to pass to :func:`redact`."""
    span = _password_span(url)
    found = [url[span[0] : span[1]]] if span is not None and span[1] > span[0] else []
    for match in _QUERY_SECRET.finditer(url):
        if value := url[match.end(1) : match.end()]:
            found.append(value)
    return found


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` fit for output: the ``secrets`` given, URL passwords, secret query parameters and
    secret-looking assignments replaced by ``***``. The one redaction function of cdb."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len)[::-1]:
        text = text.replace(secret, MASK)
    text = _TOKEN.sub(lambda match: redact_url(match.group()), text)
    return _ASSIGNMENT_SECRET.sub(rf"\1{MASK}", text)


def describe_url(url: object) -> str:
    """Name a store or a bus for the operator, never with credentials: ``PostgreSQL at
    host:5432/db``, ``SQLite at /path``, ``SQLite in memory``, ``Redis at host:6379``.

    ``url`` is a URL string or a SQLAlchemy ``URL`` (whose ``str`` hides the password).
    """
    text = url if isinstance(url, str) else str(url)
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or not re.fullmatch(r"[a-z][a-z0-9+.\-]*", scheme):
        return "a malformed URL"
    if scheme.startswith("sqlite"):
        database = unquote(rest.removeprefix("/").split("?", 1)[0])
        return "SQLite in memory" if database in {"", ":memory:"} else f"SQLite at {database}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return f"a malformed {scheme} URL"
    if scheme == "unix":
        return f"Redis at {parts.path or 'a Unix socket'}"
    place = host or "localhost"
    place = f"[{place}]" if ":" in place else place  # IPv6 literals keep their brackets
    if scheme.startswith("postgres"):
        return f"PostgreSQL at {place}:{port or 5432}/{parts.path.removeprefix('/')}"
    if scheme in {"redis", "rediss"}:
        return f"Redis at {place}:{port or 6379}"
    return f"{scheme} at {place}" + (f":{port}" if port else "")
