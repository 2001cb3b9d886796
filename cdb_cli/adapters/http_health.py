"""``/health``, ``/ready`` and ``/metrics`` of a cdb run on one port (aiohttp).

- ``GET /health`` — liveness: always 200 while the process serves, with run id, version, mode and
  uptime as JSON.
- ``GET /ready`` — readiness: the run loop passes a callable that returns the reasons it is not
  ready (an empty list when it is), e.g. ``["feed stale: BTCUSDT 45 s", "database down"]``;
  200 ``{"ready": true, "reasons": []}`` or 503 with the reasons. A check that raises or takes
  longer than ``readiness_timeout_s`` makes the answer 503 with that as the reason.
- ``GET /metrics`` — the :class:`~cdb_cli.adapters.metrics.Metrics` registry in the Prometheus
  text format (OpenMetrics when the scraper asks for it); ``cdb_ready`` is refreshed first.

The server binds ``127.0.0.1:8000`` by default (``CDB_HTTP_HOST`` / ``CDB_HTTP_PORT``); port 0
picks a free port, which :attr:`HealthServer.port` reports after :meth:`HealthServer.start`. A
taken port is one ``ConfigurationError`` line naming the address and the fix.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from aiohttp import hdrs, web
from prometheus_client.exposition import choose_encoder

from cdb_cli import __version__
from cdb_cli.adapters.metrics import Metrics
from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.engine.health import readiness_reasons

if TYPE_CHECKING:
    from cdb_cli.settings import Settings

__all__ = ["HealthServer", "ReadinessCheck", "probe_ready", "readiness_reasons"]

logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Sequence[str] | Awaitable[Sequence[str]]]
"""Returns why the run is not ready (empty when it is); may be a coroutine function."""

READINESS_TIMEOUT_S: Final = 2.0


class HealthServer:
    """The health and metrics HTTP server; ``async with`` starts and stops it.

    Parameters
    ----------
    metrics:
        The run's metrics; ``/metrics`` exposes its registry.
    readiness:
        Returns the reasons the run is not ready (see :data:`ReadinessCheck`).
    run_id, mode:
        Shown by ``/health``.
    host, port:
        Where to listen; port 0 picks a free one.
    clock:
        Monotonic seconds for the uptime (``time.monotonic``).
    """

    def __init__(
        self,
        *,
        metrics: Metrics,
        readiness: ReadinessCheck,
        run_id: str,
        mode: str = "paper",
        host: str = "127.0.0.1",
        port: int = 8000,
        version: str = __version__,
        readiness_timeout_s: float = READINESS_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.readiness = readiness
        self.run_id = run_id
        self.mode = mode
        self.host = host
        self.version = version
        self.readiness_timeout_s = readiness_timeout_s
        self.requested_port = port
        self._port: int | None = None
        self._clock = clock
        self._started = clock()
        self._runner: web.AppRunner | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        metrics: Metrics,
        readiness: ReadinessCheck,
        run_id: str,
        mode: str = "paper",
    ) -> HealthServer:
        """A server on ``CDB_HTTP_HOST:CDB_HTTP_PORT``."""
        return cls(
            metrics=metrics,
            readiness=readiness,
            run_id=run_id,
            mode=mode,
            host=settings.http_host,
            port=settings.http_port,
        )

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for); only after :meth:`start`."""
        if self._port is None:
            raise RuntimeError("The health server is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/metrics", self._metrics)
        return app

    def _bind(self) -> socket.socket:
        where = f"{self.host}:{self.requested_port}"
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self.requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            sock = socket.socket(family, kind, proto)
        except OSError as e:
            raise ConfigurationError(
                f"Cannot serve /health and /metrics on {where}: {e.strerror or e} "
                "(check CDB_HTTP_HOST)"
            ) from e
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # no TIME_WAIT delay
            sock.bind(address)
        except OSError as e:
            sock.close()
            if e.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"Cannot serve /health and /metrics on {where}: the port is already in use; "
                    "stop the other process or set CDB_HTTP_PORT to a free port"
                ) from e
            raise ConfigurationError(
                f"Cannot serve /health and /metrics on {where}: {e.strerror or e} "
                "(check CDB_HTTP_HOST and CDB_HTTP_PORT)"
            ) from e
        return sock

    async def start(self) -> int:
        """Listen and serve; returns the bound port. Raises ``ConfigurationError`` if it can't."""
        if self._runner is not None:
            raise RuntimeError("The health server is already started")
        sock = self._bind()
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]
        self._started = self._clock()
        logger.info("Serving /health, /ready and /metrics on %s", self.url)
        return self._port

    async def stop(self) -> None:
        """Stop serving (idempotent); open requests get a short grace period."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- handlers ---------------------------------------------------------------------------

    async def check_readiness(self) -> list[str]:
        """Run the readiness callable (with a timeout); the reasons it is not ready."""
        try:
            async with asyncio.timeout(self.readiness_timeout_s):
                result = self.readiness()
                if inspect.isawaitable(result):
                    result = await result
            reasons = [str(reason) for reason in result]
        except TimeoutError:
            reasons = [f"readiness check timed out after {self.readiness_timeout_s:g} s"]
        except Exception as e:  # the check itself failed: not ready, and say why
            logger.warning("Readiness check failed: %s: %s", type(e).__name__, e)
            reasons = [f"readiness check failed: {type(e).__name__}: {e}"]
        self.metrics.set_ready(not reasons)
        return reasons

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "run_id": self.run_id,
                "mode": self.mode,
                "version": self.version,
                "uptime_s": round(self._clock() - self._started, 3),
            }
        )

    async def _ready(self, request: web.Request) -> web.Response:
        reasons = await self.check_readiness()
        return web.json_response(
            {"ready": not reasons, "run_id": self.run_id, "reasons": reasons},
            status=503 if reasons else 200,
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.check_readiness()
        encoder, content_type = choose_encoder(request.headers.get(hdrs.ACCEPT, ""))
        # aiohttp's content_type argument takes no parameters; the raw header keeps them.
        return web.Response(
            body=encoder(self.metrics.registry), headers={hdrs.CONTENT_TYPE: content_type}
        )


def probe_ready(host: str, port: int, *, timeout_s: float = 1.0) -> dict[str, object]:
    """Ask ``/ready`` of the run serving ``host:port`` (a wildcard address is asked on loopback),
    for ``cdb risk status``: ``running`` False when nothing answers within ``timeout_s``, else
    its ``ready``, ``reasons`` and ``run_id``."""
    import httpx

    address = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - a name
    url = f"http://{f'[{address}]' if ':' in address else address}:{port}/ready"
    try:
        response = httpx.get(url, timeout=timeout_s, trust_env=False)  # loopback, no proxy
    except httpx.HTTPError as e:
        return {"url": url, "running": False, "error": type(e).__name__}
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "ready" not in body:
        return {"url": url, "running": False, "error": f"HTTP {response.status_code}, not cdb"}
    return {
        "url": url,
        "running": True,
        "ready": bool(body["ready"]) and response.status_code == 200,
        "reasons": [str(reason) for reason in body.get("reasons") or []],
        "run_id": body.get("run_id"),
    }
