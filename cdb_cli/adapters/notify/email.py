"""Mail over SMTP for alerts and the daily check: stdlib ``smtplib``, one connection per mail.

``EmailNotifier.from_settings`` returns None while ``CDB_SMTP_HOST`` is unset (mail is off). A send
that fails raises ``DependencyError`` (``TransientError`` for a refused connection or a timeout)
with one line naming the server and what went wrong; the password never appears in it. The
``RateLimiter`` lets through at most one mail per subject per ``CDB_ALERT_MIN_INTERVAL_S``: an
attempt counts even when it fails, so a dead SMTP server does not stall an alert storm.

``smtplib`` blocks; the run loop calls :meth:`EmailNotifier.send_async`, which sends on a thread.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING, Final, Literal

from pydantic import SecretStr

from cdb_cli.engine.errors import DependencyError, TransientError

if TYPE_CHECKING:
    from cdb_cli.settings import Settings

__all__ = ["EmailNotifier", "RateLimiter", "SmtpConfig", "TlsMode"]

logger = logging.getLogger(__name__)

TlsMode = Literal["starttls", "ssl", "none"]
TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send; ``password`` is a ``SecretStr`` (its repr is masked)."""

    host: str
    port: int
    tls: TlsMode
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: SecretStr | None = None
    timeout_s: float = TIMEOUT_S

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """The ``CDB_SMTP_*`` settings, or None when ``CDB_SMTP_HOST`` is unset."""
        if settings.smtp_host is None or settings.smtp_from is None:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            sender=settings.smtp_from,
            recipients=tuple(settings.smtp_to),
            user=settings.smtp_user,
            password=settings.smtp_password,
        )

    @property
    def where(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        """``smtp.example.org:587 (starttls, login ops)`` for reports; never the password."""
        login = f", login {self.user}" if self.user else ""
        return f"{self.where} ({self.tls}{login})"


class RateLimiter:
    """At most one event per key in ``interval_s`` seconds of ``clock`` (monotonic by default)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        """True (and remember now) when ``key`` last passed ``interval_s`` ago or never."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[key] = now
        return True


class EmailNotifier:
    """Send plain-text mail to the configured recipients, rate-limited per subject.

    ``ssl_context`` defaults to the system's trust store with hostname checking; tests pass one
    that trusts their own certificate.
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        min_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.limiter = RateLimiter(min_interval_s, clock)
        self._ssl_context = ssl_context

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailNotifier | None:
        """The notifier of the settings, or None when mail is off (``CDB_SMTP_HOST`` unset)."""
        config = SmtpConfig.from_settings(settings)
        if config is None:
            return None
        return cls(config, min_interval_s=settings.alert_min_interval_s)

    def message(self, subject: str, body: str) -> EmailMessage:
        """The mail as it is sent: From, To, Subject (one line), Date, Message-ID, text body."""
        config = self.config
        message = EmailMessage()
        message["From"] = config.sender
        message["To"] = ", ".join(config.recipients)
        message["Subject"] = " ".join(subject.split())  # no header injection, no folding surprises
        message["Date"] = formatdate(usegmt=True)
        domain = parseaddr(config.sender)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid("cdb", domain=domain)
        message.set_content(body)
        return message

    def send(self, subject: str, body: str) -> bool:
        """Send one mail; False when the rate limiter held it back.

        Raises
        ------
        DependencyError
            One line: the server, and what failed (connect, TLS, login, a refused address).
        """
        if not self.limiter.allow(subject):
            logger.info("Mail %r held back: one per %.0f s", subject, self.limiter.interval_s)
            return False
        message = self.message(subject, body)
        with self._errors(), self._session() as session:
            session.send_message(message)
        logger.info("Mail %r sent to %d recipient(s)", subject, len(self.config.recipients))
        return True

    async def send_async(self, subject: str, body: str) -> bool:
        """:meth:`send` on a worker thread, for the asyncio run loop."""
        return await asyncio.to_thread(self.send, subject, body)

    def probe(self) -> float:
        """Connect, say EHLO, upgrade to TLS and log in as configured, then quit; return ms."""
        started = time.perf_counter()
        with self._errors(), self._session() as session:
            session.noop()
        return (time.perf_counter() - started) * 1000.0

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        config = self.config
        session: smtplib.SMTP
        if config.tls == "ssl":
            session = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=self._context()
            )
        else:
            session = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        try:
            session.ehlo()
            if config.tls == "starttls":
                session.starttls(context=self._context())
                session.ehlo()
            if config.user is not None and config.password is not None:
                session.login(config.user, config.password.get_secret_value())
            yield session
        finally:
            try:
                session.quit()
            except (smtplib.SMTPException, OSError):
                session.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Map smtplib and socket errors to one-line ``DependencyError`` without the password."""
        where = f"SMTP {self.config.where}"
        try:
            yield
        except smtplib.SMTPAuthenticationError as e:
            raise DependencyError(
                self._clean(f"{where}: login as {self.config.user} refused ({_reply(e)})")
            ) from None
        except smtplib.SMTPRecipientsRefused as e:
            refused = ", ".join(sorted(e.recipients))
            raise DependencyError(self._clean(f"{where}: recipients refused: {refused}")) from None
        except smtplib.SMTPNotSupportedError:
            raise DependencyError(
                f"{where}: the server does not offer STARTTLS (or AUTH); check CDB_SMTP_TLS"
            ) from None
        except smtplib.SMTPResponseException as e:
            raise DependencyError(self._clean(f"{where}: {_reply(e)}")) from None
        except smtplib.SMTPException as e:
            raise DependencyError(self._clean(f"{where}: {_first_line(e)}")) from None
        except ssl.SSLError as e:
            raise DependencyError(self._clean(f"{where}: TLS failed: {_first_line(e)}")) from None
        except (TimeoutError, ConnectionError) as e:
            reason = "timed out" if isinstance(e, TimeoutError) else _first_line(e)
            raise TransientError(self._clean(f"{where}: {reason}")) from None
        except OSError as e:
            raise DependencyError(self._clean(f"{where}: {e.strerror or _first_line(e)}")) from None

    def _clean(self, text: str) -> str:
        password = self.config.password
        if password is not None and password.get_secret_value():
            text = text.replace(password.get_secret_value(), "***")
        return text


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _reply(error: smtplib.SMTPResponseException) -> str:
    raw = error.smtp_error
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{error.smtp_code} {first}".strip()
