"""The email notifier against a real SMTP server on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr
from smtp_testkit import PASSWORD, USER, SmtpServer, free_port

from cdb_cli.adapters.notify import EmailNotifier, RateLimiter, SmtpConfig
from cdb_cli.engine.errors import DependencyError, TransientError
from cdb_cli.settings import Settings

SENDER = "cdb@bot.example.org"
TO = ("ops@example.org", "Owner <owner@example.org>")


def _notifier(server: SmtpServer, *, tls: str = "none", **values: Any) -> EmailNotifier:
    config = SmtpConfig(
        host="127.0.0.1",
        port=server.port,
        tls=tls,  # type: ignore[arg-type]
        sender=SENDER,
        recipients=TO,
        timeout_s=5.0,
        **values,
    )
    return EmailNotifier(config, ssl_context=server.client_context)


def test_send_delivers_from_to_subject_and_body(smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()

    sent = _notifier(server).send("cdb: breaker halted\nBcc: evil@x.org", "Trading halted.\nWhy.")

    assert sent is True
    [mail] = server.inbox.mails
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == ["ops@example.org", "owner@example.org"]
    assert mail.message["From"] == SENDER
    assert mail.message["To"] == "ops@example.org, Owner <owner@example.org>"
    assert mail.message["Subject"] == "cdb: breaker halted Bcc: evil@x.org"  # one header line
    assert mail.message["Bcc"] is None
    assert mail.message["Date"]
    assert mail.message["Message-ID"].endswith("@bot.example.org>")
    assert mail.message.get_content() == "Trading halted.\nWhy.\n"


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_send_over_tls_with_login(smtp_server: Callable[..., SmtpServer], tls: str) -> None:
    server = smtp_server(tls=tls, login=True)
    notifier = _notifier(server, tls=tls, user=USER, password=SecretStr(PASSWORD))

    assert notifier.send("cdb daily check", "all ok") is True

    assert server.inbox.logins == [USER]
    assert [mail.message["Subject"] for mail in server.inbox.mails] == ["cdb daily check"]


def test_wrong_password_is_one_line_without_the_password(
    smtp_server: Callable[..., SmtpServer],
) -> None:
    server = smtp_server(tls="starttls", login=True)
    wrong = "Wr0ng-pass-word"
    notifier = _notifier(server, tls="starttls", user=USER, password=SecretStr(wrong))

    with pytest.raises(DependencyError) as caught:
        notifier.send("subject", "body")

    message = caught.value.message
    assert message.startswith(f"SMTP 127.0.0.1:{server.port}: login as ops refused (535")
    assert "\n" not in message
    assert wrong not in message
    assert wrong not in repr(notifier.config)
    assert server.inbox.mails == []


def test_refused_connection_is_a_transient_error() -> None:
    config = SmtpConfig("127.0.0.1", free_port(), "none", SENDER, TO, timeout_s=2.0)
    with pytest.raises(TransientError, match=r"^SMTP 127\.0\.0\.1:\d+: .*refused"):
        EmailNotifier(config).send("subject", "body")


def test_starttls_against_a_plain_server_says_so(smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    with pytest.raises(DependencyError, match=r"does not offer STARTTLS.*CDB_SMTP_TLS"):
        _notifier(server, tls="starttls").send("subject", "body")


def test_untrusted_certificate_is_a_tls_error(smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server(tls="ssl")
    config = SmtpConfig("127.0.0.1", server.port, "ssl", SENDER, TO, timeout_s=5.0)
    with pytest.raises(DependencyError, match="TLS failed"):
        EmailNotifier(config).send("subject", "body")  # the system trust store: self-signed


def test_rate_limit_holds_back_a_repeated_subject(smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    now = [1000.0]
    notifier = EmailNotifier(_notifier(server).config, min_interval_s=600, clock=lambda: now[0])

    assert notifier.send("feed stale", "1") is True
    assert notifier.send("feed stale", "2") is False  # same subject inside 10 minutes
    assert notifier.send("breaker halted", "3") is True  # another subject goes through
    now[0] += 600
    assert notifier.send("feed stale", "4") is True

    assert [mail.message.get_content().strip() for mail in server.inbox.mails] == ["1", "3", "4"]


def test_rate_limiter_counts_attempts() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert limiter.allow("a")
    now[0] = 59.9
    assert not limiter.allow("a")
    now[0] = 60.0
    assert limiter.allow("a")
    assert RateLimiter(0).allow("a")
    assert RateLimiter(0).allow("a")


def test_send_async_sends_on_a_thread(smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    assert asyncio.run(_notifier(server).send_async("async", "body")) is True
    assert len(server.inbox.mails) == 1


def test_probe_logs_in_without_sending(smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server(tls="starttls", login=True)
    notifier = _notifier(server, tls="starttls", user=USER, password=SecretStr(PASSWORD))
    assert notifier.probe() > 0
    assert server.inbox.logins == [USER]
    assert server.inbox.mails == []


def test_from_settings_is_off_without_a_host() -> None:
    assert EmailNotifier.from_settings(Settings(database_url="sqlite://")) is None
    settings = Settings(
        database_url="sqlite://",
        smtp_host="mail.example.org",
        smtp_port=465,
        smtp_tls="ssl",
        smtp_user=USER,
        smtp_password=PASSWORD,
        smtp_from=SENDER,
        smtp_to="ops@example.org,owner@example.org",
        alert_min_interval_s=120,
    )
    notifier = EmailNotifier.from_settings(settings)
    assert notifier is not None
    assert notifier.config.recipients == ("ops@example.org", "owner@example.org")
    assert notifier.config.describe() == "mail.example.org:465 (ssl, login ops)"
    assert notifier.limiter.interval_s == 120
    assert PASSWORD not in repr(notifier.config)
