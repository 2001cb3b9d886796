"""Options shared by several commands, declared once: one spelling for each idea.

* symbols: ``--symbol/-s SYMBOL``, repeatable, and a comma list too (``-s BTCUSDT,ETHUSDT``);
* a time window: ``--since WHEN`` / ``--until WHEN`` (:func:`parse_when`);
* ``--run RUN_ID`` and ``--json``;
* the strategy: ``--strategy NAME|FILE.py:Class|module:Class`` and ``--set NAME=VALUE``.

Spellings older releases used stay accepted as hidden aliases (not in ``--help``):
``--symbols A,B`` (run, reconcile), ``--from/--to`` (replay), ``--start/--end`` (data download).
tests/commands/test_vocabulary.py walks every command's ``--help`` to keep it that way.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = [
    "EndAliasOpt",
    "FromAliasOpt",
    "JsonOpt",
    "RunOpt",
    "SetOpt",
    "SinceOpt",
    "StartAliasOpt",
    "StrategyOpt",
    "SymbolOpt",
    "SymbolsAliasOpt",
    "SymbolsOpt",
    "ToAliasOpt",
    "UntilOpt",
    "parse_when",
    "pick",
    "symbol_option",
    "symbols_of",
]

SYMBOL_NAMES = ("--symbol", "-s")
SINCE, UNTIL = "--since", "--until"


def _one_symbol(value: str | None) -> str | None:
    """The symbol of a ``--symbol`` filter, upper case; a comma list is a usage error here."""
    if value is None or not value.strip():
        return None
    if "," in value:
        raise typer.BadParameter("takes one symbol here", param_hint="--symbol")
    return value.strip().upper()


def symbol_option(help: str) -> Any:
    """``--symbol/-s SYMBOL`` where a command takes one symbol (upper-cased; no comma list)."""
    return typer.Option(*SYMBOL_NAMES, metavar="SYMBOL", help=help, callback=_one_symbol)


JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")
]

SinceOpt = Annotated[
    str | None,
    typer.Option(
        SINCE,
        metavar="WHEN",
        help="Start of the window: a duration back from now (90m, 24h, 7d) or a UTC date/time.",
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(UNTIL, metavar="WHEN", help="End of the window (exclusive), same forms."),
]
SymbolsOpt = Annotated[
    list[str] | None,
    typer.Option(
        *SYMBOL_NAMES,
        metavar="SYMBOL",
        help="A symbol, e.g. BTCUSDT; repeatable, or a comma list: -s BTCUSDT,ETHUSDT "
        "(default: CDB_SYMBOLS).",
    ),
]
SymbolOpt = Annotated[str | None, symbol_option("Only this symbol.")]
StrategyOpt = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        metavar="NAME|FILE.py:CLASS|MODULE:CLASS",
        help="The strategy (CDB_STRATEGY): ema_cross (default), mean_reversion, regime, or your "
        "own class; its settings with --set NAME=VALUE or CDB_STRATEGY_<NAME>.",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="NAME=VALUE",
        help="Override a setting or a setting of the strategy for this run, e.g. --set "
        "max_spread_pct=0.2 (repeatable).",
    ),
]
RunOpt = Annotated[
    str | None,
    typer.Option("--run", metavar="RUN_ID", help="Only this run (cdb replay prints its id)."),
]

# Hidden aliases: the spellings of older releases, still accepted, not shown in --help.
SymbolsAliasOpt = Annotated[
    list[str] | None, typer.Option("--symbols", hidden=True, help="Old name of --symbol.")
]
FromAliasOpt = Annotated[
    str | None, typer.Option("--from", hidden=True, help="Old name of --since.")
]
ToAliasOpt = Annotated[str | None, typer.Option("--to", hidden=True, help="Old name of --until.")]
StartAliasOpt = Annotated[
    str | None, typer.Option("--start", hidden=True, help="Old name of --since.")
]
EndAliasOpt = Annotated[str | None, typer.Option("--end", hidden=True, help="Old name of --until.")]


def symbols_of(*given: list[str] | None) -> list[str]:
    """``-s btcusdt,ETHUSDT -s SOLUSDT`` (and any alias's values) → upper case, in order, once.

    Empty when none was given: the caller picks its default (CDB_SYMBOLS, or a usage error).
    """
    chosen: list[str] = []
    for values in given:
        for value in values or []:
            for part in value.split(","):
                name = part.strip().upper()
                if name and name not in chosen:
                    chosen.append(name)
    return chosen


def pick(value: str | None, alias: str | None, name: str, alias_name: str) -> str | None:
    """The value of an option or of its hidden alias; both at once is a usage error."""
    if value is not None and alias is not None:
        raise typer.BadParameter(f"give {name} only ({alias_name} is its old name)")
    return value if value is not None else alias


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


def csv_table_option(choices: tuple[str, ...]) -> Any:
    """``--csv TABLE`` where a command prints one of its tables as CSV (``report``, ``parity``)."""
    return typer.Option(
        "--csv", metavar="TABLE", help=f"Print one table as CSV: {', '.join(choices)}."
    )


def check_csv_table(table: str | None, choices: tuple[str, ...], *, json_output: bool) -> None:
    """Usage errors of ``--csv TABLE``: with ``--json``, or a table the command does not have."""
    if table is None:
        return
    if json_output:
        raise typer.BadParameter("choose one of --csv and --json", param_hint="--csv")
    if table not in choices:
        raise typer.BadParameter(
            f"{table!r} is not one of {', '.join(choices)}", param_hint="--csv"
        )
