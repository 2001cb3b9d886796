"""One CLI vocabulary (issue 23): every command's ``--help`` spells symbols ``--symbol/-s`` and
time windows ``--since/--until``; the spellings of older releases still parse, hidden."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import typer
from typer._click.core import Command, Context
from typer.core import TyperGroup, TyperOption
from typer.testing import Result

from cdb_cli.app import app
from cdb_cli.options import symbols_of

OLD_NAMES = {"--symbols", "--from", "--to", "--start", "--end"}
# backup restore --to is the database to restore into (a URL), not the end of a time window.
NOT_A_WINDOW = {("backup", "restore"): {"--to"}}
TAKES_SYMBOLS = {
    ("run",),
    ("reconcile",),
    ("parity",),
    ("replay",),
    ("report",),
    ("explain",),
    ("risk", "explain"),
    ("sim-exchange",),
    ("data", "download"),
}
HAS_A_WINDOW = {
    ("replay",),
    ("report",),
    ("parity",),
    ("explain",),
    ("risk", "explain"),
    ("data", "download"),
}


def _commands(
    command: Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, command


ROOT = typer.main.get_command(app)
COMMANDS = dict(_commands(ROOT))


def _visible(command: Command) -> set[str]:
    return {
        name
        for param in command.params
        if isinstance(param, TyperOption) and not param.hidden
        for name in (*param.opts, *param.secondary_opts)
    }


def test_the_walk_finds_every_command() -> None:
    assert len(COMMANDS) >= 20  # 23 when this was written: the walk reaches into the groups
    assert set(COMMANDS) >= TAKES_SYMBOLS | HAS_A_WINDOW


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_help_uses_the_shared_names(cdb: Callable[..., Result], path: tuple[str, ...]) -> None:
    result = cdb(*path, "--help")
    assert result.exit_code == 0, result.output
    options = result.stdout.split("Options:")[1]
    visible = _visible(COMMANDS[path])
    assert "-h, --help" in options
    for name in visible:
        assert name in options, f"{name} missing from the help of {' '.join(path)}"
    old = (visible & OLD_NAMES) - NOT_A_WINDOW.get(path, set())
    assert not old, f"{' '.join(path)} shows the old names {sorted(old)}"
    for word in sorted(OLD_NAMES - NOT_A_WINDOW.get(path, set())):
        assert f" {word} " not in options
        assert f" {word}," not in options
    takes_symbols = any("symbol" in (param.name or "") for param in COMMANDS[path].params)
    assert takes_symbols == (path in TAKES_SYMBOLS)
    if path in TAKES_SYMBOLS:
        assert {"--symbol", "-s"} <= visible
        assert "-s, --symbol SYMBOL" in options
    windows = {
        param.opts[0]
        for param in COMMANDS[path].params
        if isinstance(param, TyperOption) and param.metavar == "WHEN"
    }
    assert (windows == {"--since", "--until"}) == (path in HAS_A_WINDOW), windows
    if path in HAS_A_WINDOW:
        assert "--since WHEN" in options
        assert "--until WHEN" in options


@pytest.mark.parametrize(
    ("path", "args", "expected"),
    [
        (("run",), ["--symbols", "BTCUSDT,ETHUSDT"], {"symbols": ["BTCUSDT,ETHUSDT"]}),
        (("reconcile",), ["--symbols", "SOLUSDT"], {"symbols": ["SOLUSDT"]}),
        (("replay",), [__file__, "--from", "2017-11-05", "--to", "2017-11-06"],
         {"since_alias": "2017-11-05", "until_alias": "2017-11-06"}),
        (("data", "download"), ["BTCUSDT", "--start", "1", "--end", "2"],
         {"names": ["BTCUSDT"], "start": "1", "end": "2"}),
    ],
)  # fmt: skip
def test_the_old_names_still_parse_hidden(
    path: tuple[str, ...], args: list[str], expected: dict[str, object]
) -> None:
    command = COMMANDS[path]
    parent = Context(ROOT, info_name="cdb")
    context = command.make_context(path[-1], list(args), parent=parent)
    assert {key: context.params[key] for key in expected} == expected
    hidden = {
        name
        for param in command.params
        if isinstance(param, TyperOption) and param.hidden
        for name in param.opts
    }
    assert set(args) & OLD_NAMES <= hidden


@pytest.mark.parametrize("path", sorted(TAKES_SYMBOLS), ids=" ".join)
def test_symbol_parses_the_same_everywhere(path: tuple[str, ...]) -> None:
    args = [__file__] if path == ("replay",) else []
    command = COMMANDS[path]
    context = command.make_context(path[-1], [*args, "-s", "btcusdt"], parent=Context(ROOT))
    value = context.params["symbol"]
    assert value in ("BTCUSDT", ["btcusdt"])  # a filter is upper-cased on parsing


def test_symbols_of_takes_repeats_comma_lists_and_aliases() -> None:
    assert symbols_of(["btcusdt,ETHUSDT", " SOLUSDT "], None, ["ethusdt", "XRPUSDT"]) == [
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
        "XRPUSDT",
    ]
    assert symbols_of(None, []) == []


def test_a_symbol_filter_refuses_a_list(cdb: Callable[..., Result]) -> None:
    result = cdb("report", "--symbol", "BTCUSDT,ETHUSDT")
    assert result.exit_code == 2, result.output
    assert "takes one symbol here" in result.stderr
