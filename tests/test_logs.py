"""Logging: JSON lines on stderr when it is not a terminal; -v/-q move the level."""

from __future__ import annotations

import json
import logging

import pytest

from cdb_cli.logs import setup_logging


def test_json_lines_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(1)
    try:
        raise ValueError("inner detail")
    except ValueError:
        logging.getLogger("cdb_cli.test").exception("Order denied: notional %s", 1200)
    logging.getLogger("cdb_cli.test").debug("not shown at -v")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "error"
    assert record["logger"] == "cdb_cli.test"
    assert record["message"] == "Order denied: notional 1200"
    assert record["exception"] == "ValueError"
    assert "inner detail" not in lines[0]  # no traceback text, which could carry locals


@pytest.mark.parametrize(
    ("verbosity", "level"),
    [
        (-2, logging.CRITICAL),
        (-1, logging.ERROR),
        (0, logging.WARNING),
        (1, logging.INFO),
        (2, logging.DEBUG),
    ],
)
def test_verbosity_sets_level(verbosity: int, level: int) -> None:
    setup_logging(verbosity)
    assert logging.getLogger("cdb_cli").level == level


def test_json_lines_carry_the_run_id_once_a_run_set_it() -> None:
    import json
    import logging

    from cdb_cli.logs import RUN_ID, JsonFormatter

    record = logging.LogRecord("cdb_cli.x", logging.WARNING, __file__, 1, "hello", None, None)
    assert "run_id" not in json.loads(JsonFormatter().format(record))
    token = RUN_ID.set("p0123456789a")
    try:
        assert json.loads(JsonFormatter().format(record))["run_id"] == "p0123456789a"
    finally:
        RUN_ID.reset(token)
