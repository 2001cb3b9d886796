"""systemd's service notification protocol (``sd_notify``), for ``Type=notify`` units.

systemd sets ``NOTIFY_SOCKET`` (a datagram socket: a path, or ``@name`` in the abstract
namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``). A notifier sends
newline-separated ``KEY=value`` lines as one datagram: ``READY=1`` when the service is up,
``WATCHDOG=1`` at least every ``WATCHDOG_USEC`` (or systemd restarts it), ``STOPPING=1`` when it
shuts down and ``STATUS=…`` for ``systemctl status``. Without ``NOTIFY_SOCKET`` every call is a
no-op, so the same ``cdb run`` works under systemd, in a container and in a terminal.

The protocol is a few lines of ``socket``; systemd's own C library is not needed (the
``systemd-python`` binding wraps the same datagram).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["ServiceNotifier"]

logger = logging.getLogger(__name__)


class ServiceNotifier:
    """Tells systemd (``NOTIFY_SOCKET``) how the service is; does nothing without one."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: its address starts with a NUL byte.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        if self._address and not self._address.startswith(("/", "\0")):
            logger.warning("NOTIFY_SOCKET is neither a path nor @abstract; not notifying systemd")
            self._address = ""
        self.watchdog_s: float | None = None
        """How often systemd wants ``WATCHDOG=1`` at the latest; None without a watchdog."""
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if self._address and usec.isdigit() and int(usec) > 0 and pid in ("", str(os.getpid())):
            self.watchdog_s = int(usec) / 1_000_000
        self._socket: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        """Whether systemd listens (``NOTIFY_SOCKET`` set)."""
        return bool(self._address)

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; False when nothing was sent. A failure is
        logged once and never raised: the service runs on without its supervisor's news."""
        if not self._address:
            return False
        message = "\n".join(f"{key}={_one_line(value)}" for key, value in fields.items())
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message.encode(), self._address)
        except OSError as e:
            if not self._failed:
                logger.warning("Cannot notify systemd at NOTIFY_SOCKET: %s", e.strerror or e)
                self._failed = True
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(READY="1", STATUS=status)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG="1")

    def status(self, status: str) -> bool:
        return self.notify(STATUS=status)

    def stopping(self, status: str) -> bool:
        return self.notify(STOPPING="1", STATUS=status)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _one_line(value: str) -> str:
    return " ".join(value.split())[:500]
