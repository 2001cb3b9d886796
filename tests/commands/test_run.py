"""``cdb run --live`` refuses with the reason, exit 3 or 4, and places nothing, when the
governance gate fails: no keys, a failing systemcheck, no confirmation. Against the simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result
from webhook_testkit import Receiver

from cdb_cli.adapters.mexc.sim import SimServer
from cdb_cli.errors import ExitCode
from cdb_cli.kernel import open_store
from cdb_cli.settings import Settings

from .conftest import SIM_KEY, SIM_SECRET


@pytest.fixture
def live_env(tmp_path: Path, threaded_sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    for name, value in {
        "CDB_DATABASE_URL": url,
        "CDB_BACKUP_DIR": str(tmp_path / "backups"),
        "CDB_MEXC_REST_URL": threaded_sim.rest_url,
        "CDB_MEXC_WS_URL": threaded_sim.ws_url,
        "CDB_SYMBOLS": "BTCUSDT",
        "CDB_MEXC_API_KEY": SIM_KEY,
        "CDB_MEXC_API_SECRET": SIM_SECRET,
        "CDB_DAILY_DRAWDOWN_PCT": "3",
        "CDB_CIRCUIT_BREAKER_PCT": "8",
        "CDB_MAX_EXPOSURE_PCT": "20",
        "CDB_MAX_POSITION_QUOTE": "200",
        "CDB_HTTP_PORT": "18999",
    }.items():
        monkeypatch.setenv(name, value)
    return url


def audits(url: str) -> list[tuple[str, dict[str, str]]]:
    store = open_store(Settings(database_url=url))
    try:
        return [(a.action, a.detail) for a in store.audits()]
    finally:
        store.close()


def nothing_placed(sim: SimServer) -> bool:
    return all(not account.orders for account in sim.exchange.accounts.values())


def test_without_keys_it_refuses_with_exit_3(
    cdb: Callable[..., Result],
    live_env: str,
    threaded_sim: SimServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CDB_MEXC_API_KEY")
    monkeypatch.delenv("CDB_MEXC_API_SECRET")
    result = cdb("run", "--live", "--confirm-live")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "cdb run --live refused: mexc keys" in result.stderr
    assert nothing_placed(threaded_sim)
    assert audits(live_env)[-1][0] == "live_refused"


def test_a_failing_systemcheck_refuses_with_exit_4(
    cdb: Callable[..., Result], live_env: str, threaded_sim: SimServer
) -> None:
    result = cdb("run", "--live", "--confirm-live", "--symbols", "DOGEUSDT")  # not listed
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "FAIL systemcheck" in result.stderr
    assert "mexc trading" in result.stderr
    assert nothing_placed(threaded_sim)
    action, detail = audits(live_env)[-1]
    assert action == "live_refused"
    assert detail["systemcheck"].startswith("fail")
    assert SIM_SECRET not in result.output + str(detail)


def test_an_api_untradable_symbol_refuses_with_exit_4_in_one_line(
    cdb: Callable[..., Result], live_env: str, threaded_sim: SimServer
) -> None:
    """Listed and quoted, but not in ``/api/v3/defaultSymbols``: MEXC would answer every order
    10007, so the gate refuses before the first one."""
    threaded_sim.exchange.tradability.api_untradable.add("ETHUSDT")
    try:
        result = cdb("run", "--live", "--confirm-live", "--symbols", "ETHUSDT")
    finally:
        threaded_sim.exchange.tradability.api_untradable.discard("ETHUSDT")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("FAIL systemcheck")]
    assert "ETHUSDT is not tradable over the API (not in /api/v3/defaultSymbols" in line
    assert "10007" in line
    assert nothing_placed(threaded_sim)
    action, detail = audits(live_env)[-1]
    assert action == "live_refused"
    assert "not tradable over the API" in detail["systemcheck"]


def test_a_buy_only_symbol_refuses_with_exit_4(
    cdb: Callable[..., Result], live_env: str, threaded_sim: SimServer
) -> None:
    threaded_sim.exchange.tradability.trade_sides["ETHUSDT"] = "2"
    try:
        result = cdb("run", "--live", "--confirm-live", "--symbols", "ETHUSDT")
    finally:
        del threaded_sim.exchange.tradability.trade_sides["ETHUSDT"]
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "ETHUSDT takes buy orders only (tradeSideType 2)" in result.stderr
    assert nothing_placed(threaded_sim)


def test_without_confirmation_off_a_terminal_it_refuses_with_exit_4(
    cdb: Callable[..., Result], live_env: str, threaded_sim: SimServer
) -> None:
    result = cdb("run", "--live")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "operator confirmed: not on a terminal: pass --confirm-live" in result.stderr
    for condition in ("mexc keys", "systemcheck", "risk limits", "metrics endpoint"):
        assert f"ok   {condition}" in result.stderr
    assert nothing_placed(threaded_sim)
    assert audits(live_env)[-1][0] == "live_refused"


def test_a_refusal_is_posted_to_the_webhooks(
    cdb: Callable[..., Result],
    live_env: str,
    monkeypatch: pytest.MonkeyPatch,
    webhook_receiver: Callable[..., Receiver],
) -> None:
    receiver = webhook_receiver()
    monkeypatch.setenv("CDB_WEBHOOK_URLS", f"json:{receiver.base}/live/{SIM_SECRET}")
    result = cdb("run", "--live")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    [post] = receiver.posts  # sent before the refusal's exit
    document = post.json()
    assert (document["event"], document["severity"]) == ("live_refused", "error")
    assert document["title"] == "cdb live refused: the governance gate failed"
    assert "operator confirmed: not on a terminal: pass --confirm-live" in document["text"]
    assert SIM_SECRET not in result.output + post.text


def test_risk_limits_left_at_their_paper_defaults_refuse_with_exit_3(
    cdb: Callable[..., Result],
    live_env: str,
    threaded_sim: SimServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CDB_MAX_POSITION_QUOTE")
    result = cdb("run", "--live", "--confirm-live")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "CDB_MAX_POSITION_QUOTE" in result.stderr
    assert nothing_placed(threaded_sim)


def test_confirm_live_is_only_for_live(cdb: Callable[..., Result], live_env: str) -> None:
    result = cdb("run", "--paper", "--confirm-live")
    assert result.exit_code == ExitCode.USAGE
    result = cdb("run", "--live", "--feed", "sim")
    assert result.exit_code == ExitCode.USAGE


def test_a_world_readable_env_file_refuses_with_exit_4_naming_it(
    cdb: Callable[..., Result],
    live_env: str,
    threaded_sim: SimServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The keys in a `.env` that others may read (chmod 644): `cdb systemcheck` in that folder
    fails it, and so does the gate, which judges the run's own env file (issue 27)."""
    monkeypatch.delenv("CDB_MEXC_API_KEY")
    monkeypatch.delenv("CDB_MEXC_API_SECRET")
    env_file = tmp_path / ".env"
    env_file.write_text(f"CDB_MEXC_API_KEY={SIM_KEY}\nCDB_MEXC_API_SECRET={SIM_SECRET}\n")
    env_file.chmod(0o644)
    result = cdb("--env-file", str(env_file), "run", "--live", "--confirm-live")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "FAIL systemcheck" in result.stderr
    assert f"{env_file}: readable by group/others (mode 0644)" in result.stderr
    assert SIM_SECRET not in result.output
    assert nothing_placed(threaded_sim)
    assert audits(live_env)[-1][0] == "live_refused"
