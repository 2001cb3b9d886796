"""Alerts as HTTP POSTs to chat services and plain JSON receivers (``CDB_WEBHOOK_URLS``).

The setting is a comma-separated list of ``FORMAT:URL`` entries; FORMAT picks the body:

=============  ==============================================================================
format         what is POSTed to URL
=============  ==============================================================================
slack          ``{"text": "*title*\\ntext"}`` (a Slack incoming webhook)
mattermost     ``{"text": "**title**\\ntext"}`` (a Mattermost incoming webhook)
discord        ``{"content": "**title**\\ntext", "allowed_mentions": {"parse": []}}``, ≤ 2000
               characters (a Discord webhook)
telegram       ``{"chat_id": …, "text": "title\\n\\ntext"}`` ≤ 4096 characters, to the URL
               ``https://api.telegram.org/bot<TOKEN>/sendMessage?chat_id=<CHAT>`` without its
               query (the Bot API's ``sendMessage``)
ntfy           the text as the body, with the headers ``Title``, ``Priority`` and ``Tags`` (ntfy's
               publish by POST to ``https://ntfy.sh/<topic>``)
json           ``{"source": "cdb", "event", "severity", "title", "text", "ts", "run_id",
               "symbol", "host"}`` (:meth:`Notice.as_json`)
=============  ==============================================================================

Every URL is a secret (a token or a topic is in its path or query): messages name a target by
its format, position and host only (``discord #2 (discord.com)``). A POST that fails with a
connection error, a timeout, 429 or a 5xx is tried again after a growing pause, at most
``attempts`` times; any other answer is final. Sending blocks; :mod:`.fanout` does it on a thread.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlsplit, urlunsplit

from cdb_cli.engine.errors import DependencyError, TransientError
from cdb_cli.redaction import webhook_url_secrets

__all__ = [
    "FORMATS",
    "Notice",
    "Severity",
    "WebhookChannel",
    "WebhookTarget",
    "classify",
    "parse_webhook_urls",
    "webhook_secrets",
]

logger = logging.getLogger(__name__)

FORMATS: Final = ("slack", "mattermost", "discord", "telegram", "ntfy", "json")
Severity = Literal["info", "warning", "error", "critical"]
TIMEOUT_S: Final = 5.0
ATTEMPTS: Final = 3
BACKOFF_S: Final = 1.0  # pauses of 1 s, 2 s, … between attempts
DISCORD_LIMIT: Final = 2000
TELEGRAM_LIMIT: Final = 4096
_ENTRY_START = re.compile(r",\s*(?=[A-Za-z]+:)")


@dataclass(frozen=True)
class WebhookTarget:
    """One entry of ``CDB_WEBHOOK_URLS``: its format, its URL (a secret) and its place."""

    format: str
    url: str = field(repr=False)
    position: int = 1

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "?"

    @property
    def label(self) -> str:
        """``slack #1 (hooks.slack.com)``: how messages name it; never its path or query."""
        return f"{self.format} #{self.position} ({self.host})"

    def secrets(self) -> list[str]:
        """The parts of the URL that must not be printed (its token or topic)."""
        return webhook_url_secrets(self.url)


def parse_webhook_urls(value: str) -> list[WebhookTarget]:
    """The targets of ``CDB_WEBHOOK_URLS`` (``FORMAT:URL,FORMAT:URL…``); empty for ``""``.

    Raises
    ------
    ValueError
        One line naming the entry by position (and format), never its URL.
    """
    targets = []
    entries = [entry.strip() for entry in _ENTRY_START.split(value.strip()) if entry.strip()]
    for position, entry in enumerate(entries, start=1):
        name, sep, url = entry.partition(":")
        name = name.strip().lower()
        where = f"entry {position}"
        if not sep or name not in FORMATS:
            shown = f" {name!r}" if sep and name.isalnum() and len(name) <= 12 else ""
            raise ValueError(
                f"{where}: unknown format{shown}; write FORMAT:URL with FORMAT one of "
                f"{', '.join(FORMATS)}"
            )
        parts = urlsplit(url.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"{where} ({name}): the URL after '{name}:' must be http(s)://HOST/…")
        if name == "telegram":
            if not parts.path.endswith("/sendMessage"):
                raise ValueError(
                    f"{where} (telegram): the URL must be "
                    "https://api.telegram.org/bot<TOKEN>/sendMessage?chat_id=<CHAT>"
                )
            if not parse_qs(parts.query).get("chat_id"):
                raise ValueError(f"{where} (telegram): the URL needs ?chat_id=<CHAT>")
        if name == "ntfy" and parts.path.strip("/") == "":
            raise ValueError(f"{where} (ntfy): the URL needs a topic: https://ntfy.sh/<topic>")
        targets.append(WebhookTarget(name, url.strip(), position))
    return targets


def webhook_secrets(value: str) -> list[str]:
    """The secrets in a ``CDB_WEBHOOK_URLS`` value (each URL, its path and query), for
    :func:`~cdb_cli.redaction.redact`; what cannot be parsed is a secret as a whole."""
    try:
        targets = parse_webhook_urls(value)
    except ValueError:
        return [value]
    return [secret for target in targets for secret in target.secrets()]


# -- what is sent ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """An alert as every channel sends it: the mail's subject is ``title``, its body ``text``."""

    event: str
    severity: Severity
    title: str
    text: str
    ts: str
    run_id: str | None = None
    symbol: str | None = None
    host: str = field(default_factory=socket.gethostname)

    def as_json(self) -> dict[str, Any]:
        """The plain ``json`` format (documented in the README)."""
        return {
            "source": "cdb",
            "event": self.event,
            "severity": self.severity,
            "title": self.title,
            "text": self.text,
            "ts": self.ts,
            "run_id": self.run_id,
            "symbol": self.symbol,
            "host": self.host,
        }


# Subject prefix → (event, severity); the first that matches wins.
_EVENTS: Final[tuple[tuple[str, str, Severity], ...]] = (
    ("cdb circuit breaker: trading halted", "breaker_halted", "critical"),
    ("cdb feed stale: ", "feed_stale", "warning"),
    ("cdb run stopped by an error", "loop_died", "critical"),
    ("cdb component ", "component_failed", "critical"),
    ("cdb: the store is down", "store_down", "critical"),
    ("cdb backup failed", "backup_failed", "error"),
    ("cdb daily check failed", "daily_check_failed", "error"),
    ("cdb daily check ", "daily_summary", "info"),
    ("cdb live start", "live_start", "warning"),
    ("cdb live refused", "live_refused", "error"),
    ("cdb fill: ", "fill", "info"),
    ("cdb notify test", "test", "info"),
)


def classify(
    subject: str, body: str, *, run_id: str | None = None, now: datetime | None = None
) -> Notice:
    """The :class:`Notice` of an alert (subject, body) as the loop raises them: its event and
    severity from the subject (``alert``/``warning`` when unknown), the symbol of a stale feed."""
    title = " ".join(subject.split())
    event: str = "alert"
    severity: Severity = "warning"
    for prefix, name, level in _EVENTS:
        if title.startswith(prefix):
            event, severity = name, level
            break
    if event == "daily_summary" and not title.endswith("all ok"):
        severity = "warning"
    symbol = None
    if event == "feed_stale":
        symbol = title.removeprefix("cdb feed stale: ").strip()
    elif event == "fill":
        symbol = title.removeprefix("cdb fill: ").split(" ", 1)[0]
    ts = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Notice(event, severity, title, body.strip(), ts, run_id, symbol or None)


# -- the formats -----------------------------------------------------------------------------

_NTFY_PRIORITY: Final = {"info": "3", "warning": "4", "error": "4", "critical": "5"}
_NTFY_TAG: Final = {
    "info": "information_source",
    "warning": "warning",
    "error": "x",
    "critical": "rotating_light",
}


@dataclass(frozen=True)
class Request:
    url: str = field(repr=False)
    body: bytes
    headers: dict[str, str]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json(url: str, payload: dict[str, Any]) -> Request:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Request(url, body, {"Content-Type": "application/json; charset=utf-8"})


def _latin1(text: str) -> str:
    """A header value HTTP can carry (ntfy reads Latin-1 headers)."""
    return " ".join(text.split()).encode("latin-1", "replace").decode("latin-1")


def build_request(target: WebhookTarget, notice: Notice) -> Request:
    """The POST for ``notice`` in ``target``'s format."""
    fmt = target.format
    if fmt == "slack":
        return _json(target.url, {"text": f"*{notice.title}*\n{notice.text}"})
    if fmt == "mattermost":
        return _json(target.url, {"text": f"**{notice.title}**\n{notice.text}"})
    if fmt == "discord":
        content = _clip(f"**{notice.title}**\n{notice.text}", DISCORD_LIMIT)
        return _json(target.url, {"content": content, "allowed_mentions": {"parse": []}})
    if fmt == "telegram":
        parts = urlsplit(target.url)
        chat_id = parse_qs(parts.query)["chat_id"][0]
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        text = _clip(f"{notice.title}\n\n{notice.text}", TELEGRAM_LIMIT)
        return _json(url, {"chat_id": chat_id, "text": text})
    if fmt == "ntfy":
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "Title": _latin1(notice.title),
            "Priority": _NTFY_PRIORITY[notice.severity],
            "Tags": f"{_NTFY_TAG[notice.severity]},cdb,{notice.event}",
        }
        return Request(target.url, notice.text.encode(), headers)
    return _json(target.url, notice.as_json())


# -- sending ---------------------------------------------------------------------------------


class WebhookChannel:
    """POST notices to one target: ``timeout_s`` per attempt, at most ``attempts`` attempts with
    pauses of ``backoff_s``, 2 * ``backoff_s``, … between them (``sleep`` is for tests)."""

    kind = "webhook"

    def __init__(
        self,
        target: WebhookTarget,
        *,
        timeout_s: float = TIMEOUT_S,
        attempts: int = ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "cdb",
    ) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._user_agent = user_agent

    @property
    def label(self) -> str:
        return self.target.label

    def secrets(self) -> list[str]:
        return self.target.secrets()

    def deliver(self, notice: Notice) -> None:
        """Send ``notice``, trying again on a transient failure.

        Raises
        ------
        DependencyError
            One line: the target's label and the last failure (``TransientError`` when it was a
            timeout, a refused connection, 429 or 5xx). Never the URL.
        """
        request = build_request(self.target, notice)
        for attempt in range(1, self.attempts + 1):
            try:
                self._post(request)
                return
            except TransientError as e:
                if attempt == self.attempts:
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise TransientError(f"{e.message}{tries}") from None
                pause = self.backoff_s * 2 ** (attempt - 1)
                logger.info("%s; trying again in %.1f s", e.message, pause)
                self._sleep(pause)

    def _post(self, request: Request) -> None:
        where = self.label
        http_request = urllib.request.Request(  # noqa: S310 - http(s) only (parse_webhook_urls)
            request.url,
            data=request.body,
            headers={**request.headers, "User-Agent": self._user_agent},
            method="POST",
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout_s) as response:  # noqa: S310
                response.read(65536)
        except urllib.error.HTTPError as e:
            status = e.code
            e.close()
            if status == 429 or status >= 500:
                raise TransientError(f"{where}: HTTP {status}") from None
            raise DependencyError(f"{where}: HTTP {status} (not tried again)") from None
        except TimeoutError:
            raise TransientError(f"{where}: no answer in {self.timeout_s:g} s") from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, TimeoutError):
                raise TransientError(f"{where}: no answer in {self.timeout_s:g} s") from None
            text = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
            raise TransientError(f"{where}: {text}") from None
        except OSError as e:
            raise TransientError(f"{where}: {e.strerror or type(e).__name__}") from None
        except http.client.HTTPException as e:
            raise TransientError(f"{where}: {type(e).__name__}") from None
