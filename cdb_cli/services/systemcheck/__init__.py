"""``cdb systemcheck``: every dependency of cdb as one row each (ok / warn / fail / skip).

``model.py`` holds the row, the check and the runner; ``checks.py`` the infrastructure checks,
``mexc.py`` the MEXC REST, clock, keys and WebSocket rows, ``trading.py`` the breaker state and
the full path (``fullpath.py``), ``daily.py`` the summary of ``--daily``. ``CHECKS`` is every
check in the order of the report.
"""

from __future__ import annotations

from typing import Final

from cdb_cli.services.systemcheck.checks import CORE_CHECKS
from cdb_cli.services.systemcheck.mexc import MEXC_CHECKS
from cdb_cli.services.systemcheck.model import (
    Check,
    CheckContext,
    CheckRow,
    Outcome,
    Status,
    run_checks,
    secret_values,
)
from cdb_cli.services.systemcheck.trading import TRADING_CHECKS

CHECKS: Final[tuple[Check, ...]] = (*CORE_CHECKS, *MEXC_CHECKS, *TRADING_CHECKS)

__all__ = [
    "CHECKS",
    "CORE_CHECKS",
    "MEXC_CHECKS",
    "TRADING_CHECKS",
    "Check",
    "CheckContext",
    "CheckRow",
    "Outcome",
    "Status",
    "run_checks",
    "secret_values",
]
