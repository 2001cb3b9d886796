"""The MEXC simulator of ``cdb sim-exchange``, built from the operator's options.

The options come in the operator's units (days of history, seconds, floats, 0 for "off"); this
module turns them into the simulated exchange's config (``SimConfig``), refuses an account
without its secret, and serves the exchange until stopped, telling the caller where it listens
and which account it accepts (its key masked). ``cdb run --feed sim`` builds its in-process
simulator in :mod:`cdb_cli.kernel.system`. Adapters are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from cdb_cli.adapters.mexc.sim.exchange import SimConfig

__all__ = ["SimulatorReady", "serve_simulator", "simulator_config"]


@dataclass(frozen=True)
class SimulatorReady:
    """Where the running simulator listens, and the account it accepts."""

    rest_url: str
    ws_url: str
    account: str
    """The accepted API key, masked (``mx0a…WC5``), or that there is none."""


def simulator_config(
    *,
    symbols: tuple[str, ...],
    balances: Mapping[str, Decimal],
    api_key: str | None = None,
    api_secret: str | None = None,
    seed: int = 1,
    replay: Path | None = None,
    history_days: float = 3.0,
    tick_interval: float = 0.5,
    lockstep: bool = False,
    level_quote: float = 5000.0,
    mx_deduct_price: float = 0.0,
    rate_limit: int = 0,
    api_untradable: tuple[str, ...] = (),
    no_market: tuple[str, ...] = (),
) -> SimConfig:
    """The simulated exchange for these options: one account for ``api_key`` and
    ``api_secret`` (both or neither: ``ConfigurationError``), ``history_days`` of 1-minute
    candles, trades every ``tick_interval`` seconds on average (0: only when asked), MX
    deduction at ``mx_deduct_price`` (0: off), MEXC's request weight ``rate_limit`` per 10 s
    before 429 (0: off). ``api_untradable`` symbols are left out of ``defaultSymbols`` and their
    orders refused (10007); ``no_market`` symbols list no MARKET order type and refuse MARKET
    orders (30051); both must be among ``symbols`` (``ConfigurationError``)."""
    from cdb_cli.adapters.mexc.sim.exchange import SimConfig
    from cdb_cli.engine.errors import ConfigurationError

    if bool(api_key) != bool(api_secret):
        raise ConfigurationError("Give both --api-key and --api-secret (or neither)")
    for option, chosen in (("--api-untradable", api_untradable), ("--no-market", no_market)):
        unknown = sorted(set(chosen) - set(symbols))
        if unknown:
            raise ConfigurationError(
                f"{option} {', '.join(unknown)}: not a simulated symbol ({', '.join(symbols)})"
            )
    return SimConfig(
        symbols=symbols,
        accounts={api_key: api_secret} if api_key and api_secret else {},
        balances=dict(balances),
        seed=seed,
        replay=replay,
        history_minutes=int(history_days * 1440),
        tick_interval=tick_interval or None,
        lockstep=lockstep,
        rate_limit=rate_limit,
        api_untradable=frozenset(api_untradable),
        no_market=frozenset(no_market),
        level_quote=Decimal(repr(level_quote)),
        mx_deduct_price=Decimal(repr(mx_deduct_price)) if mx_deduct_price > 0 else None,
    )


async def serve_simulator(
    config: SimConfig,
    *,
    host: str,
    port: int,
    faults: Mapping[str, object],
    drop_every: float = 0.0,
    stall_every: float = 0.0,
    stall_for: float = 5.0,
    duration: float = 0.0,
    on_ready: Callable[[SimulatorReady], None] = lambda _: None,
) -> None:
    """Serve REST and ``/ws`` on ``host``:``port`` (0: a free port) until SIGINT/SIGTERM or
    for ``duration`` seconds, with ``faults`` injected from the start; cut every WebSocket every
    ``drop_every`` seconds, stall them ``stall_for`` seconds every ``stall_every`` seconds.
    ``on_ready`` hears where it listens once it accepts connections."""
    from cdb_cli.adapters.mexc.signing import mask_key
    from cdb_cli.adapters.mexc.sim.run import serve
    from cdb_cli.adapters.mexc.sim.server import SimServer

    key = next(iter(config.accounts), None)
    account = mask_key(key) if key else "none (public endpoints only)"

    def ready(server: SimServer) -> None:
        on_ready(SimulatorReady(server.rest_url, server.ws_url, account))

    await serve(
        config,
        host=host,
        port=port,
        faults=dict(faults),
        drop_every=drop_every,
        stall_every=stall_every,
        stall_for=stall_for,
        duration=duration,
        on_ready=ready,
    )
