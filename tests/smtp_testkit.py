"""A real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS or implicit TLS, with or without
login; every mail it accepts lands in an ``Inbox``. tests/conftest.py imports the fixtures."""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from market_testkit import free_port

USER = "ops"
PASSWORD = "S3cret-smtp-pw"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """The handler: keeps every accepted mail, and the logins it saw."""

    mails: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content.replace(b"\r\n", b"\n")  # the wire's CRLF, as text again
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@dataclass
class SmtpServer:
    port: int
    inbox: Inbox
    client_context: ssl.SSLContext | None


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), as (cert, key)."""
    if shutil.which("openssl") is None:  # pragma: no cover - Debian ships it
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def smtp_server(certificate: tuple[Path, Path]) -> Iterator[Callable[..., SmtpServer]]:
    """Start a server: ``smtp_server(tls="none"|"starttls"|"ssl", login=False)``."""
    controllers: list[Controller] = []

    def start(*, tls: str = "none", login: bool = False) -> SmtpServer:
        inbox = Inbox()
        cert, key = certificate
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        options: dict[str, Any] = {}
        if tls == "starttls":
            options.update(tls_context=server_context, require_starttls=True)
        elif tls == "ssl":
            options.update(ssl_context=server_context)
        if login:
            # aiosmtpd does not see implicit TLS as TLS: over "ssl" AUTH is offered, not required
            # (the tests check the login happened); elsewhere a password needs TLS first.
            implicit = tls == "ssl"
            options.update(
                authenticator=inbox.authenticate,
                auth_required=not implicit,
                auth_require_tls=not implicit,
            )
        port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        client = ssl.create_default_context(cafile=str(cert)) if tls != "none" else None
        return SmtpServer(port, inbox, client)

    yield start
    for controller in controllers:
        controller.stop()
