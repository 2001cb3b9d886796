"""``cdb notify test``: one test message per channel (mail, each webhook), a row per result, exit 4
when one fails; a webhook URL (its token) never in the output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from market_testkit import free_port
from smtp_testkit import SmtpServer
from typer.testing import Result
from webhook_testkit import Receiver

from cdb_cli.errors import ExitCode

TOKEN = "T0kenQWERTYUIOPasdfghjkl1234"


def _output(result: Result) -> str:
    return result.stdout + result.stderr


def test_every_channel_gets_a_test_message_and_exit_0(
    cdb: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    smtp_server: Callable[..., SmtpServer],
    webhook_receiver: Callable[..., Receiver],
) -> None:
    server, slack, telegram = smtp_server(), webhook_receiver(), webhook_receiver()
    monkeypatch.setenv("CDB_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CDB_SMTP_PORT", str(server.port))
    monkeypatch.setenv("CDB_SMTP_TLS", "none")
    monkeypatch.setenv("CDB_SMTP_FROM", "cdb@example.org")
    monkeypatch.setenv("CDB_SMTP_TO", "ops@example.org")
    monkeypatch.setenv(
        "CDB_WEBHOOK_URLS",
        f"slack:{slack.base}/services/T1/B1/{TOKEN},"
        f"telegram:{telegram.base}/bot1:{TOKEN}/sendMessage?chat_id=77",
    )

    result = cdb("notify", "test", "--json")

    assert result.exit_code == 0, _output(result)
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert [(c["channel"], c["kind"], c["ok"], c["detail"]) for c in document["channels"]] == [
        (f"mail (127.0.0.1:{server.port} (none))", "mail", True, "sent"),
        ("slack #1 (127.0.0.1)", "webhook", True, "sent"),
        ("telegram #2 (127.0.0.1)", "webhook", True, "sent"),
    ]
    assert [mail.message["Subject"] for mail in server.inbox.mails] == ["cdb notify test"]
    assert slack.posts[0].json()["text"].startswith("*cdb notify test*\nA test message from cdb")
    assert telegram.posts[0].json()["chat_id"] == "77"
    assert TOKEN not in _output(result)


def test_a_failing_channel_is_its_row_and_exit_4(
    cdb: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    webhook_receiver: Callable[..., Receiver],
) -> None:
    good, failing = webhook_receiver(), webhook_receiver(fail=-1)
    nowhere = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(
        "CDB_WEBHOOK_URLS",
        f"discord:{good.base}/api/webhooks/1/{TOKEN},ntfy:{failing.base}/topic-{TOKEN},"
        f"json:{nowhere}/hook?token={TOKEN}",
    )

    result = cdb("notify", "test")

    assert result.exit_code == ExitCode.CHECK_FAILED, _output(result)
    rows = [line for line in result.stdout.splitlines() if "#" in line]
    assert len(rows) == 3, result.stdout
    expected = [("discord #1 (127.0.0.1)", "sent"), ("ntfy #2 (127.0.0.1)", "HTTP 500")]
    expected.append(("json #3 (127.0.0.1)", "refused"))
    for row, (channel, detail) in zip(rows, expected, strict=True):
        assert channel in row
        assert detail in row
    assert result.stderr.strip() == (
        "2 of 3 channel(s) failed: ntfy #2 (127.0.0.1), json #3 (127.0.0.1)"
    )
    assert len(failing.posts) == 1  # the test tries each channel once
    assert good.posts[0].json()["content"].startswith("**cdb notify test**")
    assert TOKEN not in _output(result)

    as_json = cdb("notify", "test", "--json")
    assert as_json.exit_code == ExitCode.CHECK_FAILED
    document = json.loads(as_json.stdout)
    assert document["ok"] is False
    assert [channel["ok"] for channel in document["channels"]] == [True, False, False]
    assert TOKEN not in _output(as_json)


def test_no_channel_configured_is_exit_4(cdb: Callable[..., Result]) -> None:
    result = cdb("notify", "test")
    assert result.exit_code == ExitCode.CHECK_FAILED
    assert "No notification channel is configured" in result.stderr


def test_a_bad_webhook_entry_is_exit_3_in_one_line_without_its_url(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    value = f"slack:https://hooks.slack.com/services/{TOKEN},dicsord:https://d.com/{TOKEN}"
    monkeypatch.setenv("CDB_WEBHOOK_URLS", value)
    result = cdb("notify", "test")
    assert result.exit_code == ExitCode.CONFIGURATION
    assert "CDB_WEBHOOK_URLS: entry 2: unknown format 'dicsord'" in result.stderr
    assert TOKEN not in _output(result)

    env = tmp_path / ".env"
    env.write_text(f"CDB_WEBHOOK_URLS={value}\n")
    env.chmod(0o600)
    monkeypatch.delenv("CDB_WEBHOOK_URLS")
    checked = cdb("env-validate", "--env-file", str(env), "--json")
    assert checked.exit_code == ExitCode.CONFIGURATION, _output(checked)
    problems = json.loads(checked.stdout)["problems"]
    assert [(p["variable"], p["message"].split(";")[0]) for p in problems] == [
        ("CDB_WEBHOOK_URLS", "entry 2: unknown format 'dicsord'")
    ]
    assert TOKEN not in _output(checked)
