"""Real HTTP receivers on 127.0.0.1 standing in for Slack, Discord, Telegram, ntfy or a JSON
endpoint (``http.server`` on a thread): each keeps every POST it gets. A receiver answers 500 to
its first ``fail`` requests (``fail=-1``: all) and ``status`` (200) after, or hangs until the test
ends (``hang=True``). tests/conftest.py imports the ``webhook_receiver`` fixture."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass(frozen=True)
class Post:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Receiver:
    """One server: ``base`` is its ``http://127.0.0.1:PORT``; ``posts`` what it got (also the
    ones it answered 500); ``wait(n)`` waits until it has ``n``."""

    base: str = ""
    fail: int = 0
    hang: bool = False
    status: int = 200
    posts: list[Post] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, post: Post) -> int:
        """Keep ``post``; return the status to answer (0: hang)."""
        with self._changed:
            self.posts.append(post)
            self._changed.notify_all()
            count = len(self.posts)
        if self.hang:
            return 0
        status = 500 if self.fail < 0 or count <= self.fail else self.status
        self.answered.append(status)
        return status

    def wait(self, count: int = 1, timeout_s: float = 30.0) -> list[Post]:
        with self._changed:
            done = self._changed.wait_for(lambda: len(self.posts) >= count, timeout_s)
        assert done, f"{self.base} got {len(self.posts)} POST(s), not {count}"
        return list(self.posts)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            parts = urlsplit(self.path)
            post = Post(parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
            status = receiver.record(post)
            if status == 0:
                receiver.released.wait(60)
                return
            answer = json.dumps({"ok": status < 300}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[Callable[..., Receiver]]:
    """Start a receiver: ``webhook_receiver(fail=0, hang=False, status=200)``."""
    servers: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def start(*, fail: int = 0, hang: bool = False, status: int = 200) -> Receiver:
        receiver = Receiver(fail=fail, hang=hang, status=status)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        server.daemon_threads = True
        receiver.base = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, receiver))
        return receiver

    yield start
    for server, receiver in servers:
        receiver.released.set()
        server.shutdown()
        server.server_close()
