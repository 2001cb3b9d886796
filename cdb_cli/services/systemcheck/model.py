"""The shape of ``cdb systemcheck``: a check is a small function, the runner makes it a row.

Adding a check (MEXC REST, clock skew, WebSocket, the full signal → portfolio path) means writing
one function ``(CheckContext) -> Outcome`` and listing it as a ``Check`` with its dependencies;
the runner handles ``--quick``, skipping checks whose prerequisites did not pass, timing, and
turning any error into a ``fail`` row so that every other row is still reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdb_cli.engine.errors import CdbError, DependencyError

if TYPE_CHECKING:
    from cdb_cli.settings import Settings

__all__ = [
    "Check",
    "CheckContext",
    "CheckRow",
    "Outcome",
    "Status",
    "run_checks",
    "secret_values",
]

logger = logging.getLogger(__name__)


class Status(StrEnum):
    """The verdict of one check."""

    OK = "ok"  # measured and within limits
    WARN = "warn"  # works, but the operator should look (slow, old, nearly full)
    FAIL = "fail"  # broken: systemcheck exits 4
    SKIP = "skip"  # not run: not configured, --quick, or a prerequisite did not pass


@dataclass(frozen=True)
class Outcome:
    """What a check function returns: a status, the measured value and a hint for the operator."""

    status: Status
    value: str = ""
    hint: str = ""


@dataclass(frozen=True)
class CheckRow:
    """One row of the report."""

    name: str
    status: Status
    value: str = ""
    hint: str = ""
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The row as ``--json`` prints it."""
        return {
            "name": self.name,
            "status": str(self.status),
            "value": self.value,
            "hint": self.hint,
            "duration_ms": round(self.duration_ms, 1),
        }


@dataclass
class CheckContext:
    """What every check may read: the settings (None when invalid), the time, earlier rows."""

    settings: Settings | None
    now: datetime
    settings_error: CdbError | None = None
    env_file: Path | None = None
    quick: bool = False
    rows: dict[str, CheckRow] = field(default_factory=dict)

    def require_settings(self) -> Settings:
        """The valid settings (checks run only after the ``settings`` check passed)."""
        if self.settings is None:  # pragma: no cover - the runner skips dependants
            raise CdbError("Settings are invalid")
        return self.settings


CheckFunction = Callable[[CheckContext], Outcome]


@dataclass(frozen=True)
class Check:
    """A named check: its function, whether it uses the network, and what must pass first.

    ``uses_settings`` checks are skipped while the settings cannot be loaded at all.
    """

    name: str
    run: CheckFunction
    network: bool = False
    needs: tuple[str, ...] = ()
    uses_settings: bool = True


def _run_one(check: Check, context: CheckContext, secrets: Sequence[str]) -> Outcome:
    try:
        return check.run(context)
    except DependencyError as e:
        return Outcome(Status.FAIL, "unreachable", _scrub(e.message, secrets))
    except CdbError as e:
        return Outcome(Status.FAIL, "error", _scrub(e.message, secrets))
    except Exception as e:  # every row must be reported, whatever one check does
        logger.debug("Check %s raised", check.name, exc_info=True)
        text = str(e).splitlines()[0] if str(e) else ""
        return Outcome(Status.FAIL, "error", _scrub(f"{type(e).__name__}: {text}", secrets))


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def run_checks(
    checks: Sequence[Check], context: CheckContext, *, secrets: Sequence[str] = ()
) -> list[CheckRow]:
    """Run ``checks`` in order; every check yields exactly one row.

    A check is skipped under ``--quick`` when it uses the network, and when a check it needs did
    not end ``ok``. ``secrets`` (passwords) are replaced by ``***`` in any message.
    """
    rows = []
    for check in checks:
        unmet = [name for name in check.needs if _status(context, name) is not Status.OK]
        started = time.perf_counter()
        if check.network and context.quick:
            outcome = Outcome(Status.SKIP, hint="--quick: network checks are skipped")
        elif check.uses_settings and context.settings is None:
            outcome = Outcome(Status.SKIP, hint="needs valid settings")
        elif unmet:
            outcome = Outcome(Status.SKIP, hint=f"needs {unmet[0]} to pass first")
        else:
            outcome = _run_one(check, context, [secret for secret in secrets if secret])
        row = CheckRow(
            name=check.name,
            status=outcome.status,
            value=outcome.value,
            hint=outcome.hint,
            duration_ms=(time.perf_counter() - started) * 1000.0,
        )
        context.rows[check.name] = row
        rows.append(row)
    return rows


def _status(context: CheckContext, name: str) -> Status | None:
    row = context.rows.get(name)
    return None if row is None else row.status


def secret_values(settings: Settings | None) -> list[str]:
    """Every secret a message could leak: URL passwords and the API credentials."""
    if settings is None:
        return []
    from cdb_cli.settings_io import secret_values, settings_env

    return secret_values(settings_env(settings))
