"""systemd's notification protocol on a real datagram socket, as systemd listens for it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdb_cli.adapters.systemd import ServiceNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield path, sock
    finally:
        sock.close()


def received(sock: socket.socket) -> dict[str, str]:
    lines = sock.recv(4096).decode().split("\n")
    return dict(line.split("=", 1) for line in lines)


def test_ready_watchdog_status_and_stopping_reach_the_socket(
    listener: tuple[str, socket.socket],
) -> None:
    path, sock = listener
    notifier = ServiceNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"})
    assert notifier.enabled
    assert notifier.watchdog_s == 20.0
    assert notifier.ready("trading BTCUSDT")
    assert received(sock) == {"READY": "1", "STATUS": "trading BTCUSDT"}
    assert notifier.watchdog()
    assert received(sock) == {"WATCHDOG": "1"}
    assert notifier.status("not ready:\nfeed stale")  # one line, whatever it is given
    assert received(sock) == {"STATUS": "not ready: feed stale"}
    assert notifier.stopping("stopping")
    assert received(sock) == {"STOPPING": "1", "STATUS": "stopping"}
    notifier.close()


def test_an_abstract_socket_is_reached_too() -> None:
    name = f"cdb-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = ServiceNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.watchdog()
        assert received(sock) == {"WATCHDOG": "1"}
        notifier.close()
    finally:
        sock.close()


def test_without_systemd_nothing_is_sent_and_nothing_fails() -> None:
    notifier = ServiceNotifier({})
    assert not notifier.enabled
    assert notifier.watchdog_s is None
    assert notifier.ready("x") is False


def test_a_watchdog_meant_for_another_process_is_not_ours(
    listener: tuple[str, socket.socket],
) -> None:
    path, _ = listener
    other = str(os.getpid() + 1)
    notifier = ServiceNotifier(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": other}
    )
    assert notifier.watchdog_s is None
    mine = ServiceNotifier(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert mine.watchdog_s == 1.0


def test_a_socket_nobody_listens_on_is_one_warning_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = ServiceNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.watchdog() is False
    assert notifier.watchdog() is False
    notifier.close()
    warnings = [r for r in caplog.records if "Cannot notify systemd" in r.message]
    assert len(warnings) == 1


def test_a_relative_socket_path_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    notifier = ServiceNotifier({"NOTIFY_SOCKET": "relative/notify"})
    assert not notifier.enabled
    assert "neither a path nor @abstract" in caplog.text
