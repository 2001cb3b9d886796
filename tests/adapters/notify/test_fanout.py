"""The notifier that fans alerts out to mail and webhooks: off the caller, rate-limited once for
every channel, a failing or hanging receiver costing the caller nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
from market_testkit import wait_until
from smtp_testkit import SmtpServer
from webhook_testkit import Receiver

from cdb_cli.adapters.notify import (
    EmailChannel,
    EmailNotifier,
    Notifier,
    SmtpConfig,
    WebhookChannel,
    parse_webhook_urls,
)
from cdb_cli.settings import Settings

TOKEN = "Zq9tokenABCDEFGHIJKLMNOPQRSTUV"


def _webhook(fmt: str, receiver: Receiver, **options: float) -> WebhookChannel:
    [target] = parse_webhook_urls(f"{fmt}:{receiver.base}/hook/{TOKEN}")
    return WebhookChannel(target, **options)  # type: ignore[arg-type]


def test_send_async_returns_at_once_while_a_receiver_hangs_or_fails(
    webhook_receiver: Callable[..., Receiver],
) -> None:
    hanging, failing, good = (
        webhook_receiver(hang=True),
        webhook_receiver(fail=-1),
        webhook_receiver(),
    )
    notifier = Notifier(
        [
            _webhook("json", hanging, timeout_s=5.0, attempts=3),
            _webhook("json", failing, attempts=3, backoff_s=0.05),
            _webhook("slack", good),
        ]
    )

    async def alert() -> float:
        started = time.perf_counter()
        assert await notifier.send_async("cdb circuit breaker: trading halted", "halted") is True
        assert await notifier.send_async("cdb feed stale: BTCUSDT", "stale") is True
        return time.perf_counter() - started

    elapsed = asyncio.run(alert())
    assert elapsed < 0.05  # queued, not sent: the caller never waits for a receiver
    assert [post.json()["text"] for post in good.wait(2)] == [
        "*cdb circuit breaker: trading halted*\nhalted",
        "*cdb feed stale: BTCUSDT*\nstale",
    ]  # the good one is not held up by the hanging one
    failing.wait(3)  # retried, then given up
    hanging.wait(1)
    started = time.monotonic()
    assert notifier.close(timeout_s=0.5) is False  # the hanging channel is still busy
    assert time.monotonic() - started < 1.5


def test_the_rate_limit_is_one_per_subject_for_every_channel(
    webhook_receiver: Callable[..., Receiver],
) -> None:
    first, second = webhook_receiver(), webhook_receiver()
    now = [100.0]
    notifier = Notifier(
        [_webhook("json", first), _webhook("discord", second)],
        min_interval_s=600,
        clock=lambda: now[0],
        run_id="p42",
    )
    assert notifier.submit("cdb feed stale: BTCUSDT", "1") is True
    assert notifier.submit("cdb feed stale: BTCUSDT", "2") is False
    assert notifier.submit("cdb backup failed", "3") is True
    now[0] += 600
    assert notifier.submit("cdb feed stale: BTCUSDT", "4") is True
    assert notifier.close(timeout_s=10) is True
    assert [p.json()["text"] for p in first.posts] == ["1", "3", "4"]
    assert [p.json()["run_id"] for p in first.posts] == ["p42"] * 3
    assert [p.json()["content"].splitlines()[-1] for p in second.posts] == ["1", "3", "4"]


def test_a_failed_alert_is_a_warning_that_names_the_channel_not_its_url(
    webhook_receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = webhook_receiver(fail=-1)
    notifier = Notifier([_webhook("discord", receiver, attempts=2, backoff_s=0.01)])
    with caplog.at_level(logging.INFO, logger="cdb_cli.adapters.notify"):
        notifier.submit("cdb run stopped by an error", "boom")
        assert notifier.close(timeout_s=10) is True
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Alert 'cdb run stopped by an error' not sent: discord #1 (127.0.0.1): HTTP 500 "
        "(after 2 attempts)"
    ]
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_close_lets_queued_alerts_go_out(webhook_receiver: Callable[..., Receiver]) -> None:
    receiver = webhook_receiver()
    notifier = Notifier([_webhook("ntfy", receiver)])
    for n in range(5):
        notifier.submit(f"cdb alert {n}", "body")
    assert notifier.close(timeout_s=10) is True
    assert [post.headers["Title"] for post in receiver.posts] == [
        f"cdb alert {n}" for n in range(5)
    ]


def test_a_full_queue_drops_the_alert_with_a_warning(
    webhook_receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = webhook_receiver(hang=True)
    notifier = Notifier([_webhook("json", receiver, timeout_s=2.0, attempts=1)], queue_size=1)
    notifier.submit("a", "1")
    receiver.wait(1)  # the worker holds "a"; the queue has room for one more
    notifier.submit("b", "2")
    with caplog.at_level(logging.WARNING, logger="cdb_cli.adapters.notify"):
        notifier.submit("c", "3")
        notifier.submit("d", "4")  # still full: dropped without another line
        notifier.submit("e", "5")
        assert "Alert 'c' not sent to json #1 (127.0.0.1): 1 alerts already wait for it" in (
            caplog.text
        )
        assert "Alert 'd'" not in caplog.text
        # "a" times out (2 s), the worker takes "b": the queue has room, the drops are counted
        wait_until(lambda: "3 alerts for json #1" in caplog.text, 10, "the count of the drops")
    assert "3 alerts for json #1 (127.0.0.1) were dropped while its queue was full" in caplog.text
    notifier.close(timeout_s=0.1)


def test_mail_and_webhooks_get_the_same_alert(
    smtp_server: Callable[..., SmtpServer], webhook_receiver: Callable[..., Receiver]
) -> None:
    server, receiver = smtp_server(), webhook_receiver()
    config = SmtpConfig("127.0.0.1", server.port, "none", "cdb@example.org", ("ops@example.org",))
    notifier = Notifier([EmailChannel(EmailNotifier(config)), _webhook("json", receiver)])
    notifier.submit("cdb backup failed", "Run p1: the scheduled backup exited 1: disk full")
    assert notifier.close(timeout_s=10) is True
    [mail] = server.inbox.mails
    assert mail.message["Subject"] == "cdb backup failed"
    assert mail.message.get_content().strip() == "Run p1: the scheduled backup exited 1: disk full"
    [post] = receiver.posts
    assert (post.json()["event"], post.json()["severity"]) == ("backup_failed", "error")


def test_send_reports_each_channel(
    smtp_server: Callable[..., SmtpServer], webhook_receiver: Callable[..., Receiver]
) -> None:
    server, good, bad = smtp_server(), webhook_receiver(), webhook_receiver(fail=-1)
    config = SmtpConfig("127.0.0.1", server.port, "none", "cdb@example.org", ("ops@example.org",))
    notifier = Notifier(
        [
            EmailChannel(EmailNotifier(config)),
            _webhook("json", good),
            _webhook("slack", bad, attempts=1),
        ]
    )
    results = notifier.test()
    assert [(r.kind, r.ok, r.detail) for r in results] == [
        ("mail", True, "sent"),
        ("webhook", True, "sent"),
        ("webhook", False, "HTTP 500"),
    ]
    assert results[0].channel == f"mail (127.0.0.1:{server.port} (none))"
    assert good.posts[0].json()["event"] == "test"
    assert server.inbox.mails[0].message["Subject"] == "cdb notify test"


def test_from_settings_builds_mail_first_then_each_webhook() -> None:
    assert Notifier.from_settings(Settings(database_url="sqlite://")) is None
    settings = Settings(
        database_url="sqlite://",
        smtp_host="mail.example.org",
        smtp_from="cdb@example.org",
        smtp_to="ops@example.org",
        webhook_urls=f"slack:https://hooks.slack.com/services/T1/B1/{TOKEN},"
        f"ntfy:https://ntfy.sh/{TOKEN}",
        alert_min_interval_s=120,
    )
    notifier = Notifier.from_settings(settings, run_id="p7")
    assert notifier is not None
    assert [channel.label for channel in notifier.channels] == [
        "mail (mail.example.org:587 (starttls))",
        "slack #1 (hooks.slack.com)",
        "ntfy #2 (ntfy.sh)",
    ]
    assert notifier.limiter.interval_s == 120
    assert notifier.run_id == "p7"
    assert any(TOKEN in secret for secret in notifier.secrets())
    webhooks = Notifier.from_settings(
        Settings(database_url="sqlite://", webhook_urls=f"json:https://h.org/{TOKEN}")
    )
    assert webhooks is not None
    assert [channel.kind for channel in webhooks.channels] == ["webhook"]
