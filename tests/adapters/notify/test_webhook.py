"""Webhook formats and sending against real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from webhook_testkit import Receiver

from cdb_cli.adapters.notify import (
    Notice,
    WebhookChannel,
    WebhookTarget,
    classify,
    parse_webhook_urls,
)
from cdb_cli.engine.errors import DependencyError, TransientError
from cdb_cli.redaction import redact, url_secrets
from cdb_cli.settings import Settings
from cdb_cli.settings_io import sanitized

TOKEN = "s3cretT0KENabcdefghijklmnop"
PATHS = {
    "slack": f"/services/T0001/B0002/{TOKEN}",
    "mattermost": f"/hooks/{TOKEN}",
    "discord": f"/api/webhooks/1234567/{TOKEN}",
    "telegram": f"/bot123456:{TOKEN}/sendMessage?chat_id=-100424242",
    "ntfy": f"/cdb-{TOKEN}",
    "json": f"/cdb/alerts?token={TOKEN}",
}
HALT = classify(
    "cdb circuit breaker: trading halted",
    "Run p1 halted trading: daily drawdown 5.2% >= 5%. Resume with 'cdb risk reset'.",
    run_id="p1",
    now=datetime(2026, 12, 7, 23, 0, 5, tzinfo=UTC),
)


def _channel(fmt: str, receiver: Receiver, **options: float) -> WebhookChannel:
    [target] = parse_webhook_urls(f"{fmt}:{receiver.base}{PATHS[fmt]}")
    return WebhookChannel(target, **options)  # type: ignore[arg-type]


def test_parse_reads_format_url_and_position_of_each_entry() -> None:
    value = (
        "slack:https://hooks.slack.com/services/T/B/X1, DISCORD:https://discord.com/api/webhooks/1/t"
        ",telegram:https://api.telegram.org/bot1:AA/sendMessage?chat_id=42&x=1,json:http://h:8/p"
    )
    targets = parse_webhook_urls(value)
    assert [(t.format, t.position, t.host) for t in targets] == [
        ("slack", 1, "hooks.slack.com"),
        ("discord", 2, "discord.com"),
        ("telegram", 3, "api.telegram.org"),
        ("json", 4, "h"),
    ]
    assert targets[2].url == "https://api.telegram.org/bot1:AA/sendMessage?chat_id=42&x=1"
    assert targets[1].label == "discord #2 (discord.com)"
    assert "discord.com/api" not in repr(targets[1])
    assert parse_webhook_urls(" ") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"https://hooks.slack.com/services/{TOKEN}", "entry 1: unknown format 'https'"),
        (f"json:https://a.org/x,slak:https://b.org/{TOKEN}", "entry 2: unknown format 'slak'"),
        (f"slack:ftp://hooks.slack.com/{TOKEN}", "entry 1 (slack): the URL after 'slack:' must"),
        (f"telegram:https://api.telegram.org/bot{TOKEN}/getMe", "entry 1 (telegram): the URL mu"),
        (
            f"telegram:https://api.telegram.org/bot{TOKEN}/sendMessage",
            "entry 1 (telegram): the URL needs ?chat_id",
        ),
        ("ntfy:https://ntfy.sh/", "entry 1 (ntfy): the URL needs a topic"),
    ],
)
def test_a_bad_entry_is_one_line_that_names_it_without_its_url(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^[^\n]*$") as caught:
        parse_webhook_urls(value)
    assert str(caught.value).startswith(message)
    assert TOKEN not in str(caught.value)
    with pytest.raises(ValueError, match=r"entry \d"):
        Settings(database_url="sqlite://", webhook_urls=value)


def test_classify_names_event_severity_and_symbol() -> None:
    assert (HALT.event, HALT.severity, HALT.run_id, HALT.ts) == (
        "breaker_halted",
        "critical",
        "p1",
        "2026-12-07T23:00:05Z",
    )
    stale = classify("cdb feed stale: ETHUSDT", "No market data for ETHUSDT for 61 s")
    assert (stale.event, stale.severity, stale.symbol) == ("feed_stale", "warning", "ETHUSDT")
    events = {
        "cdb run stopped by an error": ("loop_died", "critical"),
        "cdb backup failed": ("backup_failed", "error"),
        "cdb daily check 2026-12-06 on h: all ok": ("daily_summary", "info"),
        "cdb daily check 2026-12-06 on h: 2 failed": ("daily_summary", "warning"),
        "cdb daily check failed": ("daily_check_failed", "error"),
        "cdb component risk failed": ("component_failed", "critical"),
        "cdb: the store is down": ("store_down", "critical"),
        "cdb live start: real orders on MEXC": ("live_start", "warning"),
        "cdb live refused: the governance gate failed": ("live_refused", "error"),
        "something new": ("alert", "warning"),
    }
    for subject, expected in events.items():
        notice = classify(subject, "")
        assert (notice.event, notice.severity) == expected, subject


def test_slack_and_mattermost_post_text(webhook_receiver: Callable[..., Receiver]) -> None:
    for fmt, bold in (("slack", "*"), ("mattermost", "**")):
        receiver = webhook_receiver()
        _channel(fmt, receiver).deliver(HALT)
        [post] = receiver.wait()
        assert post.path == PATHS[fmt]
        assert post.headers["Content-Type"].startswith("application/json")
        assert post.json() == {"text": f"{bold}{HALT.title}{bold}\n{HALT.text}"}


def test_discord_posts_content_within_2000_characters(
    webhook_receiver: Callable[..., Receiver],
) -> None:
    receiver = webhook_receiver()
    channel = _channel("discord", receiver)
    channel.deliver(HALT)
    long = Notice("loop_died", "critical", "cdb run stopped by an error", "x" * 5000, HALT.ts)
    channel.deliver(long)
    first, second = receiver.wait(2)
    assert first.path == PATHS["discord"]
    assert first.json() == {
        "content": f"**{HALT.title}**\n{HALT.text}",
        "allowed_mentions": {"parse": []},
    }
    content = second.json()["content"]
    assert len(content) == 2000
    assert content.endswith("…")


def test_telegram_posts_chat_id_and_text_to_send_message(
    webhook_receiver: Callable[..., Receiver],
) -> None:
    receiver = webhook_receiver()
    channel = _channel("telegram", receiver)
    channel.deliver(HALT)
    channel.deliver(Notice("fill", "info", "cdb fill", "y" * 9000, HALT.ts))
    first, second = receiver.wait(2)
    assert first.path == f"/bot123456:{TOKEN}/sendMessage"
    assert first.query == {}  # chat_id goes in the body
    assert first.json() == {"chat_id": "-100424242", "text": f"{HALT.title}\n\n{HALT.text}"}
    assert len(second.json()["text"]) == 4096


def test_ntfy_posts_the_text_with_title_priority_and_tags(
    webhook_receiver: Callable[..., Receiver],
) -> None:
    receiver = webhook_receiver()
    _channel("ntfy", receiver).deliver(HALT)
    stale = classify("cdb feed stale: BTCUSDT", "No market data for BTCUSDT for 61 s")
    _channel("ntfy", receiver).deliver(stale)
    first, second = receiver.wait(2)
    assert first.path == PATHS["ntfy"]
    assert first.text == HALT.text
    assert first.headers["Title"] == HALT.title
    assert first.headers["Priority"] == "5"
    assert first.headers["Tags"] == "rotating_light,cdb,breaker_halted"
    assert (second.headers["Priority"], second.headers["Tags"]) == ("4", "warning,cdb,feed_stale")


def test_json_posts_the_documented_fields(webhook_receiver: Callable[..., Receiver]) -> None:
    receiver = webhook_receiver()
    _channel("json", receiver).deliver(HALT)
    [post] = receiver.wait()
    assert post.path == "/cdb/alerts"
    assert post.query == {"token": [TOKEN]}  # the URL as given
    assert post.json() == {
        "source": "cdb",
        "event": "breaker_halted",
        "severity": "critical",
        "title": "cdb circuit breaker: trading halted",
        "text": HALT.text,
        "ts": "2026-12-07T23:00:05Z",
        "run_id": "p1",
        "symbol": None,
        "host": HALT.host,
    }
    assert post.headers["User-Agent"].startswith("cdb")


def test_a_500_is_retried_with_growing_pauses(webhook_receiver: Callable[..., Receiver]) -> None:
    receiver = webhook_receiver(fail=2)
    pauses: list[float] = []
    [target] = parse_webhook_urls(f"slack:{receiver.base}{PATHS['slack']}")
    WebhookChannel(target, attempts=3, backoff_s=0.5, sleep=pauses.append).deliver(HALT)
    assert receiver.answered == [500, 500, 200]
    assert pauses == [0.5, 1.0]
    assert len({post.body for post in receiver.posts}) == 1  # the same message each time


def test_a_receiver_that_keeps_failing_is_given_up_in_one_line_without_the_url(
    webhook_receiver: Callable[..., Receiver],
) -> None:
    receiver = webhook_receiver(fail=-1)
    channel = _channel("discord", receiver, attempts=3, backoff_s=0.01)
    with pytest.raises(TransientError) as caught:
        channel.deliver(HALT)
    assert caught.value.message == "discord #1 (127.0.0.1): HTTP 500 (after 3 attempts)"
    assert len(receiver.posts) == 3


def test_a_hanging_receiver_times_out_within_its_bound(
    webhook_receiver: Callable[..., Receiver],
) -> None:
    receiver = webhook_receiver(hang=True)
    channel = _channel("json", receiver, timeout_s=0.3, attempts=2, backoff_s=0.1)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"no answer in 0\.3 s \(after 2 attempts\)"):
        channel.deliver(HALT)
    assert time.monotonic() - started < 0.3 * 2 + 0.1 + 1.0  # two timeouts and a pause
    assert len(receiver.posts) == 2


def test_a_refused_connection_is_transient_and_a_4xx_is_final(
    webhook_receiver: Callable[..., Receiver],
) -> None:
    from market_testkit import free_port

    [target] = parse_webhook_urls(f"json:http://127.0.0.1:{free_port()}/x/{TOKEN}")
    with pytest.raises(TransientError, match=r"^json #1 \(127\.0\.0\.1\): .*refused"):
        WebhookChannel(target, attempts=1).deliver(HALT)
    receiver = webhook_receiver(status=404)
    channel = WebhookChannel(WebhookTarget("json", f"{receiver.base}/x", 1), backoff_s=0)
    with pytest.raises(DependencyError, match=r"HTTP 404 \(not tried again\)$") as caught:
        channel.deliver(HALT)
    assert not isinstance(caught.value, TransientError)
    assert len(receiver.posts) == 1


def test_webhook_urls_are_secrets_in_settings_and_redaction() -> None:
    value = ",".join(f"{fmt}:https://example.org{path}" for fmt, path in PATHS.items())
    settings = Settings(database_url="sqlite://", webhook_urls=value)
    assert TOKEN not in repr(settings)
    assert sanitized(settings)["webhook_urls"] == "REDACTED"
    assert TOKEN not in str(sanitized(settings))
    secrets = url_secrets(value)
    for path in PATHS.values():
        line = f"POST https://example.org{path} failed; {path} again"
        assert TOKEN not in redact(line, secrets), line
    assert redact("the services said sendMessage", secrets) == "the services said sendMessage"


def test_well_known_webhook_tokens_are_masked_by_shape_alone() -> None:
    text = (
        "POST https://api.telegram.org/bot123456:AAE-x_y/sendMessage?chat_id=5 and "
        "https://hooks.slack.com/services/T01/B02/Xy9 and "
        "https://discord.com/api/webhooks/9876/Tok-en_1"
    )
    assert redact(text) == (
        "POST https://api.telegram.org/bot***/sendMessage?chat_id=5 and "
        "https://hooks.slack.com/services/*** and "
        "https://discord.com/api/webhooks/9876/***"
    )
