"""Terminal output: results on stdout, diagnostics on stderr, JSON documents alone on stdout.

rich is imported on first use, not at import time, so ``cdb --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Terminal"]


class Terminal:
    """Two rich consoles: ``out`` for results (stdout) and ``err`` for diagnostics (stderr)."""

    def __init__(self, *, no_color: bool = False) -> None:
        self.no_color = no_color or "NO_COLOR" in os.environ

    def _console(self, stream: Any) -> Console:
        from rich.console import Console

        return Console(file=stream, no_color=self.no_color, highlight=False, soft_wrap=True)

    @cached_property
    def out(self) -> Console:
        return self._console(sys.stdout)

    @cached_property
    def err(self) -> Console:
        return self._console(sys.stderr)

    def json(self, document: Any) -> None:
        """Write one JSON document to stdout and nothing else."""
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def csv(self, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
        """Write one table as CSV to stdout (None as an empty cell) and nothing else."""
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if cell is None else cell for cell in row] for row in rows)

    def error(self, message: str, details: list[str] | None = None) -> None:
        """One red line on stderr, then one indented line per detail; the message is printed as
        it is (``pip install 'cdb-cli[plot]'`` keeps its brackets)."""
        from rich.markup import escape

        self.err.print(f"[red]Error:[/red] {escape(message)}", markup=True, highlight=False)
        for line in details or []:
            self.err.print(f"  {line}", markup=False, highlight=False)

    def warn(self, message: str) -> None:
        """One yellow line on stderr, the message as it is."""
        from rich.markup import escape

        self.err.print(f"[yellow]Warning:[/yellow] {escape(message)}", markup=True, highlight=False)
