"""``AppContext``: what the root callback hands every command on ``ctx.obj``."""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from cdb_cli.output import Terminal

if TYPE_CHECKING:
    from cdb_cli.settings import Settings

__all__ = ["AppContext", "app_context", "run_async"]

T = TypeVar("T")


@dataclass
class AppContext:
    """Global options and lazily loaded settings, shared by all commands."""

    env_file: Path | None
    verbosity: int = 0
    json: bool = False
    terminal: Terminal = field(default_factory=Terminal)
    _settings: Settings | None = None

    @contextlib.contextmanager
    def json_failures(self, as_json: bool) -> Iterator[None]:
        """With ``--json``, a failure still prints a JSON document (``error`` and the
        ``exit_code``) before it ends the command as usual: scripts never read empty stdout.

        A usage error (``typer.BadParameter``, exit 2) and a ``CdbError`` (its exit code) are
        documented; what a command ends itself (``typer.Exit``) it documents itself.
        """
        from cdb_cli.engine.errors import CdbError

        try:
            yield
        except typer.BadParameter as e:
            if as_json:
                self.terminal.json({"error": e.format_message(), "exit_code": 2})
            raise
        except CdbError as e:
            if as_json:
                from cdb_cli.errors import exit_code_for
                from cdb_cli.redaction import redact

                error = redact(e.message)
                self.terminal.json({"error": error, "exit_code": int(exit_code_for(e))})
            raise

    def settings(self) -> Settings:
        """Load the settings once (defaults → env file → environment); ConfigurationError if bad."""
        if self._settings is None:
            from cdb_cli.settings_io import load_settings

            self._settings = load_settings(self.env_file)
        return self._settings


def app_context(ctx: typer.Context) -> AppContext:
    """The ``AppContext`` of the running invocation (built by the root callback)."""
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # a command invoked without the root callback
        obj = AppContext(env_file=None)
        ctx.find_root().obj = obj
    return obj


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run an async command body: the one place cdb calls ``asyncio.run``."""
    import asyncio

    return asyncio.run(coroutine)
