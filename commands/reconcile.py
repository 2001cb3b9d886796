"""``cdb reconcile``: compare the store with the MEXC account, the check ``cdb run --live`` runs
before its first order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdb_cli.context import app_context, run_async
from cdb_cli.options import JsonOpt, SymbolsAliasOpt, SymbolsOpt, symbols_of

if TYPE_CHECKING:
    from cdb_cli.services.reconcile import Reconciliation


def reconcile(
    ctx: typer.Context,
    *,
    symbol: SymbolsOpt = None,
    symbols: SymbolsAliasOpt = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Write what the venue says into the store: resolve open orders, book missing "
            "fills (never while cdb run --live runs on this database).",
        ),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Compare the store with the MEXC account: our open orders (looked up by client order id),
    recent fills (myTrades), external orders and fills, and balances against the ledger.

    Read-only unless --apply. Exit 0 when store and venue agree (external orders are reported
    and left alone), 4 when anything differs, 3 without API keys.
    """
    from cdb_cli.engine.errors import ConfigurationError

    context = app_context(ctx)
    settings = context.settings()
    if settings.mexc_api_key is None or settings.mexc_api_secret is None:
        raise ConfigurationError("cdb reconcile needs CDB_MEXC_API_KEY and CDB_MEXC_API_SECRET")
    chosen = symbols_of(symbol, symbols)
    from cdb_cli.services.reconcile import check_account

    result = run_async(check_account(settings, chosen or list(settings.symbols), apply=apply))
    differs = bool(
        result.anomalies
        or not result.balances_ok
        or (not apply and (result.resolved or result.booked))
    )
    if json_output or context.json:
        context.terminal.json(_document(result, differs=differs, applied=apply))
    else:
        _render(context, result, applied=apply)
    if differs:
        raise typer.Exit(4)


def _document(result: Reconciliation, *, differs: bool, applied: bool) -> dict[str, Any]:
    return {
        "ok": not differs,
        "applied": applied,
        "resolved": [
            {"client_order_id": o.client_order_id, "was": was, "now": o.status}
            for o, was in result.resolved
        ],
        "booked_fills": [f.model_dump(mode="json") for f in result.booked],
        "still_open": [o.client_order_id for o in result.still_open],
        "external_orders": [
            {
                "venue_order_id": o.venue_order_id,
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": str(o.side),
                "status": o.status,
            }
            for o in result.external_orders
        ],
        "external_fills": [
            {
                "fill_id": f.fill_id,
                "symbol": f.symbol,
                "side": str(f.side),
                "quantity": str(f.quantity),
                "price": str(f.price),
            }
            for f in result.external_fills
        ],
        "anomalies": result.anomalies,
        "balances": [
            {
                "asset": r.asset,
                "venue": str(r.venue),
                "ledger": str(r.ledger),
                "difference": str(r.difference),
                "tolerance": str(r.tolerance),
                "ok": r.ok,
            }
            for r in result.balances
        ],
    }


def _render(context: Any, result: Reconciliation, *, applied: bool) -> None:
    from rich.table import Table

    out = context.terminal.out
    findings = [line for line in result.lines() if not line.startswith("balance ")]
    verb = "applied" if applied else "would apply (run with --apply)"
    for line in findings:
        out.print(f"{line}" + ("" if "external" in line else f"  [{verb}]"), markup=False)
    if not findings:
        out.print("Orders and fills: the store agrees with the venue", markup=False)
    if result.balances:
        table = Table("asset", "venue", "ledger", "difference", "tolerance", "ok")
        for row in result.balances:
            table.add_row(
                row.asset,
                str(row.venue),
                str(row.ledger),
                str(row.difference),
                str(row.tolerance),
                "ok" if row.ok else "DIFFERS",
            )
        out.print(table)
    else:
        out.print("Balances: no live trading on this database yet", markup=False)
