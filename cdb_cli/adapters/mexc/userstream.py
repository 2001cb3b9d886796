"""``MexcUserStream``: our orders, fills and balances over the private WebSocket (mexc_api.md §4.7).

It gets a listenKey from the REST client, connects to ``…/ws?listenKey=KEY``, subscribes the three
private channels and keeps the key alive with a PUT every ``keepalive_interval`` (MEXC: valid 60
minutes, PUT every 30). When the keepalive fails the key is dropped, the socket closed, and the
reconnect asks for a new key. It reuses :class:`MexcDataClient`'s connection supervision (PING,
idle timeout, backoff, rotation); every reconnect counts a gap on each channel, the caller's cue to
reconcile orders over REST. Decoded updates arrive on :attr:`updates`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from cdb_cli.adapters.mexc.http import MexcHttpClient
from cdb_cli.adapters.mexc.private import PrivateDecoder, PrivateUpdate
from cdb_cli.adapters.mexc.ws import MexcDataClient
from cdb_cli.engine.errors import CdbError

__all__ = ["PRIVATE_CHANNELS", "MexcUserStream"]

logger = logging.getLogger(__name__)

PRIVATE_CHANNELS = (
    "spot@private.orders.v3.api.pb",
    "spot@private.deals.v3.api.pb",
    "spot@private.account.v3.api.pb",
)


class MexcUserStream(MexcDataClient):
    """Private updates of the account behind ``http``'s credentials.

    ``http`` stays the caller's: stop this stream (which closes its listenKey) before closing it.
    """

    def __init__(
        self,
        http: MexcHttpClient,
        url: str,
        *,
        keepalive_interval: float = 1800.0,
        **options: Any,
    ) -> None:
        super().__init__(url, PRIVATE_CHANNELS, **options)
        self.http = http
        self.keepalive_interval = keepalive_interval
        self.listen_key: str | None = None
        self.updates: asyncio.Queue[PrivateUpdate] = asyncio.Queue()
        self.private_decoder = PrivateDecoder()
        self._keepalive: asyncio.Task[None] | None = None

    async def _url(self) -> str:
        if self.listen_key is None:
            self.listen_key = await self.http.create_listen_key()
            self.counters["listen_keys"] += 1
        return f"{self.url}?listenKey={self.listen_key}"

    async def start(self) -> None:
        await super().start()
        if self._keepalive is None:
            self._keepalive = asyncio.create_task(self._keep_alive())

    async def stop(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
            self._keepalive = None
        await super().stop()
        if self.listen_key is not None:
            with contextlib.suppress(CdbError):
                await self.http.close_listen_key(self.listen_key)
            self.listen_key = None

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_interval)
            key = self.listen_key
            if key is None:
                continue
            try:
                await self.http.keepalive_listen_key(key)
                self.counters["keepalives"] += 1
            except CdbError as e:
                self.counters["keepalive_failures"] += 1
                logger.warning(
                    "MEXC listenKey keepalive failed (%s); reconnecting with a new key", e
                )
                self.listen_key = None
                for ws in list(self.sockets.values()):
                    await ws.close()

    async def _deliver(self, frame: bytes) -> None:
        channel, update = self.private_decoder.decode(frame)
        if channel in self._topic_set:
            self.streams.admit(channel, [])  # freshness of the private channel
        if update is not None:
            await self.updates.put(update)
