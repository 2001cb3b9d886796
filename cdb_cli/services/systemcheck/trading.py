"""The checks of ``cdb systemcheck`` that need the trading engine: breaker state and full path.

``TRADING_CHECKS`` follows ``CORE_CHECKS``. Neither check uses the network, so both run under
``--quick``; neither writes to the configured store.
"""

from __future__ import annotations

from typing import Final

from cdb_cli.services.systemcheck.model import Check, CheckContext, Outcome, Status

__all__ = ["TRADING_CHECKS", "check_breaker", "check_full_path"]


def check_breaker(context: CheckContext) -> Outcome:
    """The trading state the store records: active ok, reducing warn, halted fail."""
    from cdb_cli.engine.report import iso_utc
    from cdb_cli.engine.risk import TradingState
    from cdb_cli.engine.runs import trading_status
    from cdb_cli.kernel import open_store

    store = open_store(context.require_settings())
    try:
        status = trading_status(store)
    finally:
        store.close()
    since = f" since {iso_utc(status.since_ns)}" if status.since_ns is not None else ""
    run = f" (run {status.run_id})" if status.run_id else ""
    value = f"{status.state}{since}{run}"
    if status.state is TradingState.HALTED:
        return Outcome(
            Status.FAIL,
            value,
            f"{status.reason}; after checking why: cdb risk reset --reason …",
        )
    if status.state is TradingState.REDUCING:
        return Outcome(Status.WARN, value, f"{status.reason}; entries resume on the next UTC day")
    return Outcome(Status.OK, value)


def check_full_path(context: CheckContext) -> Outcome:
    """A synthetic trade through strategy, risk, paper execution and portfolio, in memory."""
    from cdb_cli.services.systemcheck.fullpath import PathBroken, run_full_path

    try:
        result = run_full_path(context.require_settings())
    except PathBroken as e:
        return Outcome(Status.FAIL, f"broken at {e.step}", e.message)
    return Outcome(Status.OK, result.summary())


TRADING_CHECKS: Final[tuple[Check, ...]] = (
    Check("breaker", check_breaker, needs=("schema",)),
    Check("full path", check_full_path),
)
