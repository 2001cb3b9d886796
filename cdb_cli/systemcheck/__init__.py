"""``cdb systemcheck``: every dependency of cdb as one row each (ok / warn / fail / skip).

``model.py`` holds the row, the check and the runner; ``checks.py`` the checks themselves.
"""

from __future__ import annotations

from cdb_cli.systemcheck.checks import CORE_CHECKS
from cdb_cli.systemcheck.model import (
    Check,
    CheckContext,
    CheckRow,
    Outcome,
    Status,
    run_checks,
    secret_values,
)

__all__ = [
    "CORE_CHECKS",
    "Check",
    "CheckContext",
    "CheckRow",
    "Outcome",
    "Status",
    "run_checks",
    "secret_values",
]
