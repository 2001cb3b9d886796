"""The MEXC rows of ``cdb systemcheck``: REST reachable, clock offset, API keys, trading
permission, WebSocket.

They follow ``CORE_CHECKS``. All use the network (skipped by ``--quick``). An unreachable MEXC
fails in live mode and warns in paper mode (paper trading needs MEXC market data, replay does
not); to rehearse without MEXC, point ``CDB_MEXC_REST_URL``/``CDB_MEXC_WS_URL`` at
``cdb sim-exchange``. Keys are optional in paper mode, required in live mode, and always checked
when set: rejected keys fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from cdb_cli.engine.errors import DependencyError, VenueError, VenueRejected
from cdb_cli.services.systemcheck.model import Check, CheckContext, Outcome, Status

if TYPE_CHECKING:
    from cdb_cli.adapters.mexc.models import MexcSymbol
    from cdb_cli.settings import Settings

__all__ = [
    "MEXC_CHECKS",
    "check_mexc_clock",
    "check_mexc_keys",
    "check_mexc_rest",
    "check_mexc_trading",
    "check_mexc_websocket",
]

CLOCK_WARN_MS: Final = 1000
CLOCK_FAIL_MS: Final = 60_000  # MEXC's largest recvWindow
PROBE_TIMEOUT_S: Final = 5.0
REHEARSE: Final = "to rehearse without MEXC: cdb sim-exchange, then point CDB_MEXC_*_URL at it"


def _unreachable(settings: Settings, what: str, error: Exception) -> Outcome:
    message = getattr(error, "message", str(error))
    if settings.mode == "live":
        return Outcome(Status.FAIL, "unreachable", f"{message}; live trading needs {what}")
    return Outcome(
        Status.WARN, "unreachable", f"{message}; paper trading needs {what} ({REHEARSE})"
    )


def check_mexc_rest(context: CheckContext) -> Outcome:
    """``GET /api/v3/ping`` at ``CDB_MEXC_REST_URL`` answers, and how fast."""
    import time

    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.context import run_async

    settings = context.require_settings()

    async def ping() -> float:
        async with MexcHttpClient(
            settings.mexc_rest_url, max_attempts=1, timeout=PROBE_TIMEOUT_S
        ) as client:
            started = time.perf_counter()
            await client.ping()
            return (time.perf_counter() - started) * 1000.0

    try:
        elapsed = run_async(ping())
    except (DependencyError, VenueError) as e:
        return _unreachable(settings, "the MEXC REST API", e)
    return Outcome(Status.OK, f"{settings.mexc_rest_url}, {elapsed:.0f} ms")


def check_mexc_clock(context: CheckContext) -> Outcome:
    """The offset between this clock and MEXC's (signed requests must be within recvWindow).

    Fails beyond 60 s (any recvWindow); in live mode already at half the client's recvWindow
    (2.5 s of the default 5 s), so a signed order never depends on the measured offset alone.
    """
    from cdb_cli.adapters.mexc.http import MexcHttpClient
    from cdb_cli.context import run_async

    settings = context.require_settings()

    async def offset() -> tuple[int, int]:
        async with MexcHttpClient(
            settings.mexc_rest_url, max_attempts=1, timeout=PROBE_TIMEOUT_S
        ) as client:
            return await client.sync_time(), client.recv_window

    measured, recv_window = run_async(offset())
    value = f"offset {measured:+d} ms"
    if abs(measured) >= CLOCK_FAIL_MS:
        return Outcome(Status.FAIL, value, "beyond any recvWindow: fix the system clock (NTP)")
    if settings.mode == "live" and abs(measured) >= recv_window // 2:
        return Outcome(
            Status.FAIL,
            value,
            f"live trading needs it below half the recvWindow ({recv_window // 2} ms): "
            "fix the system clock (NTP)",
        )
    if abs(measured) >= CLOCK_WARN_MS:
        return Outcome(Status.WARN, value, "cdb signs with the measured offset; still, fix NTP")
    return Outcome(Status.OK, value)


def check_mexc_keys(context: CheckContext) -> Outcome:
    """The API keys are accepted (a signed ``/api/v3/account``); required in live mode."""
    from cdb_cli.context import run_async
    from cdb_cli.kernel import mexc_http_client

    settings = context.require_settings()
    if settings.mexc_api_key is None or settings.mexc_api_secret is None:
        hint = "set CDB_MEXC_API_KEY and CDB_MEXC_API_SECRET"
        if settings.mode == "live":
            return Outcome(Status.FAIL, "not configured", f"live trading needs keys: {hint}")
        return Outcome(Status.SKIP, "not configured", f"paper mode; for live trading {hint}")

    async def account() -> tuple[str, int]:
        async with mexc_http_client(settings) as client:
            balances = await client.account()
            return client.api_key_masked or "", sum(1 for b in balances.values() if b.total)

    try:
        masked, assets = run_async(account())
    except VenueRejected as e:
        return Outcome(Status.FAIL, "rejected", e.message)
    return Outcome(Status.OK, f"{masked} accepted, {assets} asset(s) with a balance")


def check_mexc_trading(context: CheckContext) -> Outcome:
    """The account may trade spot (``canTrade``, SPOT permission) and every ``CDB_SYMBOLS`` symbol
    is tradable: status 1, spot allowed (``exchangeInfo``), open to the API (listed by
    ``/api/v3/defaultSymbols``; MEXC refuses orders on others with 10007) and to both sides
    (``tradeSideType`` 1: a buy-only symbol could never be exited). Needs accepted keys."""
    from cdb_cli.context import run_async
    from cdb_cli.kernel import mexc_http_client

    settings = context.require_settings()

    async def probe() -> tuple[bool, tuple[str, ...], dict[str, MexcSymbol], frozenset[str]]:
        async with mexc_http_client(settings) as client:
            can_trade, permissions = await client.account_permissions()
            listed: dict[str, MexcSymbol] = {}
            for symbol in settings.symbols:  # one by one: MEXC refuses a list with an unknown one
                try:
                    found = await client.symbols([symbol])
                except VenueRejected:
                    continue  # "Invalid symbol": not listed
                if symbol in found:
                    listed[symbol] = found[symbol]
            return can_trade, permissions, listed, await client.api_symbols()

    try:
        can_trade, permissions, listed, api_symbols = run_async(probe())
    except VenueRejected as e:
        return Outcome(Status.FAIL, "rejected", e.message)
    problems = _trading_problems(can_trade, permissions, settings.symbols, listed, api_symbols)
    if problems:
        status = Status.FAIL if settings.mode == "live" else Status.WARN
        return Outcome(status, "not tradable", "; ".join(problems))
    value = f"spot trading allowed for {', '.join(settings.symbols)}"
    limit_only = [s for s in settings.symbols if not listed[s].instrument.market_orders]
    if limit_only:
        value += f" (no MARKET orders on {', '.join(limit_only)}: cdb sends LIMIT orders there)"
    return Outcome(Status.OK, value)


def _trading_problems(
    can_trade: bool,
    permissions: tuple[str, ...],
    symbols: list[str],
    listed: dict[str, MexcSymbol],
    api_symbols: frozenset[str],
) -> list[str]:
    problems = []
    if not can_trade:
        problems.append("the account may not trade (canTrade false)")
    if "SPOT" not in permissions:
        problems.append(f"no SPOT permission (has {', '.join(permissions) or 'none'})")
    for symbol in symbols:
        found = listed.get(symbol)
        if found is None:
            problems.append(f"{symbol} is not listed")
        elif not found.tradable:
            problems.append(f"{symbol} is not tradable (status, spot or permission)")
        elif symbol not in api_symbols:
            problems.append(
                f"{symbol} is not tradable over the API (not in /api/v3/defaultSymbols; "
                "MEXC answers its orders with 10007)"
            )
        elif found.sides_problem is not None:
            problems.append(f"{symbol} {found.sides_problem}")
    return problems


def check_mexc_websocket(context: CheckContext) -> Outcome:
    """``CDB_MEXC_WS_URL`` accepts a subscription to the first symbol's trades and acks it."""
    from cdb_cli.adapters.mexc.ws import deals_topic, probe
    from cdb_cli.context import run_async

    settings = context.require_settings()
    topic = deals_topic(settings.symbols[0])
    try:
        elapsed = run_async(probe(settings.mexc_ws_url, topic, within=PROBE_TIMEOUT_S))
    except VenueRejected as e:
        return Outcome(Status.FAIL, "refused", e.message)
    except DependencyError as e:
        return _unreachable(settings, "the MEXC WebSocket", e)
    return Outcome(Status.OK, f"{settings.mexc_ws_url}, ack in {elapsed:.0f} ms")


MEXC_CHECKS: Final[tuple[Check, ...]] = (
    Check("mexc rest", check_mexc_rest, network=True),
    Check("mexc clock", check_mexc_clock, network=True, needs=("mexc rest",)),
    Check("mexc keys", check_mexc_keys, network=True, needs=("mexc rest",)),
    Check("mexc trading", check_mexc_trading, network=True, needs=("mexc keys",)),
    Check("mexc websocket", check_mexc_websocket, network=True),
)
