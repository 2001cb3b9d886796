"""``cdb sim-exchange``: a local MEXC-compatible exchange for tests and rehearsals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cdb_cli.context import app_context, run_async
from cdb_cli.options import SymbolsOpt, symbols_of

if TYPE_CHECKING:
    from cdb_cli.kernel.simulator import SimulatorReady

__all__ = ["sim_exchange"]


def _parse_balances(values: list[str]) -> dict[str, str]:
    balances: dict[str, str] = {}
    for value in values:
        asset, _, amount = value.partition("=")
        if not asset or not amount:
            raise typer.BadParameter(f"{value!r} is not ASSET=AMOUNT", param_hint="--balance")
        balances[asset.strip().upper()] = amount.strip()
    return balances


def sim_exchange(
    ctx: typer.Context,
    *,
    port: Annotated[
        int, typer.Option(help="TCP port for REST and /ws (0: pick a free one).")
    ] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind; keep the loopback default.")] = (
        "127.0.0.1"
    ),
    symbol: SymbolsOpt = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="CDB_MEXC_API_KEY", help="Accepted API key.", show_default=False),
    ] = None,
    api_secret: Annotated[
        str | None,
        typer.Option(
            envvar="CDB_MEXC_API_SECRET",
            help="Its secret (prefer the env var).",
            show_default=False,
        ),
    ] = None,
    balance: Annotated[
        list[str] | None,
        typer.Option(help="Starting balance ASSET=AMOUNT (repeatable; default USDT=10000)."),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the simulated market. Its prices are a function of the seed and the "
            "wall-clock minute: a restart continues where the market was, and the same seed "
            "at the same time gives the same market."
        ),
    ] = 1,
    replay: Annotated[
        Path | None,
        typer.Option(
            help="Replay file of [open_ms, o, h, l, c, v] rows instead of the seeded market.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    history_days: Annotated[
        float, typer.Option(help="Days of 1m candles served by /klines.")
    ] = 3.0,
    tick_interval: Annotated[
        float,
        typer.Option(
            help="Mean seconds between a symbol's trades (each symbol on its own random "
            "schedule; with --lockstep: every symbol at once, exactly every N seconds)."
        ),
    ] = 0.5,
    lockstep: Annotated[
        bool,
        typer.Option(
            help="Step every symbol at once on a fixed clock (with --replay: every symbol on "
            "the same row)."
        ),
    ] = False,
    level_quote: Annotated[
        float,
        typer.Option(
            help="Quote value of each of the book's 10 levels a side (small: partial fills)."
        ),
    ] = 5000.0,
    mx_deduct_price: Annotated[
        float,
        typer.Option(
            help="MX deduction: commissions are paid in MX at this price in the quote by "
            "accounts holding enough (give them MX with --balance MX=…); 0: off."
        ),
    ] = 0.0,
    rate_limit: Annotated[
        int,
        typer.Option(
            help="MEXC request weight per 10 s and client address before 429 with Retry-After "
            "(each endpoint costs MEXC's documented weight; 0: off)."
        ),
    ] = 0,
    api_untradable: Annotated[
        list[str] | None,
        typer.Option(
            "--api-untradable",
            help="Symbol listed but not tradable over the API: left out of "
            "/api/v3/defaultSymbols, orders answered 10007 (repeatable).",
            show_default=False,
        ),
    ] = None,
    no_market: Annotated[
        list[str] | None,
        typer.Option(
            "--no-market",
            help="Symbol without MARKET in its orderTypes: MARKET orders answered 30051 "
            "(repeatable).",
            show_default=False,
        ),
    ] = None,
    fail_5xx: Annotated[int, typer.Option(help="Answer the next N REST requests with 503.")] = 0,
    fail_429: Annotated[int, typer.Option(help="Answer the next N REST requests with 429.")] = 0,
    retry_after: Annotated[float, typer.Option(help="Retry-After seconds of injected 429s.")] = 1.0,
    delay: Annotated[float, typer.Option(help="Seconds of delay before every REST answer.")] = 0.0,
    fail_html: Annotated[
        int, typer.Option(help="Answer the next N REST requests with a proxy's HTML 502 page.")
    ] = 0,
    fail_empty: Annotated[
        int, typer.Option(help="Answer the next N REST requests with 200 and an empty body.")
    ] = 0,
    accept_then_5xx: Annotated[
        int,
        typer.Option(
            "--accept-then-5xx",
            help="Book the next N new orders but answer 503 (outcome unknown to the client).",
        ),
    ] = 0,
    clock_offset_ms: Annotated[
        int,
        typer.Option(help="Run the server clock N ms ahead of wall time (negative: behind)."),
    ] = 0,
    stall_every: Annotated[
        float, typer.Option(help="Stall all WebSockets (send nothing) every N seconds (0: never).")
    ] = 0.0,
    stall_for: Annotated[float, typer.Option(help="Seconds each stall lasts.")] = 5.0,
    drop_every: Annotated[
        float, typer.Option(help="Cut all WebSockets every N seconds (0: never).")
    ] = 0.0,
    ws_duplicate_rate: Annotated[
        float, typer.Option(help="Share of data frames sent twice.")
    ] = 0.0,
    duration: Annotated[
        float, typer.Option(help="Stop after N seconds (0: run until Ctrl-C).")
    ] = 0.0,
) -> None:
    """Run a local MEXC-compatible exchange (REST /api/v3 and WebSocket /ws on one port).

    Point cdb at it with CDB_MEXC_REST_URL=http://HOST:PORT and CDB_MEXC_WS_URL=ws://HOST:PORT/ws.
    Faults can also be changed while it runs: POST /_sim/faults with JSON, POST /_sim/drop.
    """
    from decimal import Decimal, InvalidOperation

    from cdb_cli.kernel.simulator import serve_simulator, simulator_config

    context = app_context(ctx)
    symbols = tuple(symbols_of(symbol) or context.settings().symbols)
    try:
        balances = {a: Decimal(v) for a, v in _parse_balances(balance or ["USDT=10000"]).items()}
    except InvalidOperation:
        raise typer.BadParameter("amount is not a number", param_hint="--balance") from None
    config = simulator_config(
        symbols=symbols,
        balances=balances,
        api_key=api_key,
        api_secret=api_secret,
        seed=seed,
        replay=replay,
        history_days=history_days,
        tick_interval=tick_interval,
        lockstep=lockstep,
        level_quote=level_quote,
        mx_deduct_price=mx_deduct_price,
        rate_limit=rate_limit,
        api_untradable=tuple(name.strip().upper() for name in api_untradable or ()),
        no_market=tuple(name.strip().upper() for name in no_market or ()),
    )
    faults: dict[str, object] = {
        "http_5xx": fail_5xx,
        "http_429": fail_429,
        "http_html": fail_html,
        "http_empty": fail_empty,
        "accept_then_5xx": accept_then_5xx,
        "clock_offset_ms": clock_offset_ms,
        "retry_after": retry_after,
        "delay": delay,
        "ws_duplicate_rate": ws_duplicate_rate,
    }
    err = context.terminal.err

    def ready(server: SimulatorReady) -> None:
        typer.echo(f"CDB_MEXC_REST_URL={server.rest_url}")
        typer.echo(f"CDB_MEXC_WS_URL={server.ws_url}")
        err.print(
            f"MEXC simulator: {', '.join(symbols)}; account {server.account}; Ctrl-C stops it",
            markup=False,
        )

    run_async(
        serve_simulator(
            config,
            host=host,
            port=port,
            faults=faults,
            drop_every=drop_every,
            stall_every=stall_every,
            stall_for=stall_for,
            duration=duration,
            on_ready=ready,
        )
    )
