"""``cdb sim-exchange``: a local exchange that speaks MEXC spot v3 on the wire.

REST (``/api/v3/…``) and the WebSocket (``/ws``) on one port, signed exactly like MEXC, with a
seeded market model (:mod:`.model`: regimes, bursty volume, the same process for the klines history
and the live trades, a function of wall-clock time so a restart continues) or a replay file as the
market, per-key balances, order matching against its own book, and fault injection for tests and
rehearsals. Import :class:`SimExchange` and
:class:`SimServer` to run it in process.
"""

from __future__ import annotations

from cdb_cli.adapters.mexc.sim.exchange import SimConfig, SimExchange
from cdb_cli.adapters.mexc.sim.faults import Faults
from cdb_cli.adapters.mexc.sim.server import SimServer

__all__ = ["Faults", "SimConfig", "SimExchange", "SimServer"]
