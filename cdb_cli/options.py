"""Options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOpt", "RunOpt", "SinceOpt", "SymbolOpt", "UntilOpt", "parse_when"]

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")
]

SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="WHEN",
        help="Start of the window: a duration back from now (90m, 24h, 7d) or a UTC date/time.",
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option("--until", metavar="WHEN", help="End of the window (exclusive), same forms."),
]
SymbolOpt = Annotated[
    str | None, typer.Option("--symbol", metavar="SYMBOL", help="Only this symbol.")
]
RunOpt = Annotated[
    str | None,
    typer.Option("--run", metavar="RUN_ID", help="Only this run (cdb replay prints its id)."),
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_when(value: str | None, option: str, *, now_ns: int | None = None) -> int | None:
    """``24h`` (back from now), ``2017-11-05`` or ``2017-11-05T12:00Z`` → ns since the epoch (UTC).

    Raises ``typer.BadParameter`` (exit 2) for anything else.
    """
    import time
    from datetime import UTC, datetime

    if value is None:
        return None
    text = value.strip()
    unit = _UNITS.get(text[-1:].lower())
    if unit is not None and text[:-1].isdigit():
        now = time.time_ns() if now_ns is None else now_ns
        return now - int(text[:-1]) * unit * 1_000_000_000
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a duration (90m, 24h, 7d) or a UTC date/time (2017-11-05T12:00)",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
