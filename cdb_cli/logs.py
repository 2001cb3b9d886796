"""Logging set-up, done once by the root callback: JSON lines off a terminal, rich on one."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = ["RUN_ID", "JsonFormatter", "log_as_a_service", "setup_logging"]

RUN_ID: ContextVar[str] = ContextVar("cdb_run_id", default="")
"""The run id of ``cdb run``; set once by the loop, it tags every log line it writes."""

_LEVELS = {-2: logging.CRITICAL, -1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message (+ exception type, never locals)."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = RUN_ID.get()
        if run_id:
            document["run_id"] = run_id
        if record.exc_info and record.exc_info[0] is not None:
            document["exception"] = record.exc_info[0].__name__
        return json.dumps(document, default=str)


def setup_logging(verbosity: int) -> None:
    """Route the ``cdb_cli`` loggers to stderr at the level ``-v``/``-q`` chose."""
    level = _LEVELS.get(max(-2, min(verbosity, 2)), logging.DEBUG)
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("cdb_cli")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    # python-dotenv logs each unparsable .env line; env-validate reports those itself, in one line.
    logging.getLogger("dotenv").setLevel(logging.ERROR)


def log_as_a_service(verbosity: int) -> None:
    """A long-lived loop without its live screen (``cdb run`` off a terminal or with ``--json``):
    the log is the operator's view, so at the default verbosity it says INFO — the start, each
    decision with its reasons, each order and fill, the stop; ``-q`` still quiets it."""
    if verbosity == 0:
        logging.getLogger("cdb_cli").setLevel(logging.INFO)
