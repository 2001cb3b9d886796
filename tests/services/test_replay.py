"""``cdb replay`` as a service: the symbol from the file name, the usage error for an unknown
format, and the equity plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdb_cli.engine.errors import CdbError
from cdb_cli.services.replay import (
    ReplayRequest,
    UnknownReplayFormat,
    plot_replay,
    replay_symbol,
    run_replay,
)
from cdb_cli.settings import Settings

CANDLES = Path(__file__).resolve().parents[1] / "data" / "UNITTEST_BTC-1m.json"


@pytest.mark.parametrize(
    ("name", "given", "symbol"),
    [
        ("UNITTEST_BTC-1m.json", None, "UNITTESTBTC"),
        ("BTCUSDT-1m.json.gz", None, "BTCUSDT"),
        ("BTCUSDT-1m.json", "ethusdt", "ETHUSDT"),  # the option wins, upper case
        ("my data.json", None, None),
    ],
)
def test_the_symbol_is_given_or_told_by_the_file_name(
    name: str, given: str | None, symbol: str | None
) -> None:
    assert replay_symbol(Path(name), given) == symbol


def test_an_unknown_format_is_its_own_error(tmp_path: Path) -> None:
    data = tmp_path / "BTCUSDT-1m.json"
    data.write_text('{"not": "rows"}')

    with pytest.raises(UnknownReplayFormat, match="accepted: bars-json") as raised:
        run_replay(Settings(), ReplayRequest(data=data, symbol="BTCUSDT"))
    assert isinstance(raised.value, CdbError)  # exit codes as before when nobody catches it


def test_the_plot_is_a_png_of_the_run(tmp_path: Path) -> None:
    request = ReplayRequest(data=CANDLES, symbol="UNITTESTBTC", record_curve=True, trace=False)
    result = run_replay(Settings(), request)
    target = tmp_path / "equity.png"

    plot_replay(request, result, target)

    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
