"""Notifications to the operator: mail over SMTP (alerts, the daily check)."""

from __future__ import annotations

from cdb_cli.adapters.notify.email import EmailNotifier, RateLimiter, SmtpConfig, TlsMode

__all__ = ["EmailNotifier", "RateLimiter", "SmtpConfig", "TlsMode"]
