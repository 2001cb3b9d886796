"""One notifier for every channel: mail (``CDB_SMTP_*``) and each ``CDB_WEBHOOK_URLS`` target.

:class:`Notifier` takes an alert (subject, body), lets it through the mail's
:class:`~cdb_cli.adapters.notify.email.RateLimiter` (one per subject per
``CDB_ALERT_MIN_INTERVAL_S``, for all channels at once) and hands it to each channel's own worker
thread through a bounded queue: :meth:`Notifier.send_async`, what the run loop awaits, returns at
once. A channel that fails, answers 500 or hangs delays only its own queue (each POST has a
timeout, retries are bounded); a full queue drops the alert with one warning line. A failure is a
warning line that names the channel by its label, through :func:`~cdb_cli.redaction.redact` with
the channel's secrets: a webhook URL never reaches a log. :meth:`Notifier.close` lets the queues
drain (bounded), so the alert of a loop that died still goes out.

:meth:`Notifier.test` sends one message to every channel now and reports each result
(``cdb notify test``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from cdb_cli.adapters.notify.email import EmailNotifier, RateLimiter
from cdb_cli.adapters.notify.webhook import (
    ATTEMPTS,
    BACKOFF_S,
    TIMEOUT_S,
    Notice,
    WebhookChannel,
    classify,
    parse_webhook_urls,
)
from cdb_cli.engine.errors import CdbError
from cdb_cli.redaction import redact

if TYPE_CHECKING:
    from cdb_cli.settings import Settings

__all__ = ["Channel", "ChannelResult", "EmailChannel", "Notifier"]

logger = logging.getLogger(__name__)

QUEUE_SIZE: Final = 100
CLOSE_TIMEOUT_S: Final = 5.0
TEST_SUBJECT: Final = "cdb notify test"


class Channel(Protocol):
    """Where a notice goes: ``deliver`` blocks and raises ``CdbError`` (one line) on failure."""

    kind: str

    @property
    def label(self) -> str: ...

    def secrets(self) -> list[str]: ...

    def deliver(self, notice: Notice) -> None: ...


class EmailChannel:
    """The mail as a channel: the notice's title is the subject, its text the body."""

    kind = "mail"

    def __init__(self, mailer: EmailNotifier) -> None:
        self.mailer = mailer

    @property
    def label(self) -> str:
        return f"mail ({self.mailer.config.describe()})"

    def secrets(self) -> list[str]:
        password = self.mailer.config.password
        return [password.get_secret_value()] if password is not None else []

    def deliver(self, notice: Notice) -> None:
        self.mailer.send(notice.title, notice.text)


@dataclass(frozen=True)
class ChannelResult:
    """One channel's outcome in ``cdb notify test``."""

    channel: str
    kind: str
    ok: bool
    detail: str
    ms: float

    def to_dict(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "kind": self.kind,
            "ok": self.ok,
            "detail": self.detail,
            "ms": round(self.ms, 1),
        }


_STOP: Final = object()


class _Worker:
    """One channel's queue and the thread that empties it."""

    def __init__(self, channel: Channel, size: int, secrets: Callable[[], list[str]]) -> None:
        self.channel = channel
        self.queue: queue.Queue[object] = queue.Queue(maxsize=size)
        self._secrets = secrets
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._dropped = 0
        """Alerts dropped since the queue last had room: one warning when the first is, one
        count when it drains (from the worker's thread, never the caller's loop)."""

    def put(self, notice: Notice) -> bool:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"cdb-notify {self.channel.kind}", daemon=True
                )
                self._thread.start()
        try:
            self.queue.put_nowait(notice)
        except queue.Full:
            with self._lock:
                self._dropped += 1
                first = self._dropped == 1
            if first:  # one line while it is full, however many alerts come
                logger.warning(
                    "Alert %r not sent to %s: %d alerts already wait for it; more are dropped "
                    "until it catches up",
                    notice.title,
                    self.channel.label,
                    self.queue.maxsize,
                )
            return False
        return True

    def _report_dropped(self) -> None:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            logger.warning("%d alerts for %s were dropped while its queue was full", dropped,
                           self.channel.label)  # fmt: skip

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            self._report_dropped()  # the queue has room again
            try:
                if not isinstance(item, Notice):  # _STOP
                    return
                try:
                    self.channel.deliver(item)
                    logger.info("Alert %r sent to %s", item.title, self.channel.label)
                except CdbError as e:  # its message names the channel
                    logger.warning(
                        "Alert %r not sent: %s", item.title, redact(e.message, self._secrets())
                    )
                except Exception as e:  # a channel's bug must not end its worker
                    logger.warning(
                        "Alert %r not sent to %s: %s",
                        item.title,
                        self.channel.label,
                        redact(f"{type(e).__name__}: {e}", self._secrets()),
                    )
            finally:
                self.queue.task_done()

    def stop(self, deadline: float) -> bool:
        """Let what waits go out until ``deadline`` (monotonic); True when the thread ended."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return True
            try:
                self.queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                return False
        thread.join(max(0.0, deadline - time.monotonic()))
        return not thread.is_alive()


class Notifier:
    """Fan alerts out to ``channels``, rate-limited per subject by ``limiter``."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        min_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        run_id: str | None = None,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.channels = list(channels)
        self.limiter = RateLimiter(min_interval_s, clock)
        self.run_id = run_id
        self._workers = [_Worker(channel, queue_size, self.secrets) for channel in self.channels]

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        run_id: str | None = None,
        timeout_s: float = TIMEOUT_S,
        attempts: int = ATTEMPTS,
        backoff_s: float = BACKOFF_S,
    ) -> Notifier | None:
        """The channels of the settings (mail first), or None when none is configured;
        ``timeout_s``, ``attempts`` and ``backoff_s`` apply to each webhook."""
        from cdb_cli import __version__

        channels: list[Channel] = []
        mailer = EmailNotifier.from_settings(settings)
        if mailer is not None:
            mailer.limiter = RateLimiter(0)  # the notifier limits, for every channel at once
            channels.append(EmailChannel(mailer))
        if settings.webhook_urls is not None:
            for target in parse_webhook_urls(settings.webhook_urls.get_secret_value()):
                channels.append(
                    WebhookChannel(
                        target,
                        timeout_s=timeout_s,
                        attempts=attempts,
                        backoff_s=backoff_s,
                        user_agent=f"cdb/{__version__}",
                    )
                )
        if not channels:
            return None
        return cls(channels, min_interval_s=settings.alert_min_interval_s, run_id=run_id)

    def secrets(self) -> list[str]:
        """What no message may show: every webhook URL (and its parts), the SMTP password."""
        return [secret for channel in self.channels for secret in channel.secrets()]

    def notice(self, subject: str, body: str) -> Notice:
        return classify(subject, body, run_id=self.run_id)

    def submit(self, subject: str, body: str) -> bool:
        """Queue the alert for every channel and return at once; False when the rate limiter
        held it back (one per subject per ``min_interval_s``)."""
        if not self.limiter.allow(subject):
            logger.info("Alert %r held back: one per %.0f s", subject, self.limiter.interval_s)
            return False
        notice = self.notice(subject, body)
        for worker in self._workers:
            worker.put(notice)
        return True

    async def send_async(self, subject: str, body: str) -> bool:
        """:meth:`submit` for the run loop (an ``Alert``): never waits for a channel."""
        return self.submit(subject, body)

    def send(self, subject: str, body: str) -> list[ChannelResult]:
        """Send to every channel now, one after another (not rate-limited), and report each."""
        notice = self.notice(subject, body)
        return [self._deliver(channel, notice) for channel in self.channels]

    def test(self) -> list[ChannelResult]:
        """One test message to every channel (``cdb notify test``)."""
        notice = self.notice(TEST_SUBJECT, "")
        body = (
            f"A test message from cdb on {notice.host}: this channel receives cdb's alerts "
            "(breaker halted, feed stale, loop died, backup failed, daily check)."
        )
        return self.send(TEST_SUBJECT, body)

    def _deliver(self, channel: Channel, notice: Notice) -> ChannelResult:
        started = time.perf_counter()
        try:
            channel.deliver(notice)
        except CdbError as e:
            detail = redact(e.message, self.secrets()).removeprefix(f"{channel.label}: ")
            ok = False
        else:
            detail, ok = "sent", True
        elapsed = (time.perf_counter() - started) * 1000.0
        return ChannelResult(channel.label, channel.kind, ok, detail, elapsed)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Let queued alerts go out for at most ``timeout_s``; True when every queue drained."""
        deadline = time.monotonic() + timeout_s
        drained = [worker.stop(deadline) for worker in self._workers]
        if not all(drained):
            logger.warning("Some alerts were not sent before the stop (channels still busy)")
        return all(drained)
