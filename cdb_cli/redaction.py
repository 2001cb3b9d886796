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
from urllib.parse import urlsplit

__all__ = ["MASK", "describe_url", "redact", "redact_url", "url_secrets"]

MASK = "***"
# Shorter secrets are not searched for in free text (a one-letter password would mask every
# occurrence of that letter); URL passwords and secret assignments are still masked by shape.
MIN_SECRET_LENGTH = 4

_SECRET_WORDS = r"pass|pwd|secret|token|api_?key|auth|credential|private"  # noqa: S105 - names
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*")
_QUERY_SECRET = re.compile(
    rf"(?i)([?&;][^=&#;\s]*(?:{_SECRET_WORDS})[^=&#;\s]*=)[^&#;\s'\"]*",
)
_ASSIGNMENT_SECRET = re.compile(
    rf"(?i)([A-Za-z0-9_.\-]*(?:{_SECRET_WORDS})[A-Za-z0-9_.\-]*['\"]?\s*[=:]\s*)(?!\*\*\*)[^\s'\"]+",
)


def redact_url(url: str) -> str:
    """``url`` with its password and secret query parameters as ``***``; malformed URLs too.

    ``postgresql://u:pw@h/db?sslpassword=x`` → ``postgresql://u:***@h/db?sslpassword=***``.
    """
    head, sep, rest = url.partition("://")
    if not sep:
        return _QUERY_SECRET.sub(rf"\1{MASK}", url)
    at = rest.rfind(
        "@"
    )  # a password may hold an unencoded '@', '/' or '?': mask up to the last '@'
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        if colon and not any(mark in user for mark in "/?#"):
            rest = f"{user}:{MASK}{rest[at:]}"
    return head + sep + _QUERY_SECRET.sub(rf"\1{MASK}", rest)


def url_secrets(url: str) -> list[str]:
    """The secrets in ``url`` (its password, secret query values), to pass to :func:`redact`."""
    found: list[str] = []
    _head, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if sep and at >= 0:
        user, colon, password = rest[:at].partition(":")
        if colon and password and not any(mark in user for mark in "/?#"):
            found.append(password)
    for match in _QUERY_SECRET.finditer(url):
        value = url[match.end(1) : match.end()]
        if value:
            found.append(value)
    return found


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` fit for output: the ``secrets`` given, URL passwords, secret query parameters and
    secret-looking assignments replaced by ``***``. The one redaction function of cdb."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len)[::-1]:
        text = text.replace(secret, MASK)
    text = _URL.sub(lambda match: redact_url(match.group()), text)
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
        database = rest.removeprefix("/").split("?", 1)[0]
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
