"""The one place that keeps secrets out of output: every error path that echoes a settings value, a
URL or a ``.env`` line passes it through :func:`redact`; a store or a bus is named with
:func:`describe_url`.

What is hidden:

- the known secret values given (the MEXC keys, the SMTP password, URL passwords), wherever they
  appear, also inside another value (an unclosed quote, ``${…}`` interpolation);
- the password of every URL in the text (``scheme://user:PASSWORD@host``), also of a malformed URL;
- the token of a Slack, Discord or Telegram webhook URL (``api.telegram.org/bot***``);
- query parameters with a secret-looking name (``password``, ``sslpassword``, ``api_key``,
  ``token``, …);
- the value of a secret-looking assignment (``CDB_MEXC_API_SECRET=…``, ``password: …``), quoted
  or not;
- in what the settings echo (:func:`redact_key_shapes`): anything shaped like a MEXC key
  (``mx0`` and 8+ letters or digits, 32 lowercase hex digits), wherever a typo in ``.env`` moved it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

__all__ = [
    "MASK",
    "describe_url",
    "looks_secret",
    "mask_userinfo",
    "redact",
    "redact_key_shapes",
    "redact_url",
    "url_secrets",
    "webhook_url_secrets",
]

MASK = "***"
# Shorter secrets are not searched for in free text (a one-letter password would mask every
# occurrence of that letter); URL passwords and secret assignments are still masked by shape.
MIN_SECRET_LENGTH = 4

_SECRET_WORDS = r"pass|pwd|secret|token|api_?key|auth|credential|private"  # noqa: S105 - names
_TOKEN = re.compile(r"[^\s'\"<>()]*@[^\s'\"<>()]*|[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*")
_SECRET_NAME = re.compile(rf"(?i){_SECRET_WORDS}")
_QUERY_SECRET = re.compile(
    rf"(?i)([?&;][^=&#;\s]*(?:{_SECRET_WORDS})[^=&#;\s]*=)[^&#;\s'\"]*",
)
_ASSIGNMENT_SECRET = re.compile(
    rf"(?i)([A-Za-z0-9_.\-]*(?:{_SECRET_WORDS})[A-Za-z0-9_.\-]*['\"]?\s*[=:]\s*['\"]?)"
    r"(?!\*\*\*)[^\s'\"]+",
)
# The token of a well-known webhook URL, found by shape even when no setting names it: Telegram's
# bot<TOKEN>, a Slack incoming webhook's path, a Discord webhook's token.
_WEBHOOK_TOKENS = (
    re.compile(r"(?i)(api\.telegram\.org/bot)[^/\s'\"<>?#]+"),
    re.compile(r"(?i)(hooks\.slack\.com/services/)[^\s'\"<>?#]+"),
    re.compile(r"(?i)(discord(?:app)?\.com/api/webhooks/\d+/)[^/\s'\"<>?#]+"),
)
# An entry of CDB_WEBHOOK_URLS: FORMAT:URL, separated by commas.
_WEBHOOK_ENTRY = re.compile(r"(?:^|,)\s*[A-Za-z]+:(https?://[^,\s]+)")
_ANY_VALUE = re.compile(r"(=)(?!\*\*\*)[^&;#\s'\"]+")
# A MEXC access key (mx0 and letters/digits) or secret key (32 lowercase hex digits), not inside
# a longer run of the same kind (a SHA-256 is 64 hex digits).
_KEY_SHAPES = re.compile(
    r"mx0[A-Za-z0-9]{8,61}(?![A-Za-z0-9])|(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])",
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
    for token in _WEBHOOK_TOKENS:
        url = token.sub(rf"\1{MASK}", url)
    return _QUERY_SECRET.sub(rf"\1{MASK}", url)


def webhook_url_secrets(url: str) -> list[str]:
    """The secrets of a webhook URL, whose token is in its path or query (Slack, Discord,
    Telegram's ``bot<TOKEN>``, an ntfy topic): the URL, all that follows its host, the path and
    the query, each token-like path segment and each query value."""
    parts = urlsplit(url)
    rest = url[url.find(parts.netloc) + len(parts.netloc) :] if parts.netloc else url
    found = [url, rest, parts.path, parts.query]
    # a token has digits or is long; "services", "sendMessage" are no secrets
    found += [
        segment
        for segment in parts.path.split("/")
        if len(segment) >= 20 or (len(segment) >= 6 and any(c.isdigit() for c in segment))
    ]
    found += [value for _, _, value in (p.partition("=") for p in parts.query.split("&"))]
    return [s for s in dict.fromkeys(found) if s and s != "/"]


def url_secrets(url: str) -> list[str]:
    """The secrets in ``url`` (its password, secret query values), to pass to :func:`redact`;
    for a ``CDB_WEBHOOK_URLS`` value (``FORMAT:URL,…``), those of each webhook URL."""
    if _WEBHOOK_ENTRY.match(url):
        return [s for match in _WEBHOOK_ENTRY.finditer(url) for s in webhook_url_secrets(match[1])]
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


def looks_secret(name: str, secret_names: Iterable[str] = ()) -> bool:
    """Whether the variable ``name`` holds a secret: it has a secret word in it (``…SECRET…``,
    ``…PASSWORD…``), or it is a typo of one of ``secret_names`` (``CDB_SMTP_SSWORD``)."""
    if _SECRET_NAME.search(name):
        return True
    return bool(difflib.get_close_matches(name.upper(), list(secret_names), n=1, cutoff=0.8))


def redact_key_shapes(text: str) -> str:
    """``text`` with every MEXC-key-shaped token as ``***``: for what the settings echo (a value
    that a ``.env`` typo turned into another variable's, or into a name), not for every output
    (an event id is 32 hex digits too)."""
    return _KEY_SHAPES.sub(MASK, text)


def mask_userinfo(url: str) -> str:
    """An invalid URL setting as it is echoed, for a mangled one may hold a password anywhere: the
    user info's password as ``***``, or all of it when it has no ``:`` (``redis://PASSWORD@h``);
    without an ``@``, a "port" that is not digits (``cdb:PASSWORD.1:1/db``); and every query
    value, whatever its name (``?pad=…``)."""
    scheme_end = url.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    at = url.rfind("@")
    if at >= start:
        colon = url.find(":", start, at)
        url = f"{url[: colon + 1 if colon >= 0 else start]}{MASK}{url[at:]}"
    else:
        authority = re.match(r"[^/?#]*", url[start:])
        host, sep, port = (authority.group() if authority else "").partition(":")
        if sep and not port.isdigit():
            url = f"{url[: start + len(host) + 1]}{MASK}{url[start + len(host) + 1 + len(port) :]}"
    return _ANY_VALUE.sub(rf"\1{MASK}", url)


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
