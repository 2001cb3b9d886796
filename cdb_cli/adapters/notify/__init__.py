"""Notifications to the operator: mail over SMTP and webhooks (Slack, Mattermost, Discord,
Telegram, ntfy, plain JSON), fanned out by one :class:`Notifier` (alerts, the daily check)."""

from __future__ import annotations

from cdb_cli.adapters.notify.email import EmailNotifier, RateLimiter, SmtpConfig, TlsMode
from cdb_cli.adapters.notify.fanout import ChannelResult, EmailChannel, Notifier
from cdb_cli.adapters.notify.webhook import (
    Notice,
    WebhookChannel,
    WebhookTarget,
    classify,
    parse_webhook_urls,
)

__all__ = [
    "ChannelResult",
    "EmailChannel",
    "EmailNotifier",
    "Notice",
    "Notifier",
    "RateLimiter",
    "SmtpConfig",
    "TlsMode",
    "WebhookChannel",
    "WebhookTarget",
    "classify",
    "parse_webhook_urls",
]
