"""``cdb replay`` through the CLI: the real candles, determinism, the plot, the persisted run
read back by a fresh process, and every kind of bad input with its exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from cdb_testkit import CANDLES, TRADES, load_candles, ref_signals, require_data
from typer.testing import Result

from cdb_cli.engine.signals import SignalConfig
from cdb_cli.errors import ExitCode

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "replay-UNITTEST_BTC-1m.golden.json"
"""``cdb replay --json`` of the real candles with the default settings (and fixed paths, which the
settings' hash covers), as written before the
runtime's redesign (issue 23): a refactor that changes one byte of it changed behaviour. Write it
again only for an intended change of behaviour, and say so in the commit."""


@pytest.fixture(scope="module")
def candles_path() -> Path:
    return require_data(CANDLES)


def replay_json(cdb: Callable[..., Result], *args: str) -> dict[str, object]:
    result = cdb("replay", *args, "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_real_candles_report_follows_the_rule_and_is_deterministic(
    cdb: Callable[..., Result], candles_path: Path
) -> None:
    first = cdb("replay", str(candles_path), "--json")
    second = cdb("--json", "replay", str(candles_path))
    assert first.exit_code == second.exit_code == 0, first.output
    assert first.stdout == second.stdout  # byte-identical
    report = json.loads(first.stdout)
    rows = load_candles()
    buys, exits = ref_signals([r[4] for r in rows], [r[5] for r in rows], SignalConfig())
    assert report["bars"] == len(rows)
    assert report["signals"] == {"buy": len(buys), "exit": len(exits)}
    decisions = report["decisions"]
    decided = decisions["approved"] + decisions["reduced"] + decisions["rejected"]
    # Exits while flat are their own verdict, nothing_held, not rejections.
    held = decisions["nothing_held"]
    assert decided + held == len(buys) + len(exits)
    assert 0 < held < len(exits)
    # the rules that refused an order: no exit while flat among them
    assert set(decisions["by_rule"]) <= {"circuit_breaker", "daily_drawdown", "spread"}
    assert sum(decisions["by_rule"].values()) >= decisions["rejected"] > 0
    assert report["orders"] > 0
    assert report["fills"] >= report["orders"] - report["orders_rejected"] - 1
    for key in ("final_equity", "max_drawdown_pct", "fees", "pnl"):
        assert key in report
    provenance = report["provenance"]
    assert provenance["symbol"] == "UNITTESTBTC"
    assert len(provenance["data_sha256"]) == 64
    assert provenance["cdb_version"]


def test_the_real_candles_replay_is_byte_identical_to_the_stored_report(
    cdb: Callable[..., Result], candles_path: Path
) -> None:
    # paths are part of the settings' hash: fixed ones, not the user data dir's
    fixed = (
        *("--set", "database_url=sqlite://", "--set", "backup_dir=/var/backups/cdb-golden"),
        *("--set", "spill_dir=/var/lib/cdb-golden/unsaved"),
    )
    result = cdb("replay", str(candles_path), *fixed, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(GOLDEN.read_text())["fills"] > 0  # the stored report is a real run
    assert result.stdout == GOLDEN.read_text()


def test_table_output_and_settings_change_the_run(
    cdb: Callable[..., Result], candles_path: Path
) -> None:
    table = cdb("replay", str(candles_path))
    assert table.exit_code == 0, table.output
    assert "final equity" in table.stdout
    assert "signals" in table.stdout
    # rounded for reading: UNITTESTBTC is quoted in BTC, 8 places; the JSON keeps 18
    report = replay_json(cdb, str(candles_path))
    assert f"final equity     │ {Decimal(report['final_equity']):.8f}" in table.stdout
    assert f"PnL              │ {Decimal(report['pnl']):.8f}" in table.stdout
    assert not re.search(r"\d\.\d{9,}", table.stdout)
    assert re.search(r"win rate \d+\.\d %", table.stdout)
    as_usdt = cdb("replay", str(candles_path), "-s", "btcusdt", "--until", "2017-11-05T01:00")
    assert as_usdt.exit_code == 0, as_usdt.output
    assert "0 closed (0 won, 0 lost), 0 open; win rate \u2013" in as_usdt.stdout
    assert "final equity     │ 10000.00 " in as_usdt.stdout
    other = replay_json(cdb, str(candles_path), "--set", "ema_fast=5", "--cash", "5000")
    default = replay_json(cdb, str(candles_path))
    assert other["signals"] != default["signals"]
    assert other["starting_cash"] == "5000"
    assert other["provenance"] != default["provenance"]  # type: ignore[comparison-overlap]


def test_wide_spread_gives_signals_and_zero_orders(
    cdb: Callable[..., Result], candles_path: Path
) -> None:
    report = replay_json(
        cdb, str(candles_path), "--set", "assumed_spread_pct=0.12", "--set", "max_spread_pct=0.1"
    )
    assert report["signals"]["buy"] > 0  # type: ignore[index]
    assert report["orders"] == report["fills"] == 0
    decisions = report["decisions"]
    # every buy refused by the spread; every exit had nothing to sell (never bought)
    assert decisions["by_rule"] == {"spread": report["signals"]["buy"]}  # type: ignore[index]
    assert decisions["rejected"] == report["signals"]["buy"]  # type: ignore[index]
    assert decisions["nothing_held"] == report["signals"]["exit"]  # type: ignore[index]


def test_plot_writes_a_png_with_the_equity_curve(
    cdb: Callable[..., Result], candles_path: Path, tmp_path: Path
) -> None:
    import matplotlib.image

    target = tmp_path / "out" / "equity.png"
    result = cdb("replay", str(candles_path), "--plot", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(str(target))
    height, width = pixels.shape[:2]
    assert (width, height) == (1000, 600)
    # the curve is drawn in tab:blue (31, 119, 180), the drawdown in translucent red
    blue = (abs(pixels[..., 0] - 31 / 255) < 0.05) & (abs(pixels[..., 2] - 180 / 255) < 0.05)
    assert int(blue.sum()) > 500
    assert list(target.parent.iterdir()) == [target]  # no temp file left behind


def test_without_matplotlib_the_plot_hint_names_the_extra_literally(
    cdb: Callable[..., Result],
    candles_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    target = tmp_path / "equity.png"
    window = ("--until", "2017-11-05T01:00")
    result = cdb("replay", str(candles_path), *window, "--plot", str(target))
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert "Plotting needs matplotlib: pip install 'cdb-cli[plot]'" in result.stderr
    assert not target.exists()


def test_persisted_run_is_restored_by_a_fresh_process(
    cdb: Callable[..., Result], candles_path: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    result = cdb("replay", str(candles_path), "--persist", "--set", f"database_url={url}", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert f"Persisted run {report['provenance']['run_id']}" in result.stderr
    code = (
        "import json, sys\n"
        "from cdb_cli.adapters.sql.store import SqlStore\n"
        "from cdb_cli.engine.runs import restore_run\n"
        "store = SqlStore(sys.argv[1])\n"
        "p = restore_run(store)\n"
        "print(json.dumps({'final_equity': str(p.equity()), 'cash': str(p.cash),\n"
        "  'fees': str(p.fees_paid), 'realized_pnl': str(p.realized_pnl())}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDB_")}
    fresh = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, env=env, check=True
    )
    restored = json.loads(fresh.stdout)
    for key in ("final_equity", "cash", "fees", "realized_pnl"):
        assert restored[key] == report[key], key


def test_persist_refuses_a_database_with_paper_trading(
    cdb: Callable[..., Result], candles_path: Path, tmp_path: Path
) -> None:
    from decimal import Decimal

    from cdb_cli.engine.events import Side
    from cdb_cli.engine.records import OrderRecord
    from cdb_cli.kernel import open_store
    from cdb_cli.settings import Settings

    url = f"sqlite:///{tmp_path / 'paper.db'}"
    store = open_store(Settings(database_url=url), create_if_new=True)
    store.save_order(
        OrderRecord(
            client_order_id="p1",
            decision_id="d1",
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type="MARKET",
            quote_amount=Decimal(100),
            status="FILLED",
            ts_created=1,
            ts_updated=1,
            mode="paper",
        )
    )
    store.close()
    result = cdb("replay", str(candles_path), "--persist", "--set", f"database_url={url}")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "holds paper or live orders" in result.stderr


def test_tick_replay_from_real_trades(cdb: Callable[..., Result]) -> None:
    report = replay_json(cdb, str(require_data(TRADES)), "--interval-s", "60")
    assert report["provenance"]["symbol"] == "XRPETH"  # type: ignore[index]
    assert report["bars"] > 0


@pytest.mark.parametrize(
    ("args", "code", "stream_text"),
    [
        (["--set", "max_spred_pct=1"], ExitCode.USAGE, "did you mean max_spread_pct"),
        (["--set", "nonsense"], ExitCode.USAGE, "is not NAME=VALUE"),
        (["--set", "max_spread_pct=-1"], ExitCode.CONFIGURATION, "CDB_MAX_SPREAD_PCT"),
        (["--cash", "lots"], ExitCode.USAGE, "is not a number"),
        (["--cash", "-5"], ExitCode.USAGE, "must be above 0"),
        (["--since", "yesterday"], ExitCode.USAGE, "is not a duration"),
        (["--from", "yesterday"], ExitCode.USAGE, "is not a duration"),  # the old name
        (["--since", "1d", "--from", "1d"], ExitCode.USAGE, "--from is its old name"),
        (["--symbol", "BTCUSDT,ETHUSDT"], ExitCode.USAGE, "takes one symbol here"),
        (["--bogus"], ExitCode.USAGE, "No such option"),
    ],
)
def test_bad_options_are_one_line_errors(
    cdb: Callable[..., Result],
    candles_path: Path,
    args: list[str],
    code: int,
    stream_text: str,
) -> None:
    result = cdb("replay", str(candles_path), *args)
    assert result.exit_code == code, result.output
    assert stream_text in result.stderr
    assert "Traceback" not in result.output


def test_bad_files(cdb: Callable[..., Result], tmp_path: Path) -> None:
    missing = cdb("replay", str(tmp_path / "nope.json"))
    assert missing.exit_code == ExitCode.USAGE, missing.output
    unknown = tmp_path / "BTCUSDT.txt"
    unknown.write_text("just text\n")
    result = cdb("replay", str(unknown))
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "accepted: bars-json" in result.stderr
    bad = tmp_path / "BTCUSDT-1m.json"
    rows = [[1_700_000_000_000 + i * 60_000, 1.0, 1.0, 1.0, 1.0, 1.0] for i in range(5)]
    rows[3][4] = -2.0
    bad.write_text(json.dumps(rows))
    failed = cdb("replay", str(bad))
    assert failed.exit_code == ExitCode.FAILURE, failed.output
    assert "row 4" in failed.stderr
    assert "Traceback" not in failed.output
    skipped = replay_json(cdb, str(bad), "--skip-bad-rows")
    assert skipped["skipped_rows"] == 1
    assert skipped["bars"] == 4
    nameless = tmp_path / "data.json"
    nameless.write_text(json.dumps(rows))
    result = cdb("replay", str(nameless))
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "--symbol" in result.stderr


def test_secrets_never_appear(
    cdb: Callable[..., Result], candles_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("CDB_MEXC_API_SECRET", secret)
    monkeypatch.setenv("CDB_MEXC_API_KEY", "mx0vglSECRETKEYVALUE")
    result = cdb("replay", str(candles_path), "--json")
    assert result.exit_code == 0, result.output
    for value in (secret, "mx0vglSECRETKEYVALUE"):
        assert value not in result.stdout
        assert value not in result.stderr
